"""Sweeps: materialize variants, plan, hand pending runs to Ansible, store each run as it ends.

Flow: experiment -> (local) materialize missing native variants with roles/local_cluster -> plan ->
collect runs that finished after a previous sweep was killed (their result.json) -> hand only the
pending runs to playbooks/sweep.yml through the runner adapter (as data Ansible never templates; see
planner.edges.runner) -> each loop-item event is parsed and stored in its own transaction (a log kept on a
cluster is copied beside the store then), and advances the progress bar. Only one sweep runs on a store
at a time. On a cluster, Ctrl-C, and the watchdog when the planner dies, cancel the sweep's jobs there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from planner.core import apps, profilers
from planner.core.errors import InputError, WorkError
from planner.core.experiment import Experiment
from planner.core.launch import Launch, container_stage, generated_dir, generated_inputs, image_path, render
from planner.core.plan import expand
from planner.core.types import ClusterInfo, Plan, Run, VariantInfo
from planner.edges import slurm, staging
from planner.edges.clusters import cluster_infos
from planner.edges.compspec_cache import ArtifactCache
from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.store import RunRecord, Store, sqlite_problem
from planner.edges.variant_info import cache_dir, materialization_order, recipe_digest, variant_infos

INTERRUPTED = 130
#: Seconds the executors get to stop their runs after the stop file is written, before Ansible is killed.
STOP_GRACE = 15.0
#: Seconds an executor gives a Flux job beyond the run's timeout, which Flux enforces itself (`flux run -t`):
#: its kill-timeout, the client's exit and a wait in Flux's queue. Past it the executor cancels the job.
FLUX_BACKSTOP = 60.0


@dataclass
class Workspace:
    """Everything a plan needs to be rendered and executed."""

    exp: Experiment
    clusters: dict[str, ClusterInfo]
    variants: dict[str, VariantInfo]
    cache: Path
    artifacts: ArtifactCache | None = None  # compspec artifacts (default: beside the default store)
    #: the text of each (variant, workload) input an installed native variant holds: part of the run ids
    inputs: dict[tuple[str, str], str] = field(default_factory=dict)
    #: profilers for every run (`sweep --profile`); None: each run's sweep says (`profile:`, none by default)
    profile_override: tuple[str, ...] | None = None
    #: whether runs that fit a scheduler's cores together run side by side (`sweep --side-by-side/--alone`)
    side_by_side: bool = True

    @classmethod
    def load(cls, exp: Experiment, cache: Path | None = None, artifacts: ArtifactCache | None = None) -> Workspace:
        cache = cache or cache_dir()
        variants = variant_infos(exp, cache, artifacts)
        return cls(exp, cluster_infos(exp), variants, cache, artifacts, staging.originals(exp, variants))

    def refresh_variants(self) -> None:
        self.variants = variant_infos(self.exp, self.cache, self.artifacts)
        self.inputs = staging.originals(self.exp, self.variants)

    def launch(self, run: Run) -> Launch:
        """The run's command as it is executed: rendered, with its profiling (if any) around it."""
        cluster = self.clusters[run.cluster]
        launch = render(run, cluster, self.variants[run.variant], self.exp.apps[run.app])
        return profilers.wrap(launch, self.profilers(run), cluster.kind)

    def profilers(self, run: Run) -> tuple[str, ...]:
        if self.profile_override is not None:
            return self.profile_override
        return next(sweep.profile for sweep in self.exp.sweeps if sweep.name == run.sweep)


def check_profiles(ws: Workspace, runs: list[Run]) -> None:
    """Exit 2, before anything runs, when a run asks for a profile its cluster cannot provide. (What the
    kernel denies, such as BPF or tracefs, is found when the run starts: the run goes on without it.)"""
    for run in runs:
        cluster = ws.clusters[run.cluster]
        wanted = ws.profilers(run)
        why = profilers.unsupported(wanted, cluster.kind)
        if cluster.kind == "local" and "rusage" in wanted and not os.access(profilers.RUSAGE_TIME, os.X_OK):
            why["rusage"] = (f"each rank is timed with GNU time, and {profilers.RUSAGE_TIME} is missing "
                             "(Debian package time)")
        if why:
            name, reason = next(iter(why.items()))
            message = f"cluster {run.cluster} cannot provide the {name} profile: {reason}"
            if ws.profile_override is not None:
                raise InputError(message, file=ws.exp.source, field="--profile")
            index = next(i for i, sweep in enumerate(ws.exp.sweeps) if sweep.name == run.sweep)
            raise ws.exp.error(message, "sweeps", index, "profile")


@dataclass
class SweepReport:
    stored_before: int = 0
    recovered: int = 0
    executed: int = 0
    ok: int = 0
    failed: int = 0
    install_seconds: float = 0.0
    run_seconds: float = 0.0
    app_seconds: float = 0.0
    interrupted: bool = False
    playbook_failures: list[str] = field(default_factory=list)
    #: why the sweep's jobs on a cluster could not be cancelled after an interruption (they may still run)
    cancel_failures: list[str] = field(default_factory=list)


def run_dir(store: Store, run_id: str) -> Path:
    """Each store keeps its runs beside it (results/planner.sqlite.runs/<id>), so two stores never mix runs."""
    return store.side(".runs") / run_id


@contextlib.contextmanager
def sweep_lock(store: Store) -> Iterator[None]:
    """One sweep per store (however it is reached: the lock is named after the resolved store); the
    lock is released by the kernel even when the planner is killed."""
    path = store.side(".lock")
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise InputError(f"another sweep (pid {owner}) is running on this store; wait for it or use "
                             "another --store", file=str(store.path)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


@contextlib.contextmanager
def cancel_on_sigint(on_cancel: Callable[[], None] = lambda: None) -> Iterator[Callable[[], bool]]:
    """Ctrl-C asks the running playbook to stop (ansible-runner kills its process group: Ansible's
    workers and what they started, such as pip) instead of leaving it running behind a traceback."""
    cancelled = {"flag": False}

    def on_sigint(signum: int, frame: Any) -> None:
        cancelled["flag"] = True
        on_cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: cancelled["flag"]
    finally:
        signal.signal(signal.SIGINT, previous)


def native_variants_needed(ws: Workspace, plan_runs: list[Run], candidates: list[str]) -> list[str]:
    names = {run.variant for run in plan_runs} | set(candidates)
    return [name for name in materialization_order(ws.exp, sorted(names)) if not ws.variants[name].installed]


def materialize(ws: Workspace, names: list[str], console: Console) -> float:
    """Install native variants through roles/local_cluster; returns the seconds it took."""
    if not names:
        return 0.0
    host = [name for name in names if ws.exp.variants[name].native.host]  # type: ignore[union-attr]
    if host:
        packages = sorted({p for name in host for p in ws.exp.variants[name].native.host})  # type: ignore[union-attr]
        raise InputError(f"variant {host[0]} runs this host's Debian packages, which are not all installed: "
                         f"apt-get install {' '.join(packages)}", file=ws.exp.source)
    started = time.monotonic()
    items = [{"name": name, "packages": list(ws.exp.variants[name].native.packages),  # type: ignore[union-attr]
              "binary_from": ws.exp.variants[name].native.binary_from,  # type: ignore[union-attr]
              "recipe": recipe_digest(ws.exp, name)} for name in names]
    console.print(f"[bold]Installing {len(names)} native variant(s)[/] into {ws.cache / 'variants'}: "
                  f"{', '.join(names)} (once; later sweeps reuse them)")
    with console.status("installing variants") as status, cancel_on_sigint() as cancelled:
        result = run_playbook(
            PlaybookRequest("playbooks/cluster.yml", "inventories/local", tags="local_cluster",
                            extravars={"local_cluster_variants": items, "local_cluster_cache_dir": str(ws.cache)}),
            on_task=lambda task: status.update(f"installing variants: {task}"), cancel=cancelled)
    if cancelled():
        raise KeyboardInterrupt
    if not result.ok:
        failures = "; ".join(" ".join(f.split()) for f in result.failures) or result.status
        raise WorkError(f"installing variants {', '.join(names)} failed: {failures}")
    ws.refresh_variants()
    missing = [name for name in names if not ws.variants[name].installed]
    if missing:
        raise WorkError(f"variants {', '.join(missing)} report no facts after installation; see "
                        f"{ws.cache / 'variants'}")
    return time.monotonic() - started


def stage_inputs(ws: Workspace, runs: list[Run]) -> None:
    done: set[tuple[str, str]] = set()
    for run in runs:
        variant = ws.variants[run.variant]
        generated = generated_inputs(run, ws.exp.apps[run.app]) if variant.kind == "native" else None
        if generated is not None:
            staging.write_generated(generated_dir(variant.layout["prefix"], run.workload, generated), generated)
            continue
        if variant.kind == "container":
            _stage_container(ws, run)
            continue
        if (run.variant, run.workload) in done:
            continue
        source = ws.exp.apps[run.app].workloads[run.workload].native
        assert source is not None
        try:
            staging.stage(variant.layout["share"], variant.layout["prefix"], run.workload, source)
        except FileNotFoundError as err:
            raise InputError(f"workload {run.workload}: {err}", file=ws.exp.source) from None
        done.add((run.variant, run.workload))


def _stage_container(ws: Workspace, run: Run) -> None:
    """The adapted input of a container run whose cluster binds it in (`launch.container_stage`)."""
    variant, source = ws.variants[run.variant], ws.exp.apps[run.app].workloads[run.workload].container
    assert source is not None
    staged = container_stage(run, ws.clusters[run.cluster], variant, source)
    if staged is None:
        return
    try:
        staging.stage_container(image_path(ws.clusters[run.cluster], variant), staged, source)
    except OSError as err:
        raise InputError(f"workload {run.workload}: {err}", file=ws.exp.source) from None


def record_for(ws: Workspace, run: Run, launch: Launch, result: dict[str, Any], directory: Path) -> RunRecord:
    """A stored run from the executor's result: parsed output, resource use, provenance.

    The log is the copy in the run's directory on this machine (a MiniCluster's log is fetched back there).
    """
    definition = apps.resolve(run.app, ws.exp.apps[run.app])
    output = _output(result, directory)
    parsed = definition.parse(app_output(definition, output, directory), exit_code=result.get("rc"),
                              timed_out=bool(result.get("timed_out")), tasks=run.options.tasks)
    raw = _raw_profile(result, directory) if launch.profile else None
    profiled = profilers.parse(launch.profile, raw, output)
    if launch.profile:
        _keep_raw_profile(directory, result.get("profile") or {})
    return RunRecord(
        id=run.id, config_id=run.config_id, cluster=run.cluster, app=run.app, workload=run.workload,
        variant=run.variant, options=run.key()["options"], repeat=run.repeat, status=parsed.status,
        reason=parsed.reason, detail=parsed.detail, exit_code=result.get("rc"), started=result.get("started"),
        finished=result.get("finished"), wall=result.get("wall"), user_time=result.get("user"),
        sys_time=result.get("sys"), maxrss_kb=result.get("maxrss_kb"), queue_wait=result.get("queue"),
        rusage_of=result.get("rusage_of"), host=result.get("host"),
        command=launch.shell(), log_path=str(directory / "output.log"),
        variant_attrs=ws.variants[run.variant].attributes, cluster_attrs=ws.clusters[run.cluster].attributes(),
        source="sweep", foms={**parsed.foms, **profiled.metrics}, profiles=profiled.status)


#: Bytes of an app's own output file read with the run's output (hpcc's summary is at its end).
APP_OUTPUT_BYTES = 4 << 20


def app_output(definition: apps.Definition, output: str, directory: Path) -> str:
    """The run's output, then the file the app writes its results to in the run's directory (if it does)."""
    if definition.output_file is None:
        return output
    path = directory / definition.output_file
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - APP_OUTPUT_BYTES))
            return output + "\n" + handle.read().decode(errors="replace")
    except OSError:
        return output


#: bytes of a log's head and tail, and of a raw profile, read from a run's directory on this machine (the
#: result that travels back through Ansible carries less: roles/run_matrix/files/execute_run.py)
LOG_HEAD, LOG_TAIL, PROFILE_READ = 4 << 20, 16 << 20, 64 << 20


def _is_here(result: dict[str, Any], directory: Path) -> bool:
    """Whether the executor ran on this machine, in the run's directory (its files are the ones to read)."""
    return Path(str(result.get("log_path") or "")).resolve() == (directory / "output.log").resolve()


def _output(result: dict[str, Any], directory: Path) -> str:
    """The run's output as the parser reads it: a local run's log from its directory (head and tail of a
    huge one), a cluster's run's as the executor sent it."""
    output = result.get("output")
    if not _is_here(result, directory):
        return output if isinstance(output, str) else ""
    try:
        with open(directory / "output.log", "rb") as log:
            size = os.fstat(log.fileno()).st_size
            if size <= LOG_HEAD + LOG_TAIL:
                return log.read().decode("utf-8", "replace")
            head = log.read(LOG_HEAD)
            log.seek(size - LOG_TAIL)
            tail = log.read(LOG_TAIL)
    except OSError:
        return output if isinstance(output, str) else ""
    return (head.decode("utf-8", "replace") + f"\n[{size - LOG_HEAD - LOG_TAIL} bytes left out]\n"
            + tail.decode("utf-8", "replace"))


def _raw_profile(result: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The profiling step's files: a local run's from its directory, a cluster's run's as they came back.
    One too large to read (or to travel back) is named with its size in "left_out"."""
    sent = result.get("profile") if isinstance(result.get("profile"), dict) else {}
    if not _is_here(result, directory):
        return sent
    raw: dict[str, Any] = {}
    left_out: dict[str, int] = {}
    for name in profilers.STEP_FILES:
        path = directory / "profile" / name
        try:
            size = path.stat().st_size
            if size > PROFILE_READ:
                left_out[name] = size
            else:
                raw[name] = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
    return {**raw, "left_out": left_out} if left_out else raw


def _keep_raw_profile(directory: Path, raw: dict[str, Any]) -> None:
    """The raw profiles (histograms included) in the run's directory on this machine: a MiniCluster's
    are brought back in the result; a local run's are there already."""
    for name, text in raw.items():
        path = directory / "profile" / Path(str(name)).name
        if isinstance(text, str) and not path.exists():
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)


def recover(ws: Workspace, store: Store, pending: list[Run]) -> list[Run]:
    """Store runs that finished after a previous sweep's planner died; return the rest."""
    left = []
    legacy = store.legacy_runs_dir()
    for run in pending:
        for directory in (run_dir(store, run.id), *([legacy / run.id] if legacy else [])):
            result = _finished(directory, run.id)
            if result is not None:
                _store(store, record_for(ws, run, ws.launch(run), result, directory))
                break
        else:
            left.append(run)
    return left


def _finished(directory: Path, run_id: str) -> dict[str, Any] | None:
    """The result a run's executor left in its directory, if it finished."""
    try:
        result = json.loads((directory / "result.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return result if isinstance(result, dict) and result.get("id") == run_id else None


def _store(store: Store, record: RunRecord) -> None:
    """Store a finished run; when that fails (a full disk) say what is kept, instead of a traceback."""
    try:
        store.add(record, beside=True)
    except sqlite3.Error as err:
        raise WorkError(f"{store.path}: run {record.id} finished but could not be stored: "
                        f"{sqlite_problem(err, store.path)}; its result stays in {Path(record.log_path or '').parent} "
                        "and the next sweep stores it") from None


#: the most lanes a sweep runs at once (one Ansible worker each)
MAX_LANES = 32


def lanes(cluster: ClusterInfo, runs: list[Run], launches: dict[str, Launch], side_by_side: bool) -> int:
    """How many runs a sweep starts at once: as many of its smallest runs as the cluster's cores hold, where a
    scheduler (Slurm, Flux) queues the runs that do not fit its free cores (so a run needing them all runs
    alone); one on a cluster without one (`local`: mpiexec would oversubscribe the cores)."""
    if not side_by_side or not runs or any(launches[run.id].job is None for run in runs):
        return 1
    smallest = min(run.options.tasks * run.options.threads for run in runs)
    return max(1, min(len(runs), MAX_LANES, cluster.cores // max(1, smallest)))


def run_items(store: Store, runs: list[Run], launches: dict[str, Launch], stop_file: Path,
              lanes: int = 1) -> list[dict[str, Any]]:
    """The runs as the role takes them; run i goes to lane i % lanes (the lanes take turns through the plan)."""
    items = []
    # a run stored already is handed out again only to be retried (--retry-failed): where it runs (a pod's
    # directory, out of reach here) its earlier attempt's result must not be reported again
    again = store.ids(run.id for run in runs)
    for index, run in enumerate(runs):
        launch = launches[run.id]
        directory = run_dir(store, run.id)
        if directory.exists():  # a run interrupted mid-way starts again from a clean directory
            shutil.rmtree(directory)
        step = ",".join(name for name in launch.profile if name in profilers.STEP_PROFILERS)
        # srun and ch-run find the cluster and start through what the role recorded, not the shown command
        env = {**launch.env, **slurm.environment()} if launch.scheduler == "srun" else launch.env
        items.append({"id": run.id, "argv": launch.argv, "env": env, "cwd": None, "stage": launch.stage,
                      "timeout": run.timeout + (FLUX_BACKSTOP if launch.job else 0.0), "run_dir": str(directory),
                      "image": launch.image, "sif": launch.sif, "job": launch.job,
                      "scheduler": launch.scheduler or "flux", "owner_pid": os.getpid(),
                      "stop_file": str(stop_file), "profile": step or None, "profile_root": launch.profile_root,
                      "fresh": run.id in again, "lane": index % lanes})
    return items


def progress_bar(console: Console) -> Progress:
    """The sweep's progress bar: runs done of the total, elapsed time and ETA."""
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=console, transient=False)


def execute(ws: Workspace, store: Store, runs: list[Run], console: Console, report: SweepReport,
            bar: tuple[Progress, TaskID] | None = None) -> None:
    """Hand the runs to playbooks/sweep.yml; store each one as its loop item finishes. `bar`: a progress bar
    (and its task) that outlives this call, as an adaptive sweep's batches share one."""
    by_id = {run.id: run for run in runs}
    stop_file = store.side(".stop")
    stop_file.unlink(missing_ok=True)
    launches = {run.id: ws.launch(run) for run in runs}
    cluster = ws.clusters[runs[0].cluster]
    width = lanes(cluster, runs, launches, ws.side_by_side)
    items = run_items(store, runs, launches, stop_file, width)
    unstored: list[str] = []  # a run that could not be stored (a full disk) stops the sweep
    unreachable: list[str] = []  # the cluster's scheduler could not be reached (slurmctld down): the sweep stops
    stored: set[str] = set()
    missing: list[Run] = []  # runs the playbook went through without a result that could be stored
    stopping: list[float] = []  # when the executors were asked to stop
    request = sweep_request(cluster, items, width)
    extravars = request.extravars
    # On a cluster the executors and the runs' jobs are out of this machine's reach: a stop reaches them
    # through the same playbook's cancel action (a stop file on the lead broker, `flux cancel` of the jobs),
    # run here on Ctrl-C and by the watchdog should this process die.
    halt = (dataclasses.replace(request, extravars={**extravars, "run_matrix_action": "cancel", "run_matrix_lanes": 1})
            if cluster.kind not in ("local", "slurm") else None)
    halting: list[threading.Thread] = []

    def stop() -> None:
        with contextlib.suppress(OSError):
            stop_file.touch()
        if halt is None:
            stopping.append(time.monotonic())
        elif not halting:
            halting.append(threading.Thread(target=cancel_on_cluster, daemon=True))
            halting[0].start()

    def cancel_on_cluster() -> None:
        assert halt is not None
        done = run_playbook(halt)
        if not done.ok:
            report.cancel_failures.extend(done.failures or [f"ansible-playbook ended {done.status}"])
        stopping.append(time.monotonic())

    def cancel() -> bool:
        # the executors see the stop file and end their runs (each in a session of its own) within a
        # second, and the remaining items return at once; killing Ansible sooner would orphan those runs
        return bool(stopping) and time.monotonic() - stopping[0] > STOP_GRACE

    started = time.monotonic()
    try:
        with (contextlib.nullcontext(bar[0]) if bar else progress_bar(console)) as progress, \
                cancel_on_sigint(stop) as cancelled:
            task = bar[1] if bar else progress.add_task("sweep", total=len(runs))

            def on_item(task_name: str, res: dict[str, Any]) -> None:
                stdout = res.get("stdout")
                line = next((ln for ln in (stdout if isinstance(stdout, str) else "").splitlines()
                             if ln.startswith("{")), None)
                try:
                    result = json.loads(line) if line is not None else None
                except (ValueError, RecursionError):
                    result = None
                if not isinstance(result, dict):
                    return  # a run whose result did not come through is looked for in its directory at the end
                if "unreachable" in result:  # nothing ran: the run stays pending, and so do the ones after it
                    unreachable.append(str(result["unreachable"]))
                    stop()
                    return
                run = by_id.get(result.get("id"))
                if run is None or run.id in stored:
                    return
                directory = run_dir(store, run.id)
                if Path(result.get("log_path") or "").resolve() != (directory / "output.log").resolve():
                    # the log was kept on the cluster: its copy here is written as the run ends (the run is
                    # stored even where the copy cannot be written: the store has its output parsed)
                    with contextlib.suppress(OSError):
                        directory.mkdir(parents=True, exist_ok=True)
                        (directory / "output.log").write_text(result.get("output", ""))
                record = record_for(ws, run, launches[run.id], result, directory)
                try:
                    _store(store, record)
                except WorkError as err:
                    unstored.append(str(err))
                    stop()
                    return
                stored.add(run.id)
                report.executed += 1
                report.app_seconds += record.wall or 0.0
                if record.status == "ok":
                    report.ok += 1
                else:
                    report.failed += 1
                    progress.console.print(f"[red]failed[/] {run.workload} {run.variant} "
                                           f"{record.reason}: {record.detail}")
                progress.update(task, advance=1, description=f"{run.workload} {run.variant}")

            result = run_playbook(request, on_item=on_item, cancel=cancel, on_death=halt)
            report.interrupted = cancelled()
            for thread in halting:
                thread.join()
            if not report.interrupted and not unstored:
                # a run executed whose event carried no readable result: stored from its directory, else named
                for run in runs:
                    if run.id in stored:
                        continue
                    found = _finished(run_dir(store, run.id), run.id)
                    if found is None:
                        missing.append(run)
                        continue
                    on_item("", {"stdout": json.dumps(found)})
    finally:
        stop_file.unlink(missing_ok=True)
    report.run_seconds += time.monotonic() - started
    if unstored:
        raise WorkError(unstored[0])
    if unreachable and not report.interrupted:
        raise WorkError(f"the cluster's scheduler could not be reached ({unreachable[0]}); {len(runs) - len(stored)} "
                        "run(s) stay pending: bring the cluster up again and run the same command to resume")
    if missing and result.ok:
        names = ", ".join(f"{run.id} ({run.workload} {run.variant})" for run in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise WorkError(f"{len(missing)} run(s) ended without a result that could be stored: {names}{more}; "
                        f"see their directories in {store.side('.runs')}")
    if not result.ok and not report.interrupted:
        report.playbook_failures = result.failures or [f"ansible-playbook ended {result.status} (rc {result.rc})"]


def sweep_request(cluster: ClusterInfo, items: list[dict[str, Any]], lanes: int = 1) -> PlaybookRequest:
    """playbooks/sweep.yml with these run items, on the cluster's hosts, in `lanes` lanes at once."""
    here = cluster.kind in ("local", "slurm")  # executed on this machine (local-slurm's srun included)
    extravars: dict[str, Any] = {"run_matrix_runs": items, "run_matrix_launcher": "local" if here else "flux",
                                 "run_matrix_lanes": lanes}
    forks = max(5, lanes + 1)  # a worker per lane (Ansible's default is 5)
    if here:
        return PlaybookRequest("playbooks/sweep.yml", "inventories/local", extravars, forks=forks)
    from planner.edges import cloud

    extravars.update(cloud.sweep_vars(cluster.name), sweep_hosts="flux_lead_broker")
    return PlaybookRequest("playbooks/sweep.yml", "inventories/eks", extravars, forks=forks)


def prepare(ws: Workspace, cluster: str, workloads: list[str], variants: list[str], repeats: int | None,
            console: Console, *, install: bool) -> tuple[Plan, float]:
    """The plan for one cluster, with native variants installed first when `install` is set."""
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster=cluster, workloads=workloads,
                  only_variants=variants, repeats=repeats, inputs=ws.inputs)
    seconds = 0.0
    if install and ws.clusters[cluster].kind == "local":
        needed = native_variants_needed(ws, plan.runs, [])
        if needed:
            seconds = materialize(ws, needed, console)
            plan = expand(ws.exp, ws.clusters, ws.variants, cluster=cluster, workloads=workloads,
                          only_variants=variants, repeats=repeats, inputs=ws.inputs)
    return plan, seconds
