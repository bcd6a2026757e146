#!/bin/sh
# Execute one run of the matrix where there is no Python (a MiniCluster pod) and print its result as
# one JSON line with the keys of execute_run.py: id, rc, timed_out, wall, user, sys, maxrss_kb,
# started, finished, host, log_path, output (and cached, for a result kept from an earlier attempt).
#
# usage: execute_run.sh ID TIMEOUT RUN_DIR CWD NENV [NAME=VALUE ...] ARGV...
#   NENV NAME=VALUE pairs are exported first; CWD empty means RUN_DIR.
# POSIX sh plus coreutils' timeout; GNU time, where present, gives the max RSS (null otherwise).

set -u
OUTPUT_CAP=4194304

id=$1 timeout=$2 run_dir=$3 cwd=$4 nenv=$5
shift 5
mkdir -p "$run_dir" || exit 2
result=$run_dir/result.json
log=$run_dir/output.log

# A run that finished while nobody was listening is reported, not run again.
if [ -s "$result" ]; then
    sed 's/}[[:space:]]*$/, "cached": true}/' "$result"
    exit 0
fi

i=0
while [ "$i" -lt "$nenv" ]; do
    export "$1"
    shift
    i=$((i + 1))
done
[ -n "$cwd" ] || cwd=$run_dir

epoch() {
    now=$(date +%s.%N 2>/dev/null)
    case $now in *N*|"") date +%s ;; *) echo "$now" ;; esac
}
# Children's user and sys seconds from `times` (second line, "0m1.5s 0m0.25s"). `times` must run in
# this shell, not in a command substitution's subshell, so it goes through a file.
child_times() {
    times >"$run_dir/.times"
    awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); printf "%s ", t[1] * 60 + t[2] } }' \
        "$run_dir/.times"
}
json_string() {
    tab=$(printf '\t') cr=$(printf '\r')
    tail -c "$OUTPUT_CAP" "$1" | tr -d '\000-\010\013\014\016-\037' |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$tab/\\\\t/g" -e "s/$cr/\\\\r/g" |
        awk 'BEGIN { printf "\"" } { printf "%s\\n", $0 } END { printf "\"" }'
}
json_quote() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/"/'; }

limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout -k 5 $timeout"
rusage=""
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 && rusage="/usr/bin/time -o $run_dir/.maxrss -f %M"

child_times >"$run_dir/.before"
started=$(epoch)
rc=0
# shellcheck disable=SC2086  # $rusage and $limit are word lists on purpose
(cd "$cwd" && exec $rusage $limit "$@") </dev/null >"$log" 2>&1 || rc=$?
finished=$(epoch)
child_times >"$run_dir/.after"

wall=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.6f", b - a }')
timed_out=false
if [ -n "$limit" ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } &&
    awk -v w="$wall" -v t="$timeout" 'BEGIN { exit !(w >= t) }'; then
    timed_out=true
fi
# shellcheck disable=SC2046  # two numbers from each file
set -- $(cat "$run_dir/.before" "$run_dir/.after")
user=$(awk -v a="$1" -v b="$3" 'BEGIN { printf "%.6f", b - a }')
sys=$(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.6f", b - a }')
maxrss=null
if [ -s "$run_dir/.maxrss" ]; then
    maxrss=$(tail -n 1 "$run_dir/.maxrss")
    case $maxrss in *[!0-9]*|"") maxrss=null ;; esac
fi
rm -f "$run_dir/.maxrss" "$run_dir/.times" "$run_dir/.before" "$run_dir/.after"

printf '{"id": %s, "rc": %s, "timed_out": %s, "wall": %s, "user": %s, "sys": %s, "maxrss_kb": %s, "started": %s, "finished": %s, "host": %s, "log_path": %s, "output": %s}\n' \
    "$(json_quote "$id")" "$rc" "$timed_out" "$wall" "$user" "$sys" "$maxrss" "$started" "$finished" \
    "$(json_quote "$(uname -n)")" "$(json_quote "$log")" "$(json_string "$log")" >"$result.tmp"
mv "$result.tmp" "$result"
cat "$result"
