"""The learning commands: import, fit, recommend, evaluate, report (registered by planner.cli)."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.cli import args as cli_args
from planner.cli import quick
from planner.core.errors import InputError
from planner.core.metrics import DEFAULT_METRIC, metric_of, resolve_metric

if TYPE_CHECKING:
    from planner.core.experiment import Experiment
    from planner.edges.store import Store
    from planner.learn.catalog import Catalog
    from planner.learn.dataset import Choice, Context
    from planner.learn.evaluate import Evaluation
    from planner.learn.recommend import Request
    from planner.learn.table import Table

# ---------------------------------------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> int:
    from planner.core import files
    from planner.edges import importer
    from planner.edges.store import Store

    files.require_regular(args.file, "CSV file")
    try:
        parsed = importer.read_csv(args.file)
    except importer.BadRows as err:
        for problem in err.problems[:importer.SHOWN]:
            print(problem, file=sys.stderr)
        if len(err.problems) > importer.SHOWN:
            print(f"... and {len(err.problems) - importer.SHOWN} more bad row(s)", file=sys.stderr)
        raise
    path = cli_args.store_path(args)
    with Store(path) as store:
        new = store.add_many(parsed.records, replace=args.replace)
    runs = len(parsed.records)
    result = {"file": args.file, "store": str(path), "rows": parsed.rows, "runs": runs, "new": new,
              ("replaced" if args.replace else "already_stored"): runs - new}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        again = f"{runs - new} replaced" if args.replace else f"{runs - new} already stored"
        print(f"imported {args.file}: {parsed.rows} rows -> {runs} runs ({new} new, {again}) into {path}")
    return 0


# ------------------------------------------------------------------------------------------------- fit


def cmd_fit(args: argparse.Namespace) -> int:
    from planner.cli.learn_text import fit_summary
    from planner.edges import datasets, modelfiles, training
    from planner.edges.store import Store

    path = cli_args.store_path(args)
    exp, watched, state = _read_experiment(args, path)
    with Store(path, create=False) as store:
        datasets.require_runs(store.db, path)
        measured = datasets.metrics(store.db)
        try:
            previous = modelfiles.load_meta(modelfiles.model_dir(path))
        except InputError:  # a model of another version: replaced by this fit
            previous = None
        goals = previous.goals if previous else {}
        # a metric's goal: as asked, else the one the last fit ranked it towards, else by its name
        metrics = [resolve_metric(m, args.goal or goals.get(m or DEFAULT_METRIC), measured)
                   for m in dict.fromkeys(args.metric or [None])]
        if previous:
            metrics += [metric_of(m, goals.get(m)) for m in previous.metrics if m not in {n.name for n in metrics}]
        catalog = cli_args.catalog_of(exp, path)
        fitted = training.train(store, catalog, metrics)
        saved, left, seconds = prewarm(store, args, catalog, fitted.meta.metrics, watched, state)
    if args.json:
        print(json.dumps({"directory": str(fitted.directory), **fitted.meta.report,
                          "answers": {"saved": saved, "left": left, "seconds": round(seconds, 3)}}, indent=2))
    else:
        print(fit_summary(fitted.meta.report, fitted.directory))
        rest = f"; {left} more are saved when first asked ({PREWARM_SECONDS:.0f} s budget)" if left else ""
        print(f"saved {saved} recommend answers (each app and workload, each cluster and all, at the defaults) "
              f"in {seconds:.1f} s{rest}")
    return 0


# ------------------------------------------------------------------------------------------- recommend


def cmd_recommend(args: argparse.Namespace) -> int:
    """Answers from the saved prediction table; scikit-learn is loaded only to fit a missing model or to
    predict points the table lacks (`planner.edges.training`). The answer is saved for the quick path
    (`planner.cli.quick`) when nothing it depends on changed while it was computed."""
    from planner.edges.store import Store
    from planner.learn import recommend

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}", field="--top")
    if args.across and args.cluster:
        raise InputError("--across clusters ranks every known cluster together; leave out --cluster", field="--across")
    path = cli_args.store_path(args)
    exp, watched, state = _read_experiment(args, path)
    catalog = cli_args.catalog_of(exp, path)  # the experiment's errors, and its disagreements with a cluster, first
    with Store(path, create=False) as store:
        before = quick.key(args, store.db, watched)
        if not _read_as(before, state):
            before = None  # a file changed while it was read: this answer is not saved
        request = recommend.Request(args.app, args.workload, args.cluster, args.top, dict(args.param))
        if args.per_dollar:
            from planner.edges import prices

            request.per_dollar = prices.listed()
        text, as_json = _recommendation(store, catalog, request, args.metric, args.goal)
        if not (args.per_dollar or args.across):  # the quick path's key does not name these flags
            _save_answer(args, store, watched, before, text, as_json)
    print(as_json if args.json else text)
    return 0


def _read_experiment(args: argparse.Namespace, path: Path) -> tuple[Experiment | None, list[str], list[Any]]:
    """The experiment, the other files its catalog reads, and the state of both as they were before they were
    read: an answer's key must say the same, or the answer is not saved (an edit while it was computed)."""
    from planner.edges import answers

    digest = answers.content(Path(args.experiment))
    exp = cli_args.load_optional_experiment(args)
    watched = cli_args.catalog_inputs(exp, path)
    return exp, watched, [digest, [[name, answers.signature(name)] for name in watched]]


def _read_as(answer_key: dict[str, Any] | None, state: list[Any]) -> bool:
    """The key was made from the files as `_read_experiment` found them."""
    return answer_key is not None and [answer_key["experiment"][1], answer_key["watched"]] == state


class _Once:
    """Reads that every recommendation from one store asks alike (names, metrics, the saved model), each done
    once: `prewarm` asks for many recommendations in a row."""

    def __init__(self) -> None:
        self._memo: dict[Any, Any] = {}

    def __call__(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _recommendation(store: Store, catalog: Catalog, request: Request, metric_name: str | None,
                    goal: str | None, once: _Once | None = None) -> tuple[str, str]:
    """The recommendation as `recommend` prints it: (text, JSON)."""
    from planner.cli.learn_text import recommendation
    from planner.edges import datasets, modelfiles
    from planner.learn import profiles, recommend
    from planner.learn.catalog import every_choice

    once = once or _Once()
    _check_names(store, catalog, request, once)
    measured = once(("metrics", request.app), lambda: datasets.metrics(store.db, request.app))
    directory = modelfiles.model_dir(store.path)
    # without --goal, the goal the model was fitted towards (`fit --goal`), else the metric's by its name
    fitted_goals = once("goals", lambda: (meta.goals if (meta := modelfiles.load_meta(directory)) else {}))
    metric = resolve_metric(metric_name, goal or fitted_goals.get(metric_name or DEFAULT_METRIC), measured,
                            of=request.app)
    notes: list[str] = []
    found = once(("model", metric), lambda: modelfiles.saved(directory, metric))
    if found is None:
        from planner.edges import training

        found = training.ensure(store, catalog, metric, notes)
    meta, table = found

    def predict_missing(catalog: Catalog, points: list[tuple[Context, Choice]]) -> Table:
        from planner.edges import training

        return training.predict_missing(directory, meta, catalog, points)

    # measurements of this workload (on this cluster): the only scan of the store a recommendation needs
    # with the profiles measured there: they explain a measured row's rank (never predict one)
    measured_profiles = [p for p in profiles.names(measured) if p != metric.name]
    runs = datasets.read(store.db, [metric.name], app=request.app, workload=request.workload,
                         cluster=request.cluster, explain=measured_profiles)
    checks = {name: fom["ranking"] for name, fom in meta.report.get("foms", {}).items() if "ranking" in fom}
    stale = meta.fingerprint != once("fingerprint", store.fingerprint)
    model = recommend.ModelInfo(str(directory), meta.runs, stale, checks)

    def stored() -> list[Choice]:
        return every_choice(datasets.choices_by_cluster(store.db, request.app))

    result = recommend.recommend(request, metric, catalog, runs, table, model, stored, predict_missing, notes)
    return recommendation(result), json.dumps(result.as_dict(), indent=2)


def _save_answer(args: argparse.Namespace, store: Store, watched: list[str], before: dict[str, Any] | None,
                 text: str, as_json: str) -> None:
    """Save the answer for the quick path when its key is the same after computing it as before."""
    from planner.edges import answers

    after = quick.key(args, store.db, watched)
    if before is not None and after == before:
        answers.save(answers.model_dir(store.path), after, text, as_json)


#: `fit` stops saving answers after this long (the rest are saved when first asked).
PREWARM_SECONDS = 10.0


def prewarm(store: Store, args: argparse.Namespace, catalog: Catalog, metrics: list[str], watched: list[str],
            state: list[Any]) -> tuple[int, int, float]:
    """After a fit: save the answers a user asks first, each app's measured workloads before the ones only
    declared, every cluster at once before each cluster, at the defaults (with --metric M for an app that never
    measured the default metric), for at most PREWARM_SECONDS. Returns how many were saved, how many were
    left for lack of time, and the seconds it took. `watched` and `state`: the experiment's other files and
    the state of all of them as they were read before the fit (`_read_experiment`); edited since, nothing
    is saved."""
    import time

    from planner.core.metrics import DEFAULT_METRIC
    from planner.edges import answers, datasets
    from planner.learn import recommend

    started = time.perf_counter()
    directory = answers.model_dir(store.path)
    answers.clear(directory)
    fingerprint = store.fingerprint()
    once = _Once()
    saved = left = 0
    for app in datasets.distinct(store.db, "app"):
        measured = once(("metrics", app), lambda app=app: datasets.metrics(store.db, app))
        asked_metrics = [None] if DEFAULT_METRIC in measured else [m for m in metrics if m in measured]
        measured_workloads = datasets.distinct(store.db, "workload", app=app)
        declared = [w for w in catalog.workloads(app) if w not in measured_workloads]
        clusters = dict.fromkeys([*datasets.distinct(store.db, "cluster", app=app), *catalog.clusters()])
        # per group of workloads, every cluster at once first: the slowest to compute when asked
        asked_points = [point for group in (measured_workloads, declared)
                        for point in [*((w, None) for w in group), *itertools.product(group, clusters)]]
        for (workload, cluster), metric in itertools.product(asked_points, asked_metrics):
            if time.perf_counter() - started > PREWARM_SECONDS:
                left += 1
                continue
            asked = argparse.Namespace(app=app, workload=workload, cluster=cluster, top=5, metric=metric, goal=None,
                                       param=[], store=args.store, experiment=args.experiment)
            try:
                text, as_json = _recommendation(store, catalog, recommend.Request(app, workload, cluster), metric,
                                                None, once)
            except InputError:  # e.g. this app never measured the metric: asked, `recommend` says so
                continue
            answer_key = quick.key(asked, store.db, watched, fingerprint)
            if answer_key is not None and _read_as(answer_key, state):
                answers.save(directory, answer_key, text, as_json)
                saved += 1
    if store.fingerprint() != fingerprint:  # a sweep stored runs meanwhile: these answers are not for its store
        answers.clear(directory)
        saved = 0
    return saved, left, time.perf_counter() - started


def _check_names(store: Store, catalog: Catalog, request: Request, once: _Once) -> None:
    """Unknown names and an empty store are bad input: exit 2 listing what is known."""
    from planner.edges import datasets

    once("runs", lambda: datasets.require_runs(store.db, store.path))
    apps = sorted(set(once("apps", lambda: datasets.distinct(store.db, "app"))) |
                  (set(catalog.exp.apps) if catalog.exp else set()))
    if request.app not in apps:
        raise InputError(f"unknown app {request.app!r}; known: {', '.join(apps)}", field="APP")
    workloads = sorted(set(once(("workloads", request.app),
                                lambda: datasets.distinct(store.db, "workload", app=request.app))) |
                       set(catalog.workloads(request.app)))
    if request.workload not in workloads:
        raise InputError(f"unknown workload {request.workload!r} of {request.app}; known: {', '.join(workloads)}",
                         field="WORKLOAD")
    clusters = sorted(set(once("clusters", lambda: datasets.distinct(store.db, "cluster"))) |
                      set(catalog.cluster_infos))
    if request.cluster is not None and request.cluster not in clusters:
        raise InputError(f"unknown cluster {request.cluster!r}; known: {', '.join(clusters)}", field="--cluster")
    once(("runs", request.app), lambda: datasets.require_runs(store.db, store.path, request.app))


# -------------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from planner.edges import datasets
    from planner.edges.store import Store
    from planner.learn import evaluate

    path = cli_args.store_path(args)
    with Store(path, create=False) as store:
        datasets.require_runs(store.db, path)
        metric = resolve_metric(args.metric, args.goal, datasets.metrics(store.db))
        runs = datasets.read(store.db, [metric.name])
    result = evaluate.evaluate(runs, cli_args.catalog(args), args.group_by, metric, seeds=args.seeds,
                               only=args.held_out)
    print(json.dumps(result.as_dict(), indent=2) if args.json else _evaluation_text(result))
    return 0


def _evaluation_text(result: Evaluation) -> str:
    unit = f" in {result.unit}" if result.unit else ""
    seeds = result.comparison.seeds if result.comparison else [0]
    lines = [f"leave-one-{result.group_by}-out over {result.groups} {result.group_by}s, "
             f"{result.model.picks} picks, {result.metric}{unit} ({result.goal}), the model fitted with "
             f"{len(seeds)} seed(s):",
             f"{'':18}{'top1':>8}{'mean regret':>14}{'max regret':>12}{'incompatible':>14}{'failed':>8}"]
    for name, row in [("model", result.model), *result.baselines.items()]:
        lines.append(f"{name:18}{_fmt(row.top1):>8}{_fmt(row.mean_regret):>14}{_fmt(row.max_regret):>12}"
                     f"{row.incompatible_picks:>14}{row.failed_picks:>8}")
    folds = result.groups * len(seeds)
    lines.append("ranked as `fit` ranks: by " + ", ".join(f"{name} in {count} of {folds} folds"
                                                           for name, count in result.ranked_by.items()) +
                 " (the model only where it beat the best simple rule beyond chance on the training clusters)")
    for name in result.ranked_by:
        why = next(check["why"] for check in result.checks if check["ranked_by"] == name)
        lines.append(f"  e.g. {name}: {why}")
    if result.comparison is not None:
        lines += _comparison_text(result.comparison)
    if result.no_pick:
        lines.append(f"{result.no_pick} context(s) had no candidate to pick (the hard rules or the classifier left "
                     "none, or no FOM model): no pick")
    return "\n".join(lines)


def _comparison_text(comparison: Any) -> list[str]:
    from planner.learn.intervals import LEVEL

    best = comparison.best_rule
    lines = [f"against the best rule, {best}: mean regret minus {best}'s, context by context, with its "
             f"{LEVEL:.0%} paired bootstrap interval (held-out groups resampled):"]
    for name, row in comparison.overall.items():
        lines.append(f"  {name:18}{row.mean_regret:.3f}  {row.difference.text():28} {row.verdict}")
    seeds = ", ".join("-" if value is None else f"{value:.3f}" for value in comparison.per_seed)
    lines.append(f"  model per seed: {seeds}")
    lines.append("  per group (the model's seeds resampled): " + "; ".join(
        f"{group} {row.mean_regret:.3f} {row.difference.text()}" for group, row in comparison.per_group.items()))
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    from planner.cli.learn_text import fit_summary
    from planner.edges import datasets, modelfiles, report, training
    from planner.edges.store import Store
    from planner.learn import profiles

    path = cli_args.store_path(args)
    catalog = cli_args.catalog(args)
    with Store(path, create=False) as store:
        datasets.require_runs(store.db, path)
        out = _writable_dir(args.out)  # before the model is fitted and the figures drawn
        apps = datasets.distinct(store.db, "app")
        metric = resolve_metric(args.metric, None, datasets.metrics(store.db, apps[0] if len(apps) == 1 else None),
                                of=apps[0] if len(apps) == 1 else None)
        notes: list[str] = []
        meta, _ = training.ensure(store, catalog, metric, notes)
        runs = datasets.read(store.db, [metric.name], explain=profiles.names(datasets.metrics(store.db)))
    model_text = fit_summary(meta.report, modelfiles.model_dir(path)) if meta.report.get("seconds") else ""
    result = report.write(runs, out, metric, meta.report, model_text, notes)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"wrote {len(result['figures'])} figures and {result['index']}")
    return 0


def _writable_dir(name: str) -> Path:
    """The report's directory, made now and written to once: refused before the model is fitted and the
    figures drawn, when it cannot be."""
    import tempfile

    out = Path(name)
    if out.exists() and not out.is_dir():
        raise InputError("is not a directory; --out names the directory the report is written to", file=name)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as err:
        raise InputError(f"cannot write the report here ({err.strerror})", file=name) from None
    return out


# -------------------------------------------------------------------------------------------- commands


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "import", help="load long-form results (CSV) from elsewhere into the store",
        description="Import a long-form CSV: one row per measurement with columns cluster, app, workload, "
                    "variant, status (ok|failed|incompatible), metric, value (empty unless ok); optional repeat "
                    "and reason (a failure reason code); attribute columns variant.<attribute> (compspec names, "
                    "e.g. variant.io.archspec.cpu.target, variant.mpi.implementation), cluster.<attribute> "
                    "(e.g. cluster.microarchitecture, cluster.cores_per_node) and option.<name> (launch options "
                    "such as option.tasks, or workload parameters such as option.x). CPU targets may be archspec "
                    "or GCC -march names. Every bad row is reported with its line; then nothing is imported. "
                    "Importing the same file again adds nothing.")
    p.add_argument("file", metavar="FILE.csv", help="the CSV file")
    p.add_argument("--replace", action="store_true",
                   help="replace runs already stored with the same id (default: keep them)")
    cli_args.store_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "fit", help="fit the models on the store and report their cross-validated error",
        description="Fit the FOM regressor (log scale, prediction intervals) and the success classifier on "
                    "every stored run; report grouped cross-validated errors; save them next to the store "
                    "(results/models/<store name>/) with the store's fingerprint and library versions, with "
                    "predictions for every known point so that `recommend` answers fast.")
    cli_args.experiment_arg(p)
    cli_args.store_arg(p)
    cli_args.metric_arg(p, repeat=True)
    cli_args.goal_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "recommend", help="ranked variants and launch options for an app and workload, with the exact command",
        description=quick.RECOMMEND_DESCRIPTION)
    quick.recommend_arguments(p)
    p.add_argument("--across", choices=("clusters",), default=None,
                   help="rank (cluster, variant, options) across every known cluster together (no --cluster)")
    p.add_argument("--per-dollar", action="store_true",
                   help="rank by work per dollar (the FOM per hour over the cluster's price per hour: its "
                        "price_per_hour, else the shipped EC2 On-Demand list price of its instance type), with the "
                        "time and cost of one run; clusters without a price are left out and named")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "evaluate", help="leave-one-group-out quality of the recommendations against rules-aware baselines",
        description="For each cluster (or workload), fit the models on every run outside it, rank in each of "
                    "its contexts the choices measured there as `recommend` would (with the simple rule `fit` falls "
                    "back to where it ranked better than the model on the training clusters), and score the "
                    "ranking against the "
                    "measurements: top-1 share, mean and max regret (best / what the user runs; 1.0 is perfect; "
                    "a pick that failed or was incompatible scores as the next success down the ranking, and "
                    "is counted). Baselines, all obeying the hard rules: rules_random, most_often_best (by "
                    "variant), family_mean and nearest_cluster (best mean FOM / best FOM of its context on "
                    "clusters of the same family / the most similar clusters), heuristic (GPU, all cores, ranks "
                    "over threads, widest vector extension, newest release).")
    p.add_argument("--group-by", choices=("cluster", "workload"), required=True,
                   help="what to hold out: each cluster, or each workload, in turn")
    cli_args.metric_arg(p)
    cli_args.goal_arg(p)
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="fit the model with N seeds per held-out group (default: 3); each method's mean regret is "
                        "shown with a paired bootstrap interval against the best simple rule")
    p.add_argument("--held-out", action="append", default=None, metavar="GROUP",
                   help="hold out and score only this group (repeatable), each still trained on all the others: "
                        "check on groups kept apart from those a choice was designed on")
    cli_args.experiment_arg(p)
    cli_args.store_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "report", help="PNG plots of the results and the model, and an index.html",
        description="Write PNG plots (FOM per variant and options per workload with spread, variant x cluster "
                    "heatmap, failure reasons, predicted vs measured, attribute importances) and an index.html "
                    "showing them with the model's cross-validated errors. Fits the model first if there is none.")
    p.add_argument("--out", default="results/report", metavar="DIR", help="output directory (default: results/report)")
    cli_args.metric_arg(p)
    cli_args.experiment_arg(p)
    cli_args.store_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_report)
