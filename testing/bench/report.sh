# report.sh — writes bench/report.md and bench/report.json from the tables
# run_bench.sh collected in $WORK (sourced; POSIX sh + awk).
#
# steady.tsv columns: comp run cpu rss_kib p50 p99 ack50 ack95 ack99 sent
#   accepted delivered lost refused errors late mock_cpu lg_cpu cpu_s_per_M
# ceiling.tsv columns: rate achieved accepted delivered lost refused errors
#   late unsent sw_cpu mock_cpu lg_cpu p99 spilled pass rss_kib cpu_s_per_M
# scale.tsv columns: rate run cpu rss_kib accepted delivered lost cpu_s_per_M
# micro.tsv rows: name value (one per run)

cpu_model() {
    sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1
}

mem_total_gib() { awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }

# steady_stats COMP COLUMN [SCALE]: "median min max" of a steady.tsv column
# for one compression, each value multiplied by SCALE.
steady_stats() {
    awk -v c="$1" -v k="$2" -v s="${3:-1}" '$1 == c { printf "%.3f\n", $k * s }' "$WORK/steady.tsv" | stats
}

# md_row LABEL "median min max" TARGET [le|ge LIMIT]: a table row; with a
# limit, the last column says whether the median meets it.
md_row() {
    echo "$2" | awk -v l="$1" -v t="$3" -v op="${4:-}" -v lim="${5:-0}" '{
        met = (op == "le") ? (($1 <= lim) ? "yes" : "**no**") : (op == "ge") ? (($1 >= lim) ? "yes" : "**no**") : ""
        printf "| %s | %s | %s | %s | %s | %s |\n", l, $1, $2, $3, t, met }'
}

# micro_stats NAME: "median min max" of a microbenchmark figure ("" if none).
micro_stats() {
    awk -v n="$1" '$1 == n { print $2 }' "$WORK/micro.tsv" | { _v=$(cat); [ -n "$_v" ] && echo "$_v" | stats; }
}

# scale_stats RATE COLUMN [SCALE]: "median min max" of a scale.tsv column.
scale_stats() {
    awk -v r="$1" -v k="$2" -v s="${3:-1}" '$1 == r { printf "%.3f\n", $k * s }' "$WORK/scale.tsv" | stats
}

# Microbenchmarks: name, label, target text, op, limit.
MICRO_ROWS='apq_ns|APQ push+pop, one thread (ns/item)|≤ 100 ns|le|100
card_existing_ns|cardinality limiter, known series, table 80 % full (ns/point)|≤ 200 ns|le|200
card_new_ns|cardinality limiter, new series, empty table (ns/point)|≤ 200 ns|le|200
classify_ns|priority classify, 1 resource (ns/span)|reported||
prio_items_ns|priority classify + split, 10 resources, 3 classes (ns/span)|reported||
validate_ns|decode: ow_validate wire walk (ns/span)|reported||
unpack_ns|decode: protobuf-c unpack + free, for scale (ns/span)|reported||
dlq_spill_mibs|DLQ spill, fsync always, group commit (MiB/s)|≥ 200 MiB/s|ge|200
dlq_read_mibs|DLQ read + verify (MiB/s)|reported||
dlq_zstd_ratio|DLQ zstd-3 ratio (request bytes / bytes on disk)|reported||
dlq_startup_ms|DLQ start-up over 1 GiB (ms)|reported||'

write_md_micro() {
    echo "$MICRO_ROWS" | while IFS='|' read -r n l t op lim; do
        st=$(micro_stats "$n")
        if [ -n "$st" ]; then md_row "$l" "$st" "$t" "$op" "$lim"; else echo "| $l | not run | | | $t | |"; fi
    done
}

# Scaling rows: 1k and 100k from scale.tsv, 10k from the steady runs
# (upstream none), and the ceiling step.
write_md_scale() {
    echo "| offered spans/s | CPU % of one core (median / min / max) | peak RSS MiB (median / min / max) | CPU-s per million spans (median / min / max) | lost |"
    echo "|---|---|---|---|---|"
    for r in $(echo "$SCALE_RATES $RATE" | tr ' ' '\n' | sort -n | uniq); do
        if [ "$r" = "$RATE" ] && awk '$1 == "none"' "$WORK/steady.tsv" | grep -q .; then
            c=$(steady_stats none 3); m=$(steady_stats none 4 0.0009765625); k=$(steady_stats none 19)
            l=$(awk '$1 == "none" { s += $13 } END { print s + 0 }' "$WORK/steady.tsv")
        elif awk -v r="$r" '$1 == r' "$WORK/scale.tsv" | grep -q .; then
            c=$(scale_stats "$r" 3); m=$(scale_stats "$r" 4 0.0009765625); k=$(scale_stats "$r" 8)
            l=$(awk -v r="$r" '$1 == r { s += $7 } END { print s + 0 }' "$WORK/scale.tsv")
        else continue; fi
        echo "| $r | $(echo "$c" | tr ' ' '/') | $(echo "$m" | tr ' ' '/') | $(echo "$k" | tr ' ' '/') | $l |"
    done
    if [ -s "$WORK/ceiling.tsv" ] && [ "$(ceiling_max)" -gt 0 ]; then
        awk -v m="$(ceiling_max)" '$1 == m { printf "| %s (ceiling, 1 run) | %s | %.1f | %s | %s |\n", $1, $10, $16 / 1024, $17, $5 }' "$WORK/ceiling.tsv"
    fi
}

ceiling_max() {
    awk '$15 == "yes" && $1 > m { m = $1 } END { print m + 0 }' "$WORK/ceiling.tsv"
}

target_cpu() {
    case $1 in none) echo "≤ 1 %" ;; zstd) echo "≤ 2 %" ;; *) echo "reported" ;; esac
}

write_md_summary() {
    echo "| Figure | Median | Min | Max | Target (DESIGN.md) | Met |"
    echo "|---|---|---|---|---|---|"
    for c in $COMPRESSIONS; do
        case $c in none) op=le; lim=1 ;; zstd) op=le; lim=2 ;; *) op=""; lim=0 ;; esac
        md_row "spillway CPU % of one core, $RATE spans/s, upstream $c" "$(steady_stats "$c" 3)" "$(target_cpu "$c")" "$op" "$lim"
    done
    for c in $COMPRESSIONS; do
        md_row "spillway peak RSS (MiB), upstream $c" "$(steady_stats "$c" 4 0.0009765625)" "≤ 16 MiB" le 16
    done
    for c in $COMPRESSIONS; do
        md_row "spillway CPU-seconds per million spans, upstream $c" "$(steady_stats "$c" 19)" "reported"
    done
    for c in $COMPRESSIONS; do
        md_row "client P50 latency (ms), upstream $c" "$(steady_stats "$c" 5)" "—"
        md_row "client P99 latency (ms), upstream $c" "$(steady_stats "$c" 6)" "≤ 5 ms" le 5
    done
    for c in $COMPRESSIONS; do
        md_row "receive→ack P50 (ms), upstream $c" "$(steady_stats "$c" 7)" "—"
        md_row "receive→ack P95 (ms), upstream $c" "$(steady_stats "$c" 8)" "—"
        md_row "receive→ack P99 (ms), upstream $c" "$(steady_stats "$c" 9)" "≤ 10 ms" le 10
    done
    lost=$(awk '{ s += $13 } END { print s + 0 }' "$WORK/steady.tsv")
    echo "| spans lost, all steady runs (total) | $lost | | | 0 | $([ "$lost" = 0 ] && echo yes || echo '**no**') |"
    if [ -s "$WORK/ceiling.tsv" ]; then
        cm=$(ceiling_max)
        echo "| pass-through ceiling (spans/s, nothing refused or lost; 1 run per step) | $cm | | | ≥ 500,000 | $([ "$cm" -ge 500000 ] && echo yes || echo '**no**') |"
    fi
    [ -s "$WORK/micro.tsv" ] && write_md_micro
    [ -n "$BUILD_S" ] && echo "| clean build, \`make\` (s, 1 run) | $BUILD_S | | | < 90 s | $(awk -v b="$BUILD_S" 'BEGIN { print (b < 90) ? "yes" : "**no**" }') |"
    [ -n "$BUILD_J_S" ] && echo "| clean build, \`make -j$(nproc)\` (s, 1 run) | $BUILD_J_S | | | — | |"
    # shellcheck disable=SC2086 # word splitting intended
    set -- $SIZES
    while [ $# -ge 3 ]; do
        echo "| size of build/$1 (bytes, as built / stripped) | $2 / $3 | | | — | |"
        shift 3
    done
}

write_md() {
    cat <<EOF
# spillway benchmark report

- Mode: $( [ "$QUICK" = 1 ] && echo "BENCH_QUICK=1 (short runs: indicative, noisier than the default)" || echo "default")
- Machine: $(nproc) cores, $(cpu_model), $(mem_total_gib) GiB RAM, Linux $(uname -r); $(date -u +%Y-%m-%dT%H:%M:%SZ)
- spillway, the mock upstream (\`spillway-mockup --fast\`) and the load generator run on
  the same machine and share its $(nproc) cores; all traffic is on 127.0.0.1.
- Steady: $RATE spans/s as $BATCH-span OTLP/HTTP protobuf requests on $CONNS connections,
  ${SECS} s per run, $RUNS runs per upstream compression; fresh processes every run.
  CPU is spillway's utime+stime over the run, as % of one core; peak RSS is VmHWM.
  Client latency is the load generator's (from each request's scheduled send time);
  receive→ack comes from spillway_pipeline_latency_seconds, interpolated inside buckets.
- Scaling: $SCALE_SECS s runs at $SCALE_RATES spans/s ($RUNS each, $SCALE_CONNS connections),
  plus the steady runs at $RATE and the ceiling step. CPU-seconds per million spans =
  spillway's utime+stime over the run / spans accepted.
- Microbenchmarks: build/bench/micro_*, $MICRO_RUNS runs each$( [ "$QUICK" = 1 ] && echo " (quick: small iteration counts; micro_dlq stopped before its 1 GiB start-up test)").
- Ceiling: offered rate stepped up, ${STEP_SECS} s per step, $STEP_CONNS connections,
  upstream compression none; a step passes when nothing was refused, failed, left
  unsent or lost and the achieved rate is within 3 % of the offered one.
$( [ -n "$BATCH_TIMEOUT" ] && echo "- Exporter batch timeout overridden: $BATCH_TIMEOUT." )

## Summary

$(write_md_summary)

## Scaling with rate (upstream compression none)

$(write_md_scale)

## Steady runs

| upstream | run | CPU % | peak RSS KiB | client p50 ms | client p99 ms | ack p50 ms | ack p95 ms | ack p99 ms | sent | accepted | delivered | lost | refused | errors | late | mockup CPU % | loadgen CPU % | CPU-s per M spans |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$WORK/steady.tsv")
EOF
    if [ -s "$WORK/ceiling.tsv" ]; then
        cat <<EOF

## Ceiling steps

| offered spans/s | achieved | accepted | delivered | lost | refused | errors | late | unsent | spillway CPU % | mockup CPU % | loadgen CPU % | client p99 ms | spilled | pass | peak RSS KiB | CPU-s per M spans |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$WORK/ceiling.tsv")

The load generator and the mock upstream use part of the same cores; their CPU is
shown beside spillway's. A failing step ends the series.
EOF
    fi
}

# json_stats COMP COLUMN [SCALE]: {"median":..,"min":..,"max":..}
json_stats() {
    steady_stats "$@" | awk '{ printf "{\"median\":%s,\"min\":%s,\"max\":%s}", $1, $2, $3 }'
}

json_steady() {
    sep=""
    for c in $COMPRESSIONS; do
        printf '%s"%s":{"cpu_pct":%s,"peak_rss_mib":%s,"client_p50_ms":%s,"client_p99_ms":%s,' "$sep" "$c" \
            "$(json_stats "$c" 3)" "$(json_stats "$c" 4 0.0009765625)" "$(json_stats "$c" 5)" "$(json_stats "$c" 6)"
        printf '"ack_p50_ms":%s,"ack_p95_ms":%s,"ack_p99_ms":%s,"cpu_s_per_million":%s,"runs":[' \
            "$(json_stats "$c" 7)" "$(json_stats "$c" 8)" "$(json_stats "$c" 9)" "$(json_stats "$c" 19)"
        awk -v c="$c" 'BEGIN { s = "" } $1 == c {
            printf "%s{\"run\":%s,\"cpu_pct\":%s,\"peak_rss_kib\":%s,\"client_p50_ms\":%s,\"client_p99_ms\":%s,\"ack_p50_ms\":%s,\"ack_p95_ms\":%s,\"ack_p99_ms\":%s,\"sent\":%s,\"accepted\":%s,\"delivered\":%s,\"lost\":%s,\"refused\":%s,\"errors\":%s,\"late\":%s,\"mockup_cpu_pct\":%s,\"loadgen_cpu_pct\":%s,\"cpu_s_per_million\":%s}",
                s, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19; s = "," }' "$WORK/steady.tsv"
        printf ']}'
        sep=","
    done
}

json_ceiling() {
    printf '{"max_rate":%s,"step_seconds":%s,"connections":%s,"steps":[' "$(ceiling_max)" "$STEP_SECS" "$STEP_CONNS"
    awk 'BEGIN { s = "" } {
        printf "%s{\"offered\":%s,\"achieved\":%s,\"accepted\":%s,\"delivered\":%s,\"lost\":%s,\"refused\":%s,\"errors\":%s,\"late\":%s,\"unsent\":%s,\"cpu_pct\":%s,\"mockup_cpu_pct\":%s,\"loadgen_cpu_pct\":%s,\"client_p99_ms\":%s,\"spilled\":%s,\"pass\":%s,\"peak_rss_kib\":%s,\"cpu_s_per_million\":%s}",
            s, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ($15 == "yes") ? "true" : "false", $16 + 0, $17 + 0; s = "," }' "$WORK/ceiling.tsv"
    printf ']}'
}

json_micro() {
    sep=""
    echo "$MICRO_ROWS" | while IFS='|' read -r n l t op lim; do
        st=$(micro_stats "$n")
        [ -n "$st" ] || continue
        echo "$st" | awk -v n="$n" -v t="$t" -v s="$sep" '{ printf "%s\"%s\":{\"median\":%s,\"min\":%s,\"max\":%s,\"target\":\"%s\"}", s, n, $1, $2, $3, t }'
        sep=","
    done
}

json_scale() {
    sep=""
    for r in $SCALE_RATES; do
        awk -v r="$r" '$1 == r' "$WORK/scale.tsv" | grep -q . || continue
        printf '%s{"rate":%s,"cpu_pct":%s,"peak_rss_mib":%s,"cpu_s_per_million":%s}' "$sep" "$r" \
            "$(scale_stats "$r" 3 | awk '{ printf "{\"median\":%s,\"min\":%s,\"max\":%s}", $1, $2, $3 }')" \
            "$(scale_stats "$r" 4 0.0009765625 | awk '{ printf "{\"median\":%s,\"min\":%s,\"max\":%s}", $1, $2, $3 }')" \
            "$(scale_stats "$r" 8 | awk '{ printf "{\"median\":%s,\"min\":%s,\"max\":%s}", $1, $2, $3 }')"
        sep=","
    done
}

json_build() {
    printf '{"make_seconds":%s,"make_parallel_seconds":%s,"sizes":{' "${BUILD_S:-null}" "${BUILD_J_S:-null}"
    # shellcheck disable=SC2086 # word splitting intended
    set -- $SIZES
    sep=""
    while [ $# -ge 3 ]; do
        printf '%s"%s":{"bytes":%s,"stripped_bytes":%s}' "$sep" "$1" "$2" "$3"
        sep=","
        shift 3
    done
    printf '}}'
}

write_json() {
    printf '{"machine":{"nproc":%s,"cpu":"%s","mem_gib":%s,"kernel":"%s","date":"%s"},' "$(nproc)" \
        "$(cpu_model | sed 's/["\\]//g')" "$(mem_total_gib)" "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '"settings":{"rate":%s,"batch":%s,"connections":%s,"seconds":%s,"runs":%s,"batch_timeout":"%s"},' \
        "$RATE" "$BATCH" "$CONNS" "$SECS" "$RUNS" "$BATCH_TIMEOUT"
    printf '"quick":%s,' "$( [ "$QUICK" = 1 ] && echo true || echo false)"
    printf '"targets":{"cpu_pct_none":1,"cpu_pct_zstd":2,"peak_rss_mib":16,"client_p99_ms":5,"ack_p99_ms":10,"ceiling_spans_per_s":500000,"apq_ns":100,"card_ns_per_point":200,"dlq_spill_mib_s":200,"make_seconds":90},'
    printf '"steady":{%s},' "$(json_steady)"
    printf '"scaling":[%s],' "$(json_scale)"
    printf '"micro":{%s},' "$(json_micro)"
    if [ -s "$WORK/ceiling.tsv" ]; then printf '"ceiling":%s,' "$(json_ceiling)"; else printf '"ceiling":null,'; fi
    printf '"intakes":%s,' "$(json_intakes)"
    printf '"build":%s}\n' "$(json_build)"
}

write_reports() {
    { write_md; write_md_intakes; } >"$OUT/report.md"
    write_json >"$OUT/report.json"
}

# ---- (f), (g), (h): intakes and modes (intakes.sh) --------------------
#
# proto.tsv / modes.tsv columns: variant kind run cpu rss_kib p50 p99
#   accepted delivered lost refused errors accepted/s forwarded/s
# fl_tput.tsv: run lines delivered wall_s lines/s cpu_s lines_per_cpu_s rss_kib
# fl_steady.tsv: run files written delivered lost offered/s cpu rss_kib
#   lat_p50 lat_p99 lat_max writes

# vk_stats FILE VARIANT KIND COLUMN [SCALE]: "median min max" of COLUMN over
# the runs of one variant and kind.
vk_stats() {
    awk -v v="$2" -v k="$3" -v c="$4" -v s="${5:-1}" '$1 == v && $2 == k { printf "%.3f\n", $c * s }' "$1" | stats
}

# vk_sum FILE VARIANT KIND COLUMN: the sum of COLUMN over those runs.
vk_sum() { awk -v v="$2" -v k="$3" -v c="$4" '$1 == v && $2 == k { s += $c } END { print s + 0 }' "$1"; }

# col_stats FILE COLUMN [SCALE]: "median min max" of a column over all rows.
col_stats() { awk -v c="$2" -v s="${3:-1}" '{ printf "%.3f\n", $c * s }' "$1" | stats; }

# fig_row LABEL "median min max" [EXTRA]: a row of the intake tables.
fig_row() {
    echo "$2" | awk -v l="$1" -v x="${3:-}" '{ f = ($1 >= 1000) ? "%.0f" : "%s"
        printf "| %s | " f " | " f " | " f " | %s |\n", l, $1, $2, $3, x }'
}

raw_rows() { awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$1"; }

# write_md_variants FILE VARIANTS STEADY_KIND "KIND:label ..." TARGET_CPU TARGET_P99
# (labels with _ for spaces)
write_md_variants() {
    f=$1
    echo "| figure | median | min | max | lost / refused / errors (all runs) |"
    echo "|---|---|---|---|---|"
    for v in $2; do
        e="$(vk_sum "$f" "$v" "$3" 10) / $(vk_sum "$f" "$v" "$3" 11) / $(vk_sum "$f" "$v" "$3" 12)"
        fig_row "$v: CPU % of one core at $RATE spans/s (target $5)" "$(vk_stats "$f" "$v" "$3" 4)" "$e"
        fig_row "$v: peak RSS MiB at $RATE spans/s (target ≤ 16 MiB)" "$(vk_stats "$f" "$v" "$3" 5 0.0009765625)"
        fig_row "$v: client P99 ms at $RATE spans/s (target $6)" "$(vk_stats "$f" "$v" "$3" 7)"
    done
    for kl in $4; do
        k=${kl%%:*}; l=$(echo "${kl#*:}" | tr '_' ' ')
        for v in $2; do
            e="$(vk_sum "$f" "$v" "$k" 10) / $(vk_sum "$f" "$v" "$k" 11) / $(vk_sum "$f" "$v" "$k" 12)"
            fig_row "$v: $l, spans/s accepted" "$(vk_stats "$f" "$v" "$k" 13)" "$e"
            fig_row "$v: $l, spans/s forwarded (accepted − lost)" "$(vk_stats "$f" "$v" "$k" 14)"
            fig_row "$v: $l, spillway CPU % of one core" "$(vk_stats "$f" "$v" "$k" 4)"
            fig_row "$v: $l, peak RSS MiB" "$(vk_stats "$f" "$v" "$k" 5 0.0009765625)"
        done
    done
}

VARIANT_HEAD='| variant | kind | run | CPU % | peak RSS KiB | client p50 ms | client p99 ms | accepted | delivered | lost | refused | errors | accepted/s | forwarded/s |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'

write_md_protocols() {
    cat <<EOF

## OTLP/gRPC beside OTLP/HTTP

spillway with both receivers on (\`receivers.otlp.http\` and \`.grpc\` on 127.0.0.1:0),
upstream compression none, $BATCH spans per message; the load generator speaks
OTLP/HTTP (protobuf, HTTP/1.1 keep-alive) or OTLP/gRPC (h2c, one call in flight per
connection). Steady: $RATE spans/s on $CONNS connections, ${SECS} s. Closed loop
(\`--rate 0\`: each connection sends its next message when answered): ${CLOSED_SECS} s on
1 and on 16 connections; spans/s over the load generator's send window; lost =
accepted but not counted upstream after the drain. $RUNS runs each, the protocols
alternating; median, min, max.

$(write_md_variants "$WORK/proto.tsv" "http grpc" steady "c1:closed_loop,_1_connection c16:closed_loop,_16_connections" "≤ 1 %" "≤ 5 ms")

$VARIANT_HEAD
$(raw_rows "$WORK/proto.tsv")
EOF
}

write_md_filelog() {
    lost_t=$(awk '{ s += $2 - $3 } END { print s + 0 }' "$WORK/fl_tput.tsv")
    lost_s=$(awk '{ s += $5 } END { print s + 0 }' "$WORK/fl_steady.tsv")
    cat <<EOF

## filelog receiver

\`receivers.filelog\` (format docker, start_at beginning, default batches of 1 MiB /
200 ms), upstream compression none. Throughput: one file of $FL_LINES docker json-file
lines with 200-byte bodies, read from the beginning; wall time from spillway's start
until the upstream counted every line (polled every 20 ms); lines per CPU-second =
lines / spillway's utime+stime over that time, i.e. lines/s per busy core.
Steady: $FL_FILES files (created empty before spillway starts), each written at 100 lines/s
(200-byte bodies) for ${FL_SECONDS} s;
CPU % over the writing window. Latency: after each write (about every 100 ms) the
time and the lines written so far are noted; that write's latency is the time until
the upstream's \`/stats\` (polled every ~10 ms) counted that many lines — the latency
of the slowest line written up to then, to within the polling interval. It includes
the receiver's and the exporter's batch timeouts (200 ms each by default).
$RUNS runs; median, min, max.

| figure | median | min | max | |
|---|---|---|---|---|
$(fig_row "throughput, lines/s wall (read, forwarded, counted upstream)" "$(col_stats "$WORK/fl_tput.tsv" 5)")
$(fig_row "throughput, lines per CPU-second of spillway (per core)" "$(col_stats "$WORK/fl_tput.tsv" 7)")
$(fig_row "throughput run, peak RSS MiB" "$(col_stats "$WORK/fl_tput.tsv" 8 0.0009765625)")
$(fig_row "$FL_FILES files x 100 lines/s: lines/s written" "$(col_stats "$WORK/fl_steady.tsv" 6)")
$(fig_row "$FL_FILES files x 100 lines/s: spillway CPU % of one core" "$(col_stats "$WORK/fl_steady.tsv" 7)")
$(fig_row "$FL_FILES files x 100 lines/s: peak RSS MiB" "$(col_stats "$WORK/fl_steady.tsv" 8 0.0009765625)")
$(fig_row "$FL_FILES files x 100 lines/s: file write → upstream P50 ms" "$(col_stats "$WORK/fl_steady.tsv" 9)")
$(fig_row "$FL_FILES files x 100 lines/s: file write → upstream P99 ms" "$(col_stats "$WORK/fl_steady.tsv" 10)")
| lines lost, all runs (throughput + steady) | $lost_t + $lost_s | | | |

| run | lines | delivered | wall s | lines/s | spillway CPU-s | lines per CPU-s | peak RSS KiB |
|---|---|---|---|---|---|---|---|
$(raw_rows "$WORK/fl_tput.tsv")

| run | files | lines written | delivered | lost | lines/s written | CPU % | peak RSS KiB | latency p50 ms | p99 ms | max ms | writes |
|---|---|---|---|---|---|---|---|---|---|---|---|
$(raw_rows "$WORK/fl_steady.tsv")
EOF
}

write_md_modes() {
    cat <<EOF

## Durable vs memory queue mode

\`queue.mode: memory\` against \`durable\` with \`dlq.fsync: always\` and \`batch\`
(every accepted request appended to the DLQ's log before its 2xx), OTLP/HTTP,
upstream compression none, the DLQ in the benchmark's temp dir (${TMPDIR:-/tmp}).
Steady: $RATE spans/s on $CONNS connections, ${SECS} s (the client P99 includes the
fsync wait). Closed loop: ${CLOSED_SECS} s on $CLOSED_CONNS connections. $RUNS runs each,
the three variants alternating; median, min, max.

$(write_md_variants "$WORK/modes.tsv" "memory durable-always durable-batch" steady "closed:closed_loop,_${CLOSED_CONNS}_connections" "≤ 2 % durable" "≤ 5 ms")

$VARIANT_HEAD
$(raw_rows "$WORK/modes.tsv")
EOF
}

write_md_intakes() {
    [ -s "$WORK/proto.tsv" ] && write_md_protocols
    [ -s "$WORK/fl_tput.tsv" ] && write_md_filelog
    [ -s "$WORK/modes.tsv" ] && write_md_modes
    return 0
}

# tsv_json FILE "NAME ...": the rows of FILE as a JSON array of objects
# (numbers as they are, other words quoted).
tsv_json() {
    awk -v names="$2" 'BEGIN { n = split(names, k, " "); printf "[" }
        { printf "%s{", (NR > 1) ? "," : ""
          for (i = 1; i <= n; i++) {
              v = $i; if (v !~ /^-?[0-9.]+$/) v = "\"" v "\""
              printf "%s\"%s\":%s", (i > 1) ? "," : "", k[i], v }
          printf "}" }
        END { printf "]" }' "$1"
}

VARIANT_COLS="variant kind run cpu_pct peak_rss_kib client_p50_ms client_p99_ms accepted delivered lost refused errors accepted_per_s forwarded_per_s"

json_intakes() {
    printf '{"protocols":%s,' "$(tsv_json "$WORK/proto.tsv" "$VARIANT_COLS")"
    printf '"filelog_throughput":%s,' "$(tsv_json "$WORK/fl_tput.tsv" "run lines delivered wall_s lines_per_s cpu_s lines_per_cpu_s peak_rss_kib")"
    printf '"filelog_steady":%s,' "$(tsv_json "$WORK/fl_steady.tsv" "run files written delivered lost lines_per_s cpu_pct peak_rss_kib latency_p50_ms latency_p99_ms latency_max_ms writes")"
    printf '"modes":%s}' "$(tsv_json "$WORK/modes.tsv" "$VARIANT_COLS")"
}
