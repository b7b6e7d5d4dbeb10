#!/bin/sh
# One REST request for krunkit-shim.sh (run by socat per connection):
# GET /vm/state and POST /vm/state {"state": Stop|HardStop|Pause|Resume},
# answered the way krunkit does, carried out through QEMU's QMP ($QMP).
qmp() {
    printf '{"execute":"qmp_capabilities"}\n{"execute":"%s"}\n' "$1" |
        socat -t 1 - "UNIX-CONNECT:$QMP" 2>/dev/null
}
reply() {
    printf 'HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$1" "${#2}" "$2"
}
read -r method path _ || exit 0
len=0
while read -r h; do
    h=$(printf '%s' "$h" | tr -d '\r')
    [ -z "$h" ] && break
    case "$h" in [Cc]ontent-[Ll]ength:*) len=$(echo "${h#*:}" | tr -d ' ') ;; esac
done
body=""
[ "$len" -gt 0 ] && body=$(head -c "$len")
case "$method $path" in
"GET /vm/state")
    case "$(qmp query-status)" in
    *'"running": true'*) s=Running ;;
    *'"status": "paused"'*) s=Paused ;;
    *) s=Stopped ;;
    esac
    reply "200 OK" "{\"state\": \"VirtualMachineState$s\"}"
    ;;
"POST /vm/state")
    case "$body" in
    *'"Stop"'*) qmp system_powerdown >/dev/null; s=Stopping ;;
    *'"HardStop"'*) qmp quit >/dev/null; s=Stopped ;;
    *'"Pause"'*) qmp stop >/dev/null; s=Paused ;;
    *'"Resume"'*) qmp cont >/dev/null; s=Running ;;
    *) reply "400 Bad Request" '{"error": "bad state"}'; exit 0 ;;
    esac
    reply "200 OK" "{\"state\": \"VirtualMachineState$s\"}"
    ;;
*) reply "404 Not Found" '{"error": "not found"}' ;;
esac
