# Helpers for benchmarks (bench/NAME.sh), sourced with
#   . "$LAB_DIR/../../bench/lib.sh"
# A benchmark is a lab scenario (same environment, same exit codes, see
# tests/lab/lib.sh, which this includes) run by bench/run.sh, usually inside
# the nested lab, side by side with QEMU as the L2 VMM on the same kernel,
# initramfs, vCPUs and memory. It reports numbers with bench_record; bench/
# run.sh gathers them into build/bench/results.md.
. "$LAB_DIR/lib.sh"

BENCH_NAME=${BENCH_NAME:-$(basename "$0" .sh)}

# Both VMMs boot the guest with the same kernel command line:
# krunkit_start's (console=hvc0 lab.scenario=NAME lab.cpus=N) plus
# LAB_CMDLINE, which benchmarks start with "quiet panic=-1": a guest that
# prints its whole kernel log on the console is timing the console.
LAB_CMDLINE="quiet panic=-1${LAB_CMDLINE:+ $LAB_CMDLINE}"
export LAB_CMDLINE

# bench_record VMM METRIC VALUE UNIT: one measurement, e.g.
#   bench_record qemu-pc time-to-init 8.81 s
bench_record() {
    echo "BENCH $BENCH_NAME $1 $2 $3 $4" | tee -a "$WORK/bench.log"
}

# bench_initrd: the initramfs benchmarks boot (with fio when built).
bench_initrd() {
    if [ -n "${GUEST_INITRD_TOOLS:-}" ] && [ -f "$GUEST_INITRD_TOOLS" ]; then
        echo "$GUEST_INITRD_TOOLS"
    else
        echo "$GUEST_INITRD"
    fi
}

# bench_qemu_start MACHINE GUEST_SCENARIO CPUS [DISK...] [-- QEMU_ARG...]:
# QEMU as the L2 VMM, configured like krunkit_start: direct Linux boot,
# virtio console (hvc0) logged to $WORK/console.log, a virtio-blk disk per
# DISK image (qcow2 when its name ends in .qcow2, else raw); arguments
# after `--` go to QEMU as they are.
# MACHINE is pc or microvm, with machine options after a comma
# (microvm,rtc=off). Memory LAB_MEMORY (512), extra guest arguments
# LAB_CMDLINE (as krunkit_start), drive options BENCH_QEMU_DRIVE (cache=writeback,aio=threads:
# tmpfs in L1 has no O_DIRECT), accelerator BENCH_QEMU_ACCEL (kvm).
# Sets QEMU_PID and QEMU_STARTED (lab_now).
bench_qemu_start() {
    lab_need_qemu
    _m=$1 _scn=$2 _cpus=$3
    shift 3
    case "${_m%%,*}" in
    pc) _bus=pci ;;
    microvm) _bus=device ;;
    *) lab_fail "bench_qemu_start: unknown machine $_m" ;;
    esac
    _machine=$_m
    _n=0 _raw=""
    for _disk in "$@"; do
        shift
        if [ -n "$_raw" ]; then
            set -- "$@" "$_disk"
            continue
        fi
        case "$_disk" in
        --)
            _raw=1
            continue
            ;;
        *.qcow2) _fmt=qcow2 ;;
        *) _fmt=raw ;;
        esac
        set -- "$@" -drive "file=$_disk,format=$_fmt,if=none,id=d$_n,${BENCH_QEMU_DRIVE:-cache=writeback,aio=threads}" \
            -device "virtio-blk-$_bus,drive=d$_n"
        _n=$((_n + 1))
    done
    : >"$WORK/console.log"
    QEMU_STARTED=$(lab_now)
    "$QEMU" -M "$_machine" -accel "${BENCH_QEMU_ACCEL:-kvm}" -cpu "${BENCH_QEMU_CPU:-host}" \
        -smp "$_cpus" -m "${LAB_MEMORY:-512}" \
        -display none -vga none -nodefaults -no-reboot -no-user-config \
        -device "virtio-serial-$_bus" -chardev "file,id=con,path=$WORK/console.log" \
        -device virtconsole,chardev=con "$@" \
        -kernel "$GUEST_KERNEL" -initrd "${LAB_INITRD:-$GUEST_INITRD}" \
        -append "console=hvc0 lab.scenario=$_scn lab.cpus=$_cpus ${LAB_CMDLINE:-}" \
        >"$WORK/qemu.log" 2>&1 </dev/null &
    QEMU_PID=$!
}

# bench_time_to_init PID START: seconds from START (lab_now) until the
# guest's init marker appears; fails the benchmark when it never does.
bench_time_to_init() {
    lab_wait_log "$WORK/console.log" KRUNKIT-GUEST-INIT "${BENCH_BOOT_TIMEOUT:-120}" "$1" ||
        { lab_show_logs; lab_fail "no guest init marker (pid $1)"; }
    lab_since "$2"
}

# bench_boot_timed VMM PID START: waits for the guest's init marker, sets
# BOOT_SECS (since START) and BOOT_UPTIME (the guest's own), prints them,
# then lets the VMM power off (bench_boot_done).
bench_boot_timed() {
    BOOT_SECS=$(bench_time_to_init "$2" "$3") || { echo "$1: $BOOT_SECS"; exit 1; }
    BOOT_UPTIME=$(bench_init_uptime)
    echo "$1: init after $BOOT_SECS s (guest uptime ${BOOT_UPTIME:-?} s)"
    bench_boot_done "$1" "$2"
}

# bench_boot_done VMM PID: not part of any measurement, but a VMM that
# misses the guest's power-off is worth a line in the log, and the next
# boot must not overlap it: killed after 60 s.
bench_boot_done() {
    if ! lab_wait_exit "$2" 60; then
        echo "WARNING: $1 still running 60 s after the guest's init; killed"
        kill -9 "$2" 2>/dev/null
        wait "$2" 2>/dev/null
    elif [ "$LAB_EXIT_RC" != 0 ]; then
        echo "WARNING: $1 exited with $LAB_EXIT_RC"
    fi
    KRUNKIT_PID="" QEMU_PID=""
}

# bench_vmm_overhead_kib PID GUEST_TOUCHED_KIB: the VMM's RSS beyond the
# guest memory the guest has touched.
bench_vmm_overhead_kib() {
    echo $(($(lab_rss_kib "$1") - $2))
}

# bench_median VALUE...: the median (mean of the middle two for an even count).
bench_median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
        END {
            if (NR == 0) exit 1
            if (NR % 2) printf "%.2f", v[(NR + 1) / 2]
            else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# bench_init_uptime: the guest's own uptime when its init ran, from the
# marker in $WORK/console.log (the kernel's share of the boot).
bench_init_uptime() {
    grep -a -m1 KRUNKIT-GUEST-INIT "$WORK/console.log" | tr -d '\r' |
        sed -n 's/.*uptime=\([0-9.]*\).*/\1/p'
}

# bench_guest_ram_kib PID: resident KiB of the guest RAM mapping(s) of a
# VMM: every mapping between half the guest's memory (LAB_MEMORY MiB) and
# that plus 16 MiB in size (krunkit's and QEMU's anonymous RAM blocks);
# nothing else a VMM maps is that size (QEMU's TCG code buffer, 1 GiB, is
# not). The mappings counted go to $WORK/bench.log.
bench_guest_ram_kib() {
    _min=$((${LAB_MEMORY:-512} * 512))
    _max=$(((${LAB_MEMORY:-512} + 16) * 1024))
    awk -v min="$_min" -v max="$_max" -v logf="$WORK/bench.log" '
        function flush() {
            if (size >= min && size <= max) {
                printf "guest RAM mapping %s at %s (%s2 MiB-aligned) size %d KiB rss %d KiB, in huge pages %d KiB\n",
                    name, start, aligned, size, rss, huge >>logf
                sum += rss
            }
            size = rss = huge = 0
        }
        /^[0-9a-f]+-[0-9a-f]+ / {
            flush()
            name = ($6 == "" ? "[anon]" : $6)
            start = substr($1, 1, index($1, "-") - 1)
            # 2 MiB alignment: the last five hex digits are below 0x200000.
            aligned = (substr(start, length(start) - 4) ~ /^[02468ace]0000$/) ? "" : "not "
            next
        }
        /^Size:/ { size = $2; next }
        /^Rss:/ { rss = $2; next }
        /^(AnonHugePages|ShmemPmdMapped|FilePmdMapped):/ { huge += $2; next }
        END { flush(); print sum + 0 }' "/proc/$1/smaps"
}
