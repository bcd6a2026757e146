#!/bin/sh
# Execute one run of the matrix where there is no Python (a MiniCluster pod) and print its result as
# one JSON line. The contract is execute_run.py's, word for word (see its docstring and
# roles/run_matrix/README.md); tests/test_executors.py runs both against the same cases:
#
#   execute_run.sh [-f] [-j] [-o OWNER_PID] [-s STOP_FILE] [-g STAGE_DIR] [-c CWD] [-p PROFILERS [-t ROOT]] ID TIMEOUT RUN_DIR NENV [NAME=VALUE]... ARGV...
#
# Exit codes: 0 a result was printed, 2 bad request, 3 stopped (nothing printed), 4 RUN_DIR unusable.
# POSIX sh and awk. setsid (util-linux, busybox), where present, puts the run in its own process group
# so a timeout or a stop reaches every process of it (else only the command itself is signalled);
# GNU time, where present, gives the max RSS (null otherwise); flock (util-linux, busybox), where present,
# keeps a second executor out of a run directory one already works in (else nothing does).

set -u
EXIT_REPORTED=0 EXIT_BAD_REQUEST=2 EXIT_STOPPED=3 EXIT_RUN_DIR=4
# bytes of the log's head and tail the result carries, and of each raw profile (execute_run.py's)
OUTPUT_HEAD=65536 OUTPUT_TAIL=196608 PROFILE_CAP=131072
GRACE_TICKS=25 # 5 s of 0.2 s ticks between SIGTERM and SIGKILL

bad() {
    printf 'execute_run.sh: %s\nusage: execute_run.sh [-f] [-j] [-o OWNER_PID] [-s STOP_FILE] [-g STAGE_DIR] [-c CWD] [-p PROFILERS [-t ROOT]] ID TIMEOUT RUN_DIR NENV [NAME=VALUE]... ARGV...\n' "$1" >&2
    exit "$EXIT_BAD_REQUEST"
}

owner="" stop="" stage="" cwd="" fresh="" flux_job="" profile="" profile_set="" root=tree
while getopts fjo:s:g:c:p:t: opt; do
    case $opt in
    f) fresh=yes ;;
    j) flux_job=yes ;;
    o) owner=$OPTARG ;;
    s) stop=$OPTARG ;;
    g) stage=$OPTARG ;;
    c) cwd=$OPTARG ;;
    p) profile=$OPTARG profile_set=yes ;;
    t) root=$OPTARG ;;
    *) bad "unknown option" ;;
    esac
done
shift $((OPTIND - 1))
[ "$#" -ge 5 ] || bad "too few arguments"
id=$1 timeout=$2 run_dir=$3 nenv=$4
shift 4
case $id in "" | [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*) bad "run id '$id' is not letters, digits, _ . -" ;; esac
awk -v t="$timeout" 'BEGIN { exit !(t ~ /^[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?$/ && t + 0 > 0) }' ||
    bad "timeout '$timeout' is not a positive number of seconds"
case $nenv in "" | *[!0-9]*) bad "NENV '$nenv' is not the number of NAME=VALUE words that follow" ;; esac
[ "$#" -gt "$nenv" ] || bad "NENV '$nenv' is not the number of NAME=VALUE words that follow (then the command)"
case $owner in *[!0-9]*) bad "owner pid '$owner' is not a number" ;; esac
if [ -n "$profile_set" ]; then
    ok=yes
    case $profile in "" | ,* | *, | *,,*) ok="" ;; esac
    for name in $(printf '%s' "$profile" | tr ',' ' '); do
        case $name in perf | ebpf) ;; *) ok="" ;; esac
    done
    [ -n "$ok" ] || bad "profilers '$profile' are not a comma-separated list of perf, ebpf"
fi
case $root in tree | flux-shell) ;; *) bad "profile root '$root' is not one of tree, flux-shell" ;; esac
i=0
for pair in "$@"; do
    [ "$i" -lt "$nenv" ] || break
    name=${pair%%=*}
    case $name in "$pair" | "" | [!A-Za-z_]* | *[!A-Za-z0-9_]*)
        bad "'$pair' is not NAME=VALUE with NAME [A-Za-z_][A-Za-z0-9_]*" ;;
    esac
    i=$((i + 1))
done

case $run_dir in /*) ;; *) run_dir=$PWD/$run_dir ;; esac
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$run_dir" 2>/dev/null || { echo "execute_run.sh: cannot create $run_dir" >&2; exit "$EXIT_RUN_DIR"; }
result=$run_dir/result.json
log=$run_dir/output.log
ended=$run_dir/.ended

stop_requested() {
    { [ -n "$stop" ] && [ -e "$stop" ]; } ||
        { [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null && [ ! -d "/proc/$owner" ]; }
}
tick=0.2
sleep 0.01 2>/dev/null || tick=1
trap 'exit "$EXIT_STOPPED"' HUP INT TERM

# One executor per run directory: wait for one still at work here (it reports or stops first).
if command -v flock >/dev/null 2>&1; then
    exec 9>>"$run_dir/.lock"
    until flock -n 9; do
        stop_requested && exit "$EXIT_STOPPED"
        sleep "$tick"
    done
fi

# -f (a retry of a run that failed): what an earlier attempt left here goes first, its result above all.
if [ -n "$fresh" ]; then
    find "$run_dir" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} + ||
        { echo "execute_run.sh: cannot clear $run_dir" >&2; exit "$EXIT_RUN_DIR"; }
fi

# A complete result of this run (written atomically, "id" first) is reported, not run again.
if [ -s "$result" ] && [ "$(head -c $((${#id} + 10)) "$result")" = "{\"id\": \"$id\"," ] &&
    case $(tail -c 2 "$result") in *"}") true ;; *) false ;; esac then
    printf '%s, "cached": true}\n' "$(sed '$ s/}[[:space:]]*$//' "$result")"
    exit "$EXIT_REPORTED"
fi

stop_requested && exit "$EXIT_STOPPED"

# -j: Flux's jobs named after the run. `flux_jobs FORMAT [-a]` lists them (active ones, or all with -a);
# `flux_cancel NOTE` cancels the active ones and waits (30 s at most) until Flux has ended them.
flux_jobs() { flux jobs --name="$id" -no "$1" ${2:+"$2"} </dev/null 2>/dev/null; }

# After Open MPI 4's flux PMI component failed to dlopen() or init Flux's libpmi.so (OPAL_PMI_ERROR(rc,
# "PMI_Init") in opal/mca/pmix/flux/pmix_flux.c, which prints no dlerror()): the loader's words from `ldd` on
# that library (`flux getattr conf.pmi_library_path`) in the run's image with the run's binds, added to the
# log, so a view newer than the image is told from a library not bound in (execute_run.py's explain_flux_pmi).
explain_flux_pmi() {
    while [ "$#" -gt 2 ] && ! { [ "${1##*/}" = singularity ] && [ "$2" = exec ]; }; do shift; done
    [ "$#" -gt 2 ] || return 0
    runtime=$1 binds=""
    shift 2
    while [ "$#" -gt 2 ]; do
        case $1 in
        --bind | -B) binds="$binds --bind '$(printf %s "$2" | sed "s/'/'\\\\''/g")'" ;;
        -*) ;;
        *) break ;;
        esac
        shift 2
    done
    image=$1
    library=$(flux getattr conf.pmi_library_path </dev/null 2>/dev/null) || return 0
    said=$(eval "\"\$runtime\" exec $binds \"\$image\" ldd \"\$library\"" </dev/null 2>&1 |
        grep -E 'not found|No such file|cannot open|wrong ELF class' | sed 's/^[[:space:]]*//')
    [ -n "$said" ] || said="loads (the failure is not the loader's)"
    printf '%s\n' "$said" | while IFS= read -r line; do
        printf 'compat-lab: ldd in the image: %s\n' "$line"
    done >>"$log"
}
flux_cancel() {
    jobs=$(flux_jobs '{id}')
    [ -n "$jobs" ] || return 0
    # shellcheck disable=SC2086  # job ids are words
    flux cancel -m "$1" $jobs </dev/null >/dev/null 2>&1
    n=0
    while [ -n "$(flux_jobs '{id}')" ] && [ "$n" -lt 150 ]; do
        sleep "$tick"
        n=$((n + 1))
    done
}
# We hold the lock: an active job of this name is an earlier attempt's that nobody awaits.
[ -z "$flux_job" ] || flux_cancel "compat-lab: an earlier attempt of this run, left running"

if [ -n "$stage" ]; then
    for file in "$stage"/* "$stage"/.[!.]*; do
        { [ -e "$file" ] || [ -L "$file" ]; } || continue
        link=$run_dir/${file##*/}
        [ -e "$link" ] || [ -L "$link" ] || ln -s "$file" "$link"
    done
fi
[ -n "$cwd" ] || cwd=$run_dir

# Nanoseconds since the epoch (whole seconds where date has no %N).
now_ns() {
    now=$(date +%s%N)
    case $now in *[!0-9]*) echo "$(date +%s)000000000" ;; *) echo "$now" ;; esac
}
# Children's user and sys seconds from `times` (second line, "0m1.5s 0m0.25s"). `times` must run in
# this shell, not in a command substitution's subshell, so it goes through a file.
child_times() {
    times >"$run_dir/.times"
    awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); printf "%s ", t[1] * 60 + t[2] } }' \
        "$run_dir/.times"
}
# The log, or its head and tail with a line saying how much was left out between them.
excerpt() {
    size=$(wc -c <"$1" | tr -d ' ')
    if [ "$size" -le $((OUTPUT_HEAD + OUTPUT_TAIL)) ]; then
        cat "$1"
    else
        dd if="$1" bs="$OUTPUT_HEAD" count=1 2>/dev/null
        printf '\n[compat-lab: %s bytes of output left out here; the whole log is %s]\n' \
            $((size - OUTPUT_HEAD - OUTPUT_TAIL)) "$1"
        tail -c "$OUTPUT_TAIL" "$1"
    fi
}
json_string() {
    tab=$(printf '\t') cr=$(printf '\r')
    excerpt "$1" | tr -d '\000-\010\013\014\016-\037' |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$tab/\\\\t/g" -e "s/$cr/\\\\r/g" |
        awk 'BEGIN { printf "\"" } { printf "%s\\n", $0 } END { printf "\"" }'
}
json_quote() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/"/'; }

group=""
command -v setsid >/dev/null 2>&1 && group=setsid
rusage=""
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 && rusage=yes
rm -f "$ended" "$run_dir/.maxrss"

child_times >"$run_dir/.before"
started=$(awk -v ns="$(now_ns)" 'BEGIN { printf "%.6f", ns / 1e9 }')
deadline=$(awk -v ns="$(now_ns)" -v t="$timeout" 'BEGIN { printf "%.0f", ns + t * 1e9 }')
# The NAME=VALUE words are exported in the run's own shell only: the executor's tools keep their environment.
# shellcheck disable=SC2086  # $group is empty or one word
(
    i=0
    while [ "$i" -lt "$nenv" ]; do
        export "$1"
        shift
        i=$((i + 1))
    done
    cd "$cwd" || exit 127
    # the profiling step runs the command (see profile_run.sh beside this file)
    [ -z "$profile" ] || set -- sh "$here/profile_run.sh" "$profile" "$run_dir/profile" "$root" "$@"
    [ -z "$rusage" ] || exec $group /usr/bin/time -o "$run_dir/.maxrss" -f %M "$@"
    exec $group "$@"
) </dev/null >"$log" 2>&1 9>&- &
pid=$!

# Signal the run's process group (its leader is $pid under setsid), or the command alone without setsid.
signal_run() {
    if [ -n "$group" ]; then kill -s "$1" -- "-$pid" 2>/dev/null; else kill -s "$1" "$pid" 2>/dev/null; fi
}
# A Flux job is cancelled in Flux first: ending its client would leave it running.
end_run() {
    echo "$1" >"$ended"
    [ -z "$flux_job" ] || flux_cancel "compat-lab: $1"
    signal_run TERM
    n=0
    while kill -0 "$pid" 2>/dev/null && [ "$n" -lt "$GRACE_TICKS" ]; do
        sleep "$tick"
        n=$((n + 1))
    done
    signal_run KILL
}
# Ansible's cancellation hangs up or terminates the executor: the run, in its own process group, is ended
# first, as for a stop.
stopped_by_signal() {
    trap '' HUP INT TERM
    [ -z "$watcher" ] || kill "$watcher" 2>/dev/null
    [ -z "$flux_job" ] || flux_cancel "compat-lab: stopped"
    signal_run TERM
    (
        sleep "$((GRACE_TICKS / 5))"
        signal_run KILL
    ) &
    killer=$!
    wait "$pid" 2>/dev/null
    signal_run KILL
    kill "$killer" 2>/dev/null
    rm -f "$ended" "$run_dir/.maxrss" "$run_dir/.times" "$run_dir/.before"
    exit "$EXIT_STOPPED"
}
watcher=""
trap stopped_by_signal HUP INT TERM
# The watcher ends the run at its deadline or on a stop; the shell itself waits for the run, so a run
# that ends is reported at once.
(
    while sleep "$tick"; do
        kill -0 "$pid" 2>/dev/null || exit 0
        if [ "$(now_ns)" -ge "$deadline" ]; then
            end_run timeout
            exit 0
        fi
        if stop_requested; then
            end_run stopped
            exit 0
        fi
    done
) &
watcher=$!
rc=0
{ wait "$pid"; } 2>/dev/null || rc=$?
why=""
[ -s "$ended" ] && why=$(cat "$ended")
[ -n "$why" ] && wait "$watcher" # the watcher ends the group: let it finish
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
finished=$(awk -v ns="$(now_ns)" 'BEGIN { printf "%.6f", ns / 1e9 }')
child_times >"$run_dir/.after"
# a Flux job cancelled by a stop (the cancel action's, on the lead broker) ends its client as if it ended
if [ "$why" = stopped ] || { [ -n "$flux_job" ] && stop_requested; }; then
    rm -f "$ended" "$run_dir/.maxrss" "$run_dir/.times" "$run_dir/.before" "$run_dir/.after"
    exit "$EXIT_STOPPED"
fi
timed_out=false
[ "$why" = timeout ] && timed_out=true
if [ -n "$flux_job" ] && [ "$rc" -ne 0 ] && grep -Eq 'PMI_Init \[[^ ]*pmix_flux\.c:[0-9]+:flux_init\]' "$log"; then
    explain_flux_pmi "$@"
fi

wall=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.6f", b - a }')
queue=null rusage_of=command
if [ -n "$flux_job" ]; then
    rusage_of=flux-client
    # the latest job of this name submitted since the start: its run time and wait, and whether Flux timed it out
    times=$(flux_jobs '{id} {result} {t_submit} {t_run} {t_cleanup}' -a |
        awk -v since="$started" 'NF == 5 && $3 >= since - 1 && $4 > 0 && $5 >= $4 && $3 > best {
            best = $3; line = sprintf("%.6f %.6f %s %.6f %.6f", $5 - $4, $4 - $3, $2, $4, $5) } END { if (line) print line }')
    if [ -n "$times" ]; then
        # shellcheck disable=SC2086  # five words
        set -- $times
        wall=$1 queue=$2 started=$4 finished=$5
        [ "$3" = TIMEOUT ] && timed_out=true
    fi
fi
# shellcheck disable=SC2046  # two numbers from each file
set -- $(cat "$run_dir/.before" "$run_dir/.after")
user=$(awk -v a="$1" -v b="$3" 'BEGIN { printf "%.6f", b - a }')
sys=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.6f", b - a }')
maxrss=null
if [ -s "$run_dir/.maxrss" ]; then
    maxrss=$(tail -n 1 "$run_dir/.maxrss")
    case $maxrss in *[!0-9]* | "") maxrss=null ;; esac
fi
rm -f "$ended" "$run_dir/.maxrss" "$run_dir/.times" "$run_dir/.before" "$run_dir/.after"

# The profiling step's raw profiles, those it left: "profile": {"status": ..., "perf.csv": ..., "ebpf.json": ...}
profile_json=""
if [ -n "$profile" ]; then
    profile_json=', "profile": {'
    sep=""
    left_out=""
    for name in status perf.csv ebpf.json; do
        [ -f "$run_dir/profile/$name" ] || continue
        size=$(wc -c <"$run_dir/profile/$name" | tr -d ' ')
        if [ "$size" -gt "$PROFILE_CAP" ]; then
            left_out="$left_out${left_out:+, }$(json_quote "$name"): $size"
            continue
        fi
        profile_json="$profile_json$sep$(json_quote "$name"): $(json_string "$run_dir/profile/$name")"
        sep=", "
    done
    [ -z "$left_out" ] || profile_json="$profile_json$sep\"left_out\": {$left_out}"
    profile_json="$profile_json}"
fi
{ printf '{"id": %s, "rc": %s, "timed_out": %s, "wall": %s, "queue": %s, "user": %s, "sys": %s, "maxrss_kb": %s, "rusage_of": "%s", "started": %s, "finished": %s, "host": %s, "log_path": %s, "output": %s%s}\n' \
    "$(json_quote "$id")" "$rc" "$timed_out" "$wall" "$queue" "$user" "$sys" "$maxrss" "$rusage_of" "$started" "$finished" \
    "$(json_quote "$(uname -n)")" "$(json_quote "$log")" "$(json_string "$log")" "$profile_json" >"$result.tmp" &&
    mv "$result.tmp" "$result"; } 2>/dev/null || { echo "execute_run.sh: cannot write $result" >&2; exit "$EXIT_RUN_DIR"; }
cat "$result"
exit "$EXIT_REPORTED"
