# Helpers for lab scenarios (tests/lab/scenarios/*.sh), sourced with
#   . "$LAB_DIR/lib.sh"
# POSIX sh: scenarios run under dash on L0 and busybox ash inside L1.
#
# The environment every scenario gets (set by run-scenarios.sh):
#   KRUNKIT       path of our krunkit binary (may not exist yet)
#   GUEST_KERNEL  L2 test guest kernel (bzImage)
#   GUEST_INITRD  L2 test guest initramfs (tests/lab/guest/init as /init)
#   GUEST_INITRD_TOOLS  the same plus tests/lab/guest-tools.list (fio);
#                 exists only when built (build-guest.sh --tools, bench/run.sh)
#   WORK          a fresh empty directory for this scenario, removed after
#   QEMU          qemu-system-x86_64 (qemu-system-aarch64 in the arm64 lab)
#                 for side-by-side runs, may be empty
#   LAB_ARCH      x86 or arm64: the architecture of the L2 guest
#   LAB_MODE      direct (this host's /dev/kvm) or nested (inside L1)
#   LAB_DIR       tests/lab of the checkout
#   LAB_TIMEOUT   seconds this scenario may run before it is killed
# Exit status: 0 pass, 1 fail, 77 skip. Everything printed is the detail.

lab_fail() {
    echo "FAIL: $*"
    exit 1
}

lab_skip() {
    echo "SKIP: $*"
    exit 77
}

# Seconds since boot with centiseconds; works the same on L0 and in L1.
lab_now() {
    cut -d' ' -f1 /proc/uptime
}

# lab_since START: seconds elapsed since a lab_now value.
lab_since() {
    awk -v s="$1" -v n="$(lab_now)" 'BEGIN { printf "%.2f", n - s }'
}

lab_need_krunkit() {
    [ -x "$KRUNKIT" ] || lab_fail "krunkit not built ($KRUNKIT missing)"
}

lab_need_qemu() {
    [ -n "$QEMU" ] && [ -x "$QEMU" ] || lab_skip "no QEMU of ${LAB_ARCH:-x86} for comparison"
}

# lab_qemu_machine: $QEMU's machine, accelerator and CPU options for a KVM
# guest of this lab's architecture (word-split by the caller). arm64: virt
# with the GICv3 L1 has; -nic none, as L1 carries no NIC option ROMs.
lab_qemu_machine() {
    case "${LAB_ARCH:-x86}" in
    arm64) echo "-M virt,gic-version=3 -accel kvm -cpu host -nic none" ;;
    *) echo "-M pc -accel kvm -cpu host -vga none" ;;
    esac
}

# lab_qemu_console: the guest's device for $QEMU's first serial port.
lab_qemu_console() {
    case "${LAB_ARCH:-x86}" in
    arm64) echo ttyAMA0 ;;
    *) echo ttyS0 ;;
    esac
}

# lab_disk PATH MIB: a sparse raw image.
lab_disk() {
    rm -f "$1"
    truncate -s "${2}M" "$1" || lab_fail "cannot create $1"
}

# lab_pattern NAME: the 4 KiB block the guest scripts also build.
lab_pattern() {
    yes "LAB-PATTERN-$1-0123456789abcdef" | head -c 4096
}

# lab_whole_lines FILE: FILE's complete lines, the ones that end in a
# newline, read once: a line the VMM or the guest is still writing (the
# console gets LAB-RESULT twice, from hvc0 and ttyS0) is left out until its
# newline arrives. A sentinel after the file makes its last line "X" when
# the file ends in a newline and "partialX" when it does not; sed drops it.
lab_whole_lines() {
    { cat -- "$1" 2>/dev/null && printf 'X\n'; } | sed '$d'
}

# lab_grep_whole FILE GREP-ARGS...: grep over lab_whole_lines FILE.
lab_grep_whole() {
    _gw_file=$1
    shift
    lab_whole_lines "$_gw_file" | grep -a "$@"
}

# lab_wait_log FILE PATTERN SECONDS [PID]: wait until FILE has a whole line
# (lab_whole_lines) matching the extended regex PATTERN. Returns 0 when
# found, 1 on timeout, 2 when PID (the VMM) exited first.
lab_wait_log() {
    _file=$1 _pat=$2 _limit=$3 _pid=${4:-}
    _end=$(awk -v n="$(lab_now)" -v l="$_limit" 'BEGIN { print n + l }')
    while :; do
        lab_grep_whole "$_file" -Eq -- "$_pat" && return 0
        if [ -n "$_pid" ] && ! kill -0 "$_pid" 2>/dev/null; then
            lab_grep_whole "$_file" -Eq -- "$_pat" && return 0
            return 2
        fi
        awk -v n="$(lab_now)" -v e="$_end" 'BEGIN { exit !(n >= e) }' && return 1
        sleep 0.1
    done
}

# lab_wait_exit PID SECONDS: wait for a child of this shell to exit; its
# status is left in LAB_EXIT_RC. Returns 1 when it is still running.
lab_wait_exit() {
    _pid=$1 _limit=$2
    _end=$(awk -v n="$(lab_now)" -v l="$_limit" 'BEGIN { print n + l }')
    while kill -0 "$_pid" 2>/dev/null; do
        # A zombie still answers kill -0; its state shows it has exited.
        [ "$(awk '{ print $3 }' "/proc/$_pid/stat" 2>/dev/null)" = Z ] && break
        awk -v n="$(lab_now)" -v e="$_end" 'BEGIN { exit !(n >= e) }' && return 1
        sleep 0.1
    done
    wait "$_pid"
    LAB_EXIT_RC=$?
    return 0
}

# lab_rss_kib PID: resident set size of a process and its descendants
# (helpers a VMM may start) in KiB; empty when PID is gone.
lab_rss_kib() {
    [ -e "/proc/$1/status" ] || return 0
    _all=$1 _level=$1
    while [ -n "$_level" ]; do
        _next=""
        for _p in $_level; do
            _next="$_next $(cat /proc/"$_p"/task/*/children 2>/dev/null)"
        done
        _level=$(echo $_next)
        _all="$_all $_level"
    done
    for _p in $_all; do
        awk '/^VmRSS:/ { print $2 }' "/proc/$_p/status" 2>/dev/null
    done | awk '{ s += $1 } END { print s + 0 }'
}

# lab_rest METHOD PATH [JSON]: one request to the VMM's REST socket
# ($WORK/rest.sock); prints the body, returns curl's status (7 = refused).
lab_rest() {
    if [ -n "${3:-}" ]; then
        curl -sS --max-time 10 --unix-socket "$WORK/rest.sock" -X "$1" \
            -H 'Content-Type: application/json' -d "$3" "http://localhost$2"
    else
        curl -sS --max-time 10 --unix-socket "$WORK/rest.sock" -X "$1" "http://localhost$2"
    fi
}

# lab_result_line NAME [FILE...]: the guest's last whole LAB-RESULT line
# for NAME in the console ($WORK/console.log, or the FILEs in turn).
lab_result_line() {
    _rl_name=$1
    shift
    [ $# -gt 0 ] || set -- "$WORK/console.log"
    for _rl_f in "$@"; do
        lab_grep_whole "$_rl_f" "LAB-RESULT $_rl_name "
    done | tail -1 | tr -d '\r'
}

# Print the tail of the console and the VMM's own output, for a failure.
lab_show_logs() {
    for f in "$WORK/console.log" "$WORK/krunkit.log" "$WORK/qemu.log"; do
        [ -s "$f" ] || continue
        echo "--- last lines of ${f##*/}"
        tail -n "${LAB_LOG_LINES:-25}" "$f" | tr -d '\r'
    done
}

# krunkit_start GUEST_SCENARIO CPUS [krunkit args...]: boot the test guest
# with our VMM in the background: console log $WORK/console.log, REST on
# $WORK/rest.sock, root disk $WORK/root.img (created when missing), VMM
# output in $WORK/krunkit.log. Extra guest kernel arguments come from
# LAB_CMDLINE; memory from LAB_MEMORY (MiB, default 512); the initramfs from
# LAB_INITRD (default GUEST_INITRD). Sets KRUNKIT_PID.
krunkit_start() {
    krunkit_start_rest "unix://$WORK/rest.sock" "$@"
}

# krunkit_start_rest URI GUEST_SCENARIO CPUS [krunkit args...]: krunkit_start
# with --restful-uri URI instead of unix://$WORK/rest.sock.
krunkit_start_rest() {
    lab_need_krunkit
    _uri=$1 _scn=$2 _cpus=$3
    shift 3
    [ -f "$WORK/root.img" ] || lab_disk "$WORK/root.img" 64
    KRUNKIT_STARTED=$(lab_now)
    "$KRUNKIT" --cpus "$_cpus" --memory "${LAB_MEMORY:-512}" \
        --bootloader "linux,kernel=$GUEST_KERNEL,initrd=${LAB_INITRD:-$GUEST_INITRD},cmdline=\"console=hvc0 lab.scenario=$_scn lab.cpus=$_cpus ${LAB_CMDLINE:-}\"" \
        --device "virtio-serial,logFilePath=$WORK/console.log" \
        --device "virtio-blk,path=$WORK/root.img" \
        --restful-uri "$_uri" \
        "$@" >>"$WORK/krunkit.log" 2>&1 </dev/null &
    KRUNKIT_PID=$!
}

# lab_need_efi [x64 grub|systemd-boot]: the EFI files of
# tests/lab/build-efi.sh, or skip. Sets EFI_CODE (the OVMF code, read-only;
# its VARS template lies beside it, where krunkit looks for it) and EFI_DISK
# ($WORK/efi-disk.raw: this scenario's own copy of the GPT disk). Without
# arguments: OVMF32 and the GRUB i386-efi disk; with `x64 LOADER`: x86-64
# OVMF and that loader's disk. They are read from the checkout (9p in the
# nested lab) once per lab boot, into $LAB_TMP/efi*, and copied from there.
lab_need_efi() {
    case "${1:-ia32}" in
    ia32) _dir=efi _code=OVMF32_CODE_4M.fd _vars=OVMF32_VARS_4M.fd _disk=disk.raw _pkg=ovmf-ia32 ;;
    x64) _dir=efi-x64 _code=OVMF_CODE_4M.fd _vars=OVMF_VARS_4M.fd _disk=disk-$2.raw _pkg=ovmf ;;
    *) lab_fail "lab_need_efi: unknown firmware $1" ;;
    esac
    _src=$LAB_DIR/../../build/lab/$_dir
    for _f in $_disk $_code $_vars .stamp; do
        [ -f "$_src/$_f" ] ||
            lab_skip "no build/lab/$_dir/$_f (tests/lab/build-efi.sh; OVMF from Debian's $_pkg)"
    done
    _cache=${LAB_TMP:-/tmp}/$_dir
    if ! cmp -s "$_src/.stamp" "$_cache/.stamp"; then
        rm -rf "$_cache" && mkdir -p "$_cache" && cp "$_src/.stamp" "$_cache/" ||
            lab_fail "cannot make $_cache"
    fi
    for _f in $_disk $_code $_vars; do
        [ -f "$_cache/$_f" ] && continue
        cp "$_src/$_f" "$_cache/$_f.new.$$" && mv "$_cache/$_f.new.$$" "$_cache/$_f" ||
            lab_fail "cannot copy $_f to $_cache"
    done
    EFI_CODE=$_cache/$_code
    EFI_VARS_TEMPLATE=$_cache/$_vars
    EFI_DISK=$WORK/efi-disk.raw
    [ -f "$EFI_DISK" ] || cp "$_cache/$_disk" "$EFI_DISK" || lab_fail "cannot copy the EFI disk"
}

# krunkit_start_efi GUEST_SCENARIO CPUS [krunkit args...]: boot the test
# guest through OVMF32 -> GRUB -> Linux (or what an earlier lab_need_efi
# chose) from $EFI_DISK, the first disk (further --device virtio-blk disks
# are /dev/vdb...), in the background.
# The scenario reaches the guest's init as OEM strings (lab.scenario=NAME,
# lab.cpus=N; more with `--oem-string lab.KEY=VALUE` in the arguments).
# Variable store: $WORK/vars.fd, created from the template; LAB_EFI_BOOTLOADER
# replaces the whole --bootloader value. Console, REST socket, krunkit.log,
# KRUNKIT_PID and KRUNKIT_STARTED as krunkit_start.
krunkit_start_efi() {
    lab_need_krunkit
    [ -n "${EFI_CODE:-}" ] || lab_need_efi
    _scn=$1 _cpus=$2
    shift 2
    KRUNKIT_STARTED=$(lab_now)
    "$KRUNKIT" --cpus "$_cpus" --memory "${LAB_MEMORY:-512}" \
        --firmware-path "$EFI_CODE" \
        --bootloader "${LAB_EFI_BOOTLOADER:-efi,variable-store=$WORK/vars.fd,create}" \
        --device "virtio-blk,path=$EFI_DISK" \
        --device "virtio-serial,logFilePath=$WORK/console.log" \
        --restful-uri "unix://$WORK/rest.sock" \
        --oem-string "lab.scenario=$_scn" --oem-string "lab.cpus=$_cpus" \
        "$@" >>"$WORK/krunkit.log" 2>&1 </dev/null &
    KRUNKIT_PID=$!
}

# krunkit_efi_boot_to_poweroff GUEST_SCENARIO CPUS [krunkit args...]:
# krunkit_start_efi, then the guest reaches its init and passes
# GUEST_SCENARIO, powers off, and krunkit exits 0.
krunkit_efi_boot_to_poweroff() {
    _guest_scn=$1
    krunkit_start_efi "$@"
    krunkit_expect_boot 180
    krunkit_expect_result "$_guest_scn" 60
    krunkit_expect_exit 30 0
}

# krunkit_expect_boot SECONDS: wait for the guest's init marker.
krunkit_expect_boot() {
    lab_wait_log "$WORK/console.log" 'KRUNKIT-GUEST-INIT' "$1" "$KRUNKIT_PID"
    case $? in
    0) echo "guest init reached after $(lab_since "$KRUNKIT_STARTED") s" ;;
    1) lab_show_logs; lab_fail "no guest init marker within $1 s" ;;
    *) lab_show_logs; lab_fail "krunkit exited before the guest reached init" ;;
    esac
}

# krunkit_expect_result NAME SECONDS: wait for LAB-RESULT NAME, require PASS.
krunkit_expect_result() {
    lab_wait_log "$WORK/console.log" "LAB-RESULT $1 (PASS|FAIL)" "$2" "$KRUNKIT_PID"
    _line=$(lab_result_line "$1")
    echo "guest: ${_line:-no result}"
    case "$_line" in
    *" PASS"*) return 0 ;;
    *) lab_show_logs; lab_fail "guest scenario $1 did not pass" ;;
    esac
}

# krunkit_expect_exit SECONDS [STATUS]: the VMM exits (with STATUS, default 0).
# lab_show_threads PID: each thread's name, state, where it waits in the
# kernel, and its kernel stack: what a hung VMM was doing.
lab_show_threads() {
    echo "    --- threads of $1"
    for t in /proc/"$1"/task/*; do
        [ -d "$t" ] || continue
        echo "    ${t##*/} $(cat "$t/comm" 2>/dev/null) $(awk '{ print $3 }' "$t/stat" 2>/dev/null)" \
            "wchan=$(cat "$t/wchan" 2>/dev/null)"
        sed 's/^/        /' "$t/stack" 2>/dev/null | head -8
    done
}

krunkit_expect_exit() {
    if ! lab_wait_exit "$KRUNKIT_PID" "$1"; then
        lab_show_logs
        lab_show_threads "$KRUNKIT_PID"
        lab_fail "krunkit still running $1 s later"
    fi
    if [ "$LAB_EXIT_RC" != "${2:-0}" ]; then
        lab_show_logs
        lab_fail "krunkit exited with $LAB_EXIT_RC, want ${2:-0}"
    fi
    echo "krunkit exited with $LAB_EXIT_RC after $(lab_since "$KRUNKIT_STARTED") s"
}

# Kill whatever this scenario started; run-scenarios.sh also kills the
# scenario's whole process group when it ends.
lab_cleanup() {
    [ -n "${KRUNKIT_PID:-}" ] && kill -9 "$KRUNKIT_PID" 2>/dev/null
    [ -n "${QEMU_PID:-}" ] && kill -9 "$QEMU_PID" 2>/dev/null
    return 0
}
trap lab_cleanup EXIT

# lab_wait_logs PATTERN SECONDS PID FILE...: lab_wait_log over several
# files (a log that may have moved): 0 when one of them has a whole line matching
# PATTERN, 1 on timeout, 2 when PID exited first (PID may be empty).
lab_wait_logs() {
    _pat=$1 _limit=$2 _pid=$3
    shift 3
    _end=$(awk -v n="$(lab_now)" -v l="$_limit" 'BEGIN { print n + l }')
    while :; do
        for _f in "$@"; do
            lab_grep_whole "$_f" -Eq -- "$_pat" && return 0
        done
        if [ -n "$_pid" ] && ! kill -0 "$_pid" 2>/dev/null; then
            for _f in "$@"; do
                lab_grep_whole "$_f" -Eq -- "$_pat" && return 0
            done
            return 2
        fi
        awk -v n="$(lab_now)" -v e="$_end" 'BEGIN { exit !(n >= e) }' && return 1
        sleep 0.1
    done
}

# lab_http_code CURL-ARGS...: curl's HTTP status for one request (000 when
# no answer came); the body goes to $WORK/http-body.
lab_http_code() {
    curl -s --max-time 10 -o "$WORK/http-body" -w '%{http_code}' "$@" 2>/dev/null
    return 0
}
