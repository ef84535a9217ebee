#!/bin/sh
# Runs test programs and counts their "PASS:"/"FAIL:"/"SKIP:" lines.
# A program that crashes, times out or exits non-zero without printing a
# FAIL line counts as one failure. Last line: "N passed, N failed".
# SW_TEST_WRAPPER (e.g. valgrind ...) is put in front of each program.
# SW_TEST_TIMEOUT bounds each program (seconds, default 240, times
# SW_TEST_SLOW when that is set: sanitizer runs).
passed=0; failed=0; skipped=0
tmo=${SW_TEST_TIMEOUT:-$((240 * ${SW_TEST_SLOW:-1}))}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "$@"; do
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout -k 5 "$tmo" $SW_TEST_WRAPPER "$t" >"$out" 2>&1
    rc=$?
    p=$(grep -c '^PASS: ' "$out")
    f=$(grep -c '^FAIL: ' "$out")
    s=$(grep -c '^SKIP: ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "FAIL: $t exited with status $rc"
    fi
    if [ "$f" -ne 0 ]; then
        echo "---- output of $t ----"
        tail -n 60 "$out"
        echo "----"
    else
        grep -E '^(SKIP): ' "$out"
    fi
    echo "$t: $p passed, $f failed, $s skipped ($(( $(date +%s) - start ))s)"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
