#!/usr/bin/env python3
"""Execute one run of the matrix and print its result as one JSON line.

Called once per loop item by roles/run_matrix with the run as JSON (argv, env, run_dir, stage,
timeout, owner_pid, stop_file). It links the staged input into the run's own directory, runs the
command there with stdin from /dev/null under a timeout, keeps the output in `output.log`, measures
wall time and the children's resource use (user, sys, max RSS), writes `result.json` atomically
(so a planner killed meanwhile can still collect it) and prints the same JSON for the Ansible event.

It stops the run (and prints nothing) when the planner that owns the sweep is gone or asked to stop:
an orphaned sweep must not go on burning cores.
"""

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

POLL = 0.05
OUTPUT_CAP = 4 * 1024 * 1024


def owner_alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_requested(spec):
    return not owner_alive(spec.get("owner_pid")) or (spec.get("stop_file") and os.path.exists(spec["stop_file"]))


def stage(source, run_dir):
    for name in os.listdir(source):
        link = os.path.join(run_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(source, name), link)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def main():
    spec = json.loads(sys.argv[1])
    run_dir = spec["run_dir"]
    os.makedirs(run_dir, exist_ok=True)
    done = os.path.join(run_dir, "result.json")
    if os.path.exists(done):
        with open(done) as handle:
            result = json.load(handle)
        if result.get("id") == spec["id"]:
            print(json.dumps(dict(result, cached=True)))
            return 0
    if stop_requested(spec):
        return 3
    if spec.get("stage"):
        stage(spec["stage"], run_dir)
    env = dict(os.environ)
    env.update(spec.get("env") or {})
    log_path = os.path.join(run_dir, "output.log")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    t0 = time.monotonic()
    timed_out = interrupted = False
    with open(log_path, "wb") as log, open(os.devnull, "rb") as devnull:
        try:
            proc = subprocess.Popen(spec["argv"], cwd=spec.get("cwd") or run_dir, env=env, stdin=devnull,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            log.write(f"{spec['argv'][0]}: {err.strerror}\n".encode())
            proc = None
        deadline = t0 + float(spec.get("timeout") or 3600)
        while proc is not None:
            try:
                proc.wait(timeout=POLL)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    timed_out = True
                    kill_group(proc)
                    break
                if stop_requested(spec):
                    interrupted = True
                    kill_group(proc)
                    break
    wall = time.monotonic() - t0
    if interrupted:
        return 3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "rb") as log:
        log.seek(0, os.SEEK_END)
        size = log.tell()
        log.seek(max(size - OUTPUT_CAP, 0))
        output = log.read().decode("utf-8", "replace")
    result = {
        "id": spec["id"], "rc": proc.returncode if proc is not None else 127, "timed_out": timed_out,
        "wall": round(wall, 6), "user": round(after.ru_utime - before.ru_utime, 6),
        "sys": round(after.ru_stime - before.ru_stime, 6), "maxrss_kb": after.ru_maxrss,
        "started": started, "finished": time.time(), "host": socket.gethostname(), "log_path": log_path,
        "output": output,
    }
    tmp = done + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle)
    os.replace(tmp, done)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
