#!/bin/sh
# Guest half of krunkit-fs: mount the virtio-fs share (tag labfs), read,
# write, rename, link, truncate, remove; then try to escape it: "..", the
# host's symlinks (escape-rel -> ../outside.txt, escape-abs -> the host's
# absolute path, escape-dir -> ..) must never show the host's outside.txt
# (whose text is host-secret), whatever the guest kernel makes of them.
detail() { echo "$*" >>"$LAB_DETAIL"; }
fail() {
    detail "$*"
    echo "guest: FAIL $*"
    exit 1
}
M=/mnt/share
mkdir -p $M
mount -t virtiofs labfs $M || fail "mount -t virtiofs labfs failed"
echo "guest: mounted: $(grep virtiofs /proc/mounts)"

[ "$(cat $M/from-host.txt)" = "hello from the host" ] || fail "from-host.txt: '$(cat $M/from-host.txt 2>&1)'"
[ "$(cat $M/sub/deep.txt)" = deep ] || fail "sub/deep.txt"
names=$(ls -A $M | tr '\n' ' ')
[ "$names" = "escape-abs escape-dir escape-rel from-host.txt sub " ] || fail "ls: '$names'"
echo "guest: read the host's files; ls: $names"

echo "written by the guest" >$M/from-guest.txt || fail "write from-guest.txt"
mkdir $M/dir1 || fail "mkdir"
head -c 1048576 /dev/urandom >/tmp/big.bin
# One 1 MiB write(2): FUSE WRITEs as large as max_write allows (256 pages).
dd if=/tmp/big.bin of=$M/dir1/big.bin bs=1048576 2>/dev/null || fail "write big.bin"
sum=$(md5sum </tmp/big.bin | cut -d' ' -f1)
echo "LAB-STEP guest-wrote-md5 $sum"
# Read it back through FUSE READs, not the page cache.
sync
echo 3 >/proc/sys/vm/drop_caches
[ "$(dd if=$M/dir1/big.bin bs=1048576 2>/dev/null | md5sum | cut -d' ' -f1)" = "$sum" ] ||
    fail "big.bin read back differs"
mv $M/dir1 $M/dir2 || fail "rename dir1 dir2"
ln $M/from-guest.txt $M/hard.txt || fail "link"
ln -s from-guest.txt $M/guest-link || fail "symlink"
[ "$(readlink $M/guest-link)" = from-guest.txt ] || fail "readlink guest-link"
echo gone >$M/gone.txt && rm $M/gone.txt || fail "unlink"
[ ! -e $M/gone.txt ] || fail "gone.txt still there"
echo 0123456789 >$M/trunc.txt && truncate -s 4 $M/trunc.txt 2>/dev/null ||
    dd if=/dev/null of=$M/trunc.txt bs=1 seek=4 2>/dev/null
[ "$(wc -c <$M/trunc.txt)" = 4 ] || fail "truncate: $(wc -c <$M/trunc.txt) bytes"
chmod 600 $M/trunc.txt || fail "chmod"
[ "$(stat -c %a $M/trunc.txt)" = 600 ] || fail "mode $(stat -c %a $M/trunc.txt)"
rm $M/trunc.txt
mkdir $M/empty && rmdir $M/empty || fail "rmdir"
echo "guest: write, mkdir, rename, link, symlink, unlink, truncate, chmod, rmdir"

# Escapes: nothing may ever read as the host's secret.
for p in $M/../outside.txt $M/escape-rel $M/escape-abs $M/escape-dir/outside.txt \
    $M/sub/../../outside.txt $M/escape-dir/share/../outside.txt; do
    if grep -qs host-secret "$p"; then
        fail "$p shows the host's outside.txt"
    fi
done
[ "$(readlink $M/escape-rel)" = ../outside.txt ] || fail "readlink escape-rel: $(readlink $M/escape-rel)"
# Writing through the links must not reach the host file either (checked by the host).
echo pwned >$M/escape-rel 2>/dev/null
echo pwned >$M/escape-abs 2>/dev/null
ls $M/escape-dir/ >/dev/null 2>&1
echo "guest: .., escape-rel, escape-abs, escape-dir do not reach the host's outside.txt"

sync
umount $M || fail "umount"
detail "virtio-fs: read, write and read back 1 MiB, dirs, links, attrs; escapes refused"
