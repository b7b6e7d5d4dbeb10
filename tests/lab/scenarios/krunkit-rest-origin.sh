#!/bin/sh
# lab-timeout: 240
# The REST API refuses browser-borne requests: an Origin header (a page's
# cross-site form POST) or a Host that is not ours (DNS rebinding) gets 403
# and changes nothing; plain clients (curl) keep working; the UNIX socket
# is 0600 from the moment it exists, even under umask 000.
# 1. UNIX socket, krunkit started under umask 000: the socket's mode;
#    POST /vm/state HardStop (text/plain, Origin: http://evil.example) ->
#    403 and the VM is still Running; plain GET works; plain HardStop ends
#    krunkit. (No Host check here: no browser reaches a UNIX socket, so
#    DNS rebinding cannot, and clients send made-up names there, vfkit's
#    own "vfkit" among them; docs/rest-security.md.)
# 2. TCP (--restful-uri tcp://127.0.0.1:PORT): GET /vm/inspect with
#    Host: evil.example -> 403, the Origin refusal as above, then a plain
#    Stop powers the guest off and krunkit exits 0.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
PORT=5581
BAD=""
bad() {
    echo "BAD: $*"
    BAD="$BAD; $*"
}

# refusals NAME CURL-TARGET-ARGS... : the hostile requests (the foreign
# Host only over TCP, where a rebound name reaches us).
refusals() {
    _n=$1
    shift
    if [ "$_n" = tcp ]; then
        code=$(lab_http_code -H 'Host: evil.example' "$@" "$BASE/vm/inspect")
        echo "$_n: GET /vm/inspect with Host: evil.example -> $code"
        [ "$code" = 403 ] || bad "$_n: GET /vm/inspect with Host: evil.example got $code, want 403"
    fi
    code=$(lab_http_code -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
        -d '{"state":"HardStop"}' "$@" "$BASE/vm/state")
    echo "$_n: POST /vm/state HardStop with Origin: http://evil.example -> $code"
    [ "$code" = 403 ] || bad "$_n: POST HardStop with an Origin header got $code, want 403"
    sleep 1
    if ! kill -0 "$KRUNKIT_PID" 2>/dev/null; then
        bad "$_n: the cross-origin HardStop killed the VM"
        return 1
    fi
    state=$(curl -sS --max-time 10 "$@" "$BASE/vm/state" 2>&1)
    echo "$_n: plain GET /vm/state -> $state"
    case "$state" in
    *Running* | *Starting*) ;;
    *) bad "$_n: after the refused HardStop the state is '$state', want Running" ;;
    esac
    return 0
}

# 1. UNIX socket under umask 000.
BASE=http://localhost
umask 000
krunkit_start wait 1
umask 022
n=0
while [ ! -S "$WORK/rest.sock" ] && [ $n -lt 400 ] && kill -0 "$KRUNKIT_PID" 2>/dev/null; do
    sleep 0.05
    n=$((n + 1))
done
mode=$(stat -c %a "$WORK/rest.sock" 2>/dev/null)
echo "unix: rest.sock mode $mode when it appeared (umask 000)"
[ "$mode" = 600 ] || bad "unix: rest.sock has mode ${mode:-none} under umask 000, want 600"
if refusals unix --unix-socket "$WORK/rest.sock"; then
    code=$(lab_http_code --unix-socket "$WORK/rest.sock" -X POST -H 'Content-Type: application/json' \
        -d '{"state":"HardStop"}' "$BASE/vm/state")
    echo "unix: plain POST HardStop -> $code"
    lab_wait_exit "$KRUNKIT_PID" 15 || bad "unix: krunkit still running 15 s after a plain HardStop"
fi
lab_wait_exit "$KRUNKIT_PID" 5 || { kill -9 "$KRUNKIT_PID"; wait "$KRUNKIT_PID"; }
mv "$WORK/console.log" "$WORK/console-unix.log" 2>/dev/null
mv "$WORK/krunkit.log" "$WORK/krunkit-unix.log" 2>/dev/null

# 2. TCP.
BASE=http://127.0.0.1:$PORT
krunkit_start_rest "tcp://127.0.0.1:$PORT" wait 1
n=0
until curl -s --max-time 2 -o /dev/null "$BASE/vm/state" || [ $n -ge 100 ]; do
    kill -0 "$KRUNKIT_PID" 2>/dev/null || break
    sleep 0.2
    n=$((n + 1))
done
if refusals tcp; then
    code=$(lab_http_code "$BASE/vm/inspect")
    echo "tcp: plain GET /vm/inspect -> $code"
    [ "$code" = 200 ] || bad "tcp: plain GET /vm/inspect got $code, want 200"
    lab_wait_log "$WORK/console.log" 'LAB-STEP waiting' 150 "$KRUNKIT_PID" ||
        bad "tcp: the guest never reached its wait"
    code=$(lab_http_code -X POST -H 'Content-Type: application/json' -d '{"state":"Stop"}' "$BASE/vm/state")
    echo "tcp: plain POST Stop -> $code"
    if lab_wait_exit "$KRUNKIT_PID" 60; then
        [ "$LAB_EXIT_RC" = 0 ] || bad "tcp: krunkit exited with $LAB_EXIT_RC after Stop, want 0"
        grep -q LAB-POWER-BUTTON "$WORK/console.log" || bad "tcp: Stop did not press the power button"
    else
        bad "tcp: krunkit still running 60 s after a plain Stop"
    fi
fi
if [ -n "$BAD" ]; then
    lab_show_logs
    lab_fail "${BAD#; }"
fi
echo "Origin and foreign Host refused on both endpoints; socket 0600; plain curl works"
