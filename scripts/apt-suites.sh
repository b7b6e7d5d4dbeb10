#!/bin/sh
# Make Debian's bookworm-backports and trixie suites available to apt, the way
# docs/NESTED-LAB (shared lab notes, "Adding suites") describes: one extra
# deb822 file that reuses the URIs and Signed-By of the machine's own Debian
# source, with trixie pinned at 100 so only packages asked for by name come
# from it. Never names a mirror host itself.
#
#   scripts/apt-suites.sh                       add the suites (idempotent)
#   scripts/apt-suites.sh install SUITE pkg...  add them, then install the
#                                               packages from SUITE unless
#                                               that version is installed
set -eu

SOURCES=/etc/apt/sources.list.d/debian.sources
EXTRA=/etc/apt/sources.list.d/krunkit-extra-suites.sources
PIN=/etc/apt/preferences.d/krunkit-trixie

# Print "URIs<TAB>Signed-By" of the deb822 stanza that carries the plain
# "bookworm" suite (not -security / -updates, which live elsewhere).
debian_stanza() {
    awk '
        function flush() {
            if (is_main && uris != "") print uris "\t" signed
            uris = ""; signed = ""; is_main = 0
        }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        tolower($1) == "uris:" { sub(/^[^:]*:[[:space:]]*/, ""); uris = $0 }
        tolower($1) == "signed-by:" { sub(/^[^:]*:[[:space:]]*/, ""); signed = $0 }
        tolower($1) == "suites:" {
            for (i = 2; i <= NF; i++) if ($i == "bookworm") is_main = 1
        }
        END { flush() }
    ' "$SOURCES" | head -1
}

add_suites() {
    if [ ! -r "$SOURCES" ]; then
        echo "apt-suites: $SOURCES not found; cannot derive the Debian mirror" >&2
        exit 1
    fi
    line=$(debian_stanza)
    if [ -z "$line" ]; then
        echo "apt-suites: no stanza with suite bookworm in $SOURCES" >&2
        exit 1
    fi
    uris=$(printf '%s' "$line" | cut -f1)
    signed=$(printf '%s' "$line" | cut -f2)
    want=$(
        echo "# Written by scripts/apt-suites.sh (krunkit lab); derived from $SOURCES"
        echo "Types: deb"
        echo "URIs: $uris"
        echo "Suites: bookworm-backports trixie"
        echo "Components: main"
        [ -n "$signed" ] && echo "Signed-By: $signed"
    )
    pin=$(printf '%s\n' "# Written by scripts/apt-suites.sh: trixie only when asked for" \
        "Package: *" "Pin: release n=trixie" "Pin-Priority: 100")
    changed=0
    if [ "$(cat "$EXTRA" 2>/dev/null)" != "$want" ]; then
        printf '%s\n' "$want" >"$EXTRA"
        changed=1
    fi
    if [ "$(cat "$PIN" 2>/dev/null)" != "$pin" ]; then
        printf '%s\n' "$pin" >"$PIN"
        changed=1
    fi
    if [ "$changed" = 1 ] || ! ls /var/lib/apt/lists/*_dists_trixie_* >/dev/null 2>&1 ||
        ! ls /var/lib/apt/lists/*_dists_bookworm-backports_* >/dev/null 2>&1; then
        echo "apt-suites: apt-get update (bookworm-backports, trixie added)" >&2
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    fi
}

# True when the installed version of $2 is the candidate of suite $1.
installed_from_suite() {
    inst=$(dpkg-query -W -f='${Status} ${Version}' "$2" 2>/dev/null |
        awk '$1 == "install" && $3 == "installed" { print $4 }')
    [ -n "$inst" ] || return 1
    cand=$(apt-cache policy -t "$1" "$2" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$cand" ] && dpkg --compare-versions "$inst" ge "$cand"
}

add_suites
[ "${1:-}" = install ] || exit 0
shift
suite=$1
shift
missing=""
for p in "$@"; do
    installed_from_suite "$suite" "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "apt-suites: installing from $suite:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends -t "$suite" $missing >&2
