#!/bin/sh
# Runs test programs and counts their "PASS:"/"FAIL:"/"SKIP:" lines.
# A program that crashes, times out or exits non-zero without printing a
# FAIL line counts as one failure. Last line: "N passed, N failed".
# SW_TEST_WRAPPER (e.g. valgrind ...) is put in front of each program.
# SW_TEST_TIMEOUT bounds each program (seconds, default 240, times
# SW_TEST_SLOW when that is set: sanitizer runs).
# SW_TEST_JOBS programs run at once (default: the number of cores, at most
# 4). Every program binds ephemeral ports and uses its own temp dirs, so
# they do not interfere; results are printed in the order given.

# Internal: --one DIR INDEX PROGRAM runs one program, writing DIR/INDEX.out
# (its output) and then DIR/INDEX.res ("rc seconds"), which marks it done.
if [ "${1:-}" = "--one" ]; then
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout -k 5 "${SW_TEST_TIMEOUT:-$((240 * ${SW_TEST_SLOW:-1}))}" $SW_TEST_WRAPPER "$4" >"$2/$3.out" 2>&1
    rc=$?
    echo "$rc $(( $(date +%s) - start ))" >"$2/$3.tmp" && mv "$2/$3.tmp" "$2/$3.res"
    exit 0
fi

jobs=${SW_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 4 ] && jobs=4
[ "$jobs" -lt 1 ] && jobs=1
dir=$(mktemp -d)
self=$0
i=0
for t in "$@"; do
    i=$((i + 1))
    printf '%s %s\n' "$i" "$t"
done | xargs -P "$jobs" -L 1 sh "$self" --one "$dir" &
runner=$!
trap 'kill "$runner" 2>/dev/null; rm -rf "$dir"' EXIT

passed=0; failed=0; skipped=0
i=0
for t in "$@"; do
    i=$((i + 1))
    # wait for this program's result (the runner ends only after all)
    while [ ! -f "$dir/$i.res" ] && kill -0 "$runner" 2>/dev/null; do sleep 0.2; done
    rc=125; secs=0
    [ -f "$dir/$i.res" ] && read -r rc secs <"$dir/$i.res"
    out="$dir/$i.out"
    [ -f "$out" ] || : >"$out"
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
    echo "$t: $p passed, $f failed, $s skipped (${secs}s)"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
wait "$runner" 2>/dev/null
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
