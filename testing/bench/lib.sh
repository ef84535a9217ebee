# lib.sh — helpers for run_bench.sh (sourced; POSIX sh + awk, no python).
#
# Process handling: every process is started with start_bg, which records
# its PID in BENCH_PIDS; stop_pid stops one by PID (TERM, then KILL after
# 10 s) and stop_all (the EXIT trap) stops whatever is left.

BENCH_PIDS=""

log() { echo "bench: $*" >&2; }

now_ns() { date +%s%N; }

# wait_file, wait_gone, wait_until: the shared waits.
. "$ROOT/testing/lib/wait.sh"

# start_bg LOG CMD ARGS...: starts CMD in the background, stderr and stdout
# to LOG; sets LAST_PID.
start_bg() {
    _log=$1; shift
    "$@" >"$_log" 2>&1 &
    LAST_PID=$!
    BENCH_PIDS="$BENCH_PIDS $LAST_PID"
}

stop_pid() {
    [ -n "$1" ] || return 0
    if kill -TERM "$1" 2>/dev/null; then
        wait_gone "$1" 10 || kill -KILL "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null
    _left=""
    for _p in $BENCH_PIDS; do [ "$_p" = "$1" ] || _left="$_left $_p"; done
    BENCH_PIDS=$_left
    return 0
}

stop_all() {
    for _p in $BENCH_PIDS; do stop_pid "$_p"; done
}

# bench_work NAME: WORK, a temp dir for this run; on exit every process
# started is stopped and WORK removed; INT/TERM end the run.
bench_work() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/spillway-$1.XXXXXX") || exit 1
    trap 'stop_all; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
}

# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14, 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() {
    awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# peak_rss_kib PID: VmHWM in KiB.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# cpu_pct TICKS NS: CPU time as % of one core over a wall time in ns.
cpu_pct() { awk -v t="$1" -v ns="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", (ns > 0) ? t / hz / (ns / 1e9) * 100 : 0 }'; }

# jnum KEY FILE: the number after "KEY": in a one-line JSON document.
jnum() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1; }

# mock_items PORT SIGNAL: items the mock upstream counted for SIGNAL.
mock_items() {
    curl -s --max-time 5 "http://127.0.0.1:$1/stats" |
        sed -n "s/.*\"items\":{[^}]*\"$2\":\([0-9]*\).*/\1/p"
}

# metric_sum FILE NAME: sum over all label sets of a Prometheus sample NAME.
metric_sum() {
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f", s }' "$1"
}

# hist_pct FILE NAME Q: the Q-quantile (0..1) of Prometheus histogram NAME,
# interpolated linearly inside its bucket (buckets of all label sets
# summed), in the histogram's unit. Empty histogram: 0.
hist_pct() {
    awk -v n="$2" -v q="$3" '
        index($1, n "_bucket{") == 1 {
            le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
            v = (le == "+Inf") ? 1e300 : le + 0
            if (!(v in cnt)) { bounds[++nb] = v }
            cnt[v] += $2
        }
        END {
            if (nb == 0) { print 0; exit }
            for (i = 1; i <= nb; i++) for (j = i + 1; j <= nb; j++)
                if (bounds[j] < bounds[i]) { t = bounds[i]; bounds[i] = bounds[j]; bounds[j] = t }
            total = cnt[bounds[nb]]
            if (total <= 0) { print 0; exit }
            rank = q * total; prev = 0; lo = 0
            for (i = 1; i <= nb; i++) {
                hi = bounds[i]; c = cnt[hi]
                if (c >= rank) {
                    if (hi >= 1e300) { printf "%.6f", lo; exit }
                    frac = (c > prev) ? (rank - prev) / (c - prev) : 1
                    printf "%.6f", lo + (hi - lo) * frac; exit
                }
                prev = c; lo = hi
            }
            printf "%.6f", lo
        }' "$1"
}

# stats: reads numbers (one per line) on stdin, prints "median min max".
stats() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "0 0 0"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

# col FILE N: column N of a whitespace-separated table.
col() { awk -v c="$2" '{ print $c }' "$1"; }
