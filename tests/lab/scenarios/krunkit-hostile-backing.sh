#!/bin/sh
# lab-timeout: 240
# A qcow2 image may name its backing file only inside its own directory.
# In $WORK/vm/ a raw root image and qcow2 second disks whose backing file is
# $WORK/secret (outside vm/, a known pattern): (a) by its absolute path,
# (b) as ../secret, (c) through a symlink vm/link.raw -> ../secret. Each
# must make krunkit refuse at start: a non-zero exit within a few seconds,
# stderr naming the backing path, no guest started. A VM that boots instead
# lets the guest (guest/backing.sh) read /dev/vdb: it must not see the
# secret. Positive case: vm/good.qcow2 over vm/base.raw (relative name,
# -F raw) still boots and reads the base image's pattern.
. "$LAB_DIR/lib.sh"
lab_need_krunkit
command -v qemu-img >/dev/null 2>&1 || lab_skip "no qemu-img"
VM=$WORK/vm
mkdir -p "$VM"
lab_disk "$VM/root.img" 64
yes "LAB-SECRET-OUTSIDE-VM-0123456789" | head -c 4194304 >"$WORK/secret"
yes "LAB-BASE-INSIDE-VM-0123456789" | head -c 4194304 >"$VM/base.raw"
ln -s ../secret "$VM/link.raw"
mk() { # NAME BACKING
    qemu-img create -q -f qcow2 -u -b "$2" -F raw "$VM/$1" 4M ||
        lab_fail "qemu-img create $1 over $2 failed"
}
mk abs.qcow2 "$WORK/secret"
mk dotdot.qcow2 ../secret
mk symlink.qcow2 link.raw
mk good.qcow2 base.raw
BAD=""
bad() {
    echo "BAD: $*"
    BAD="$BAD; $*"
}

# run NAME: boot with vm/NAME as the second disk; leaves the outcome in
# OUTCOME (refused|booted|other) and the guest's view in HEAD.
run() {
    OUTCOME=other HEAD=""
    rm -f "$WORK/console.log" "$WORK/krunkit.log"
    krunkit_start_rest "unix://$WORK/rest.sock" backing 1 \
        --device "virtio-blk,path=$VM/$1,format=qcow2"
    lab_wait_log "$WORK/console.log" 'KRUNKIT-GUEST-INIT' 120 "$KRUNKIT_PID"
    case $? in
    2)
        lab_wait_exit "$KRUNKIT_PID" 5
        OUTCOME=refused REFUSED_AFTER=$(lab_since "$KRUNKIT_STARTED")
        echo "$1: krunkit exited with $LAB_EXIT_RC after $(lab_since "$KRUNKIT_STARTED") s:" \
            "$(head -3 "$WORK/krunkit.log" | tr '\n' ' ')"
        ;;
    0)
        OUTCOME=booted
        lab_wait_log "$WORK/console.log" 'LAB-RESULT backing ' 60 "$KRUNKIT_PID"
        HEAD=$(sed -n 's/.*LAB-STEP vdb-head \[\(.*\)\].*/\1/p' "$WORK/console.log" | head -1)
        echo "$1: booted; the guest's /dev/vdb reads [$HEAD]"
        lab_wait_exit "$KRUNKIT_PID" 30 || { kill -9 "$KRUNKIT_PID"; wait "$KRUNKIT_PID"; }
        ;;
    *)
        echo "$1: no guest init and no exit within 120 s"
        kill -9 "$KRUNKIT_PID"
        wait "$KRUNKIT_PID"
        ;;
    esac
    cp "$WORK/krunkit.log" "$WORK/krunkit-$1.log" 2>/dev/null
    [ -f "$WORK/console.log" ] && mv "$WORK/console.log" "$WORK/console-$1.log"
    KRUNKIT_PID=""
}

# hostile NAME WHAT PATH-WORD: must be refused, naming the backing path.
hostile() {
    run "$1"
    case $OUTCOME in
    refused)
        [ "$LAB_EXIT_RC" != 0 ] || bad "$1 ($2): krunkit exited 0, want non-zero"
        awk -v s="$REFUSED_AFTER" 'BEGIN { exit !(s > 20) }' &&
            bad "$1 ($2): the refusal took $REFUSED_AFTER s, want a few"
        grep -Eq -- "$3" "$WORK/krunkit-$1.log" ||
            bad "$1 ($2): the error does not name the backing path ($3)"
        grep -qs KRUNKIT-GUEST-INIT "$WORK/console-$1.log" && bad "$1 ($2): a guest was started"
        [ ! -e "$WORK/rest.sock" ] || bad "$1 ($2): rest.sock left behind"
        ;;
    booted)
        case "$HEAD" in
        *LAB-SECRET-OUTSIDE-VM*) bad "$1 ($2): krunkit started the VM and the guest read the secret outside vm/ through /dev/vdb" ;;
        *) bad "$1 ($2): krunkit started the VM (guest read [$HEAD]), want a refusal at start" ;;
        esac
        ;;
    *) bad "$1 ($2): neither refused nor booted" ;;
    esac
}

hostile abs.qcow2 "absolute backing $WORK/secret" "secret"
hostile dotdot.qcow2 "backing ../secret" "secret"
hostile symlink.qcow2 "backing link.raw -> ../secret" "link\\.raw|secret"

run good.qcow2
case "$OUTCOME:$HEAD" in
booted:*LAB-BASE-INSIDE-VM*) echo "good.qcow2: a backing file inside vm/ still works" ;;
*) bad "good.qcow2 (backing base.raw inside vm/): outcome $OUTCOME, guest read [$HEAD], want a boot reading the base image: $(head -3 "$WORK/krunkit-good.qcow2.log" | tr '\n' ' ')" ;;
esac
[ "$(head -c 32 "$WORK/secret")" = "LAB-SECRET-OUTSIDE-VM-0123456789" ] || bad "the secret file changed"
[ -z "$BAD" ] || lab_fail "${BAD#; }"
echo "all hostile backing files refused; a backing file inside vm/ works"
