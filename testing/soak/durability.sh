#!/bin/sh
# durability.sh — `make durability`: the 24-hour durability run, compressed
# in time by rate: DURABILITY_ITEMS (2,400,000 = 24 h at 100,000 items/h)
# spans sent in DURABILITY_SECONDS (900) with spillway-loadgen --verify,
# through spill and replay, across 5 upstream outages and 4 restarts of
# spillway.
#
#   DURABILITY_MODE=memory|durable sh testing/soak/durability.sh
#
# One load generator runs for the whole window against one address: the
# first spillway binds an ephemeral port and every later one reuses it (a
# restart is then, for the client, a short window of refused connections,
# counted as not acknowledged). The mock upstream (the ground truth) stays
# up throughout. Timeline, in fractions of the window:
#   outages (connections refused) at 0.10, 0.28, 0.45, 0.65, 0.80, each
#   0.04 long (36 s by default: the 8 MiB queue overflows and the DLQ
#   grows; after each, the DLQ replays)
#   0.20  SIGTERM + restart, live traffic
#   0.31  kill -9 + restart while spilling (inside outage 2, once the DLQ
#         has been seen growing)
#   0.58  kill -9 + restart while delivering live traffic (breaker closed)
#   0.67  SIGTERM + restart during outage 4
# After the window the generator waits for delivery and compares what the
# mock stored with what was acknowledged; the DLQ must then be empty.
#
# Loss accounting: the generator lists every acknowledged request with
# items missing and the time of its 2xx (--verify-missing); a loss is
# charged to a kill -9 when the killed process gave that 2xx. Memory mode
# documents (docs/dlq-format.md) that a kill -9 loses at most the items
# acknowledged while only in memory: queue.max_bytes plus the exporter's
# in-flight batches (max_in_flight x batch.max_bytes); each kill's loss is
# checked against that bound converted to items (bytes per item as sent).
# Any other loss fails the run; in durable mode any loss fails it.
# Durable mode needs a build whose config has queue.mode; the run stops
# at once otherwise ("queue.mode durable not supported by this build").
#
# Environment: DURABILITY_MODE (memory), DURABILITY_ITEMS, DURABILITY_SECONDS,
# DURABILITY_QUEUE (queue.max_bytes, 8MiB), DURABILITY_OUT (<build>/durability),
# DURABILITY_KEEP=1 keeps the work directory. Report: $DURABILITY_OUT/report.md.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SW_BIN_DIR:-${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
MODE_Q=${DURABILITY_MODE:-memory}
ITEMS=${DURABILITY_ITEMS:-2400000}
SECS=${DURABILITY_SECONDS:-900}
QUEUE=${DURABILITY_QUEUE:-8MiB}
OUT=${DURABILITY_OUT:-$BIN/durability}
BATCH=100
IN_FLIGHT=4          # exporters.otlphttp.max_in_flight (written below)
BATCH_BYTES=1048576  # exporters.otlphttp.batch.max_bytes (written below)
NAME=durability
. "$ROOT/testing/scenarios/lib.sh"

die() { echo "durability: $*" >&2; exit 1; }
for b in spillway spillway-mockup spillway-loadgen; do
    [ -x "$BIN/$b" ] || die "missing $BIN/$b (run make first)"
done
command -v curl >/dev/null || die "curl is required"
case $ITEMS$SECS in *[!0-9]*) die "DURABILITY_ITEMS and DURABILITY_SECONDS must be whole numbers" ;; esac
[ "$SECS" -ge 60 ] || die "DURABILITY_SECONDS must be at least 60"
[ "$ITEMS" -ge $((BATCH * 100)) ] || die "DURABILITY_ITEMS must be at least $((BATCH * 100))"
case $MODE_Q in memory|durable) ;; *) die "DURABILITY_MODE must be memory or durable" ;; esac
QUEUE_BYTES=$(awk -v q="$QUEUE" 'BEGIN { n = q + 0; u = q; sub(/^[0-9.]+/, "", u)
    m = (u == "KiB") ? 1024 : (u == "MiB") ? 1048576 : (u == "GiB") ? 1073741824 : (u == "" ? 1 : -1)
    if (m < 0) print "bad"; else printf "%.0f", n * m }')
[ "$QUEUE_BYTES" != bad ] || die "DURABILITY_QUEUE must be like 8MiB"

D=$(mktemp -d "${TMPDIR:-/tmp}/spillway-durability.XXXXXX") || exit 1
mkdir -p "$OUT" || exit 1
trap 'sc_stop_all; [ "${DURABILITY_KEEP:-0}" = 1 ] || rm -rf "$D"' EXIT
trap 'exit 130' INT TERM

# ---- the mode ------------------------------------------------------------
# MODE_LINE: the queue.mode key for the config, empty when this build has no
# queue.mode (memory is then the only behaviour).
printf 'queue: { mode: %s }\n' "$MODE_Q" >"$D/mode.yaml"
if "$BIN/spillway" validate --config "$D/mode.yaml" >"$D/mode.out" 2>&1; then
    MODE_LINE="mode: $MODE_Q, "
elif [ "$MODE_Q" = durable ]; then
    cat "$D/mode.out" >&2
    die "queue.mode durable not supported by this build"
else
    MODE_LINE=""
fi

# ---- spillway --------------------------------------------------------------
# sw_config PORT: the config of every instance (PORT 0 for the first).
sw_config() {
    cat >"$D/spillway.yaml" <<EOF
receivers: { otlp: { http: { endpoint: 127.0.0.1:$1 } } }
queue: { ${MODE_LINE}max_bytes: $QUEUE, spill_threshold: 0.95 }
dlq:
  dir: $D/dlq
  segment_size: 8MiB
  max_size: 2GiB
  fsync: always
  replay: { rate: 4MiB, interleave: 500ms }
exporters:
  otlphttp:
    endpoint: http://$MOCK
    compression: none
    timeout: 5s
    max_in_flight: $IN_FLIGHT
    batch: { max_bytes: $BATCH_BYTES, timeout: 200ms }
    retry: { initial_interval: 100ms, max_interval: 1s, multiplier: 2, max_elapsed_time: 30m }
    circuit_breaker: { consecutive_failures: 5, ratio_429: 0.30, window: 10s, open_duration: 2s }
telemetry: { endpoint: 127.0.0.1:0, log: { level: warn, format: json } }
service: { shutdown_timeout: 5s }
EOF
}

# sw_up: starts instance SW_N+1 on the config; records its start.
sw_up() {
    sc_sw_start || die "spillway #$SW_N did not start (log: $D/spillway.$SW_N.log)"
    echo "$SW_PID" >"$D/sw.pid"
    echo "$SW_N $(now_ms)" >>"$D/starts"
}

# sw_down HOW (term|kill9|end): stops the current instance (end: SIGTERM
# at the end of the run); records how and when.
sw_down() {
    rm -f "$D/sw.pid"
    if [ "$1" = kill9 ]; then sc_sw_kill9; else sc_sw_term; fi
    echo "$SW_N $(now_ms) $1" >>"$D/ends"
}

restart() { sw_down "$1"; RESTARTS=$((RESTARTS + 1)); sw_up; }

# ---- sampler -----------------------------------------------------------------
# Every second: "t_ms rss_kib breaker dlq_bytes queue_items" of the current
# instance ("-" while none runs).
sampler() {
    while [ ! -e "$D/stop" ]; do
        _t=$(now_ms)
        _p=$(cat "$D/sw.pid" 2>/dev/null)
        _r=-
        [ -n "$_p" ] && _r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$_p/status" 2>/dev/null)
        set -- $(sc_metrics)
        echo "$_t ${_r:--} $1 $2 $3" >>"$D/samples"
        _w=$((_t + 1000 - $(now_ms)))
        [ "$_w" -gt 0 ] && sleep "$(awk -v w="$_w" 'BEGIN { printf "%.3f", w / 1000 }')"
    done
}

# ---- timeline ------------------------------------------------------------------
at_frac() { # FRACTION_PERMILLE: sleeps until T0 + that share of the window
    _w=$((T0 + SECS * $1 - $(now_ms)))
    [ "$_w" -gt 0 ] && sleep "$(awk -v w="$_w" 'BEGIN { printf "%.3f", w / 1000 }')"
    return 0
}
OUT_S=$((SECS * 40 / 1000)); [ "$OUT_S" -ge 5 ] || OUT_S=5
OUTAGES=0
outage() {
    at_frac "$1"
    sc_admin "/admin/outage?seconds=$OUT_S&mode=refuse"
    OUTAGES=$((OUTAGES + 1))
    sc_log "outage $OUTAGES: upstream refuses connections for ${OUT_S}s"
}

# kill_while_spilling: waits (until the outage ends) for the DLQ to grow
# between two readings, then kill -9; notes whether it was seen growing.
kill_while_spilling() {
    _end=$(($(now_ms) + OUT_S * 1000 / 2))
    _prev=$(set -- $(sc_metrics); echo "$2")
    _cur=$_prev
    SPILLING=no
    while [ "$(now_ms)" -lt "$_end" ]; do
        sleep 0.5
        _cur=$(set -- $(sc_metrics); echo "$2")
        case $_prev$_cur in *[!0-9]*) ;; *) [ "$_cur" -gt "$_prev" ] && [ "$_prev" -gt 0 ] && { SPILLING=yes; break; } ;; esac
        _prev=$_cur
    done
    sc_log "kill -9 while spilling (DLQ growing: $SPILLING, $_cur bytes)"
    restart kill9
}

# kill_while_live: kill -9 once the breaker is closed and the DLQ empty
# (waits up to a tenth of the window); notes what it saw.
live() { set -- $(sc_metrics); [ "$1" = 0 ] && [ "$2" = 0 ]; }
kill_while_live() {
    LIVE=no
    wait_every 0.25 $((SECS / 10)) live && LIVE=yes
    sc_log "kill -9 while delivering live traffic (breaker closed, DLQ empty: $LIVE)"
    restart kill9
}

# ---- run -------------------------------------------------------------------------
RATE=$(awk -v n="$ITEMS" -v s="$SECS" 'BEGIN { printf "%.3f", n / s }')
COUNT=$((ITEMS / BATCH))
sc_log "mode $MODE_Q: $ITEMS items in ${SECS}s ($RATE items/s), queue.max_bytes $QUEUE, 5 outages of ${OUT_S}s, 4 restarts"
T_START=$(now_ms)
sc_mock_start --keep 100000000 || exit 1
RESTARTS=0
: >"$D/starts"; : >"$D/ends"; : >"$D/samples"
sw_config 0
sw_up
PORT=${OTLP##*:}
sw_config "$PORT" # later instances take over the same address
sampler &
SAMPLER_PID=$!; SC_PIDS="$SC_PIDS $SAMPLER_PID"
T0=$(now_ms)
# --count keeps the item total exact; --duration bounds the window.
"$BIN/spillway-loadgen" --endpoint "http://$OTLP" --signal traces --rate "$RATE" --batch "$BATCH" \
    --count "$COUNT" --connections 4 --timeout 5 --seed 11 \
    --verify --verify-url "http://$ADMIN" --verify-wait 1800 --verify-settle $((OUT_S + 30)) \
    --verify-missing "$D/missing.txt" --json --quiet >"$D/lg.json" 2>"$D/lg.err" &
LG_PID=$!; SC_PIDS="$SC_PIDS $LG_PID"

outage 100
at_frac 200; sc_log "SIGTERM + restart (live traffic)"; restart term
outage 280
at_frac 310; kill_while_spilling
outage 450
at_frac 580; kill_while_live
outage 650
at_frac 670; sc_log "SIGTERM + restart during an outage"; restart term
outage 800
at_frac 1000
sc_log "send window over; waiting for delivery and the verification"
wait "$LG_PID"; LG_RC=$?; sc_forget_pid "$LG_PID"

# The DLQ must drain: wait (bounded) until /metrics shows it empty.
dlq_empty() { DLQ_END=$(set -- $(sc_metrics); echo "$2"); [ "$DLQ_END" = 0 ]; }
DLQ_END=-
wait_every 1 300 dlq_empty
: >"$D/stop"
wait "$SAMPLER_PID" 2>/dev/null; sc_forget_pid "$SAMPLER_PID"
sw_down end
"$BIN/spillway" dlq ls --dir "$D/dlq" >"$D/dlq_ls.txt" 2>&1
T_END=$(now_ms)
cp "$D/lg.json" "$OUT/loadgen.json" 2>/dev/null
cp "$D/samples" "$OUT/samples.tsv" 2>/dev/null
cat "$D"/spillway.*.log >"$OUT/spillway.log" 2>/dev/null

# ---- accounting ----------------------------------------------------------------
SENT=$(jnum items_sent "$D/lg.json"); ACKED=$(jnum items_accepted "$D/lg.json")
CONNERR=$(jnum connection_errors "$D/lg.json"); REFUSED=$(jnum requests_refused "$D/lg.json")
RECEIVED=$(jnum received "$D/lg.json"); MISSING=$(jnum missing "$D/lg.json")
DUP=$(jnum duplicated "$D/lg.json"); UNEXP=$(jnum unexpected "$D/lg.json")
BYTES=$(jnum bytes_sent "$D/lg.json")
DELIVERED=-
[ -n "$RECEIVED" ] && [ -n "$DUP" ] && [ -n "$UNEXP" ] && DELIVERED=$((RECEIVED - DUP - UNEXP))
# Bound per kill, in items: (queue.max_bytes + in-flight batches) / bytes per item.
BOUND=$(awk -v q="$QUEUE_BYTES" -v f="$IN_FLIGHT" -v b="$BATCH_BYTES" -v by="${BYTES:-0}" -v s="${SENT:-0}" \
    'BEGIN { if (by <= 0 || s <= 0) print 0; else printf "%d", (q + f * b) / (by / s) }')
[ "$MODE_Q" = durable ] && BOUND=0
# Charge each missing request to the instance that acknowledged it.
awk -v bound="$BOUND" '
    FILENAME == ARGV[1] { st[$1] = $2; next }
    FILENAME == ARGV[2] { en[$1] = $2; how[$1] = $3; n = $1 > n ? $1 : n; next }
    {
        t = $3; k = $4; inst = 0
        for (i = 1; i <= n; i++) if (t >= st[i] && t <= en[i] + 1000) inst = i
        if (inst && how[inst] == "kill9") byk[inst] += k; else other += k
    }
    END {
        over = 0; list = ""
        for (i = 1; i <= n; i++) if (how[i] == "kill9") {
            tot += byk[i]; list = list sprintf("%s#%d:%d", list == "" ? "" : ",", i, byk[i])
            if (byk[i] > bound) over = 1
        }
        printf "%d %d %d %s\n", tot, other, over, list == "" ? "-" : list
    }' "$D/starts" "$D/ends" "$D/missing.txt" 2>/dev/null >"$D/charge" || echo "0 0 0 -" >"$D/charge"
[ -e "$D/missing.txt" ] || echo "0 0 0 -" >"$D/charge"
read -r LOST_KILL LOST_OTHER OVER PER_KILL <"$D/charge"
PEAK_RSS_S=$(awk '$2 != "-" && $2 + 0 > m { m = $2 + 0 } END { printf "%d", m }' "$D/samples")
[ "$PEAK_RSS_S" -gt "$PEAK_RSS" ] && PEAK_RSS=$PEAK_RSS_S
PEAK_DLQ=$(awk '$4 != "-" && $4 + 0 > m { m = $4 + 0 } END { printf "%d", m }' "$D/samples")
WALL=$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", (b - a) / 1000 }')
KILLS=$(grep -c ' kill9$' "$D/ends"); TERMS=$(grep -c ' term$' "$D/ends")

FAIL=""
[ -n "$MISSING" ] || FAIL="$FAIL verify-not-done(loadgen-exit-$LG_RC)"
[ "${ACKED:-0}" -gt 0 ] || FAIL="$FAIL nothing-acked"
[ "$LOST_OTHER" = 0 ] || FAIL="$FAIL lost-outside-kills=$LOST_OTHER"
[ "$OVER" = 0 ] || FAIL="$FAIL kill-loss-over-bound"
[ "$MODE_Q" = memory ] || [ "${MISSING:-1}" = 0 ] || FAIL="$FAIL lost=$MISSING"
[ "$DLQ_END" = 0 ] || FAIL="$FAIL dlq-not-empty=$DLQ_END"
[ "$OUTAGES" -ge 5 ] || FAIL="$FAIL outages=$OUTAGES"
[ "$KILLS" -ge 2 ] && [ "$TERMS" -ge 1 ] || FAIL="$FAIL restarts"
[ "${SPILLING:-no}" = yes ] || FAIL="$FAIL first-kill-not-while-spilling"
[ "${LIVE:-no}" = yes ] || FAIL="$FAIL second-kill-not-while-live"
[ "$SW_STATUS" = 0 ] || FAIL="$FAIL spillway-exit=$SW_STATUS"
VERDICT=PASS; [ -z "$FAIL" ] || VERDICT="FAIL:$FAIL"

{
    echo "# spillway durability report ($MODE_Q mode)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host: $(uname -n), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- $ITEMS items (24 h at $((ITEMS / 24)) items/h) in ${SECS} s: $RATE spans/s, $BATCH per request, 4 connections; queue.max_bytes $QUEUE$( [ -n "$MODE_LINE" ] || echo ' (this build has no queue.mode key: memory)' ), fsync always"
    echo "- events (ms since start of load): $(awk -v t0="$T0" '{ printf "%s#%d at %d; ", $3, $1, $2 - t0 }' "$D/ends")"
    echo
    echo "| | value |"
    echo "|---|---|"
    echo "| items sent | ${SENT:-?} |"
    echo "| items acknowledged (2xx) | ${ACKED:-?} |"
    echo "| requests refused (429/503) / connection errors (restarts) | ${REFUSED:-?} / ${CONNERR:-?} |"
    echo "| items delivered (unique acked items, content-checked at the mock) | $DELIVERED |"
    echo "| duplicated | ${DUP:-?} |"
    echo "| unexpected (delivered, never acked: in flight at a kill or restart) | ${UNEXP:-?} |"
    echo "| **lost** (acked, never delivered) | ${MISSING:-?} |"
    echo "| lost by the two kill -9 (per kill) | $LOST_KILL ($PER_KILL) |"
    echo "| documented bound per kill -9 (items) | $BOUND |"
    echo "| lost outside the kills | $LOST_OTHER |"
    echo "| restarts (SIGTERM / kill -9) | $RESTARTS ($TERMS / $KILLS) — kill while spilling: ${SPILLING:-no}, while live: ${LIVE:-no} |"
    echo "| upstream outages | $OUTAGES × ${OUT_S} s |"
    echo "| peak RSS | $PEAK_RSS KiB |"
    echo "| peak DLQ size | $PEAK_DLQ bytes |"
    echo "| DLQ at the end | $DLQ_END bytes |"
    echo "| wall time | $WALL s |"
    echo
    echo "verdict: $VERDICT"
} >"$OUT/report.md"
[ -s "$D/missing.txt" ] && cp "$D/missing.txt" "$OUT/missing.txt"
cat "$OUT/report.md"
echo "durability: report in $OUT/report.md" >&2
[ "$VERDICT" = PASS ]
