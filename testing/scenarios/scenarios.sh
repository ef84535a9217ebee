# scenarios.sh — the named fault scenarios (sourced by run.sh after lib.sh).
#
# Each scen_<name> runs one scenario end to end in $D and leaves its
# verdict line in $D/verdict (sc_finish). Times are seconds from T0, the
# start of the first load phase. MODE short keeps every scenario under
# 30 s (make test); MODE full runs the lengths named in issue 6.
#
#   F  fault start    DUR  fault length    L  load length (one phase)

SCENARIOS="outage-60s outage-503 flapping throttle-429 slow-upstream hang restart-during-outage kill9-during-spill"

sc_timeline() {
    if [ "$MODE" = full ]; then
        F=5; DUR=60; L=80; DRAIN_S=${SCEN_DRAIN_SECONDS:-180}; OPEN_DURATION=5s
    else
        F=2; DUR=12; L=18; DRAIN_S=${SCEN_DRAIN_SECONDS:-$((12 * ${SW_TEST_SLOW:-1}))}; OPEN_DURATION=2s
    fi
}

# sc_at S: sleeps until T0 + S seconds.
sc_at() {
    _w=$((T0 + $1 * 1000 - $(now_ms)))
    [ "$_w" -gt 0 ] && sleep "$(awk -v w="$_w" 'BEGIN { printf "%.3f", w / 1000 }')"
    return 0
}

# sc_begin MOCK_ARGS...: mock upstream, spillway, sampler; T0 = now.
sc_begin() {
    sc_mock_start "$@" || return 1
    sc_sw_config
    sc_sw_start || return 1
    sc_sampler_start
    T0=$(now_ms)
}

# sc_drain: after recovery (T_REC), waits until the mock counted every
# accepted item and spillway holds nothing (queue, in flight, DLQ), or
# until DRAIN_S passed (a batch waiting in retry backoff is not visible
# in the metrics, so idleness alone proves nothing).
sc_drain() {
    _sent=$(sc_sent)
    _end=$(($(now_ms) + DRAIN_S * 1000))
    while :; do
        _it=$(items_field "$(sc_mock_stats)"); _it=${_it:-0}
        set -- $(sc_metrics)
        _idle=0
        [ "$3" = 0 ] && [ "$4" = 0 ] && [ "$5" = 0 ] && _idle=1
        if [ "$_it" -ge "$_sent" ] && [ "$_idle" = 1 ]; then
            # the mock's count includes duplicates: check distinct items
            _u=$(curl -s --max-time 30 "http://$ADMIN/received/traces" | sort -u | wc -l)
            [ "$_u" -ge "$_sent" ] && { T_DRAINED=$(now_ms); return 0; }
            sleep 0.75
        fi
        [ "$(now_ms)" -ge "$_end" ] && { sc_log "drain: deadline of ${DRAIN_S}s passed"; return 1; }
        sleep 0.25
    done
}

# ---- verdict ---------------------------------------------------------------

# drain_s: from T_REC to the first sample whose DLQ holds no unacknowledged
# record and whose queue is empty, or to the end of sc_drain if that came
# first (samples are ~250 ms apart, more under load).
sc_drain_s() {
    awk -v r="$T_REC" -v d="${T_DRAINED:-}" '$1 >= r && $9 == "0" && $7 == "0" { t = $1; exit }
        END {
            if (d != "" && (t == "" || d + 0 < t + 0)) t = d
            if (t == "") print "timeout"; else printf "%.1f", (t - r) / 1000
        }' "$D/samples"
}

sc_peak_dlq() {
    awk '$6 != "-" && $6 + 0 > m { m = $6 + 0 } END { printf "%.0f", m }' "$D/samples"
}

# Requests the mock counted during an outage between two samples while the
# breaker was open or half-open at that sample and the two before it (so a
# request sent just before the breaker opened is not counted). A probe is
# sent open_duration after the previous one failed, so probes reach the
# mock more than open_duration apart: an interval between two readings of
# the mock (at most ms[i] - ms_before[i-1] long) holds at most
# floor(length / open_duration) + 1 of them, which is 1 while samples come
# every ~250 ms and more only when the machine delays the sampler. Prints
# "total max_per_interval open_samples intervals_over_that_bound".
sc_while_open() {
    _od=${OPEN_DURATION:-2s}
    case $_od in *ms) _od=${_od%ms} ;; *s) _od=$((${_od%s} * 1000)) ;; esac
    awk -v od="$_od" 'function op(s) { return s == "1" || s == "2" }
        { t[NR] = $1; r[NR] = $2; s[NR] = $5; t0[NR] = $10; if (op($5)) n++ }
        END {
            for (i = 3; i <= NR; i++)
                if (op(s[i - 2]) && op(s[i - 1]) && op(s[i]) && r[i] != "-" && r[i - 1] != "-") {
                    d = r[i] - r[i - 1]; tot += d; if (d > mx) mx = d
                    if (d > int((t[i] - t0[i - 1]) / od) + 1) bad++
                }
            printf "%d %d %d %d\n", tot, mx, n, bad
        }' "$D/samples"
}

# sc_finish: final drain, counts, verdict line in $D/verdict. BREAKER=1:
# also the requests-while-open check. NOTE: extra text for the line.
sc_finish() {
    [ -n "${T_REC:-}" ] || T_REC=$(now_ms)
    sc_drain
    sc_peak_rss "$SW_PID"
    sc_sampler_stop
    _sent=$(sc_sent)
    curl -s --max-time 30 "http://$ADMIN/received/traces" >"$D/received.txt"
    _lines=$(wc -l <"$D/received.txt")
    _uniq=$(sort -u "$D/received.txt" | wc -l)
    _dup=$((_lines - _uniq))
    _lost=0; _extra=0
    [ "$_sent" -gt "$_uniq" ] && _lost=$((_sent - _uniq))
    [ "$_uniq" -gt "$_sent" ] && _extra=$((_uniq - _sent))
    _rwo=-; _probes=-; _brk=""
    if [ "${BREAKER:-0}" = 1 ]; then
        set -- $(sc_while_open)
        _rwo=$1
        _probes=$(cat "$D"/spillway.*.log | grep -c 'open -> half-open')
        if [ "$3" -eq 0 ]; then _brk=" breaker=not-opened"
        elif [ "$1" -le "$_probes" ] && [ "$4" -eq 0 ]; then _brk=" breaker=ok"
        else _brk=" breaker=violated(max_per_interval=$2)"; fi
    fi
    _v=PASS
    [ "$_lost" -eq 0 ] && [ "$_sent" -gt 0 ] || _v=FAIL
    # a scenario that must acknowledge nothing from memory (SW_DEQUEUED set
    # by sc_sw_kill9 when MEMORY_NONE=1): the queue dequeued nothing
    if [ "${MEMORY_NONE:-0}" = 1 ]; then
        _brk="$_brk dequeued_before_kill=${SW_DEQUEUED:--}"
        [ "${SW_DEQUEUED:--}" = 0 ] || _v=FAIL
    fi
    printf 'scenario=%s sent=%s received=%s duplicated=%s lost=%s drain_s=%s peak_rss_kib=%s peak_dlq_bytes=%s requests_while_open=%s probes=%s%s extra=%s%s verdict=%s\n' \
        "$NAME" "$_sent" "$_uniq" "$_dup" "$_lost" "$(sc_drain_s)" "$PEAK_RSS" "$(sc_peak_dlq)" \
        "$_rwo" "$_probes" "$_brk" "$_extra" "${NOTE:+ note=$NOTE}" "$_v" >"$D/verdict"
}

# ---- the scenarios -----------------------------------------------------------

# sc_outage MODE: one admin outage of DUR seconds at F under a load of L s.
sc_outage() {
    sc_begin || return 1
    sc_load_bg 1 "$L"
    sc_at "$F"; sc_log "outage $1 for ${DUR}s"
    sc_admin "/admin/outage?seconds=$DUR&mode=$1"
    sc_at $((F + DUR)); sc_wait_recovered 10
    sc_log "upstream recovered"
    sc_load_wait
    sc_finish
}

scen_outage_60s() { sc_outage refuse; }

# The breaker check: a 503 outage reaches the mock, so every request sent
# while the breaker is open is counted there.
scen_outage_503() { BREAKER=1; sc_outage 503; }

# Five timeouts in a row open the breaker: with max_in_flight 4 that takes
# two rounds of exporter timeouts, 10 s of the short 12 s outage at the 5 s
# default (under load the breaker then opened late or not at all), 4 s at 2 s.
scen_hang() {
    [ "$MODE" = full ] || EXP_TIMEOUT=2s
    BREAKER=1; sc_outage hang
}

# 5 s down / 5 s up (connections refused) for the length of the load; the
# schedule keeps running afterwards, so the drain also crosses outages.
scen_flapping() {
    [ "$MODE" = full ] && L=60 || L=20
    sc_begin --outage-schedule 5/10/refuse || return 1
    sc_load_bg 1 "$L"
    sc_load_wait
    sc_wait_recovered 10
    sc_finish
}

scen_throttle_429() {
    [ "$MODE" = full ] && L=60 || L=16
    BREAKER=0
    sc_begin --rate-429 0.4 --retry-after 1 || return 1
    sc_load_bg 1 "$L"
    sc_load_wait
    T_REC=$(now_ms)
    sc_finish
}

scen_slow_upstream() {
    sc_begin || return 1
    sc_load_bg 1 "$L"
    sc_at "$F"; sc_log "upstream latency 2000 ms for ${DUR}s"
    sc_admin "/admin/latency?ms=2000"
    sc_at $((F + DUR)); sc_admin "/admin/latency?ms=0"
    T_REC=$(now_ms)
    sc_load_wait
    sc_finish
}

# sc_restart HOW: outage (refused) from F for DUR; load phase 1 until P1,
# HOW (term|kill9) at K during phase 1, restart on the same DLQ dir (new
# ports), load phase 2 against the new port; recovery, drain.
sc_restart() {
    if [ "$MODE" = full ]; then P1=35; K=30; P2=25; else DUR=14; P1=8; K=6; P2=5; fi
    sc_begin || return 1
    sc_load_bg 1 "$P1"
    sc_at "$F"; sc_log "outage refuse for ${DUR}s"
    sc_admin "/admin/outage?seconds=$DUR&mode=refuse"
    sc_at "$K"
    if [ "$1" = kill9 ]; then sc_sw_kill9; else sc_sw_term; fi
    sc_load_wait
    sc_sw_start || return 1
    sc_load_bg 2 "$P2"
    sc_load_wait
    sc_at $((F + DUR)); sc_wait_recovered 10
    sc_log "upstream recovered"
    sc_finish
}

scen_restart_during_outage() { sc_restart term; }

# Every accepted item is in the DLQ, fsynced, before spillway answers, so
# a kill -9 loses nothing. A request admitted to memory is acknowledged
# from memory and may be lost by kill -9 (the bound of docs/dlq-format.md),
# so no request may be admitted: each one (400 spans, ~120 KiB) is larger
# than the whole queue (queue.max_bytes at its minimum, 64 KiB), so the
# pipeline sends every request to the DLQ whatever the queue's fill. (A
# spill_threshold near 0 is not enough: an empty queue is below any
# threshold and admits the request to memory.) The verdict checks that the
# queue dequeued nothing before the kill.
scen_kill9_during_spill() {
    QUEUE_MAX_BYTES=64KiB; LOAD_BATCH=400; FSYNC=always; MEMORY_NONE=1
    NOTE="max_bytes=64KiB<request,fsync=always:no_ack_from_memory"
    sc_restart kill9
}
