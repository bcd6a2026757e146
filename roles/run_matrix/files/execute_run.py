#!/usr/bin/env python3
"""Execute one run of the matrix and print its result as one JSON line.

The executor contract, written down in roles/run_matrix/README.md and held by tests/test_executors.py. One
executor serves every cluster: on a MiniCluster it runs under `flux python`, the interpreter Flux runs its own
commands with, so it keeps to the standard library and to Python 3.6 (flux-core's oldest; the tests check it):

    execute_run.py [-j | -J] [-o OWNER_PID] [-s STOP_FILE] [-g STAGE_DIR] [-c CWD] [-p PROFILERS [-t ROOT]] ID TIMEOUT RUN_DIR NENV [NAME=VALUE]... ARGV...

- ID: the run id (letters, digits, `_ . -`); TIMEOUT: seconds, a positive number (required);
  RUN_DIR: the run's own directory (created); NENV: how many NAME=VALUE words follow; they are set
  for the command only (NAME is `[A-Za-z_][A-Za-z0-9_]*`; VALUE is anything after the first `=`);
  ARGV: the command, executed as it is (no shell) with stdin from /dev/null.
- `-g`: the files of STAGE_DIR are linked into RUN_DIR first; `-c`: the command's working directory
  (RUN_DIR by default); `-o`/`-s`: the run stops when the process OWNER_PID is gone or STOP_FILE exists.
- `-p PROFILERS` (comma-separated: perf, ebpf): the profiling step, `profile_run.sh` beside this file,
  runs the command (`-t ROOT`: `tree`, the default, or `flux-shell`) and keeps the raw profiles in
  RUN_DIR/profile; the result gains "profile": {"status", "perf.csv", "ebpf.json"} (the files' texts,
  those that exist and are at most 128 KiB; a larger one is left out and named with its size in
  "left_out": {NAME: BYTES}, as the files stay in RUN_DIR/profile). A profiler that cannot work here is
  said so in "status"; the run happens anyway.
- One executor per RUN_DIR: it holds a lock on RUN_DIR/.lock (flock) while it works; another one for the
  same RUN_DIR waits for it (or for a stop) first.
- A RUN_DIR whose result.json is a complete result of this ID is reported again with `"cached": true`
  and not run; any other result.json (another run's, a torn one) is replaced by running.
- `-f` (fresh: a retry of a run stored as failed): everything an earlier attempt left in RUN_DIR (its
  result.json, log, profiles) is removed first, under the lock, so the run is executed again.
- `-j`: ARGV submits a Flux job named ID (`flux run --job-name=ID`; `flux` on PATH, FLUX_URI set). An
  active job of that name (left by an earlier attempt whose executor is gone) is cancelled before the
  start; on a stop or at TIMEOUT the job is cancelled in Flux (`flux cancel`) before the command's group
  is ended. "wall" is then the job's run time in Flux and "queue" its wait before it ran, and
  "timed_out" is also true when Flux ended the job at its own time limit.
- `-J` (this executor only: Slurm runs on a machine with Python): ARGV starts a Slurm job step named ID
  (`srun -J ID`; `scancel`/`squeue` on PATH, SLURM_CONF set in the NAME=VALUE words or the environment). An
  active job of that name (an earlier attempt's, its executor gone) is cancelled before the start; on a stop
  or at TIMEOUT it is cancelled in Slurm (`scancel --name`) before the command's group is ended.
  "rusage_of" is then "srun-client". A job Slurm queues behind others (srun says "job N queued and waiting
  for resources", then "job N has been allocated resources") has its wait in "queue", not in "wall", and
  TIMEOUT counts from its allocation, as Slurm's own limit (`srun -t`) does. When srun cannot reach the
  controller ("Unable to contact slurm controller": slurmctld down), nothing ran: no result.json, the JSON
  line is {"id", "unreachable": srun's line}, and the exit code is 5 (the run stays pending).
- The command runs in its own process group: at TIMEOUT, or on a stop, the whole group gets SIGTERM,
  then SIGKILL 5 s later. The executor itself ended by SIGTERM, SIGHUP or SIGINT is a stop too: it
  ends the run's group first.
- Output (stdout and stderr) goes to RUN_DIR/output.log; the result is written atomically to
  RUN_DIR/result.json (so a planner killed meanwhile can still collect it) and printed:
  {"id", "rc", "timed_out", "wall", "queue", "user", "sys", "maxrss_kb", "rusage_of", "started",
  "finished", "host", "log_path", "output"} (+ "cached": true), "id" first; "output" is the log when it
  is at most 256 KiB, else its first 64 KiB, a line saying how many bytes were left out, and its last
  192 KiB (what travels back through Ansible stays small whatever the run writes; the log stays whole);
  "started"/"finished" are when the run ran (with -j, the job's start and end in Flux; with -J, from its
  allocation); "queue" is null without -j or -J; "rusage_of" says whose user/sys/maxrss_kb they are: "command" (the
  command and what it waited for) or, with -j, "flux-client" (the `flux run` client, not the job's tasks).
  With -j, a stop asked while the job ran reports nothing, even when the client ended meanwhile.

- "rc" is the command's exit status: 128+N when signal N ended it, 127 when it could not be started.

Exit codes (EXIT_*): 0 a result was printed (whatever the command's own exit code); 2 bad request (a
message on stderr, nothing run); 3 stopped (owner gone or stop file; nothing printed, no result.json:
the run stays pending); 4 RUN_DIR cannot be created or result.json written; 5 (-J) the scheduler could
not be reached, nothing ran (the run stays pending).
"""

import fcntl
import getopt
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

#: a child's output read, not shown (subprocess.run's capture_output and text are Python 3.7's: the executor runs
#: under Python 3.6, the oldest flux-core runs its own commands with)
OUTPUT = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
TEXT_OUTPUT = {**OUTPUT, "universal_newlines": True}

EXIT_REPORTED, EXIT_BAD_REQUEST, EXIT_STOPPED, EXIT_RUN_DIR, EXIT_UNREACHABLE = 0, 2, 3, 4, 5
USAGE = "usage: execute_run.py [-f] [-j | -J] [-o OWNER_PID] [-s STOP_FILE] [-g STAGE_DIR] [-c CWD] " \
        "[-p PROFILERS [-t ROOT]] ID TIMEOUT RUN_DIR NENV [NAME=VALUE]... ARGV..."
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
POLL = 0.05
GRACE = 5.0
#: bytes of the log's head and tail the result carries (a result travels back as one Ansible event, whose
#: size Ansible and ansible-runner do not handle beyond a few hundred KiB)
OUTPUT_HEAD, OUTPUT_TAIL = 64 * 1024, 192 * 1024
#: bytes of each raw profile the result carries; a larger one stays in RUN_DIR/profile only
PROFILE_CAP = 128 * 1024
PROFILERS = ("perf", "ebpf")
PROFILE_ROOTS = ("tree", "flux-shell")
#: the profiling step's files in RUN_DIR/profile that the result carries
PROFILE_FILES = ("status", "perf.csv", "ebpf.json")
#: seconds to wait for Flux to end a cancelled job (its kill-timeout is 5 s)
FLUX_SETTLE = 30.0
#: what srun prints (stderr, at its default verbosity) when the job waits for cores, and when it got them
#: (Slurm's src/srun/libsrun/allocate.c: "job %u queued and waiting for resources", "job %u has been
#: allocated resources")
SRUN_QUEUED, SRUN_ALLOCATED = b"queued and waiting for resources", b"has been allocated resources"
#: what srun prints when slurmctld cannot be reached and no job was created (src/common/slurm_protocol_api.c,
#: "Unable to contact slurm controller (connect failure)"); it exits 1 after its retries
SRUN_UNREACHABLE = "Unable to contact slurm controller"
#: bytes at the head of the log where srun's allocation lines are looked for
SRUN_HEAD = 4096


class BadRequest(Exception):
    pass


def parse(args):
    """The request from the command line, or BadRequest saying what is wrong."""
    try:
        opts, rest = getopt.getopt(args, "fjJo:s:g:c:p:t:")
    except getopt.GetoptError as err:
        raise BadRequest(str(err)) from None
    options = dict(opts)
    if len(rest) < 5:
        raise BadRequest("too few arguments")
    run_id, timeout, run_dir, nenv = rest[:4]
    if not RUN_ID.fullmatch(run_id):
        raise BadRequest(f"run id {run_id!r} is not letters, digits, _ . -")
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise BadRequest(f"timeout {timeout!r} is not a positive number of seconds")
    if not nenv.isdigit() or len(rest) < 5 + int(nenv):
        raise BadRequest(f"NENV {nenv!r} is not the number of NAME=VALUE words that follow (then the command)")
    env = {}
    for pair in rest[4:4 + int(nenv)]:
        name, sep, value = pair.partition("=")
        if not sep or not ENV_NAME.fullmatch(name):
            raise BadRequest(f"{pair!r} is not NAME=VALUE with NAME [A-Za-z_][A-Za-z0-9_]*")
        env[name] = value
    owner = options.get("-o")
    if owner is not None and not owner.isdigit():
        raise BadRequest(f"owner pid {owner!r} is not a number")
    profile = options.get("-p")
    if profile is not None and (not profile or not set(profile.split(",")) <= set(PROFILERS)):
        raise BadRequest(f"profilers {profile!r} are not a comma-separated list of {', '.join(PROFILERS)}")
    root = options.get("-t", "tree")
    if root not in PROFILE_ROOTS:
        raise BadRequest(f"profile root {root!r} is not one of {', '.join(PROFILE_ROOTS)}")
    return {"id": run_id, "timeout": seconds, "run_dir": os.path.abspath(run_dir), "env": env, "argv": rest[4 + int(nenv):],
            "owner_pid": int(owner) if owner else None, "stop_file": options.get("-s") or None,
            "stage": options.get("-g") or None, "cwd": options.get("-c") or None, "profile": profile,
            "profile_root": root, "flux_job": "-j" in options, "slurm_job": "-J" in options,
            "fresh": "-f" in options}


def profiled(spec):
    """The command to start: the run's own, or the profiling step around it."""
    if not spec["profile"]:
        return spec["argv"]
    step = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_run.sh")
    return ["sh", step, spec["profile"], os.path.join(spec["run_dir"], "profile"), spec["profile_root"],
            *spec["argv"]]


def profile_texts(spec):
    """The raw profiles the profiling step left, those small enough to travel; the others in "left_out"."""
    out, left_out = {}, {}
    for name in PROFILE_FILES:
        try:
            with open(os.path.join(spec["run_dir"], "profile", name), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > PROFILE_CAP:
                    left_out[name] = size
                else:
                    out[name] = handle.read(PROFILE_CAP).decode("utf-8", "replace")
        except OSError:
            pass
    if left_out:
        out["left_out"] = left_out
    return out


def excerpt(path):
    """The log, or its head and tail with a line saying how much was left out between them."""
    with open(path, "rb") as log:
        size = os.fstat(log.fileno()).st_size
        if size <= OUTPUT_HEAD + OUTPUT_TAIL:
            return log.read(OUTPUT_HEAD + OUTPUT_TAIL).decode("utf-8", "replace")
        head = log.read(OUTPUT_HEAD)
        log.seek(size - OUTPUT_TAIL)
        tail = log.read(OUTPUT_TAIL)
    gap = f"\n[compat-lab: {size - OUTPUT_HEAD - OUTPUT_TAIL} bytes of output left out here; the whole log is {path}]\n"
    return head.decode("utf-8", "replace") + gap + tail.decode("utf-8", "replace")


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
    return not owner_alive(spec["owner_pid"]) or bool(spec["stop_file"] and os.path.exists(spec["stop_file"]))


def cached(path, run_id):
    """The result kept in `path` when it is a complete result of this run, else None."""
    try:
        with open(path) as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and result.get("id") == run_id else None


def stage(source, run_dir):
    for name in os.listdir(source):
        link = os.path.join(run_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(source, name), link)


def lock(run_dir, spec):
    """The run directory's lock, once no other executor holds it; None when a stop came first."""
    handle = open(os.path.join(run_dir, ".lock"), "a")
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if stop_requested(spec):
                handle.close()
                return None
            time.sleep(POLL)


def flux_jobs(name, *fields, every=False):
    """Flux's jobs named `name` (active ones, or all with `every`), newest first, as tuples of `fields`."""
    argv = ["flux", "jobs", "--name=" + name, "-no", " ".join("{%s}" % field for field in fields)]
    try:
        done = subprocess.run(argv + (["-a"] if every else []), stdin=subprocess.DEVNULL, **TEXT_OUTPUT, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [tuple(line.split()) for line in done.stdout.splitlines() if len(line.split()) == len(fields)]


def flux_cancel(name, note):
    """Cancel the active jobs named `name`; wait (a while) until Flux has ended them."""
    deadline = time.monotonic() + FLUX_SETTLE
    jobs = [job_id for (job_id,) in flux_jobs(name, "id")]
    if jobs:
        subprocess.run(["flux", "cancel", "-m", note, *jobs], stdin=subprocess.DEVNULL, **OUTPUT,
                       timeout=60)
    while jobs and time.monotonic() < deadline:
        time.sleep(POLL * 4)
        jobs = flux_jobs(name, "id")


def flux_times(name, since):
    """(run time, queue wait, result, start, end) of the latest job named `name` submitted since `since`, else
    None."""
    for job_id, result, submit, run, cleanup in flux_jobs(name, "id", "result", "t_submit", "t_run", "t_cleanup",
                                                         every=True):
        try:
            submit, run, cleanup = float(submit), float(run), float(cleanup)
        except ValueError:
            continue
        if submit >= since - 1.0 and run > 0 and cleanup >= run:
            return cleanup - run, run - submit, result, run, cleanup
    return None


def slurm_jobs(name, env):
    """Slurm's active jobs named `name` (their ids)."""
    try:
        done = subprocess.run(["squeue", "-h", "--name=" + name, "-o", "%i"], stdin=subprocess.DEVNULL,
                              **TEXT_OUTPUT, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return done.stdout.split()


def slurm_cancel(name, env):
    """Cancel the active jobs named `name`; wait (a while) until Slurm has ended them (KillWait is 5 s)."""
    deadline = time.monotonic() + FLUX_SETTLE
    jobs = slurm_jobs(name, env)
    if jobs:
        subprocess.run(["scancel", "--name=" + name], stdin=subprocess.DEVNULL, **OUTPUT, timeout=60,
                       env=env)
    while jobs and time.monotonic() < deadline:
        time.sleep(POLL * 4)
        jobs = slurm_jobs(name, env)


#: Open MPI 4's flux PMI component when it cannot dlopen() (or init) Flux's libpmi.so from FLUX_PMI_LIBRARY_PATH:
#: OPAL_PMI_ERROR(rc, "PMI_Init") in opal/mca/pmix/flux/pmix_flux.c (v4.x), which prints no dlerror()
OMPI_FLUX_PMI = re.compile(r"PMI_Init \[\S*pmix_flux\.c:\d+:flux_init\]")
#: ldd's lines that say why a library does not load (glibc elf/dl-version.c, ldd's own "No such file")
LOADER_REFUSED = re.compile(r"not found|No such file|cannot open|wrong ELF class")


def explain_flux_pmi(spec, log_path, env):
    """After Open MPI's flux PMI component failed, add the loader's words to the log: `ldd` on Flux's libpmi.so
    (`flux getattr conf.pmi_library_path`, what the shell puts in FLUX_PMI_LIBRARY_PATH) in the run's image
    with the run's binds, so a view newer than the image is told from a library not bound in."""
    with open(log_path, errors="replace") as handle:
        if not OMPI_FLUX_PMI.search(handle.read()):
            return
    argv = spec["argv"]
    at = next((i for i in range(len(argv) - 1) if os.path.basename(argv[i]) == "singularity"
               and argv[i + 1] == "exec"), None)
    if at is None:
        return
    flags, rest = [], argv[at + 2:]
    while len(rest) > 2 and rest[0].startswith("-"):
        if rest[0] in ("--bind", "-B"):
            flags += rest[:2]
        rest = rest[2:]
    try:
        library = subprocess.run(["flux", "getattr", "conf.pmi_library_path"], env=env, **TEXT_OUTPUT, timeout=60,
                                 check=True).stdout.strip()
        probe = subprocess.run([argv[at], "exec", *flags, rest[0], "ldd", library], env=env, **TEXT_OUTPUT,
                               timeout=120, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return
    said = [line.strip() for line in (probe.stdout + probe.stderr).splitlines() if LOADER_REFUSED.search(line)]
    with open(log_path, "a") as log:
        for line in said or ["loads (the failure is not the loader's)"]:
            log.write(f"compat-lab: ldd in the image: {line}\n")


class SrunQueue:
    """When a Slurm job the command submits waited for cores: srun's lines at the head of the log, read as they
    come (only when the log grew) until they say, or until the head is past them."""

    def __init__(self, log_path, started):
        self.log_path, self.started = log_path, started
        self.size, self.queued, self.allocated, self.settled = 0, False, None, False

    def pending(self):
        """Whether the job still waits for its allocation (read from the log as it is now)."""
        if self.settled:
            return False
        try:
            size = os.stat(self.log_path).st_size
        except OSError:
            return False
        if size != self.size:
            self.size = size
            with open(self.log_path, "rb") as log:
                head = log.read(SRUN_HEAD)
            self.queued = SRUN_QUEUED in head
            if SRUN_ALLOCATED in head:
                self.allocated, self.settled = time.monotonic(), True
            elif not self.queued and len(head) >= SRUN_HEAD:
                self.settled = True
        return self.queued and self.allocated is None

    def seconds(self):
        """Seconds the job waited before its allocation (0.0 when it was not queued)."""
        return self.allocated - self.started if self.queued and self.allocated is not None else 0.0


def unreached(log_path):
    """srun's line saying the controller could not be reached, when that is how it ended, else None."""
    try:
        with open(log_path, "rb") as log:
            head = log.read(SRUN_HEAD).decode("utf-8", "replace")
    except OSError:
        return None
    return next((line.strip() for line in head.splitlines() if SRUN_UNREACHABLE in line), None)


def kill_group(proc):
    """SIGTERM to the run's process group, SIGKILL to what is left of it after the grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def end_run(spec, proc, note):
    """A Flux job is cancelled in Flux first (ending its client would leave it running), then the group goes."""
    if spec["flux_job"]:
        flux_cancel(spec["id"], note)
    if spec["slurm_job"]:
        slurm_cancel(spec["id"], command_env(spec))
    kill_group(proc)


def command_env(spec):
    env = dict(os.environ)
    env.update(spec["env"])
    return env


def exit_status(proc):
    """The shell's convention: 128+N for a command killed by signal N."""
    if proc is None:
        return 127
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


def execute(spec):
    run_dir = spec["run_dir"]
    done = os.path.join(run_dir, "result.json")
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as err:
        print(f"execute_run.py: cannot create {run_dir}: {err.strerror}", file=sys.stderr)
        return EXIT_RUN_DIR
    held = lock(run_dir, spec)
    if held is None:
        return EXIT_STOPPED
    with held:
        return execute_locked(spec, run_dir, done)


def clear(run_dir):
    """Remove what an earlier attempt left in RUN_DIR (its result, log, profiles), the lock aside."""
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name == ".lock":
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def execute_locked(spec, run_dir, done):
    if spec["fresh"]:
        try:
            clear(run_dir)
        except OSError as err:
            print(f"execute_run.py: cannot clear {run_dir}: {err.strerror}", file=sys.stderr)
            return EXIT_RUN_DIR
    result = cached(done, spec["id"])
    if result is not None:
        print(json.dumps(dict(result, cached=True)))
        return EXIT_REPORTED
    if stop_requested(spec):
        return EXIT_STOPPED
    if spec["flux_job"]:  # we hold the lock: a job of this name is an earlier attempt's that nobody awaits
        flux_cancel(spec["id"], "compat-lab: an earlier attempt of this run, left running")
    if spec["slurm_job"]:
        slurm_cancel(spec["id"], command_env(spec))
    if spec["stage"]:
        stage(spec["stage"], run_dir)
    env = command_env(spec)
    log_path = os.path.join(run_dir, "output.log")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    t0 = time.monotonic()
    timed_out = interrupted = False
    with open(log_path, "wb") as log, open(os.devnull, "rb") as devnull:
        try:
            proc = subprocess.Popen(profiled(spec), cwd=spec["cwd"] or run_dir, env=env, stdin=devnull,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            log.write(f"{spec['argv'][0]}: {err.strerror}\n".encode())
            proc = None
        deadline = t0 + spec["timeout"]
        srun = SrunQueue(log_path, t0) if spec["slurm_job"] else None
        # a stop signal may come at any point of the loop (in a check as well as in the wait): the whole
        # loop is guarded, so the run's group is always ended with it
        try:
            while proc is not None:
                try:
                    proc.wait(timeout=POLL)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if srun is not None and srun.pending():  # the run's time starts with its cores
                    deadline = time.monotonic() + spec["timeout"]
                if time.monotonic() >= deadline:
                    timed_out = True
                    end_run(spec, proc, "compat-lab: the run's timeout")
                    break
                if stop_requested(spec):
                    interrupted = True
                    end_run(spec, proc, "compat-lab: the sweep was stopped")
                    break
        except Stopped:
            ignore_stops()
            interrupted = True
            end_run(spec, proc, "compat-lab: the sweep was stopped")
    wall = time.monotonic() - t0
    # a Flux job cancelled by a stop (the cancel action's, on the lead broker) ends its client as if it ended
    if interrupted or (spec["flux_job"] and stop_requested(spec)):
        return EXIT_STOPPED
    queue = None
    unreachable = srun is not None and proc is not None and proc.returncode != 0 and srun.allocated is None \
        and unreached(log_path)
    if unreachable:
        print(json.dumps({"id": spec["id"], "unreachable": unreachable}))
        return EXIT_UNREACHABLE
    if spec["flux_job"] and proc is not None and proc.returncode:
        explain_flux_pmi(spec, log_path, env)
    finished = time.time()
    if srun is not None:
        srun.pending()  # the last lines srun wrote
        queue = srun.seconds()
        wall -= queue
        started += queue
    if spec["flux_job"]:
        times = flux_times(spec["id"], started)
        if times is not None:
            wall, queue, started, finished = times[0], times[1], times[3], times[4]
            timed_out = timed_out or times[2] == "TIMEOUT"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = excerpt(log_path)
    result = {
        "id": spec["id"], "rc": exit_status(proc), "timed_out": timed_out,
        "wall": round(wall, 6), "queue": None if queue is None else round(queue, 6),
        "user": round(after.ru_utime - before.ru_utime, 6),
        "sys": round(after.ru_stime - before.ru_stime, 6), "maxrss_kb": after.ru_maxrss,
        "rusage_of": "flux-client" if spec["flux_job"] else "srun-client" if spec["slurm_job"] else "command", "started": started, "finished": finished, "host": socket.gethostname(), "log_path": log_path,
        "output": output,
    }
    if spec["profile"]:
        result["profile"] = profile_texts(spec)
    tmp = done + ".tmp"
    try:
        with open(tmp, "w") as handle:
            json.dump(result, handle)
        os.replace(tmp, done)
    except OSError as err:
        print(f"execute_run.py: cannot write {done}: {err.strerror}", file=sys.stderr)
        return EXIT_RUN_DIR
    print(json.dumps(result))
    return EXIT_REPORTED


class Stopped(Exception):
    """The executor itself was told to end (SIGTERM, SIGHUP, SIGINT)."""


def stop(signum, frame):
    raise Stopped


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def ignore_stops():
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def main(args):
    try:
        spec = parse(args)
    except BadRequest as err:
        print(f"execute_run.py: {err}\n{USAGE}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    # Ansible's cancellation hangs up or terminates the executor; the run, in its own process group,
    # would outlive it: it is ended first.
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        return execute(spec)
    except Stopped:
        return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
