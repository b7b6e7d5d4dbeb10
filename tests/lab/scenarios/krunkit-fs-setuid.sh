#!/bin/sh
# lab-timeout: 200
# virtio-fs strips setuid/setgid bits the guest sets: the guest
# (guest/fs-setuid.sh, root) chmods files on the share to 4755, 2755 and
# 6755 and copies a 4755 file with cp -p; no regular file under the
# share may then be setuid or setgid on the host (find -perm -4000/-2000),
# and the rest of each mode (0755) stays. A setgid directory (mkdir -m
# 2775) is reported, not judged.
. "$LAB_DIR/lib.sh"
share=$WORK/share
mkdir -p "$share"
krunkit_start fs-setuid 1 --device "virtio-fs,sharedDir=$share,mountTag=labfs"
krunkit_expect_boot 120
krunkit_expect_result fs-setuid 90
krunkit_expect_exit 30 0
grep -a 'guest: ' "$WORK/console.log" | tr -d '\r'
ls -l "$share"
BAD=""
for f in suid sgid both copied; do
    [ -f "$share/$f" ] || { BAD="$BAD; $f missing"; continue; }
    m=$(stat -c %a "$share/$f")
    case "$m" in
    755) ;;
    *[4-7]755 | [4-7]755) BAD="$BAD; $f is mode $m on the host (setuid/setgid kept)" ;;
    *) BAD="$BAD; $f is mode $m on the host, want 755" ;;
    esac
done
left=$(find "$share" -type f \( -perm -4000 -o -perm -2000 \) | tr '\n' ' ')
[ -z "$left" ] || BAD="$BAD; setuid/setgid files on the host: $left"
echo "host: sgid-dir mode $(stat -c %a "$share/sgid-dir" 2>/dev/null) (not judged)"
[ -z "$BAD" ] || lab_fail "${BAD#; }"
echo "no setuid/setgid file reached the host"
