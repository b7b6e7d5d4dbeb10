#!/bin/sh
# NOT krunkit: tools/krunkit-shim.sh (QEMU behind krunkit's command line)
# for the reboot scenarios: a guest reboot stays in the one QEMU process
# (no -no-reboot) and `virtio-net,type=unixstream,fd=N` becomes QEMU's
# `-netdev stream,addr.type=fd`. QEMU opens its files once, so
# krunkit-reboot-swap and krunkit-net-fd-reboot should pass with it:
#   LAB_KRUNKIT=tests/lab/tools/krunkit-shim-reboot.sh tests/lab/run.sh krunkit-reboot-swap
# Results obtained with it say nothing about krunkit.
set -u
if [ -n "${SHIM_REBOOT_QEMU:-}" ]; then
    # Called as QEMU by krunkit-shim.sh: filter its arguments.
    n=$#
    while [ "$n" -gt 0 ]; do
        a=$1
        shift
        n=$((n - 1))
        case "$a" in
        -no-reboot) ;;
        *addr.type=unix,addr.path=fd:*)
            set -- "$@" "${a%%addr.type=*}addr.type=fd,addr.str=${a##*addr.path=fd:}"
            ;;
        *) set -- "$@" "$a" ;;
        esac
    done
    exec "$SHIM_REBOOT_QEMU" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
n=$#
while [ "$n" -gt 0 ]; do
    a=$1
    shift
    n=$((n - 1))
    case "$a" in
    virtio-net,type=unixstream,fd=*)
        rest=${a#virtio-net,type=unixstream,fd=}
        set -- "$@" "virtio-net,type=unixstream,path=fd:${rest%%,*},${rest#*,}"
        ;;
    *) set -- "$@" "$a" ;;
    esac
done
SHIM_REBOOT_QEMU=${QEMU:-$(command -v qemu-system-x86_64)}
QEMU=$here/krunkit-shim-reboot.sh
export SHIM_REBOOT_QEMU QEMU
exec sh "$here/krunkit-shim.sh" "$@"
