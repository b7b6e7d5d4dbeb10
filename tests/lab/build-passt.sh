#!/bin/sh
# passt from trixie for the lab's krunkit-net, in build/lab/passt/.
#
# Bookworm's passt (0.0~git20230309) corrupts TCP streams towards a slow
# guest: under QEMU as the L2 VMM exactly as under krunkit, the guest
# receives more than the host sent, repeats of earlier data with new
# sequence numbers (docs/net.md). Trixie's passt has no such trouble but
# needs glibc 2.38, which bookworm lacks, so it runs with trixie's own
# libc6 through that libc's loader:
#     build/lab/passt/ld.so --library-path build/lab/passt/lib passt/passt
# Both come from Debian's packages (apt-get download through the machine's
# own apt source; scripts/apt-suites.sh adds trixie). Nothing is installed
# system-wide. build/lab/passt/passt-run is the command to use.
set -eu
LAB=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LAB/../.." && pwd)
OUT=$REPO/build/lab/passt
"$REPO/scripts/apt-suites.sh"

want_passt=$(apt-cache madison passt | awk -F'|' '/trixie/ {gsub(/ /, "", $2); print $2; exit}')
want_libc=$(apt-cache madison libc6 | awk -F'|' '/trixie/ {gsub(/ /, "", $2); print $2; exit}')
[ -n "$want_passt" ] && [ -n "$want_libc" ] || {
    echo "build-passt: no trixie passt or libc6 in apt's lists (scripts/apt-suites.sh)" >&2
    exit 1
}
stamp="passt=$want_passt libc6=$want_libc"
if [ -x "$OUT/passt-run" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
rm -rf "$OUT" "$OUT.tmp"
mkdir -p "$OUT.tmp/debs" "$OUT.tmp/x"
(cd "$OUT.tmp/debs" && apt-get download -q "passt=$want_passt" "libc6=$want_libc" >/dev/null)
for d in "$OUT.tmp"/debs/*.deb; do dpkg-deb -x "$d" "$OUT.tmp/x"; done
mkdir -p "$OUT.tmp/lib"
cp "$OUT.tmp/x/usr/bin/passt" "$OUT.tmp/passt"
cp "$OUT.tmp/x/usr/lib/x86_64-linux-gnu/libc.so.6" "$OUT.tmp/lib/"
cp "$OUT.tmp/x/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$OUT.tmp/ld.so"
rm -rf "$OUT.tmp/debs" "$OUT.tmp/x"
cat >"$OUT.tmp/passt-run" <<'RUN'
#!/bin/sh
# trixie's passt with trixie's libc (tests/lab/build-passt.sh)
d=$(dirname "$(readlink -f "$0")")
exec "$d/ld.so" --library-path "$d/lib" "$d/passt" "$@"
RUN
chmod +x "$OUT.tmp/passt-run"
echo "$stamp" >"$OUT.tmp/stamp"
mv "$OUT.tmp" "$OUT"
echo "build-passt: $OUT/passt-run ($stamp)"
