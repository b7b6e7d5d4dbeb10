#!/bin/sh
# Not a benchmark: turns the `BENCH name vmm metric value unit` lines that
# bench/run.sh gathered into a Markdown table with one row per metric, one
# column per VMM, and krunkit's ratio to the best QEMU machine for that
# metric (the lowest for seconds and MiB, the highest for IOPS and MiB/s),
# which is what the project's targets compare against.
#
# usage: bench/compare.sh RESULTS.txt
set -eu
[ $# = 1 ] || { echo "usage: compare.sh RESULTS.txt" >&2; exit 2; }
awk '
    $1 != "BENCH" { next }
    {
        key = $2 SUBSEP $4
        if (!(key in unit)) { order[++n] = key; unit[key] = $6 }
        if (!($3 in seen)) { seen[$3] = 1; vmms[++nv] = $3 }
        val[key, $3] = $5
    }
    END {
        # VMM columns: krunkit variants first, then the QEMU machines.
        nc = 0
        for (i = 1; i <= nv; i++) if (vmms[i] ~ /^krunkit/) col[++nc] = vmms[i]
        for (i = 1; i <= nv; i++) if (vmms[i] !~ /^krunkit/) col[++nc] = vmms[i]
        printf "| benchmark | metric | unit | better |"
        for (c = 1; c <= nc; c++) printf " %s |", col[c]
        printf " krunkit / best QEMU |\n| --- | --- | --- | --- |"
        for (c = 1; c <= nc; c++) printf " ---: |"
        printf " ---: |\n"
        for (i = 1; i <= n; i++) {
            key = order[i]
            split(key, part, SUBSEP)
            lower = (unit[key] == "s" || unit[key] == "MiB")
            printf "| %s | %s | %s | %s |", part[1], part[2], unit[key], lower ? "lower" : "higher"
            best = ""
            for (c = 1; c <= nc; c++) {
                v = ((key, col[c]) in val) ? val[key, col[c]] : "-"
                printf " %s |", v
                if (col[c] ~ /^qemu/ && v != "-" &&
                    (best == "" || (lower && v + 0 < best + 0) || (!lower && v + 0 > best + 0)))
                    best = v
            }
            k = ((key, "krunkit") in val) ? val[key, "krunkit"] : ""
            if (k != "" && best != "" && best + 0 != 0) printf " %.2f |\n", k / best
            else printf " - |\n"
        }
    }' "$1"
