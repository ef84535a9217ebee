#!/bin/sh
# run.sh — upstream fault scenarios with a zero-loss verdict.
#
#   testing/scenarios/run.sh [--short|--full] [--tap] [--jobs N] [SCENARIO...]
#   testing/scenarios/run.sh --list
#
# Each scenario starts spillway-mockup (with an admin port that stays
# reachable while the export port refuses connections), spillway (a
# generated config in a temp dir: ephemeral ports from ready files, the DLQ
# in the temp dir, short retry intervals and circuit breaker open_duration)
# and spillway-loadgen on 127.0.0.1 for a bounded time, injects its fault,
# waits for the DLQ to drain and prints one verdict line:
#
#   scenario=NAME sent=N received=N duplicated=N lost=N drain_s=S
#   peak_rss_kib=N peak_dlq_bytes=N requests_while_open=N probes=N [breaker=..]
#   extra=N [note=..] verdict=PASS|FAIL
#
# sent: items spillway accepted (2xx, load generator --json, all phases);
# received: distinct items at the mock (lines of GET /received/traces,
# sort -u); duplicated: received lines minus distinct; lost: sent minus
# received (PASS iff 0); extra: distinct items received beyond sent (items
# stored but not acknowledged when spillway was killed). See README.md.
#
# --short: every scenario under 30 s (make test); --full: the lengths of
# issue 6 (make scenarios), followed by the verdict table. --tap adds
# "PASS: scenarios/NAME" / "FAIL: scenarios/NAME: ..." lines for
# testing/run_tests.sh. --jobs N runs N scenarios at once (default 1).
# Exit status 0 when every scenario passed.
#
# Environment: SW_BIN_DIR or BUILD (binaries, default build), SCEN_RATE
# (spans/s, default 2000), SCEN_DRAIN_SECONDS (drain deadline),
# SCEN_KEEP=1 (keep the work directory and print its path), SCEN_LOG_LEVEL
# (spillway's log level, default info).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF=$ROOT/testing/scenarios/run.sh
BIN=${SW_BIN_DIR:-${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
RATE=${SCEN_RATE:-2000}
. "$ROOT/testing/scenarios/lib.sh"
. "$ROOT/testing/scenarios/scenarios.sh"

# ---- one scenario (child process) ------------------------------------------

# run.sh --child NAME MODE DIR: runs one scenario; its verdict goes to
# DIR/verdict. Stops every process it started on exit or interruption.
run_child() {
    NAME=$1; MODE=$2; D=$3
    trap 'sc_stop_all' EXIT
    trap 'exit 130' INT TERM
    sc_timeline
    fn=scen_$(echo "$NAME" | tr - _)
    sc_log "start ($MODE)"
    "$fn" || sc_log "scenario could not run"
    sc_stop_all
    [ -s "$D/verdict" ] && cat "$D/verdict" >&2
}

# ---- driver ----------------------------------------------------------------

usage() {
    sed -n '4,5p' "$SELF" | sed 's/^# *//' >&2
    exit 2
}

CHILDREN=""
stop_children() {
    for _c in $CHILDREN; do kill -TERM "$_c" 2>/dev/null; done
    for _c in $CHILDREN; do wait "$_c" 2>/dev/null; done
}

# report NAME: prints the scenario's verdict line (and the TAP-style case
# lines); returns 1 when it failed.
report() {
    _d=$WORK/$1
    if [ -s "$_d/verdict" ]; then
        _line=$(cat "$_d/verdict")
    else
        _line="scenario=$1 verdict=FAIL note=no_verdict(see_log)"
    fi
    echo "$_line"
    echo "$_line" >>"$WORK/verdicts"
    _ok=0
    case $_line in *verdict=PASS*) ;; *) _ok=1 ;; esac
    if [ "$TAP" = 1 ]; then
        if [ "$_ok" = 0 ]; then echo "PASS: scenarios/$1"
        else
            echo "FAIL: scenarios/$1: $_line"
            echo "---- log of $1 ----"; tail -n 40 "$_d/run.log" 2>/dev/null
            for _f in "$_d"/spillway.*.log; do
                [ -f "$_f" ] && { echo "---- $_f (last lines) ----"; tail -n 15 "$_f"; }
            done
        fi
        case $_line in
            *breaker=ok*) echo "PASS: scenarios/$1/breaker" ;;
            *breaker=*) echo "FAIL: scenarios/$1/breaker: $(echo "$_line" | sed 's/.*\(requests_while_open=[^ ]* probes=[^ ]* breaker=[^ ]*\).*/\1/')"; _ok=1 ;;
        esac
    fi
    return "$_ok"
}

table() {
    echo
    awk 'BEGIN { printf "%-22s %9s %9s %5s %5s %8s %9s %12s %6s %6s %s\n", "scenario", "sent", "received",
                 "dup", "lost", "drain_s", "rss_kib", "peak_dlq_B", "w_open", "probes", "verdict" }
        {
            delete f
            for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
            printf "%-22s %9s %9s %5s %5s %8s %9s %12s %6s %6s %s\n", f["scenario"], f["sent"], f["received"],
                f["duplicated"], f["lost"], f["drain_s"], f["peak_rss_kib"], f["peak_dlq_bytes"],
                f["requests_while_open"], f["probes"], f["verdict"]
        }' "$WORK/verdicts"
}

main() {
    MODE=short; TAP=0; JOBS=1; LIST=""
    while [ $# -gt 0 ]; do
        case $1 in
            --short) MODE=short ;;
            --full) MODE=full ;;
            --tap) TAP=1 ;;
            --jobs) shift; JOBS=${1:-1} ;;
            --list) echo "$SCENARIOS" | tr ' ' '\n'; exit 0 ;;
            --child) shift; run_child "$@"; exit 0 ;;
            -h|--help) sed -n '2,32p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
            -*) usage ;;
            *) case " $SCENARIOS " in *" $1 "*) LIST="$LIST $1" ;; *) echo "run.sh: unknown scenario $1" >&2; exit 2 ;; esac ;;
        esac
        shift
    done
    case $JOBS in ""|*[!0-9]*|0) usage ;; esac
    [ -n "$LIST" ] || LIST=$SCENARIOS
    for b in spillway spillway-mockup spillway-loadgen; do
        [ -x "$BIN/$b" ] || { echo "run.sh: missing $BIN/$b (run make first)" >&2; exit 1; }
    done
    command -v curl >/dev/null || { echo "run.sh: curl is required" >&2; exit 1; }
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/spillway-scen.XXXXXX") || exit 1
    trap 'stop_children; [ "${SCEN_KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
    : >"$WORK/verdicts"
    failed=0
    set -- $LIST
    while [ $# -gt 0 ]; do
        batch=""; CHILDREN=""; n=0
        while [ $# -gt 0 ] && [ "$n" -lt "$JOBS" ]; do
            mkdir -p "$WORK/$1"
            sh "$SELF" --child "$1" "$MODE" "$WORK/$1" >/dev/null 2>"$WORK/$1/run.log" &
            CHILDREN="$CHILDREN $!"
            [ "$JOBS" = 1 ] && [ "$TAP" = 0 ] && tail -n +1 -f --pid="$!" "$WORK/$1/run.log" >&2
            batch="$batch $1"; n=$((n + 1)); shift
        done
        for c in $CHILDREN; do wait "$c"; done
        CHILDREN=""
        for s in $batch; do report "$s" || failed=$((failed + 1)); done
    done
    [ "$MODE" = full ] || [ "$TAP" = 0 ] && table
    [ "${SCEN_KEEP:-0}" = 1 ] && echo "run.sh: work directory kept: $WORK" >&2
    [ "$failed" -eq 0 ]
}

main "$@"
