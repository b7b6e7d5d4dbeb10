#!/bin/sh
# The one source of krunkit's version. In a git checkout: `git describe
# --tags --always --dirty`, a leading "v" dropped; when no tag is reachable
# (describe gives a bare hash) it is VERSION's content + "+g<hash>[-dirty]".
# Outside git (a release tarball): the content of the VERSION file.
# `version.sh` prints it; `version.sh --header FILE` writes FILE as
# `#define KRUNKIT_VERSION "..."`, only when that content changes.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
base=$(tr -d ' \n' <"$ROOT/VERSION")
v=$base
if [ -e "$ROOT/.git" ] && command -v git >/dev/null 2>&1 &&
    d=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null); then
    if git -C "$ROOT" describe --tags >/dev/null 2>&1; then
        v=${d#v}
    else
        v=$base+g$d
    fi
fi
if [ "${1:-}" = --header ]; then
    out=$2
    new="#define KRUNKIT_VERSION \"$v\""
    if [ ! -f "$out" ] || [ "$(cat "$out")" != "$new" ]; then
        printf '%s\n' "$new" >"$out.tmp" && mv -f "$out.tmp" "$out"
    fi
else
    printf '%s\n' "$v"
fi
