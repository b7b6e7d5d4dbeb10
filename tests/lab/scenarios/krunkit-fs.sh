#!/bin/sh
# lab-timeout: 240
# virtio-fs: krunkit shares $WORK/share as mountTag labfs. The guest mounts
# it (-t virtiofs), reads the file we put there, writes a small file and
# 1 MiB of random data, works on directories, links and attributes, and
# tries to leave the share through "..", a relative and an absolute symlink
# to $WORK/outside.txt and a symlink to "..". After the guest powers off we
# check what it wrote (content, md5) and that nothing outside the share
# changed: outside.txt keeps its content and $WORK holds no new entry.
. "$LAB_DIR/lib.sh"
share=$WORK/share
mkdir -p "$share/sub"
echo host-secret >"$WORK/outside.txt"
echo "hello from the host" >"$share/from-host.txt"
echo deep >"$share/sub/deep.txt"
ln -s ../outside.txt "$share/escape-rel"
ln -s "$WORK/outside.txt" "$share/escape-abs"
ln -s .. "$share/escape-dir"
# The names in $WORK but the REST socket (it goes away when krunkit exits).
work_names() {
    for p in "$WORK"/* "$WORK"/.[!.]*; do
        [ -e "$p" ] || [ -L "$p" ] || continue
        [ "${p##*/}" = rest.sock ] || echo "${p##*/}"
    done
}
krunkit_start fs 1 --device "virtio-fs,sharedDir=$share,mountTag=labfs"
krunkit_expect_boot 120
# Every file of $WORK outside the share exists now (logs, disk).
before=$(work_names)
krunkit_expect_result fs 90
krunkit_expect_exit 30 0
[ "$(cat "$share/from-guest.txt" 2>/dev/null)" = "written by the guest" ] ||
    { lab_show_logs; lab_fail "from-guest.txt: '$(cat "$share/from-guest.txt" 2>&1)'"; }
echo "host: from-guest.txt has the guest's text"
want=$(sed -n 's/.*LAB-STEP guest-wrote-md5 \([0-9a-f]*\).*/\1/p' "$WORK/console.log" | head -1)
got=$(md5sum <"$share/dir2/big.bin" | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] ||
    { lab_show_logs; lab_fail "dir2/big.bin: md5 $got, the guest wrote $want"; }
echo "host: dir2/big.bin (1 MiB) matches the guest's md5"
[ "$(cat "$share/hard.txt")" = "written by the guest" ] || lab_fail "hard link content"
[ "$(readlink "$share/guest-link")" = from-guest.txt ] || lab_fail "guest symlink: $(readlink "$share/guest-link")"
[ ! -e "$share/gone.txt" ] || lab_fail "gone.txt was not unlinked"
[ "$(cat "$WORK/outside.txt")" = host-secret ] ||
    lab_fail "outside.txt changed: '$(cat "$WORK/outside.txt")'"
after=$(work_names)
[ "$before" = "$after" ] || lab_fail "entries outside the share changed: before '$before' after '$after'"
echo "host: nothing outside $share changed"
exit 0
