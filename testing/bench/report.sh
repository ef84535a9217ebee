# report.sh — writes bench/report.md and bench/report.json from the tables
# run_bench.sh collected in $WORK (sourced; POSIX sh + awk).
#
# steady.tsv columns: comp run cpu rss_kib p50 p99 ack50 ack95 ack99 sent
#   accepted delivered lost refused errors late mock_cpu lg_cpu
# ceiling.tsv columns: rate achieved accepted delivered lost refused errors
#   late unsent sw_cpu mock_cpu lg_cpu p99 spilled pass

cpu_model() {
    sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1
}

mem_total_gib() { awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }

# steady_stats COMP COLUMN [SCALE]: "median min max" of a steady.tsv column
# for one compression, each value multiplied by SCALE.
steady_stats() {
    awk -v c="$1" -v k="$2" -v s="${3:-1}" '$1 == c { printf "%.3f\n", $k * s }' "$WORK/steady.tsv" | stats
}

# md_row LABEL "median min max" TARGET
md_row() {
    echo "$2" | awk -v l="$1" -v t="$3" '{ printf "| %s | %s | %s | %s | %s |\n", l, $1, $2, $3, t }'
}

ceiling_max() {
    awk '$15 == "yes" && $1 > m { m = $1 } END { print m + 0 }' "$WORK/ceiling.tsv"
}

target_cpu() {
    case $1 in none) echo "≤ 1 %" ;; zstd) echo "≤ 2 %" ;; *) echo "reported" ;; esac
}

write_md_summary() {
    echo "| Figure | Median | Min | Max | Target (DESIGN.md) |"
    echo "|---|---|---|---|---|"
    for c in $COMPRESSIONS; do
        md_row "spillway CPU % of one core, $RATE spans/s, upstream $c" "$(steady_stats "$c" 3)" "$(target_cpu "$c")"
    done
    for c in $COMPRESSIONS; do
        md_row "spillway peak RSS (MiB), upstream $c" "$(steady_stats "$c" 4 0.0009765625)" "≤ 16 MiB"
    done
    for c in $COMPRESSIONS; do
        md_row "client P50 latency (ms), upstream $c" "$(steady_stats "$c" 5)" "—"
        md_row "client P99 latency (ms), upstream $c" "$(steady_stats "$c" 6)" "≤ 5 ms"
    done
    for c in $COMPRESSIONS; do
        md_row "receive→ack P50 (ms), upstream $c" "$(steady_stats "$c" 7)" "—"
        md_row "receive→ack P95 (ms), upstream $c" "$(steady_stats "$c" 8)" "—"
        md_row "receive→ack P99 (ms), upstream $c" "$(steady_stats "$c" 9)" "≤ 10 ms"
    done
    lost=$(awk '{ s += $13 } END { print s + 0 }' "$WORK/steady.tsv")
    echo "| spans lost, all steady runs (total) | $lost | | | 0 |"
    if [ -s "$WORK/ceiling.tsv" ]; then
        echo "| pass-through ceiling (spans/s, nothing refused or lost) | $(ceiling_max) | | | ≥ 500,000 |"
    fi
    [ -n "$BUILD_S" ] && echo "| clean build, \`make\` (s) | $BUILD_S | | | — |"
    [ -n "$BUILD_J_S" ] && echo "| clean build, \`make -j$(nproc)\` (s) | $BUILD_J_S | | | — |"
    # shellcheck disable=SC2086 # word splitting intended
    set -- $SIZES
    while [ $# -ge 3 ]; do
        echo "| size of build/$1 (bytes, as built / stripped) | $2 / $3 | | | — |"
        shift 3
    done
}

write_md() {
    cat <<EOF
# spillway benchmark report

- Machine: $(nproc) cores, $(cpu_model), $(mem_total_gib) GiB RAM, Linux $(uname -r); $(date -u +%Y-%m-%dT%H:%M:%SZ)
- spillway, the mock upstream (\`spillway-mockup --fast\`) and the load generator run on
  the same machine and share its $(nproc) cores; all traffic is on 127.0.0.1.
- Steady: $RATE spans/s as $BATCH-span OTLP/HTTP protobuf requests on $CONNS connections,
  ${SECS} s per run, $RUNS runs per upstream compression; fresh processes every run.
  CPU is spillway's utime+stime over the run, as % of one core; peak RSS is VmHWM.
  Client latency is the load generator's (from each request's scheduled send time);
  receive→ack comes from spillway_pipeline_latency_seconds, interpolated inside buckets.
- Ceiling: offered rate stepped up, ${STEP_SECS} s per step, $STEP_CONNS connections,
  upstream compression none; a step passes when nothing was refused, failed, left
  unsent or lost and the achieved rate is within 3 % of the offered one.
$( [ -n "$BATCH_TIMEOUT" ] && echo "- Exporter batch timeout overridden: $BATCH_TIMEOUT." )

## Summary

$(write_md_summary)

## Steady runs

| upstream | run | CPU % | peak RSS KiB | client p50 ms | client p99 ms | ack p50 ms | ack p95 ms | ack p99 ms | sent | accepted | delivered | lost | refused | errors | late | mockup CPU % | loadgen CPU % |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$(awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$WORK/steady.tsv")
EOF
    if [ -s "$WORK/ceiling.tsv" ]; then
        cat <<EOF

## Ceiling steps

| offered spans/s | achieved | accepted | delivered | lost | refused | errors | late | unsent | spillway CPU % | mockup CPU % | loadgen CPU % | client p99 ms | spilled | pass |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
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
        printf '"ack_p50_ms":%s,"ack_p95_ms":%s,"ack_p99_ms":%s,"runs":[' \
            "$(json_stats "$c" 7)" "$(json_stats "$c" 8)" "$(json_stats "$c" 9)"
        awk -v c="$c" 'BEGIN { s = "" } $1 == c {
            printf "%s{\"run\":%s,\"cpu_pct\":%s,\"peak_rss_kib\":%s,\"client_p50_ms\":%s,\"client_p99_ms\":%s,\"ack_p50_ms\":%s,\"ack_p95_ms\":%s,\"ack_p99_ms\":%s,\"sent\":%s,\"accepted\":%s,\"delivered\":%s,\"lost\":%s,\"refused\":%s,\"errors\":%s,\"late\":%s,\"mockup_cpu_pct\":%s,\"loadgen_cpu_pct\":%s}",
                s, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18; s = "," }' "$WORK/steady.tsv"
        printf ']}'
        sep=","
    done
}

json_ceiling() {
    printf '{"max_rate":%s,"step_seconds":%s,"connections":%s,"steps":[' "$(ceiling_max)" "$STEP_SECS" "$STEP_CONNS"
    awk 'BEGIN { s = "" } {
        printf "%s{\"offered\":%s,\"achieved\":%s,\"accepted\":%s,\"delivered\":%s,\"lost\":%s,\"refused\":%s,\"errors\":%s,\"late\":%s,\"unsent\":%s,\"cpu_pct\":%s,\"mockup_cpu_pct\":%s,\"loadgen_cpu_pct\":%s,\"client_p99_ms\":%s,\"spilled\":%s,\"pass\":%s}",
            s, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ($15 == "yes") ? "true" : "false"; s = "," }' "$WORK/ceiling.tsv"
    printf ']}'
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
    printf '"targets":{"cpu_pct_none":1,"cpu_pct_zstd":2,"peak_rss_mib":16,"client_p99_ms":5,"ack_p99_ms":10,"ceiling_spans_per_s":500000},'
    printf '"steady":{%s},' "$(json_steady)"
    if [ -s "$WORK/ceiling.tsv" ]; then printf '"ceiling":%s,' "$(json_ceiling)"; else printf '"ceiling":null,'; fi
    printf '"build":%s}\n' "$(json_build)"
}

write_reports() {
    write_md >"$OUT/report.md"
    write_json >"$OUT/report.json"
}
