#!/bin/sh
# Profile one run's command: the executor's profiling step (execute_run.py runs
# `profile_run.sh PROFILERS OUT ROOT ARGV...` instead of ARGV when given `-p PROFILERS`).
#
#   PROFILERS  comma-separated, of: perf, ebpf (rusage needs no wrapper: the launch wraps each rank)
#   OUT        directory for the raw profiles: status, perf.csv, ebpf.json (created)
#   ROOT       whose processes are profiled: `tree` (the command and its descendants), or `flux-shell`
#              (the descendants of every flux-shell this node starts while the command runs: Flux starts
#              a job's tasks from the broker, outside `flux run`'s own process tree)
#
# Exits with the command's status (128+N when signal N ended it). Nothing a profiler lacks stops the run:
# OUT/status gets one line per profiler, `NAME ok` or `NAME unavailable WHY`.
# POSIX sh; perf from linux-perf, bpftrace from its Debian package; tracefs, where it is not mounted, is
# mounted in a private mount namespace (unshare -m) for bpftrace alone.

set -u
[ "$#" -ge 4 ] || { echo "usage: profile_run.sh PROFILERS OUT ROOT ARGV..." >&2; exit 2; }
profilers=$1 out=$2 root=$3
shift 3
case $root in tree | flux-shell) ;; *) echo "profile_run.sh: ROOT is tree or flux-shell, not '$root'" >&2; exit 2 ;; esac
mkdir -p "$out" || exit 2
status=$out/status
: >"$status"
rm -f "$out/perf.csv" "$out/ebpf.json" "$out/.go"

# Seconds a profiler gets to write its profile and end once the command has ended, before SIGKILL.
PROFILER_GRACE=5

want() { case ",$profilers," in *",$1,"*) true ;; *) false ;; esac; }
# A child is running (a zombie, ended but not waited for, is not).
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c 1)" != Z ]; }
# Wait for a profiler to end, up to the grace; then SIGKILL it (and set `killed`).
settle() {
    ticks=0 killed=""
    while running "$1"; do
        if [ "$ticks" -ge $((PROFILER_GRACE * 20)) ]; then
            kill -KILL "$1" 2>/dev/null
            killed=yes
            break
        fi
        sleep 0.05
        ticks=$((ticks + 1))
    done
    wait "$1" 2>/dev/null
}
unavailable() { printf '%s unavailable %s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ' | cut -c 1-300)" >>"$status"; }
# A tool's first line that says something ("Error:" alone does not).
first_words() { grep -v -e '^[[:space:]]*$' -e '^Error:[[:space:]]*$' -e 'RLIMIT_MEMLOCK' "$1" 2>/dev/null | head -n 1; }

EVENTS=task-clock,context-switches,cpu-migrations,page-faults
perf=""
if want perf; then
    if [ "$root" != tree ]; then
        unavailable perf "perf stat counts a process tree, and this launcher starts the tasks outside it"
    elif ! command -v perf >/dev/null 2>&1; then
        unavailable perf "perf is not installed (Debian package linux-perf)"
    elif perf stat -x, -e "$EVENTS" -o /dev/null -- true >"$out/.perf.err" 2>&1; then
        perf=yes
    else
        unavailable perf "perf stat cannot count software events here: $(first_words "$out/.perf.err")"
    fi
    rm -f "$out/.perf.err"
fi

# The command waits on a FIFO until the profilers are in place (bpftrace's BEGIN probe fires after every
# probe is attached; perf stat holds its counters), so the profile covers the whole run and the command's
# process is the tree's known root. perf stat attaches to that process (`-p`, its counters inherited by
# every task it starts) rather than starting it: the command's exit status and its stderr stay its own.
fifo=$out/.go
mkfifo "$fifo" || exit 2
(
    read -r _ <"$fifo"
    rm -f "$fifo"
    exec "$@"
) </dev/null &
child=$!
if [ -n "$perf" ]; then
    perf stat -x, -o "$out/perf.csv" -e "$EVENTS" -p "$child" </dev/null >"$out/.perf.err" 2>&1 &
    perf=$!
fi

# Per command name (the launcher's processes are told apart from the app's afterwards, by the planner),
# for the tasks in the tree only: run-queue wait (wakeup or preemption to switch-in), on-CPU time,
# futex waits (FUTEX_WAIT, FUTEX_WAIT_BITSET), time in poll/select/epoll waits, sched_yield calls. Each
# wait: its histogram in microseconds (bpftrace 0.17 writes buckets past 2^31 wrongly in JSON) and its
# exact total in nanoseconds.
# shellcheck disable=SC2016  # bpftrace's own $ variables
program='
BEGIN { if ($1 > 0) { @tree[$1] = 1; } printf("ready\n"); }
tracepoint:sched:sched_process_exec /$2 == 1 && comm == "flux-shell"/ { @tree[tid] = 1; }
tracepoint:sched:sched_process_fork /@tree[args->parent_pid]/ { @tree[args->child_pid] = 1; }
tracepoint:sched:sched_process_exit /@tree[tid]/ {
    delete(@tree[tid]); delete(@queued[tid]); delete(@oncpu[tid]); delete(@futex[tid]); delete(@poll[tid]);
}
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new /@tree[args->pid]/ { @queued[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
    if (@tree[args->prev_pid]) {
        if ((args->prev_state & 0xff) == 0) { @queued[args->prev_pid] = nsecs; }
        $on = @oncpu[args->prev_pid];
        if ($on > 0) { @oncpu_ns[args->prev_comm] = sum(nsecs - $on); delete(@oncpu[args->prev_pid]); }
    }
    if (@tree[args->next_pid]) {
        $q = @queued[args->next_pid];
        if ($q > 0) {
            @runq_us[args->next_comm] = hist((nsecs - $q) / 1000); @runq_ns[args->next_comm] = sum(nsecs - $q);
            delete(@queued[args->next_pid]);
        }
        @oncpu[args->next_pid] = nsecs;
    }
}
tracepoint:syscalls:sys_enter_futex /@tree[tid] && ((args->op & 0x7f) == 0 || (args->op & 0x7f) == 9)/ {
    @futex[tid] = nsecs;
}
tracepoint:syscalls:sys_exit_futex /@futex[tid]/ {
    $d = nsecs - @futex[tid]; @futex_us[comm] = hist($d / 1000); @futex_ns[comm] = sum($d); delete(@futex[tid]);
}
tracepoint:syscalls:sys_enter_*poll, tracepoint:syscalls:sys_enter_epoll_*wait*, tracepoint:syscalls:sys_enter_*select*
    /@tree[tid]/ { @poll[tid] = nsecs; }
tracepoint:syscalls:sys_exit_*poll, tracepoint:syscalls:sys_exit_epoll_*wait*, tracepoint:syscalls:sys_exit_*select*
    /@poll[tid]/ { $d = nsecs - @poll[tid]; @poll_us[comm] = hist($d / 1000); @poll_ns[comm] = sum($d); delete(@poll[tid]); }
tracepoint:syscalls:sys_enter_sched_yield /@tree[tid]/ { @yields[comm] = count(); }
END { clear(@tree); clear(@queued); clear(@oncpu); clear(@futex); clear(@poll); }
'
bpf=""
if want ebpf; then
    if ! command -v bpftrace >/dev/null 2>&1; then
        unavailable ebpf "bpftrace is not installed (Debian package bpftrace)"
    else
        rootpid=$child flux=0
        [ "$root" = tree ] || rootpid=0 flux=1
        if [ -d /sys/kernel/tracing/events/sched ] || [ -d /sys/kernel/debug/tracing/events/sched ]; then
            bpftrace -f json -o "$out/ebpf.json" -e "$program" "$rootpid" "$flux" </dev/null >"$out/.bpf.err" 2>&1 &
            bpf=$!
        elif command -v unshare >/dev/null 2>&1; then
            # tracefs mounted for bpftrace alone, in a mount namespace of its own (this host's stays as it is)
            unshare -m sh -c 'mount -t tracefs nodev /sys/kernel/tracing && exec "$@"' sh \
                bpftrace -f json -o "$out/ebpf.json" -e "$program" "$rootpid" "$flux" </dev/null >"$out/.bpf.err" 2>&1 &
            bpf=$!
        else
            unavailable ebpf "tracefs is not mounted and unshare is missing to mount it privately"
        fi
    fi
fi
# Wait (up to a minute) for perf's counters and for bpftrace to attach; a profiler that cannot is left out.
if [ -n "$perf" ]; then
    ticks=0
    until ls -l "/proc/$perf/fd" 2>/dev/null | grep -q 'perf_event'; do
        if ! kill -0 "$perf" 2>/dev/null || [ "$ticks" -ge 1200 ]; then
            unavailable perf "perf stat could not attach: $(first_words "$out/.perf.err")"
            kill "$perf" 2>/dev/null
            perf=""
            break
        fi
        sleep 0.05
        ticks=$((ticks + 1))
    done
fi
if [ -n "$bpf" ]; then
    ticks=0
    until grep -q '"ready' "$out/ebpf.json" 2>/dev/null; do
        if ! kill -0 "$bpf" 2>/dev/null || [ "$ticks" -ge 1200 ]; then
            why=$(first_words "$out/.bpf.err")
            [ "$ticks" -ge 1200 ] && why="bpftrace did not attach within 60 s"
            unavailable ebpf "bpftrace cannot trace here: ${why:-it ended without a word}"
            kill "$bpf" 2>/dev/null
            wait "$bpf" 2>/dev/null
            rm -f "$out/ebpf.json"
            bpf=""
            break
        fi
        sleep 0.05
        ticks=$((ticks + 1))
    done
fi
echo go >"$fifo"
rc=0
{ wait "$child"; } 2>/dev/null || rc=$? # (dash reports a signal that ended it: not the command's word)
# perf stat ends with the task it counts; bpftrace prints its maps on SIGINT. A profiler still there after
# the grace is killed: a profiler that does not stop never holds the run up to its timeout.
perf_killed=""
[ -z "$perf" ] || { settle "$perf"; perf_killed=$killed; }
if [ -n "$bpf" ]; then
    kill -INT "$bpf" 2>/dev/null
    settle "$bpf"
    if [ -n "$killed" ]; then
        unavailable ebpf "bpftrace did not end within $PROFILER_GRACE s of SIGINT and was killed"
    elif grep -q '"type": "\(map\|hist\)"' "$out/ebpf.json" 2>/dev/null || grep -q '"ready' "$out/ebpf.json" 2>/dev/null; then
        echo "ebpf ok" >>"$status"
    else
        unavailable ebpf "bpftrace wrote no profile: $(first_words "$out/.bpf.err")"
    fi
fi
if [ -n "$perf" ]; then
    if [ -n "$perf_killed" ]; then
        unavailable perf "perf stat did not end within $PROFILER_GRACE s of the command and was killed"
    elif [ -s "$out/perf.csv" ]; then echo "perf ok" >>"$status"; else unavailable perf "perf stat wrote nothing"; fi
fi
rm -f "$out/.perf.err" "$out/.bpf.err" "$fifo"
exit "$rc"
