"""Stand-ins for `flux`, `singularity` and `lmp` on a MiniCluster's lead broker, which cannot run here.

They log every call as a JSON list of its arguments (FAKE_FLUX_LOG) and do what the real commands do to
what the tests observe: `flux exec -r all CMD` runs CMD once per node (FAKE_FLUX_NODES, default 2) and
fails if any node fails; `flux run [-N n] [-n t] [-c c] [-o opt] [-t limit] [--job-name name] CMD` checks
n against the nodes and runs CMD once as a job of the instance, under a `flux-shell` as Flux does (there the
broker starts it, here the job's detached process), and `flux jobs` / `flux cancel` see and end such jobs
(see "flux" below), each once its cores are free (FAKE_FLUX_CORES_PER_NODE per node, default 64);
`flux resource info` reports the nodes; `singularity pull DEST URI` writes
DEST; `singularity exec [--bind B] [--env K=V] --pwd DIR SIF CMD` needs SIF (and each bind's source, under
FAKE_HOST_ROOT where that is set), enters DIR (under FAKE_ROOT) and runs CMD with the environment.

`lmp` stands for all the ranks `flux run` started and prints what real LAMMPS prints: one banner and
"Loop time of ... on N procs" when the ranks joined one MPI job, else one banner and "on 1 procs" per
rank (each rank a singleton run of the whole input), after a line echoing its arguments for the tests.
They join only through a PMI the image's MPI can
use (see `pmi_joins`): the PMI_FD service Flux's shell sets up for `-o pmi=simple` (its default) for
MPICH and Intel MPI; for Open MPI 4 also Flux's libpmi.so, named by FLUX_PMI_LIBRARY_PATH, which must
be visible inside the container (bound in, with the install tree the operator's view links into).

`install(directory)` writes the four commands (flux-shell too) as executables there, with this interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath


def cores_per_node() -> int:
    return int(os.environ.get("FAKE_FLUX_CORES_PER_NODE", "64"))


#: where the operator's Flux installs libpmi.so: its spack install tree, which the view at /mnt/flux/view
#: links into and the application container gets a copy of (flux-operator pkg/flux/view.go)
FLUX_PMI_LIBRARY = "/opt/software/linux-ubuntu22.04-aarch64/gcc-11.4.0/flux-core-0.61.2/lib/flux/libpmi.so"
#: the PMI services `-o pmi=LIST` may name that the operator's Flux has (flux-pmix is not in its views)
SIMPLE_PMI = {"simple", "pmi1", "pmi2"}


def log(name: str, args: list[str]) -> None:
    with open(os.environ["FAKE_FLUX_LOG"], "a") as handle:
        handle.write(json.dumps([name, *args]) + "\n")


def nodes() -> int:
    return int(os.environ.get("FAKE_FLUX_NODES", "2"))


# --- flux ----------------------------------------------------------------------------------------------
# Jobs live in the instance, not in the `flux run` client that submitted them: the stand-in keeps its job
# list in FAKE_ROOT/.flux/jobs.json (shared by every process, guarded by a lock file) and runs each job in
# a detached "job shell" process, so a client killed with SIGTERM or SIGKILL leaves its job running, as a
# real one does. What flux-core does and the stand-in copies (flux-core's src/modules/job-exec/job-exec.c,
# src/cmd/job/attach.c, doc/man1/flux-jobs.rst, flux-cancel.rst, common/job-param-additional.rst):
# - `-t/--time-limit` takes minutes or a Flux standard duration (a number with one suffix s, m, h or d);
#   at the limit Flux raises a fatal `timeout` exception ("resource allocation expired") and sends the
#   tasks SIGALRM, then SIGKILL after the kill-timeout (5 s); `flux run` then exits 142.
# - `flux cancel JOBID...` raises a `cancel` exception: SIGTERM, then SIGKILL after the kill-timeout.
# - the client prints `<t>s: job.exception type=T severity=0 NOTE` for an exception; one Ctrl-C only
#   warns ("one more ctrl-C within 2s to cancel or ctrl-Z to detach"), a second within 2 s cancels.
# - `flux jobs` lists active jobs (`-a`: all; `-f`: states or results; `--name`), with `-o` a Python
#   format over its fields, `-n` no header.
# - A job waits in state SCHED until the scheduler finds its cores free; jobs are started in the order they
#   were submitted, a job that does not fit holding back those behind it (Fluxion's default queue policy,
#   "fcfs: jobs are scheduled and run by their submission order", flux-sched
#   doc/man5/flux-config-sched-fluxion-qmanager.rst). `-N n -n t -c c` takes ceil(t*c/n) cores on each of n
#   nodes (flux-run(1): tasks spread over the nodes). A job cancelled while it waits never runs: it goes
#   inactive with result CANCELED and t_run 0. Its time limit counts from its start (t_run), its run time is
#   t_cleanup - t_run, its wait in the queue t_run - t_submit (flux-jobs(1) fields).
# - A request for more nodes, or more cores per node, than the instance has is refused at submission:
#   "unsatisfiable request" (the scheduler's feasibility check).
# Job ids are printed in decimal (the `{id}` field); the real default is F58.
KILL_TIMEOUT = 5.0
#: the planner's mark on the processes it owns (planner.edges.watchdog.ENV): a job runs in the pod, out of
#: reach of the controller's watchdog, so the stand-in's jobs do not carry it
OWNER_MARKER = "COMPAT_LAB_OWNER_PID"
ACTIVE = ("SCHED", "RUN", "CLEANUP")
FILTERS = {"depend": {"DEPEND"}, "priority": {"PRIORITY"}, "sched": {"SCHED"}, "run": {"RUN"},
           "cleanup": {"CLEANUP"}, "inactive": {"INACTIVE"}, "pending": {"DEPEND", "PRIORITY", "SCHED"},
           "running": {"RUN", "CLEANUP"}, "active": {"DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP"}}
RESULTS = ("completed", "failed", "canceled", "timeout")
FSD = re.compile(r"(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:e[-+]?[0-9]+)?([smhd]?)")


class FluxError(Exception):
    """A refusal, printed as flux prints its own: `flux-<command>: ERROR: <message>`, exit 1."""


def duration(text: str) -> float:
    """Seconds of a --time-limit: minutes by default, else a Flux standard duration (RFC 23)."""
    match = FSD.fullmatch(text)
    if not match:
        raise FluxError(f"invalid Flux standard duration '{text}'")
    value = float(text.rstrip("smhd"))
    return value * {"": 60, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(1)]


@contextlib.contextmanager
def jobs_db() -> Iterator[dict]:
    """The instance's job list, locked for the time of one read-modify-write."""
    state = Path(os.environ["FAKE_ROOT"]) / ".flux"
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "jobs.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = state / "jobs.json"
        db = json.loads(path.read_text()) if path.exists() else {"next": 1, "jobs": {}}
        yield db
        path.with_suffix(".tmp").write_text(json.dumps(db))
        path.with_suffix(".tmp").replace(path)


def job_output(job_id: str) -> Path:
    return Path(os.environ["FAKE_ROOT"]) / ".flux" / f"{job_id}.out"


def raise_exception(job: dict, kind: str, note: str) -> None:
    if job["state"] in ACTIVE and not job.get("exception"):
        job["exception"] = {"type": kind, "note": note, "t": time.time()}


def free_cores(db: dict) -> list[int]:
    """Each node's cores that no running job holds."""
    free = [cores_per_node()] * nodes()
    for job in db["jobs"].values():
        if job["state"] in ("RUN", "CLEANUP"):
            for node, cores in (job.get("alloc") or {}).items():
                free[int(node)] -= cores
    return free


def schedule(db: dict, job_id: str) -> bool:
    """Start the job when it is the first waiting one (fcfs) and its cores are free on enough nodes."""
    job = db["jobs"][job_id]
    waiting = [other for other in db["jobs"].values() if other["state"] == "SCHED"]
    if min(other["id"] for other in waiting) != job["id"]:
        return False
    per_node = -(-job["ncores"] // job["nnodes"])
    nodes_free = [node for node, cores in enumerate(free_cores(db)) if cores >= per_node][:job["nnodes"]]
    if len(nodes_free) < job["nnodes"]:
        return False
    job.update(state="RUN", t_run=time.time(), alloc={str(node): per_node for node in nodes_free})
    return True


def wait_for_cores(job_id: str) -> bool:
    """Wait in the queue until the job runs (True) or is cancelled while it waits (False: it ended)."""
    while True:
        with jobs_db() as db:
            job = db["jobs"][job_id]
            if job.get("exception"):
                now = time.time()
                job.update(state="INACTIVE", result="CANCELED", t_cleanup=now, t_inactive=now, returncode=1)
                return False
            if job["state"] == "RUN" or schedule(db, job_id):
                return True
        time.sleep(0.05)


def job_shell(job_id: str, command: list[str], env: dict[str, str], limit: float | None) -> None:
    """Runs in a detached process: waits for the job's cores, starts the tasks, enforces the time limit and
    cancellations, and records how the job ended."""
    if not wait_for_cores(job_id):
        return
    with open(job_output(job_id), "ab") as out:
        try:
            tasks = subprocess.Popen([shutil.which("flux-shell") or "flux-shell", *command], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        except OSError as err:
            out.write(f"flux-shell[0]: FATAL: task 0: start failed: {command[0]}: {err.strerror}\n".encode())
            tasks = None
    signalled: tuple[int, float] | None = None  # (signal, when) sent to the tasks
    while tasks is not None and tasks.poll() is None:
        time.sleep(0.05)
        with jobs_db() as db:
            job = db["jobs"][job_id]
            if limit is not None and time.time() >= job["t_run"] + limit:
                raise_exception(job, "timeout", "resource allocation expired")
            exception = job.get("exception")
        if exception and signalled is None:
            signalled = (signal.SIGALRM if exception["type"] == "timeout" else signal.SIGTERM, time.monotonic())
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tasks.pid, signalled[0])
        elif signalled and time.monotonic() - signalled[1] >= KILL_TIMEOUT:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tasks.pid, signal.SIGKILL)
    code = 127 if tasks is None else (tasks.returncode if tasks.returncode >= 0 else 128 - tasks.returncode)
    with jobs_db() as db:
        job = db["jobs"][job_id]
        now = time.time()
        job.update(state="INACTIVE", t_cleanup=now, t_inactive=now, returncode=code)
        kind = (job.get("exception") or {}).get("type")
        job["result"] = {"timeout": "TIMEOUT", "cancel": "CANCELED"}.get(kind, "COMPLETED" if code == 0 else "FAILED")


def submit(options: argparse.Namespace, limit: float | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != OWNER_MARKER}
    env.update(FLUX_JOB_NNODES=str(options.nodes or 1), FLUX_JOB_SIZE=str(options.ntasks or 1))
    env.update(pmi_env(options.setopt, env["FLUX_JOB_SIZE"]))
    with jobs_db() as db:
        job_id = str(db["next"])
        db["next"] += 1
        now = time.time()
        db["jobs"][job_id] = {"id": int(job_id), "name": options.job_name or Path(options.command[0]).name,
                              "state": "SCHED", "result": "", "t_submit": now, "t_run": 0.0, "t_cleanup": 0.0,
                              "t_inactive": 0.0, "returncode": "", "ntasks": options.ntasks or 1,
                              "nnodes": options.nodes or 1, "limit": limit, "exception": None,
                              "ncores": (options.ntasks or 1) * (options.cores_per_task or 1), "alloc": {}}
    env["FLUX_JOB_ID"] = job_id
    job_output(job_id).write_bytes(b"")
    if os.fork() == 0:  # the job shell: in a session and with files of its own, so the client's end is not the job's
        os.setsid()
        if os.fork() == 0:
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.closerange(3, 1 << 16)
                job_shell(job_id, options.command, env, limit)
            finally:
                os._exit(0)
        os._exit(0)
    os.wait()
    return job_id


def attach(job_id: str) -> int:
    """Copy the job's output until it ends, as `flux run` does; report its exception and exit code."""
    interrupts: list[float] = []

    def on_sigint(signum: int, frame: object) -> None:
        if interrupts and time.monotonic() - interrupts[-1] <= 2:
            with jobs_db() as db:
                raise_exception(db["jobs"][job_id], "cancel", "interrupted by ctrl-C")
        else:
            print("flux-job: one more ctrl-C within 2s to cancel or ctrl-Z to detach", file=sys.stderr, flush=True)
        interrupts.append(time.monotonic())

    signal.signal(signal.SIGINT, on_sigint)
    offset, done = 0, False
    while True:
        with jobs_db() as db:
            job = dict(db["jobs"][job_id])
        with open(job_output(job_id), "rb") as out:
            out.seek(offset)
            chunk = out.read()
        offset += len(chunk)
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        if done:
            break
        done = job["state"] == "INACTIVE"  # one more read after the end, for the last output
        if not done:
            time.sleep(0.05)
    if job.get("exception"):
        print(f"{job['exception']['t'] - job['t_submit']:.3f}s: job.exception type={job['exception']['type']} "
              f"severity=0 {job['exception']['note']}", file=sys.stderr)
    return job["returncode"] if job["returncode"] != "" else 1


class Parser(argparse.ArgumentParser):
    """argparse, as flux-core's Python commands use: an unknown option is refused with exit 2."""


def run_parser() -> Parser:
    parser = Parser(prog="flux-run")
    parser.add_argument("-N", "--nodes", type=int)
    parser.add_argument("-n", "--ntasks", type=int)
    parser.add_argument("-c", "--cores-per-task", type=int)
    parser.add_argument("-o", "--setopt", action="append", default=[])
    parser.add_argument("-t", "--time-limit")
    parser.add_argument("--job-name")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def flux_run(args: list[str]) -> int:
    options = run_parser().parse_args(args)
    if not options.command:
        raise FluxError("job command and arguments are missing")
    limit = duration(options.time_limit) if options.time_limit is not None else None
    if options.job_name == "":
        raise FluxError("--job-name: a job name may not be empty")
    wanted = options.nodes or 1
    if wanted > nodes():
        print(f"flux-run: ERROR: unsatisfiable request: {wanted} nodes, {nodes()} up", file=sys.stderr)
        return 1
    per_node = -(-(options.ntasks or 1) * (options.cores_per_task or 1) // wanted)
    if per_node > cores_per_node():
        print(f"flux-run: ERROR: unsatisfiable request: {per_node} cores per node, {cores_per_node()} per node up",
              file=sys.stderr)
        return 1
    return attach(submit(options, limit))


class Fields:
    """A job as `flux jobs -o` formats it (`{exception.type}` and the like reach into the exception)."""

    def __init__(self, job: dict) -> None:
        self.__dict__.update(job)
        exception = job.get("exception") or {}
        self.exception = argparse.Namespace(occurred=bool(exception), type=exception.get("type", ""),
                                            note=exception.get("note", ""))
        end = job["t_cleanup"] or (time.time() if job["state"] in ACTIVE else 0.0)
        self.runtime = end - job["t_run"] if job["t_run"] else 0.0
        self.status = job["result"] or {"RUN": "RUNNING", "CLEANUP": "RUNNING"}.get(job["state"], "PENDING")


def flux_jobs(args: list[str]) -> int:
    parser = Parser(prog="flux-jobs")
    parser.add_argument("-a", action="store_true")
    parser.add_argument("-A", action="store_true")
    parser.add_argument("-n", "--no-header", action="store_true")
    parser.add_argument("-f", "--filter")
    parser.add_argument("--name")
    parser.add_argument("-c", "--count", type=int, default=1000)
    parser.add_argument("-o", "--format", default="{id} {name} {status} {ntasks} {nnodes} {runtime}")
    parser.add_argument("jobids", nargs="*")
    options = parser.parse_args(args)
    states: set[str] = set()
    results: set[str] = set()
    for word in (options.filter or ("pending,running,inactive" if options.a else "pending,running")).split(","):
        if word.lower() in FILTERS:
            states |= FILTERS[word.lower()]
        elif word.lower() in RESULTS:
            results.add(word.upper())
        else:
            raise FluxError(f"Invalid filter specified: {word}")
    sample = {"id": 0, "name": "", "state": "SCHED", "result": "", "t_submit": 0.0, "t_run": 0.0, "t_cleanup": 0.0,
              "t_inactive": 0.0, "returncode": "", "ntasks": 1, "nnodes": 1, "limit": None, "exception": None}
    formatted(options.format, sample)  # a bad format is refused whether or not a job matches
    with jobs_db() as db:
        jobs = sorted(db["jobs"].values(), key=lambda job: -job["id"])
    shown = [job for job in jobs
             if (job["state"] in states or job["result"] in results)
             and (options.name is None or job["name"] == options.name)
             and (not options.jobids or str(job["id"]) in options.jobids)][:options.count]
    if not options.no_header:
        print(options.format.replace("{", "").replace("}", "").upper())
    for job in shown:
        print(formatted(options.format, job))
    return 0


def formatted(form: str, job: dict) -> str:
    try:
        return form.format_map(vars(Fields(job)))
    except (KeyError, AttributeError, ValueError) as err:
        raise FluxError(f"Unknown format field: {err.args[0]}") from None


def flux_cancel(args: list[str]) -> int:
    parser = Parser(prog="flux-cancel")
    parser.add_argument("-m", "--message", default="")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("jobids", nargs="+")
    options = parser.parse_args(args)
    failed = 0
    with jobs_db() as db:
        for job_id in options.jobids:
            job = db["jobs"].get(job_id)
            if job is None:
                print(f"flux-cancel: ERROR: {job_id}: unknown job id", file=sys.stderr)
                failed = 1
            elif job["state"] not in ACTIVE:
                print(f"flux-cancel: ERROR: {job_id}: job is inactive", file=sys.stderr)
                failed = 1
            else:
                raise_exception(job, "cancel", options.message)
    return failed


#: the Python `flux python` runs here: this test session's (FAKE_FLUX_PYTHON may name another)
FAKE_PYTHON = os.environ.get("FAKE_FLUX_PYTHON", sys.executable)


def flux(args: list[str]) -> int:
    refused = flux_refused()
    if refused:
        print(refused, file=sys.stderr)
        return 127  # the loader's exit status
    if not os.environ.get("FLUX_URI"):
        print("flux: FLUX_URI is not set: not connected to a Flux instance", file=sys.stderr)
        return 1
    if args[:2] == ["exec", "-r"] and args[2] == "all":
        return max(subprocess.call(args[3:], env={**os.environ, "FAKE_NODE": str(rank)}) for rank in range(nodes()))
    if args[:2] == ["resource", "info"]:
        print(f"{nodes()} Nodes, {nodes() * cores_per_node()} Cores, 0 GPUs")
        return 0
    if args[:1] == ["python"]:
        # `flux python ARGS`: the interpreter Flux was configured with (flux-core src/cmd/builtin/python.c,
        # execv(PYTHON_INTERPRETER, av)); Flux's own Python commands (flux run, flux jobs) run on it
        os.execv(FAKE_PYTHON, [FAKE_PYTHON, *args[1:]])
    if args == ["getattr", "conf.pmi_library_path"]:  # the library the shell names in FLUX_PMI_LIBRARY_PATH
        print(FLUX_PMI_LIBRARY)
        return 0
    commands = {"run": flux_run, "jobs": flux_jobs, "cancel": flux_cancel}
    if args[:1] and args[0] in commands:
        try:
            return commands[args[0]](args[1:])
        except FluxError as err:
            print(f"flux-{args[0]}: ERROR: {err}", file=sys.stderr)
            return 1
    print(f"flux: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def pmi_env(shell_options: list[str], size: str) -> dict[str, str]:
    """What Flux's shell gives each task for its `-o pmi=LIST` (flux-core src/shell/pmi.c, t/t3002-pmi.t):
    the simple service (the default) sets PMI_FD, PMI_RANK and PMI_SIZE and names Flux's libpmi.so;
    `off`, or only services this Flux lacks, set nothing."""
    services = {"simple"}
    for option in shell_options:
        if option.startswith("pmi="):
            services = set(option.removeprefix("pmi=").split(","))
    if not services & SIMPLE_PMI:
        return {}
    return {"PMI_FD": "3", "PMI_RANK": "0", "PMI_SIZE": size, "FLUX_PMI_LIBRARY_PATH": FLUX_PMI_LIBRARY}


def _binds(values: list[str]) -> list[tuple[str, str]]:
    """`--bind SRC[:DEST[:OPTS]]` as (source on the host, destination in the container)."""
    pairs = []
    for value in values:
        parts = value.split(":")
        pairs.append((parts[0], parts[1] if len(parts) > 1 and parts[1] else parts[0]))
    return pairs


def singularity(args: list[str]) -> int:
    if args[:1] == ["pull"]:
        rest = [arg for arg in args[1:] if arg != "--force"]
        Path(rest[0]).write_text(f"image of {rest[1]}\n")
        return 0
    if args[:1] == ["exec"]:
        rest, env, pwd, binds = args[1:], dict(os.environ), None, []
        while rest[0].startswith("--"):
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--env":
                key, _, val = value.partition("=")
                env[key] = val
            elif flag == "--pwd":
                pwd = value
            elif flag == "--bind":
                binds.append(value)
        image, command = rest[0], rest[1:]
        if not Path(image).is_file():
            print(f"FATAL:   could not open image {image}: failed to retrieve path for {image}", file=sys.stderr)
            return 255
        host = os.environ.get("FAKE_HOST_ROOT")
        for source, dest in _binds(binds):
            if host is not None and not (Path(host) / source.lstrip("/")).exists():
                print(f"FATAL:   container creation failed: mount hook function failure: mount {source}->{dest} "
                      f"error: while mounting {source}: mount source {source} doesn't exist", file=sys.stderr)
                return 255
        workdir = Path(os.environ["FAKE_ROOT"]) / (pwd or "/").lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        env.update(FAKE_CONTAINER_IMAGE=Path(image).read_text().split()[-1], FAKE_CONTAINER_BINDS=json.dumps(binds))
        if command[:1] == ["ldd"]:
            os.environ.update(env)
            return ldd(command[1])
        return subprocess.call(command, cwd=workdir, env=env)
    print(f"singularity: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def visible(path: str, depth: int = 0) -> bool:
    """Whether a path exists inside the container: under a bind's destination, with its source (and, for a
    link such as the view's libpmi.so, its target) present on the host (FAKE_HOST_ROOT)."""
    binds = _binds(json.loads(os.environ.get("FAKE_CONTAINER_BINDS", "[]")))
    for source, dest in binds:
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            real = Path(os.environ.get("FAKE_HOST_ROOT", "/")) / (source + path[len(dest):]).lstrip("/")
            if real.is_symlink():
                target = os.readlink(real)
                target = target if target.startswith("/") else str(PurePosixPath(path).parent / target)
                return depth < 8 and visible(target, depth + 1)
            return real.exists()
    return False


def pmi_joins() -> bool:
    """Whether the image's MPI finds a PMI that joins the ranks into one job (the module docstring says how)."""
    tag = os.environ.get("FAKE_CONTAINER_IMAGE", "").rsplit(":", 1)[-1]
    if "PMI_FD" not in os.environ:
        return False
    if tag.startswith("openmpi"):
        return visible(os.environ.get("FLUX_PMI_LIBRARY_PATH", ""))
    return True


def flux_shell(args: list[str]) -> int:
    try:
        return subprocess.call(args)
    except OSError as err:
        print(f"flux-shell[0]: FATAL: task 0: start failed: {args[0]}: {err.strerror}", file=sys.stderr)
        return 127


#: /dev/shm MPICH's ranks on one node need (MiB per rank): 64 ranks of MPICH 5.0.2 (PyPI) failed in MPI_Init
#: under a 320 MiB tmpfs and ran under 352 MiB, 8 ranks ran under 64 MiB, 16 did not (tests/cloud/test_shm.py
#: runs the real thing)
MPICH_SHM_MIB_PER_RANK = 5.5


def shm_fits() -> bool:
    """Whether one node's ranks of the image's MPI fit in the pod's /dev/shm (FAKE_SHM_MIB, unset: no limit)."""
    tag = os.environ.get("FAKE_CONTAINER_IMAGE", "").rsplit(":", 1)[-1]
    limit = os.environ.get("FAKE_SHM_MIB")
    if limit is None or not tag.startswith(("mpich", "intel")):
        return True
    per_node = int(os.environ.get("FLUX_JOB_SIZE", "1")) / int(os.environ.get("FLUX_JOB_NNODES", "1"))
    return per_node * MPICH_SHM_MIB_PER_RANK <= float(limit)


#: glibc of the OS in a lammps-matrix tag (`mpich-ubuntu-20.04-arm64`): what the view's libraries meet there
TAG_GLIBC = {"ubuntu-20.04": (2, 31), "ubuntu-22.04": (2, 35), "rocky-8": (2, 28), "rocky-9": (2, 34)}


def view_loads(path: str = FLUX_PMI_LIBRARY) -> str | None:
    """None when the operator's Flux view (its glibc: FAKE_VIEW_GLIBC, "2.35"; unset: no check) loads in the
    image, else the loader's line for `path` (glibc elf/dl-version.c: "version `%s' not found (required by %s)")."""
    view = os.environ.get("FAKE_VIEW_GLIBC")
    tag = os.environ.get("FAKE_CONTAINER_IMAGE", "").rsplit(":", 1)[-1]
    image = next((glibc for os_tag, glibc in TAG_GLIBC.items() if os_tag in tag), None)
    if view is None or image is None or tuple(map(int, view.split("."))) <= image:
        return None
    return f"{path}: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_{view}' not found (required by {path})"


#: glibc of the images a stand-in MiniCluster names: the Flux views by their OS tag (converged-computing/flux-views:
#: focal, jammy, noble, Rocky 8, 9), Ubuntu images by release, the arm pods' image by its Dockerfile (rainbow-
#: experiments singularity-mamba-arm: FROM ubuntu:noble-20240429); None where its OS is not known
IMAGE_GLIBC = {"focal": "2.31", "20.04": "2.31", "jammy": "2.35", "22.04": "2.35", "noble": "2.39", "24.04": "2.39",
               "singularity-mamba-arm": "2.39", "-8": "2.28", "-9": "2.34"}


def image_glibc(image: str) -> str | None:
    tag = image.rsplit(":", 1)[-1]
    return next((glibc for key, glibc in IMAGE_GLIBC.items() if tag.endswith(key) or tag == key), None)


def flux_refused() -> str | None:
    """The loader's refusal of the view's `flux` in a pods' image older than the view (FAKE_VIEW_GLIBC,
    FAKE_POD_GLIBC; either unset: no check), in glibc's elf/dl-version.c words with argv[0] as the speaker."""
    view, pod = os.environ.get("FAKE_VIEW_GLIBC"), os.environ.get("FAKE_POD_GLIBC")
    if not view or not pod or tuple(map(int, view.split("."))) <= tuple(map(int, pod.split("."))):
        return None
    return f"flux: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_{view}' not found (required by flux)"


def ldd(path: str) -> int:
    """`ldd` in the image: a path the binds do not show is ldd's "No such file or directory"; a library built for
    a newer glibc than the image's is the loader's refusal (ldd lists the rest; its exit status is not relied on)."""
    if not visible(path):
        print(f"ldd: {path}: No such file or directory", file=sys.stderr)
        return 1
    refused = view_loads(path)
    if refused:
        print(refused, file=sys.stderr)
    print("\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x0000ffff8e5b0000)")
    return 1 if refused else 0


#: What Open MPI 4 prints when its flux PMI component cannot dlopen() Flux's libpmi.so: OPAL_PMI_ERROR(rc,
#: "PMI_Init") in opal/mca/pmix/flux/pmix_flux.c ("%s [%s:%d:%s]: %s", PMI_FAIL is "Operation failed"; no
#: dlerror()), then ess_pmi_module.c's orte_show_help("orte_init:startup:internal-failure", "pmix init") in
#: orte/util/show_help's frame (help-orte-runtime.txt). The line number is this stand-in's, not upstream's.
OPEN_MPI_FLUX_PMI_FAILED = """\
PMI_Init [../../../../../opal/mca/pmix/flux/pmix_flux.c:291:flux_init]: Operation failed
--------------------------------------------------------------------------
It looks like orte_init failed for some reason; your parallel process is
likely to abort.  There are many reasons that a parallel process can
fail during orte_init; some of which are due to configuration or
environment problems.  This failure appears to be an internal failure;
here's some additional information (which may only be relevant to an
Open MPI developer):

  pmix init
  --> Returned value Error (-1) instead of ORTE_SUCCESS
--------------------------------------------------------------------------"""


def lmp(args: list[str]) -> int:
    end = time.process_time() + float(os.environ.get("FAKE_LMP_SECONDS", "0"))  # CPU a profile can see
    while time.process_time() < end:
        pass
    size = int(os.environ.get("FLUX_JOB_SIZE", "1"))
    joined = size == 1 or pmi_joins()
    procs, runs = (size, 1) if joined else (1, size)
    print(f"lmp {' '.join(args)}")  # not LAMMPS's: the tests check what reached it
    refused = view_loads() if os.environ.get("FAKE_CONTAINER_IMAGE", "").rsplit(":", 1)[-1].startswith(
        "openmpi") and "PMI_FD" in os.environ else None
    if refused:  # the rank's dlopen() of the view's libpmi.so failed: Open MPI says only that PMI_Init failed
        print(OPEN_MPI_FLUX_PMI_FAILED, file=sys.stderr)
        return 1
    if joined and size > 1 and not shm_fits():
        # what the issue's 64-rank MPICH job printed under a 64 MiB /dev/shm, and its tasks' exit (128 + SIGBUS)
        print("LAMMPS (29 Sep 2021 - Update 2)")
        print("Caught signal 7 (Bus error)", file=sys.stderr)
        print(f"flux-shell[0]: task 0: exited with signal 7 (Bus error); /dev/shm is {os.environ['FAKE_SHM_MIB']} MiB",
              file=sys.stderr)
        return 135
    for _ in range(runs):
        print("LAMMPS (29 Sep 2021 - Update 2)")
        print(f"  {procs} by 1 by 1 MPI processor grid")
        print(f"Loop time of 1.25 on {procs} procs for 100 steps with 304 atoms")
        print("Performance: 0.691 ns/day, 34.722 hours/ns, 80.000 timesteps/s")
        print("Total wall time: 0:00:01")
    return 0


def install(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("flux", "flux-shell", "singularity", "lmp"):
        path = directory / name
        path.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {name} \"$@\"\n")
        path.chmod(0o755)


if __name__ == "__main__":
    name, arguments = sys.argv[1], sys.argv[2:]
    if name != "flux-shell":  # Flux starts it, not the role: the calls logged are the role's and the job's
        log(name, arguments)
    sys.exit({"flux": flux, "flux-shell": flux_shell, "singularity": singularity, "lmp": lmp}[name](arguments))
