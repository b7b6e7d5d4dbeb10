#!/bin/sh
# make install / uninstall into a temporary DESTDIR with a non-default
# PREFIX: the binary (0755) and the man page (0644) land where they should,
# the installed binary runs, and uninstall removes both.
set -eu
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
MAKE=${MAKE:-make}
P=/opt/kk
$MAKE --no-print-directory -s install DESTDIR="$D" PREFIX=$P >/dev/null
bin=$D$P/bin/krunkit man=$D$P/share/man/man1/krunkit.1
fail() { echo "FAILED: install: $*" >&2; exit 1; }
[ "$(stat -c %a "$bin")" = 755 ] || fail "$bin mode $(stat -c %a "$bin" 2>&1)"
[ "$(stat -c %a "$man")" = 644 ] || fail "$man mode $(stat -c %a "$man" 2>&1)"
cmp -s "$man" docs/krunkit.1 || fail "man page differs"
"$bin" --version | grep -q '^krunkit ' || fail "installed binary does not run"
$MAKE --no-print-directory -s uninstall DESTDIR="$D" PREFIX=$P
[ ! -e "$bin" ] && [ ! -e "$man" ] || fail "uninstall left files"
echo "ok: make install/uninstall (DESTDIR, PREFIX)"
