#!/bin/bash
# End-to-end tests of the built krunkit binary's front end: --help,
# --version, --print-config (parsed back with python3), error exit codes
# and messages, and that a run failing before boot leaves no pidfile, log
# file, variable store or REST socket behind. With /dev/kvm and a kernel in
# /boot it also runs a VM and stops it with SIGINT (pidfile and socket
# appear while it runs and are gone after).
# Usage: run-cli-tests.sh path/to/krunkit
set -u
K=${1:?usage: $0 path/to/krunkit}
K=$(cd "$(dirname "$K")" && pwd)/$(basename "$K")
T=$(mktemp -d /tmp/krunkit-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}

# run ARGS...: sets rc, out, errout
run() {
    timeout 30 "$K" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    out=$(cat "$T/out")
    errout=$(cat "$T/err")
}

# expect_error "needle" ARGS...: exit 1, "krunkit: " + needle on stderr, nothing on stdout
expect_error() {
    local needle=$1
    shift
    run "$@"
    if [ "$rc" -ne 1 ]; then
        bad "krunkit $* exited $rc, want 1 (stderr: $errout)"
    elif [ -n "$out" ]; then
        bad "krunkit $* printed on stdout: $out"
    elif ! grep -qF -- "krunkit: " "$T/err" || ! grep -qF -- "$needle" "$T/err"; then
        bad "krunkit $*: stderr '$errout' lacks '$needle'"
    else
        ok
    fi
}

# json_check 'python expression on j' description
json_check() {
    if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ('"$1"') else 1)' \
        "$T/out" 2>"$T/pyerr"; then
        ok
    else
        bad "--print-config: $2 ($(cat "$T/pyerr")) in: $(cat "$T/out")"
    fi
}

# no_leftovers DESCRIPTION PATH...: none of the paths exists
no_leftovers() {
    local what=$1 p
    shift
    for p in "$@"; do
        if [ -e "$p" ]; then
            bad "$what left $p behind"
            rm -rf "$p"
            return
        fi
    done
    ok
}

# ---- help and version ----
run --help
[ "$rc" -eq 0 ] && grep -q -- "--device" "$T/out" && grep -q "Usage: krunkit" "$T/out" && ok ||
    bad "--help: rc=$rc out=$out"
run -h
[ "$rc" -eq 0 ] && grep -q "Usage: krunkit" "$T/out" && ok || bad "-h: rc=$rc"
run --version
[ "$rc" -eq 0 ] && echo "$out" | grep -Eq '^krunkit [0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$' && ok ||
    bad "--version: rc=$rc out=$out"

# ---- --print-config: every field, nothing created, no KVM needed ----
run --cpus 2 --memory 2G --nested --krun-log-level 4 --log-file "$T/pc.log" \
    --restful-uri "unix://$T/pc.sock" --pidfile "$T/pc.pid" --timesync vsockPort=1026 \
    --firmware-path "$T/fw.fd" --oem-string "a,b c" --oem-string second --gui \
    --bootloader "efi,variable-store=$T/pc-vars,create" \
    --device "virtio-blk,path=$T/missing.raw,format=qcow2,deviceId=disk0,readonly" \
    --device "virtio-net,unixSocketPath=$T/gv.sock,mac=5a:94:ef:e4:0c:ee" \
    --device "virtio-net,type=unixstream,fd=9,offloading=on" \
    --device virtio-serial,pty --device "virtio-vsock,port=1025,socketURL=$T/v.sock,connect" \
    --device "virtio-fs,sharedDir=$T,mountTag=a2a0ee2c717462feb1de2f5afd59de5fd2d8" \
    --device virtio-rng --device virtio-balloon --device virtio-gpu,width=640,height=480 \
    --device virtio-input,keyboard --print-config
if [ "$rc" -ne 0 ]; then
    bad "--print-config exited $rc: $errout"
else
    ok
    json_check 'j["cpus"] == 2 and j["memoryMiB"] == 2048 and j["nested"] is True' "resources"
    json_check 'j["logLevel"] == 4 and j["logFile"].endswith("/pc.log")' "log"
    json_check 'j["restfulUri"].startswith("unix:///") and j["pidfile"].endswith("/pc.pid")' "uri/pidfile"
    json_check 'j["timesync"] == {"vsockPort": 1026} and j["firmwarePath"].endswith("/fw.fd")' "timesync/firmware"
    json_check 'j["oemStrings"] == ["a,b c", "second"] and j["gui"] is True' "oem/gui"
    json_check 'j["bootloader"]["kind"] == "efi" and j["bootloader"]["create"] is True and j["bootloader"]["variableStore"].endswith("/pc-vars")' "bootloader"
    json_check '[d["kind"] for d in j["devices"]] == ["virtio-blk","virtio-net","virtio-net","virtio-serial","virtio-vsock","virtio-fs","virtio-rng","virtio-balloon","virtio-gpu","virtio-input"]' "device kinds"
    json_check 'j["devices"][0] == {"kind":"virtio-blk","path":j["devices"][0]["path"],"format":"qcow2","deviceId":"disk0","readonly":True,"allowBackingOutside":False}' "virtio-blk"
    json_check 'j["devices"][1]["offloading"] and j["devices"][1]["vfkitMagic"] and j["devices"][1]["mac"] == "5a:94:ef:e4:0c:ee"' "virtio-net unixSocketPath"
    json_check 'j["devices"][2]["type"] == "unixstream" and j["devices"][2]["fd"] == 9 and not j["devices"][2]["vfkitMagic"]' "virtio-net fd"
    json_check 'j["devices"][4]["port"] == 1025 and j["devices"][4]["listen"] is False' "virtio-vsock"
    json_check 'len(j["devices"][5]["mountTag"]) == 36' "virtio-fs"
    json_check 'j["devices"][8]["width"] == 640 and j["devices"][9]["inputType"] == "keyboard"' "gpu/input"
fi
no_leftovers "--print-config" "$T/pc.log" "$T/pc.pid" "$T/pc.sock" "$T/pc-vars"

run -c 1 -m 1 --device "virtio-serial,logFilePath=$T/c.log" --print-config
json_check 'j["devices"][0]["logFileMaxSize"] == 64 * 1024 * 1024' "virtio-serial logFileMaxSize default"
run -c 1 -m 1 --device "virtio-serial,logFilePath=$T/c.log,logFileMaxSize=1000" --print-config
json_check 'j["devices"][0]["logFileMaxSize"] == 1000' "virtio-serial logFileMaxSize"
no_leftovers "--print-config virtio-serial" "$T/c.log"
expect_error 'logFileMaxSize= applies to logFilePath= only' -c 1 -m 1 --device virtio-serial,pty,logFileMaxSize=5
expect_error 'invalid logFileMaxSize=big' -c 1 -m 1 --device virtio-serial,logFilePath=/tmp/x.log,logFileMaxSize=big

run -c 1 -m 1 --print-config
json_check 'j["restfulUri"] is None and j["timesync"] is None and j["devices"] == [] and j["bootloader"] == {"kind": "default"}' "defaults"

# ---- command-line errors: exit 1, one message naming option and value ----
expect_error '--cpus is required' --memory 1
expect_error '--memory is required' --cpus 1
expect_error '--cpus "0"' --cpus 0 --memory 1
expect_error '--memory "0"' -c 1 --memory 0
expect_error '-m "1.5G"' -c 1 -m 1.5G
expect_error 'unknown option "--bogus"' -c 1 -m 1 --bogus
expect_error 'unexpected argument "extra"' -c 1 -m 1 extra
expect_error 'unknown key "bogus"' -c 1 -m 1 --device virtio-blk,path=/x,bogus=1
expect_error 'path given twice' -c 1 -m 1 --device virtio-blk,path=/x,path=/y
expect_error 'empty value for path' -c 1 -m 1 --device virtio-blk,path=
expect_error 'unknown device type "virtio-foo"' -c 1 -m 1 --device virtio-foo
expect_error 'vfkitMagic is only supported with type=unixgram' -c 1 -m 1 \
    --device virtio-net,type=unixstream,path=/s,vfkitMagic=on
expect_error '--restful-uri "tcp://localhost"' -c 1 -m 1 --restful-uri tcp://localhost
expect_error 'mountTag "t" is already used' -c 1 -m 1 --device virtio-fs,sharedDir=/a,mountTag=t \
    --device virtio-fs,sharedDir=/b,mountTag=t
# --print-config does not rescue a bad command line
expect_error '-c "256"' -c 256 -m 1 --print-config

# ---- pre-boot validation failures: exit 1, nothing created ----
leftovers=("$T/run.pid" "$T/run.log" "$T/run-vars" "$T/run.sock" "$T/console.log")
common=(--pidfile "$T/run.pid" --log-file "$T/run.log" --restful-uri "unix://$T/run.sock"
    --bootloader "efi,variable-store=$T/run-vars,create"
    --device "virtio-serial,logFilePath=$T/console.log")
: >"$T/disk.raw"
mkdir -p "$T/share"
expect_error "missing.raw" -c 1 -m 64 "${common[@]}" --device "virtio-blk,path=$T/missing.raw"
no_leftovers "missing disk" "${leftovers[@]}"
expect_error "not a directory" -c 1 -m 64 "${common[@]}" --device "virtio-blk,path=$T/disk.raw" \
    --device "virtio-fs,sharedDir=$T/disk.raw,mountTag=t"
no_leftovers "bad sharedDir" "${leftovers[@]}"
expect_error "multicast" -c 1 -m 64 "${common[@]}" \
    --device "virtio-net,type=unixgram,path=$T/none.sock,mac=ff:ff:ff:ff:ff:ff"
no_leftovers "multicast mac" "${leftovers[@]}"
expect_error "not an open file descriptor" -c 1 -m 64 "${common[@]}" \
    --device "virtio-net,type=unixstream,fd=77"
no_leftovers "closed fd" "${leftovers[@]}"
expect_error "more than this host has" -c 1 -m 1P "${common[@]}"
no_leftovers "too much memory" "${leftovers[@]}"
expect_error "--pidfile" -c 1 -m 64 --pidfile "$T/nodir/run.pid"
no_leftovers "pidfile directory" "$T/nodir"

# ---- failure inside the VMM (a device it refuses): nothing left either ----
expect_error "cannot create the VM" -c 1 -m 64 "${common[@]}" \
    --device "virtio-blk,path=$T/disk.raw" --device virtio-gpu --device virtio-input,keyboard
no_leftovers "refused device" "${leftovers[@]}"
# A corrupt firmware image: krunkit reads the firmware before it touches
# /dev/kvm (boot_prepare in src/vmm/vm.c), so on any host, with or without a
# usable KVM, the message is the firmware parser's own, naming the file and
# its problem, which no KVM failure prints ("cannot create the VM" alone
# would pass where /dev/kvm fails).
head -c 1048576 /dev/zero >"$T/corrupt.fd"
expect_error "cannot create the VM" -c 1 -m 64 "${common[@]}" --firmware-path "$T/corrupt.fd" \
    --device "virtio-blk,path=$T/disk.raw"
fw_said="firmware $T/corrupt.fd: no firmware volume header at offset 0"
if grep -qF -- "$fw_said" "$T/err"; then ok; else
    bad "corrupt firmware: stderr lacks the firmware's problem '$fw_said' (was it read?): $errout"
fi
no_leftovers "corrupt firmware" "${leftovers[@]}"
# The log of the failed start still reaches the user, on stderr.
if grep -q " error: " "$T/err"; then ok; else bad "startup log not on stderr: $errout"; fi

# A log file that existed before is appended to, never truncated or removed.
echo "previous line" >"$T/run.log"
run -c 1 -m 64 --log-file "$T/run.log" --device "virtio-blk,path=$T/disk.raw" --device virtio-gpu
if [ "$rc" -eq 1 ] && [ "$(head -1 "$T/run.log")" = "previous line" ] &&
    [ "$(wc -l <"$T/run.log")" -gt 1 ]; then ok; else bad "existing log file: rc=$rc $(cat "$T/run.log")"; fi
rm -f "$T/run.log"

# --log-file never goes through a symbolic link: the run fails, the link and
# its target stay as they were (a dangling link creates nothing either).
echo "precious" >"$T/log-target"
ln -s "$T/log-target" "$T/link.log"
expect_error '--log-file' -c 1 -m 64 --log-file "$T/link.log" --device "virtio-blk,path=$T/disk.raw"
if [ -L "$T/link.log" ] && [ "$(cat "$T/log-target")" = precious ]; then ok; else
    bad "--log-file symlink: link or target changed: $(cat "$T/log-target")"; fi
ln -s "$T/log-new-target" "$T/dangling.log"
expect_error '--log-file' -c 1 -m 64 --log-file "$T/dangling.log" --device "virtio-blk,path=$T/disk.raw"
no_leftovers "--log-file dangling link" "$T/log-new-target"
rm -f "$T/link.log" "$T/dangling.log" "$T/log-target"

# ---- a real VM: pidfile while it runs, SIGINT stops it, files removed ----
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | head -1)
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -n "$kernel" ]; then
    # No root file system: the guest panics and then waits, so only a signal ends it.
    vmargs=(-c 1 -m 256 --bootloader "linux,kernel=$kernel,cmdline=console=ttyS0"
        --pidfile "$T/vm.pid" --restful-uri "unix://$T/vm.sock" --log-file "$T/vm.log")
    run "${vmargs[@]}" --print-config
    cp "$T/out" "$T/vm.config.json"
    # A link planted at the pidfile path is replaced, never written through.
    echo "precious" >"$T/pid-target"
    chmod 644 "$T/pid-target"
    ln -s "$T/pid-target" "$T/vm.pid"
    # umask 000: the pidfile, log file and REST socket are still 0600.
    (umask 000 && exec timeout 60 "$K" "${vmargs[@]}" >/dev/null 2>"$T/vm.err") &
    pid=$!
    for _ in $(seq 100); do [ -f "$T/vm.pid" ] && [ ! -L "$T/vm.pid" ] && [ -s "$T/vm.pid" ] && break; sleep 0.1; done
    if [ -L "$T/vm.pid" ] || [ ! -s "$T/vm.pid" ]; then
        bad "running VM: no pidfile ($(cat "$T/vm.err"))"
        kill -KILL $pid 2>/dev/null
    else
        # timeout(1) is our parent; krunkit's pid is in the pidfile.
        kpid=$(cat "$T/vm.pid")
        [ -S "$T/vm.sock" ] && ok || bad "running VM: no REST socket"
        modes=$(stat -c %a "$T/vm.pid" "$T/vm.log" "$T/vm.sock" | tr '\n' ' ')
        [ "$modes" = "600 600 600 " ] && ok || bad "pidfile, log, socket modes under umask 000: $modes"
        [ "$(cat "$T/pid-target")" = precious ] && [ "$(stat -c %a "$T/pid-target")" = 644 ] && ok ||
            bad "pidfile symlink target was written: $(cat "$T/pid-target")"
        # GET /vm/inspect serves the same document as --print-config.
        if timeout 10 curl -sf --unix-socket "$T/vm.sock" http://localhost/vm/inspect >"$T/inspect.json" &&
            python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
                "$T/inspect.json" "$T/vm.config.json"; then
            ok
        else
            bad "/vm/inspect differs from --print-config: $(cat "$T/inspect.json")"
        fi
        [ "$(cat /proc/"$kpid"/comm 2>/dev/null)" = krunkit ] && ok || bad "pidfile holds $kpid, not krunkit"
        kill -INT "$kpid"
        sleep 1
        kill -INT "$kpid" 2>/dev/null # the second one hard-stops
        wait $pid
        vrc=$?
        [ "$vrc" -ne 124 ] && ok || bad "running VM did not stop on SIGINT"
        no_leftovers "stopped VM" "$T/vm.pid" "$T/vm.sock"
        grep -q "graceful stop" "$T/vm.log" && grep -q "hard stop" "$T/vm.log" && ok ||
            bad "signals not logged: $(cat "$T/vm.log")"
    fi
else
    echo "cli: skipping the running-VM test (no usable /dev/kvm or no /boot/vmlinuz-*)"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
