#!/bin/sh
# Run each cmocka test binary; fail when any fails, after running all.
fail=0
for t in "$@"; do
    if "$t"; then :; else echo "FAILED: $t" >&2; fail=1; fi
done
exit $fail
