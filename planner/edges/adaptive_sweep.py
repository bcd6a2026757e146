"""`sweep --adaptive`: the adaptive loop of `planner.learn.acquisition` over the store and the runner.

1. **Candidates**: the plan of the selection (cluster, workloads, variants, repeats), one per
   configuration; its repeats are the runs it may take, in order.
2. **Prior**: the models fitted (`planner.learn.model.fit`) on every stored run *outside* the
   selection's contexts: other clusters, other workloads. Runs of the selection already stored are
   first-hand measurements of the loop, free of the budget.
3. **Decisions** are appended to the store's side file `<store>.adaptive` (JSON lines: the selection,
   the batch, the run and why) before their runs start. An interrupted adaptive sweep started again
   finishes the batch it was running first (as a normal sweep resumes), and its budget counts the
   runs it already spent on this selection.
4. **Batches** run through `planner.edges.sweep.execute` under one progress bar whose total is the
   budget; each run is read back from the store and observed; the loop stops at the budget or when
   no unmeasured point (nor a measured one that can run again) has a reasonable chance of beating the
   best one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console

from planner.core import files
from planner.core.errors import InputError
from planner.core.metrics import DEFAULT_METRIC, Metric, metric_of
from planner.core.types import Plan, Run, RunRecord, stable_id
from planner.edges import column_reader
from planner.edges.store import Store
from planner.edges.sweep import SweepReport, Workspace, execute, progress_bar, recover, stage_inputs
from planner.learn import acquisition, model
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, Runs, canonical
from planner.learn.features import split_options

#: What an adaptive sweep optimizes (the default metric of every learning command).
#: What an adaptive sweep optimizes unless told (one Metric, its goal carried, never re-derived downstream).
METRIC = metric_of(DEFAULT_METRIC)
#: The side file of a store that holds adaptive sweeps' decisions.
DECISIONS = ".adaptive"
#: Its size read at most (a decision is a line of about 200 bytes).
MAX_DECISIONS_BYTES = 256 << 20


@dataclass
class Candidate:
    """One configuration of the plan: where, what, and its repeats in order."""

    context: Context
    choice: Choice
    runs: list[Run]


@dataclass
class Chosen:
    run: Run
    why: str


@dataclass
class Result:
    """What an adaptive sweep did and believes (printed by `planner.cli.run`)."""

    budget: int
    plan_runs: int
    spent: int  #: runs of this selection the adaptive sweeps spent, earlier ones included
    prior: str  #: where the prior came from (or that there is none), in words
    first: list[Chosen] = field(default_factory=list)  #: the first batch a dry run shows
    stopped: str | None = None  #: budget | confident | exhausted; None when interrupted or a dry run
    outcomes: list[acquisition.Outcome] = field(default_factory=list)
    fit_seconds: float = 0.0
    refit_seconds: list[float] = field(default_factory=list)
    run_walls: list[float] = field(default_factory=list)  #: wall seconds of the selection's stored runs
    notes: list[str] = field(default_factory=list)
    metric: Metric = METRIC  #: what the loop optimized


def candidates(plan: Plan) -> list[Candidate]:
    """The plan's configurations, each with its runs by repeat; contexts and choices as the store reads them."""
    by_config: dict[str, list[Run]] = {}
    for run in plan.runs:
        by_config.setdefault(run.config_id, []).append(run)
    out = []
    for runs in by_config.values():
        runs.sort(key=lambda r: r.repeat)
        first = runs[0]
        launch, params = split_options(first.key()["options"])
        out.append(Candidate(Context(first.cluster, first.app, first.workload, canonical(params)),
                             Choice(first.app, first.variant, canonical(launch)), runs))
    return out


def selection_key(plan: Plan) -> str:
    """Names the selection (its configurations and repeats): decisions of another selection are not resumed."""
    return stable_id({"runs": sorted(run.id for run in plan.runs)})


# ------------------------------------------------------------------------------------------- decisions


class DecisionLog:
    """The decisions of adaptive sweeps on one store: one JSON object per line, appended and synced."""

    def __init__(self, store: Store, selection: str) -> None:
        self.path = store.side(DECISIONS)
        self.selection = selection

    def decided(self) -> list[str]:
        """Run ids this selection's adaptive sweeps chose, in order (a line cut short by a crash is skipped)."""
        out: dict[str, None] = {}
        for entry in self._entries():
            if "run" in entry:
                out[str(entry["run"])] = None
        return list(out)

    def batches(self) -> int:
        return max((int(e.get("batch", 0)) for e in self._entries() if "run" in e), default=0)

    def _entries(self) -> Iterator[dict[str, Any]]:
        """This selection's decisions; InputError for a line that is JSON but no decision this planner wrote
        (a regular file only: a FIFO there would block the sweep)."""
        if not os.path.lexists(self.path):
            return
        lines = files.read_text(self.path, "adaptive decisions file", MAX_DECISIONS_BYTES, errors="replace")
        for number, line in enumerate(lines.splitlines(), 1):
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    continue
                run, batch = entry.get("run", ""), entry.get("batch", 0)
                if not isinstance(run, str) or isinstance(batch, bool) or not isinstance(batch, int):
                    raise InputError("not a decision an adaptive sweep wrote (its run is not an id or its batch "
                                     "not a whole number); move the file aside to start the adaptive sweeps "
                                     "afresh", file=str(self.path), line=number)
                if entry.get("selection") == self.selection:
                    yield entry

    def write(self, entries: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps({"selection": self.selection, "at": round(time.time(), 3), **e}) + "\n"
                       for e in entries)
        with open(self.path, "a") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


# ----------------------------------------------------------------------------------------------- prior


def _empty_runs(metric: Metric) -> Runs:
    return Runs([], [], np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool),
                {metric.name: np.zeros(0)}, [], [], {}, {})


def _value(record: RunRecord, metric: Metric) -> float | None:
    """sign x log FOM of a stored run, None where it failed (or measured nothing usable)."""
    value = record.foms.get(metric.name)
    if record.status != "ok" or value is None or not math.isfinite(value) or value <= 0:
        return None
    return metric.sign * math.log(value)


def start(ws: Workspace, store: Store | None, plan: Plan, budget: acquisition.Budget, decided: list[str],
          metric: Metric = METRIC) -> tuple[acquisition.Adaptive, list[Candidate], Result, dict[str, RunRecord]]:
    """The loop with its prior and what the store holds of the selection; `decided`: runs chosen before;
    `metric`: what the loop maximizes or minimizes, as its goal says (the prior's model is fitted towards it)."""
    found = candidates(plan)
    total = len(plan.runs)
    allowed = budget.of(total)
    # the plan's app's runs only (another app's choices teach nothing about this one's)
    apps = {run.app for run in plan.runs}
    runs = column_reader.read(store.db, [metric.name], app=apps.pop() if len(apps) == 1 else None) \
        if store is not None else _empty_runs(metric)
    catalog = Catalog(ws.exp, ws.clusters, ws.variants).with_stored(runs.cluster_attrs, runs.variant_attrs)
    contexts = {c.context for c in found}
    in_selection = np.array([c in contexts for c in runs.contexts], dtype=bool)
    train = ~in_selection[runs.ctx] if len(runs) else np.zeros(0, dtype=bool)
    ids = {run.id for run in plan.runs}
    records = {r.id: r for r in store.records(cluster=plan.runs[0].cluster) if r.id in ids} \
        if store is not None else {}
    pending = [i for i in decided if i not in records]
    spent = len(decided) - len(pending)
    result = Result(allowed, total, spent, "", metric=metric)
    items = []
    for candidate in found:
        stored = [records[run.id] for run in candidate.runs if run.id in records]
        values = [_value(r, metric) for r in stored]
        items.append(acquisition.Item(candidate.context, candidate.choice, len(candidate.runs) - len(stored),
                                   [v for v in values if v is not None], sum(v is None for v in values)))
    result.run_walls = [r.wall for r in records.values() if r.wall]
    predictions = None
    usable = int((train & runs.ok & np.isfinite(runs.values[metric.name])).sum())
    if usable >= 2:
        started = time.perf_counter()
        models, _ = model.fit(runs, catalog, [metric], mask=train, cv=False)
        if metric.name in models.foms:
            predictions = models.tabulate(catalog, [(c.context, c.choice) for c in found]).predictions(
                list(range(len(found))), metric.name)
        result.fit_seconds = time.perf_counter() - started
    if predictions is not None:
        seen = [runs.contexts[c] for c in set(runs.ctx[train].tolist())]
        result.prior = (f"prior: the model fitted on {usable} stored runs outside this selection "
                        f"({len({c.cluster for c in seen})} cluster(s), {len({c.workload for c in seen})} workload(s)) "
                        f"in {result.fit_seconds:.1f} s")
    else:
        result.prior = "no prior (nothing stored the model could learn from): starting with one point per variant"
    loop = acquisition.start(items, catalog, runs, train, metric, predictions, budget=allowed,
                          batch=acquisition.batch_size(allowed), spent=spent)
    return loop, found, result, records


def _next_runs(found: list[Candidate], decisions: list[acquisition.Decision], taken: set[str],
               stored: set[str]) -> list[Chosen]:
    """Each decision's run: the candidate's first repeat neither stored nor already taken."""
    out = []
    for decision in decisions:
        candidate = found[decision.point]
        run = next((r for r in candidate.runs if r.id not in stored and r.id not in taken), None)
        if run is not None:
            taken.add(run.id)
            out.append(Chosen(run, decision.why))
    return out


def first_batch(ws: Workspace, store: Store | None, plan: Plan, budget: acquisition.Budget,
                metric: Metric = METRIC) -> Result:
    """What `sweep --adaptive --dry-run` shows: the first batch the loop would run now (nothing is written)."""
    decided = DecisionLog(store, selection_key(plan)).decided() if store is not None else []
    loop, found, result, records = start(ws, store, plan, budget, decided, metric)
    pending = [r for r in plan.runs if r.id in set(decided) and r.id not in records]
    if pending:
        result.first = [Chosen(run, "decided before the last adaptive sweep stopped: runs first") for run in pending]
        return result
    result.first = _next_runs(found, loop.next_batch(), set(), set(records))
    result.stopped = loop.stopped
    result.outcomes = loop.outcomes()
    return result


def run(ws: Workspace, store: Store, plan: Plan, budget: acquisition.Budget, console: Console,
        report: SweepReport, metric: Metric = METRIC) -> Result:
    """The adaptive sweep: batches chosen, logged, run and learnt from until the loop stops or Ctrl-C."""
    log = DecisionLog(store, selection_key(plan))
    decided = log.decided()
    loop, found, result, records = start(ws, store, plan, budget, decided, metric)
    console.print(f"adaptive sweep on {plan.runs[0].cluster}: budget {result.budget} of the plan's {result.plan_runs} "
                  f"runs ({budget}); {result.spent} spent before; {result.prior}")
    by_id = {run.id: (k, run) for k, candidate in enumerate(found) for run in candidate.runs}
    stored = set(records)
    pending = [Chosen(by_id[i][1], "decided before the last adaptive sweep stopped") for i in decided
               if i in by_id and i not in stored]
    batch = log.batches()
    with progress_bar(console) as progress:
        task = progress.add_task("adaptive", total=result.budget, completed=min(result.spent, result.budget))
        while True:
            if pending:
                chosen, pending = pending, []
            else:
                started = time.perf_counter()
                decisions = loop.next_batch()
                result.refit_seconds.append(time.perf_counter() - started)
                if not decisions:
                    break
                chosen = _next_runs(found, decisions, set(), stored)
                batch += 1
                log.write([{"batch": batch, "run": c.run.id, "why": c.why} for c in chosen])
            for item in chosen:
                k, run = by_id[item.run.id]
                progress.console.print(f"[bold]batch {batch}[/] {loop.points[k].label()} repeat {run.repeat}: "
                                       f"{item.why}", soft_wrap=True)
            todo = [c.run for c in chosen]
            left = recover(ws, store, todo)
            progress.advance(task, len(todo) - len(left))
            if left:
                stage_inputs(ws, left)
                execute(ws, store, left, console, report, bar=(progress, task))
            got = {r.id: r for r in store.records(cluster=plan.runs[0].cluster) if r.id in {run.id for run in todo}}
            for run in todo:
                if run.id in got:
                    loop.observe(by_id[run.id][0], _value(got[run.id], metric))
                    stored.add(run.id)
                    if got[run.id].wall:
                        result.run_walls.append(float(got[run.id].wall or 0.0))
            if report.interrupted or report.playbook_failures or len(got) < len(todo):
                break
    result.spent = loop.spent
    if loop.stopped is not None:
        result.stopped = loop.stopped
        log.write([{"stopped": loop.stopped, "spent": loop.spent}])
    result.outcomes = loop.outcomes()
    return result


def median_wall(result: Result) -> float | None:
    return statistics.median(result.run_walls) if result.run_walls else None


def describe(outcome: acquisition.Outcome, metric: Metric = METRIC) -> dict[str, Any]:
    """One context's end state, as the end of `sweep --adaptive` tells it."""
    best = outcome.best
    value = None
    if best is not None:
        value = statistics.median(math.exp(metric.sign * v) for v in best.values)
    return {"workload": outcome.context.workload, "cluster": outcome.context.cluster,
            "best": None if best is None else {"variant": best.choice.variant, "options": best.choice.options(),
                                               "median": value, "runs": len(best.values)},
            "chance_unmeasured_beats_by_5pct": round(outcome.chance, 4),
            "likeliest": None if outcome.likeliest is None else {
                "variant": outcome.likeliest.choice.variant, "options": outcome.likeliest.choice.options(),
                "chance": round(outcome.likeliest_chance, 4)},
            "runs_left": outcome.runs_left}
