#!/bin/sh
# Guest half of krunkit-fs-setuid: as root, on the virtio-fs share (tag
# labfs), make files setuid/setgid by chmod (4755, 2755, 6755), by
# copying one with its bits (cp -p of a 4755 file), and a setgid directory
# (mkdir -m 2775). The host checks what reached its files; we only report.
detail() { echo "$*" >>"$LAB_DETAIL"; }
fail() {
    detail "$*"
    echo "guest: FAIL $*"
    exit 1
}
M=/mnt/share
mkdir -p $M
mount -t virtiofs labfs $M || fail "mount -t virtiofs labfs failed"
printf '#!/bin/sh\necho hi\n' >/tmp/prog
for f in suid sgid both; do
    cp /tmp/prog $M/$f || fail "cannot write $f"
done
chmod 4755 $M/suid || echo "guest: chmod 4755 refused"
chmod 2755 $M/sgid || echo "guest: chmod 2755 refused"
chmod 6755 $M/both || echo "guest: chmod 6755 refused"
cp /tmp/prog /tmp/prog-suid && chmod 4755 /tmp/prog-suid
cp -p /tmp/prog-suid $M/copied || echo "guest: cp -p of a 4755 file refused"
mkdir -m 2775 $M/sgid-dir || echo "guest: mkdir -m 2775 refused"
sync
echo 3 >/proc/sys/vm/drop_caches
for f in suid sgid both copied sgid-dir; do
    echo "guest: $f mode $(stat -c %a $M/$f 2>/dev/null)"
done
umount $M || fail "umount"
detail "made setuid/setgid files on the share; the host judges"
