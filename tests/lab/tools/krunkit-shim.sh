#!/bin/sh
# NOT krunkit: a stand-in that accepts the subset of krunkit's command line
# the lab scenarios use and runs QEMU instead (virtio-pci devices, the
# console as virtconsole -> hvc0, REST over a unix socket mapped to QMP).
# It exists only to test the scenario scripts themselves before our VMM
# boots guests:  LAB_KRUNKIT=tests/lab/tools/krunkit-shim.sh tests/lab/run.sh NAME
# Results obtained with it say nothing about krunkit.
set -u
QEMU=${QEMU:-$(command -v qemu-system-x86_64)}
# The machine of the lab's architecture (LAB_ARCH, as lib.sh's
# lab_qemu_machine): PC, or arm64 virt with L1's GICv3.
case "${LAB_ARCH:-x86}" in
arm64) machine="-M virt,gic-version=3 -nic none" ;;
*) machine="-M pc -vga none" ;;
esac
cpus=1 mem=512 kernel="" initrd="" cmdline="" rest="" pidfile=""
devs=""

fail() {
    echo "krunkit-shim: $*" >&2
    exit 1
}

# value KEY OPTSTRING: KEY's value in a comma list (quotes removed).
value() {
    echo "$2" | sed -n "s/.*\(^\|,\)$1=\(\"[^\"]*\"\|[^,]*\).*/\2/p" | tr -d '"'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --cpus) cpus=$2; shift 2 ;;
    --memory) mem=$2; shift 2 ;;
    --restful-uri) rest=${2#unix://}; shift 2 ;;
    --pidfile) pidfile=$2; shift 2 ;;
    --krun-log-level) shift 2 ;;
    --bootloader)
        kernel=$(value kernel "$2")
        initrd=$(value initrd "$2")
        cmdline=$(value cmdline "$2")
        shift 2
        ;;
    --device)
        devs="$devs
$2"
        shift 2
        ;;
    *) fail "unsupported option $1" ;;
    esac
done

[ -f "$kernel" ] || fail "kernel $kernel: No such file"
[ -z "$initrd" ] || [ -f "$initrd" ] || fail "initrd $initrd: No such file"
# shellcheck disable=SC2086
set -- $machine -accel "${SHIM_ACCEL:-kvm}" -cpu "${SHIM_CPU:-host}" -smp "$cpus" -m "$mem" -display none \
    -nodefaults -no-reboot -no-user-config -kernel "$kernel" -append "$cmdline"
[ -z "$initrd" ] || set -- "$@" -initrd "$initrd"
n=0
IFS_SAVE=$IFS
IFS='
'
for d in $devs; do
    IFS=$IFS_SAVE
    n=$((n + 1))
    case "$d" in
    virtio-blk,*)
        p=$(value path "$d")
        [ -f "$p" ] || fail "disk image $p: No such file"
        set -- "$@" -drive "file=$p,format=raw,if=virtio,cache=writeback"
        ;;
    virtio-serial,*)
        log=$(value logFilePath "$d")
        set -- "$@" -device virtio-serial-pci -chardev "file,id=con$n,path=$log,append=on" \
            -device "virtconsole,chardev=con$n"
        ;;
    virtio-rng) set -- "$@" -device virtio-rng-pci ;;
    virtio-balloon) set -- "$@" -device virtio-balloon-pci,free-page-reporting=on ;;
    virtio-net,type=unixstream,*)
        set -- "$@" -netdev "stream,id=net$n,server=off,addr.type=unix,addr.path=$(value path "$d")" \
            -device "virtio-net-pci,netdev=net$n,mac=$(value mac "$d"),romfile="
        ;;
    *) fail "unsupported device $d" ;;
    esac
done
IFS=$IFS_SAVE

qmp=""
if [ -n "$rest" ]; then
    qmp=$rest.qmp
    set -- "$@" -qmp "unix:$qmp,server=on,wait=off"
fi
"$QEMU" "$@" &
qpid=$!
[ -z "$pidfile" ] || echo "$qpid" >"$pidfile"
spid=""
if [ -n "$rest" ]; then
    i=0
    while [ ! -S "$qmp" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    QMP=$qmp socat "UNIX-LISTEN:$rest,fork" "EXEC:sh $(dirname "$0")/krunkit-shim-rest.sh" &
    spid=$!
fi
trap 'kill $qpid 2>/dev/null' TERM INT
wait $qpid
rc=$?
[ -z "$spid" ] || kill "$spid" 2>/dev/null
rm -f "$rest" "$qmp"
[ -z "$pidfile" ] || rm -f "$pidfile"
exit $rc
