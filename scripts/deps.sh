#!/bin/sh
# Install the named Debian packages that are missing; do nothing when all are
# present. Needs root (apt-get) only when something is missing.
set -eu
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A package of another architecture (libjansson-dev:arm64 for a cross build)
# needs that architecture added to dpkg first, and lists that include it.
refresh=""
for p in $missing; do
    case "$p" in
    *:*)
        a="${p##*:}"
        if [ "$a" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
            echo "deps: adding the $a architecture to dpkg" >&2
            dpkg --add-architecture "$a"
            refresh=1
        fi
        ;;
    esac
done
# Machines are shared: wait for another apt run rather than fail on its lock.
# Refresh the lists only when they are missing or older than a day, or an
# architecture was added.
if [ -n "$refresh" ] || [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >&2
