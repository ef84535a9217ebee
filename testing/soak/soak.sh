#!/bin/sh
# soak.sh — `make soak`: a bounded long run of spillway under steady load,
# a flapping upstream and a light mix of hostile clients; checks that
# nothing acknowledged is lost and that RSS, open fds and threads stay flat.
#
#   SOAK_SECONDS=600 sh testing/soak/soak.sh
#
# Starts on 127.0.0.1 with ephemeral ports: spillway-mockup (export port
# plus an admin port that stays reachable during outages), spillway (the
# scenario runner's config: DLQ in a temp dir, short retry intervals,
# breaker open_duration 2 s), then for SOAK_SECONDS:
#   - spillway-loadgen at SOAK_RATE spans/s (10,000; 100 per request, 4
#     connections) with --verify against the mock's stored content;
#   - the upstream flapping: up SOAK_FLAP_SECONDS (30), then refusing
#     connections for SOAK_FLAP_SECONDS, and so on (admin outages, so the
#     flapping stops with the load and the last items can drain);
#   - soak-hostile (testing/soak/hostile.c): slowloris, slow bodies, gzip
#     bombs, malformed and aborted requests;
#   - a sampler reading spillway's VmRSS, /proc/PID/fd count and Threads
#     every second.
# Verdict: least-squares slopes (per minute) of RSS, fds and threads over
# the second half of the load window (start-up and the first fill of the
# queue do not count) against SOAK_MAX_RSS_KIB_MIN (64), SOAK_MAX_FDS_MIN
# (0.5), SOAK_MAX_THREADS_MIN (0.5); items lost (acked by spillway, not
# received by the mock: must be 0); no hostile request accepted. The report
# goes to SOAK_OUT (default <build>/soak)/report.md with the samples
# beside it; exit status 0 only when everything passed.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SW_BIN_DIR:-${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
SECS=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-10000}
FLAP=${SOAK_FLAP_SECONDS:-30}
MAX_RSS=${SOAK_MAX_RSS_KIB_MIN:-64}
MAX_FDS=${SOAK_MAX_FDS_MIN:-0.5}
MAX_THR=${SOAK_MAX_THREADS_MIN:-0.5}
OUT=${SOAK_OUT:-$BIN/soak}
NAME=soak
SCEN_LOG_LEVEL=${SCEN_LOG_LEVEL:-warn}
. "$ROOT/testing/scenarios/lib.sh"

for b in spillway spillway-mockup spillway-loadgen soak-hostile; do
    [ -x "$BIN/$b" ] || { echo "soak: missing $BIN/$b (run make first)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "soak: curl is required" >&2; exit 1; }
case $SECS in ""|*[!0-9]*) echo "soak: SOAK_SECONDS must be a whole number" >&2; exit 2 ;; esac
[ "$SECS" -ge 20 ] || { echo "soak: SOAK_SECONDS must be at least 20" >&2; exit 2; }

D=$(mktemp -d "${TMPDIR:-/tmp}/spillway-soak.XXXXXX") || exit 1
mkdir -p "$OUT" || exit 1
trap 'sc_stop_all; [ "${SOAK_KEEP:-0}" = 1 ] || rm -rf "$D"' EXIT
trap 'exit 130' INT TERM

# sampler PID: every second "t_ms rss_kib fds threads" into $OUT/samples.tsv
# until $D/stop exists or the process is gone.
sampler() {
    echo "# t_ms rss_kib fds threads" >"$OUT/samples.tsv"
    while [ ! -e "$D/stop" ] && [ -d "/proc/$1" ]; do
        _t=$(now_ms)
        _st=$(awk '/^VmRSS:/ { r = $2 } /^Threads:/ { t = $2 } END { print r, t }' "/proc/$1/status" 2>/dev/null)
        _fds=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
        set -- "$1" $_st
        [ $# -eq 3 ] && echo "$_t $2 $_fds $3" >>"$OUT/samples.tsv"
        _w=$((_t + 1000 - $(now_ms)))
        [ "$_w" -gt 0 ] && sleep "$(awk -v w="$_w" 'BEGIN { printf "%.3f", w / 1000 }')"
    done
}

# flapper: up FLAP s, down FLAP s (admin outage, connections refused),
# from T0 until the end of the load window; counts outages in $D/outages.
flapper() {
    _k=0
    while :; do
        _at=$((T0 + (2 * _k + 1) * FLAP * 1000))
        [ "$_at" -ge $((T0 + SECS * 1000)) ] && break
        _w=$((_at - $(now_ms)))
        [ "$_w" -gt 0 ] && sleep "$(awk -v w="$_w" 'BEGIN { printf "%.3f", w / 1000 }')"
        [ -e "$D/stop" ] && break
        sc_admin "/admin/outage?seconds=$FLAP&mode=refuse"
        _k=$((_k + 1))
        echo "$_k" >"$D/outages"
    done
}

# slope COLUMN FROM_MS TO_MS: least-squares slope of the column per minute
# over the samples with FROM_MS <= t <= TO_MS.
slope() {
    awk -v c="$1" -v a="$2" -v b="$3" '!/^#/ && $1 >= a && $1 <= b {
            x = ($1 - a) / 60000; y = $c; n++; sx += x; sy += y; sxx += x * x; sxy += x * y }
        END { d = n * sxx - sx * sx; if (n < 3 || d == 0) print "nan"; else printf "%.3f", (n * sxy - sx * sy) / d }' \
        "$OUT/samples.tsv"
}

# col_stat COLUMN FROM_MS TO_MS: "first last max" of the column in the window.
col_stat() {
    awk -v c="$1" -v a="$2" -v b="$3" '!/^#/ && $1 >= a && $1 <= b {
            if (n++ == 0) f = $c; l = $c; if ($c > m) m = $c }
        END { printf "%s %s %s", f, l, m }' "$OUT/samples.tsv"
}

le() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x != "nan" && x + 0 <= y + 0) }'; }

sc_log "${SECS}s at $RATE spans/s, upstream flapping ${FLAP}s up / ${FLAP}s down, hostile clients beside"
sc_mock_start --keep 100000000 || exit 1
sc_sw_config
sc_sw_start || exit 1
sampler "$SW_PID" &
SAMPLER_PID=$!; SC_PIDS="$SC_PIDS $SAMPLER_PID"
T0=$(now_ms)
flapper &
FLAPPER_PID=$!; SC_PIDS="$SC_PIDS $FLAPPER_PID"
sc_start_bg "$D/hostile.txt" "$BIN/soak-hostile" --target "$OTLP" --duration "$SECS"
HOSTILE_PID=$LAST_PID
"$BIN/spillway-loadgen" --endpoint "http://$OTLP" --signal traces --rate "$RATE" --batch 100 \
    --connections 4 --duration "$SECS" --timeout 10 --seed 7 \
    --verify --verify-url "http://$ADMIN" --verify-wait 900 --verify-settle $((FLAP + 15)) \
    --verify-missing "$D/missing.txt" --json --quiet >"$D/lg.json" 2>"$D/lg.err"
LG_RC=$?
T_LOAD_END=$((T0 + SECS * 1000))
wait "$HOSTILE_PID" 2>/dev/null; sc_forget_pid "$HOSTILE_PID"
: >"$D/stop"
wait "$FLAPPER_PID" 2>/dev/null; sc_forget_pid "$FLAPPER_PID"
sc_peak_rss "$SW_PID"
wait "$SAMPLER_PID" 2>/dev/null; sc_forget_pid "$SAMPLER_PID"
METRICS_END=$(sc_metrics)
sc_sw_term
cp "$D/spillway.1.log" "$OUT/spillway.log" 2>/dev/null
cp "$D/lg.json" "$OUT/loadgen.json" 2>/dev/null

# ---- figures ------------------------------------------------------------
HALF=$((T0 + SECS * 500))
S_RSS=$(slope 2 "$HALF" "$T_LOAD_END")
S_FDS=$(slope 3 "$HALF" "$T_LOAD_END")
S_THR=$(slope 4 "$HALF" "$T_LOAD_END")
set -- $(col_stat 2 "$T0" "$T_LOAD_END"); RSS_FIRST=${1:-0}; RSS_LAST=${2:-0}; RSS_MAX=${3:-0}
set -- $(col_stat 3 "$T0" "$T_LOAD_END"); FDS_FIRST=${1:-0}; FDS_LAST=${2:-0}; FDS_MAX=${3:-0}
set -- $(col_stat 4 "$T0" "$T_LOAD_END"); THR_FIRST=${1:-0}; THR_LAST=${2:-0}; THR_MAX=${3:-0}
NSAMPLES=$(grep -vc '^#' "$OUT/samples.tsv")
SENT=$(jnum items_sent "$D/lg.json"); ACKED=$(jnum items_accepted "$D/lg.json")
REFUSED=$(jnum requests_refused "$D/lg.json"); CONNERR=$(jnum connection_errors "$D/lg.json")
P99=$(sed -n 's/.*"p99":\([0-9.]*\).*/\1/p' "$D/lg.json")
MISSING=$(jnum missing "$D/lg.json"); DUP=$(jnum duplicated "$D/lg.json")
UNEXP=$(jnum unexpected "$D/lg.json"); RECEIVED=$(jnum received "$D/lg.json")
OUTAGES=$(cat "$D/outages" 2>/dev/null || echo 0)
HOSTILE=$(cat "$D/hostile.txt" 2>/dev/null)
H_ACCEPTED=$(printf '%s\n' "$HOSTILE" | sed -n 's/.*accepted=\([0-9]*\).*/\1/p')

FAIL=""
[ -n "$MISSING" ] || FAIL="$FAIL verify-not-done(loadgen-exit-$LG_RC)"
[ "${MISSING:-1}" = 0 ] || FAIL="$FAIL lost=${MISSING:-?}"
[ "${ACKED:-0}" -gt 0 ] || FAIL="$FAIL nothing-acked"
[ "${H_ACCEPTED:-1}" = 0 ] || FAIL="$FAIL hostile-accepted=${H_ACCEPTED:-?}"
le "$S_RSS" "$MAX_RSS" || FAIL="$FAIL rss-slope=$S_RSS"
le "$S_FDS" "$MAX_FDS" || FAIL="$FAIL fd-slope=$S_FDS"
le "$S_THR" "$MAX_THR" || FAIL="$FAIL thread-slope=$S_THR"
[ "$SW_STATUS" = 0 ] || FAIL="$FAIL spillway-exit=$SW_STATUS"
VERDICT=PASS; [ -z "$FAIL" ] || VERDICT="FAIL:$FAIL"

{
    echo "# spillway soak report"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host: $(uname -n), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- load: ${SECS} s at $RATE spans/s (100 per request, 4 connections), upstream flapping ${FLAP} s up / ${FLAP} s down (connections refused): $OUTAGES outages"
    echo "- hostile clients (soak-hostile): $HOSTILE"
    echo
    echo "| | value | threshold |"
    echo "|---|---|---|"
    echo "| RSS slope, 2nd half | $S_RSS KiB/min | ≤ $MAX_RSS |"
    echo "| open fds slope, 2nd half | $S_FDS /min | ≤ $MAX_FDS |"
    echo "| threads slope, 2nd half | $S_THR /min | ≤ $MAX_THR |"
    echo "| RSS first / last / max (KiB) | $RSS_FIRST / $RSS_LAST / $RSS_MAX (VmHWM $PEAK_RSS) | |"
    echo "| open fds first / last / max | $FDS_FIRST / $FDS_LAST / $FDS_MAX | |"
    echo "| threads first / last / max | $THR_FIRST / $THR_LAST / $THR_MAX | |"
    echo "| samples | $NSAMPLES (1 s apart) | |"
    echo "| items sent / acked (2xx) | ${SENT:-?} / ${ACKED:-?} | |"
    echo "| requests refused (429/503) / connection errors | ${REFUSED:-?} / ${CONNERR:-?} | |"
    echo "| client latency P99 | ${P99:-?} ms | |"
    echo "| items received by the mock (lines) | ${RECEIVED:-?} | |"
    echo "| **lost** (acked, never received) | ${MISSING:-?} | 0 |"
    echo "| duplicated / unexpected | ${DUP:-?} / ${UNEXP:-?} | |"
    echo "| hostile requests accepted | ${H_ACCEPTED:-?} | 0 |"
    echo "| spillway at the end (breaker dlq_bytes queue_items in_flight oldest_age) | $METRICS_END | |"
    echo "| spillway exit status after SIGTERM | $SW_STATUS | 0 |"
    echo
    echo "verdict: $VERDICT"
} >"$OUT/report.md"
[ -s "$D/missing.txt" ] && cp "$D/missing.txt" "$OUT/missing.txt"
cat "$OUT/report.md"
echo "soak: report in $OUT/report.md, samples in $OUT/samples.tsv" >&2
[ "$VERDICT" = PASS ]
