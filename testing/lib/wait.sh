# wait.sh — waiting on a condition with a deadline, for the shell test
# scripts (bench, scenarios, soak, deploy). Sourced; POSIX sh. The shell
# counterpart of th_wait.h's WAIT_FOR: poll what is expected, every 50 ms,
# until it holds or the deadline passes; never a bare fixed sleep. The
# deadline is wall time (date), so a slow, loaded machine does not stretch it.

# wait_ms: milliseconds since the epoch.
wait_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_every POLL SECONDS CMD ARGS...: runs CMD every POLL seconds until it
# succeeds (0) or SECONDS passed (1).
wait_every() {
    _we_poll=$1; _we_end=$(($(wait_ms) + $2 * 1000)); shift 2
    until "$@"; do
        [ "$(wait_ms)" -ge "$_we_end" ] && return 1
        sleep "$_we_poll"
    done
    return 0
}

# wait_until SECONDS CMD ARGS...: wait_every with a 50 ms poll.
wait_until() { wait_every 0.05 "$@"; }

# wait_file PATH SECONDS: until PATH exists and is not empty (a ready file).
wait_file() { wait_until "$2" test -s "$1"; }

# wait_gone PID SECONDS: until process PID has exited (0), or 1.
wait_gone() { wait_until "$2" wait_not_alive "$1"; }
wait_not_alive() { ! kill -0 "$1" 2>/dev/null; }
