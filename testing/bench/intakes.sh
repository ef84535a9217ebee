# intakes.sh — the parts of run_bench.sh for the intakes and modes beside
# the OTLP/HTTP pass-through (sourced after lib.sh and procs.sh):
#
#   (f) OTLP/gRPC next to OTLP/HTTP: spillway with both receivers on; per
#       protocol, RATE spans/s on CONNS connections (CPU %, peak RSS, client
#       P99) and closed loops on 1 and on 16 connections (spans/s accepted,
#       lost), BATCH spans per message, upstream compression none.
#   (g) filelog: FL_LINES docker json-file lines with 200-byte bodies read
#       from the beginning (lines/s wall and per CPU-second of spillway);
#       FL_FILES files each written at 100 lines/s for FL_SECONDS (CPU %,
#       peak RSS, file write -> counted upstream P50/P99, lost).
#   (h) queue.mode memory vs durable (fsync always, batch): RATE spans/s
#       (CPU %, peak RSS, client P99) and a closed loop on CLOSED_CONNS
#       connections (spans/s accepted and forwarded, lost).
#
# Runs of the variants being compared alternate (run 1 of each, then run 2
# of each, ...), so that a slow phase of a shared machine hits all of them.

# ---- (f) OTLP/gRPC beside OTLP/HTTP ----------------------------------

# proto_run PROTO KIND RUN: KIND steady | c1 | c16; appends to proto.tsv:
# proto kind run cpu% rss_kib p50 p99 accepted delivered lost refused errors accepted/s forwarded/s
proto_run() {
    start_mockup
    SW_GRPC=1; start_spillway none; SW_GRPC=0; LG_PROTO=$1
    case $2 in
    steady) load "$RATE" "$CONNS" "$SECS" "$((200 + $3))" ;;
    c1) load 0 1 "$CLOSED_SECS" "$((210 + $3))" ;;
    c16) load 0 16 "$CLOSED_SECS" "$((220 + $3))" ;;
    esac
    LG_PROTO=http
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    lost=$((acc > DELIVERED ? acc - DELIVERED : 0))
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$1" "$2" "$3" "$SW_CPU" "$rss" \
        "$(jnum p50 "$LG")" "$(jnum p99 "$LG")" "$acc" "$DELIVERED" "$lost" \
        "$(jnum requests_refused "$LG")" "$(lg_errors)" "$(per_s "$acc")" \
        "$(per_s "$((acc > lost ? acc - lost : 0))")" >>"$WORK/proto.tsv"
    log "$1 $2 run $3: cpu ${SW_CPU}% rss ${rss} KiB p99 $(jnum p99 "$LG") ms accepted $(per_s "$acc")/s lost $lost"
}

bench_protocols() {
    : >"$WORK/proto.tsv"
    log "OTLP/HTTP vs OTLP/gRPC: $RATE spans/s (${SECS}s) and closed loops on 1 and 16 connections (${CLOSED_SECS}s), $RUNS runs"
    r=1
    while [ "$r" -le "$RUNS" ]; do
        for k in steady c1 c16; do
            for p in http grpc; do proto_run "$p" "$k" "$r"; done
        done
        r=$((r + 1))
    done
}

# ---- (g) filelog ------------------------------------------------------

# fl_gen FILE FROM TO: docker json-file lines with 200-byte bodies.
fl_gen() {
    awk -v from="$2" -v to="$3" 'BEGIN {
        pad = sprintf("%190s", ""); gsub(/ /, "x", pad)
        for (i = from; i < to; i++)
            printf "{\"log\":\"%08d %s\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00.%09dZ\"}\n", i, substr(pad, 1, 191), i
    }' >>"$1"
}

# fl_throughput RUN: FL_LINES lines from one file; appends to fl_tput.tsv:
# run lines delivered wall_s lines/s cpu_s lines_per_cpu_s rss_kib
fl_throughput() {
    rm -rf "$WORK/fl"; mkdir -p "$WORK/fl"
    cp "$WORK/fl-src.log" "$WORK/fl/big.log"
    start_mockup
    _t0=$(now_ns)
    SW_FILELOG="$WORK/fl/*.log"; start_spillway none; SW_FILELOG=""
    DRAIN_POLL=0.02; drain "$FL_LINES" logs; DRAIN_POLL=0.2
    _t1=$(now_ns)
    _ticks=$(cpu_ticks "$SW_PID"); rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    awk -v r="$1" -v n="$FL_LINES" -v d="$DELIVERED" -v ns=$((_t1 - _t0)) -v t="$_ticks" -v hz="$CLK_TCK" -v rss="$rss" 'BEGIN {
        c = t / hz
        printf "%s %d %d %.3f %.0f %.3f %.0f %d\n", r, n, d, ns / 1e9, d / (ns / 1e9), c, (c > 0) ? d / c : 0, rss }' >>"$WORK/fl_tput.tsv"
    log "filelog throughput run $1: $(tail -n 1 "$WORK/fl_tput.tsv")"
}

# fl_poll PORT OUT: every ~10 ms, "ns count" of the log records the mock
# upstream counted (ns taken after the answer: an upper bound).
fl_poll() {
    start_bg "$2" sh -c 'while :; do
        c=$(curl -s --max-time 2 "http://127.0.0.1:$1/stats" | sed -n "s/.*\"items\":{[^}]*\"logs\":\([0-9]*\).*/\1/p")
        echo "$(date +%s%N) ${c:-0}"; sleep 0.01; done' fl_poll "$1"
    POLL_PID=$LAST_PID
}

# fl_steady RUN: FL_FILES files, each written at 100 lines/s (200-byte
# lines) for FL_SECONDS, about every 100 ms; after each write the time and
# the lines written so far go to ticks.txt, and a write's latency is the
# time until the upstream had counted that many lines (fl_poll). CPU % is
# over the writing window. Appends to fl_steady.tsv:
# run files lines_written delivered lost offered/s cpu% rss_kib lat_p50_ms lat_p99_ms lat_max_ms ticks
fl_steady() {
    rm -rf "$WORK/fl"; mkdir -p "$WORK/fl"
    # the files exist (empty) before spillway starts, so the latency is that of
    # tailing, not of discovering new files (the glob is expanded every poll_interval)
    _f=0; while [ "$_f" -lt "$FL_FILES" ]; do : >"$WORK/fl/f$_f.log"; _f=$((_f + 1)); done
    start_mockup
    SW_FILELOG="$WORK/fl/*.log"; start_spillway none; SW_FILELOG=""
    : >"$WORK/ticks.txt"
    fl_poll "$MOCK_PORT" "$WORK/poll.txt"
    # Each pass writes, to every file, the lines due by now at 100 lines/s
    # (so a slow pass writes more, and the rate holds), then notes the time
    # and the lines written so far in ticks.txt.
    _per=$((FL_SECONDS * 100)); _done=0; _t0=$(now_ns); _c0=$(cpu_ticks "$SW_PID")
    while [ "$_done" -lt "$_per" ]; do
        _due=$(( ($(now_ns) - _t0) / 10000000 + 1 )); [ "$_due" -gt "$_per" ] && _due=$_per
        if [ "$_due" -gt "$_done" ]; then
            awk -v dir="$WORK/fl" -v files="$FL_FILES" -v from="$_done" -v to="$_due" 'BEGIN {
                pad = sprintf("%186s", ""); gsub(/ /, "y", pad)
                for (f = 0; f < files; f++) { out = dir "/f" f ".log"
                    for (i = from; i < to; i++)
                        printf "{\"log\":\"F%03d %08d %s\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00Z\"}\n", f, i, pad >> out
                    close(out) } }'
            _done=$_due
            echo "$(now_ns) $((_done * FL_FILES))" >>"$WORK/ticks.txt"
        fi
        sleep 0.1
    done
    _t1=$(now_ns); _c1=$(cpu_ticks "$SW_PID")
    want=$((_per * FL_FILES))
    _tl=$(tail -n 1 "$WORK/ticks.txt" | cut -d" " -f1)  # lines/s written: up to the last write
    drain "$want" logs
    sleep 0.05
    stop_pid "$POLL_PID"
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    lat=$(awk 'NR == FNR { pt[++np] = $1; pc[np] = $2; next }
        { t = $1; c = $2; while (i < np && (pt[i + 1] < t || pc[i + 1] < c)) i++
          if (i < np) print (pt[i + 1] - t) / 1e6 }' "$WORK/poll.txt" "$WORK/ticks.txt" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "0 0 0 0"; exit }
            i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999)
            printf "%.1f %.1f %.1f %d\n", v[i50], v[i99], v[NR], NR }')
    awk -v r="$1" -v f="$FL_FILES" -v w="$want" -v d="$DELIVERED" -v ns=$((_tl - _t0)) \
        -v cpu="$(cpu_pct $((_c1 - _c0)) $((_t1 - _t0)))" -v rss="$rss" -v lat="$lat" 'BEGIN {
        printf "%s %d %d %d %d %.0f %s %d %s\n", r, f, w, d, (w > d) ? w - d : 0, w / (ns / 1e9), cpu, rss, lat }' >>"$WORK/fl_steady.tsv"
    log "filelog steady run $1: $(tail -n 1 "$WORK/fl_steady.tsv")"
}

bench_filelog() {
    : >"$WORK/fl_tput.tsv"; : >"$WORK/fl_steady.tsv"
    log "filelog: $FL_LINES lines of 200 bytes from one file; $FL_FILES files x 100 lines/s for ${FL_SECONDS}s; $RUNS runs"
    rm -f "$WORK/fl-src.log"; fl_gen "$WORK/fl-src.log" 0 "$FL_LINES"
    r=1
    while [ "$r" -le "$RUNS" ]; do fl_throughput "$r"; fl_steady "$r"; r=$((r + 1)); done
    rm -rf "$WORK/fl" "$WORK/fl-src.log"
}

# ---- (h) memory vs durable --------------------------------------------

# mode_run MODE FSYNC KIND RUN: KIND steady | closed; appends to modes.tsv:
# variant kind run cpu% rss_kib p50 p99 accepted delivered lost refused errors accepted/s forwarded/s
mode_run() {
    start_mockup
    SW_QUEUE_MODE=$1; SW_FSYNC=$2; start_spillway none; SW_QUEUE_MODE=""; SW_FSYNC=""
    if [ "$3" = steady ]; then load "$RATE" "$CONNS" "$SECS" "$((300 + $4))"
    else load 0 "$CLOSED_CONNS" "$CLOSED_SECS" "$((310 + $4))"; fi
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    lost=$((acc > DELIVERED ? acc - DELIVERED : 0))
    v=$1; [ "$1" = durable ] && v=durable-$2
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$v" "$3" "$4" "$SW_CPU" "$rss" \
        "$(jnum p50 "$LG")" "$(jnum p99 "$LG")" "$acc" "$DELIVERED" "$lost" \
        "$(jnum requests_refused "$LG")" "$(lg_errors)" "$(per_s "$acc")" \
        "$(per_s "$((acc > lost ? acc - lost : 0))")" >>"$WORK/modes.tsv"
    log "$v $3 run $4: cpu ${SW_CPU}% rss ${rss} KiB p99 $(jnum p99 "$LG") ms accepted $(per_s "$acc")/s lost $lost"
}

bench_modes() {
    : >"$WORK/modes.tsv"
    log "memory vs durable: $RATE spans/s (${SECS}s) and a closed loop on $CLOSED_CONNS connections (${CLOSED_SECS}s), $RUNS runs"
    r=1
    while [ "$r" -le "$RUNS" ]; do
        for k in steady closed; do
            mode_run memory "" "$k" "$r"
            mode_run durable always "$k" "$r"
            mode_run durable batch "$k" "$r"
        done
        r=$((r + 1))
    done
}
