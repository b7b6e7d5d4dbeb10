#!/bin/sh
# lab-timeout: 240
# virtio-balloon gives guest memory back to the host: the guest touches
# 256 MiB (the VMM's RSS grows), frees it, and within 20 s the VMM's RSS
# must drop by at least 128 MiB (pages returned by inflation or free page
# reporting are discarded with MADV_DONTNEED).
. "$LAB_DIR/lib.sh"
mb=256
LAB_MEMORY=768
LAB_CMDLINE="lab.mb=$mb lab.hold=25"
krunkit_start balloon 1 --device virtio-balloon
krunkit_expect_boot 120
lab_wait_log "$WORK/console.log" "LAB-STEP touched" 90 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "guest never touched its memory"; }
touched=$(lab_rss_kib "$KRUNKIT_PID")
echo "VMM RSS with $mb MiB touched in the guest: $((touched / 1024)) MiB"
lab_wait_log "$WORK/console.log" "LAB-STEP freed" 60 "$KRUNKIT_PID" ||
    { lab_show_logs; lab_fail "guest never freed its memory"; }
want=$((touched - mb * 1024 / 2))
i=0
rss=$touched
while [ $i -lt 20 ]; do
    rss=$(lab_rss_kib "$KRUNKIT_PID")
    [ -n "$rss" ] || lab_fail "krunkit exited while the balloon was working"
    [ "$rss" -le "$want" ] && break
    sleep 1
    i=$((i + 1))
done
echo "VMM RSS after the guest freed it: $((rss / 1024)) MiB (want <= $((want / 1024)) MiB)"
[ "$rss" -le "$want" ] || { lab_show_logs; lab_fail "balloon did not lower the VMM's RSS"; }
krunkit_expect_result balloon 90
krunkit_expect_exit 30 0
