"""The learning commands: import, fit, recommend, evaluate, report (registered by planner.cli)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.cli import args as cli_args
from planner.core.errors import InputError
from planner.core.metrics import DEFAULT_METRIC, default_metric, metric_of, resolve_metric

if TYPE_CHECKING:
    from planner.edges.store import Store
    from planner.learn.catalog import Catalog
    from planner.learn.columns import Choice, Context
    from planner.learn.evaluate import Evaluation
    from planner.learn.recommend import Request
    from planner.learn.table import Table

# ---------------------------------------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> int:
    from planner.core import files
    from planner.edges import importer
    from planner.edges.store import Store

    files.require_regular(args.file, "CSV file")
    started = time.monotonic()
    last = [started]

    def say(message: str) -> None:  # progress on stderr, at most every 2 s
        if time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            print(f"import: {message} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    try:
        parsed = importer.read_csv(args.file, lambda rows, share: say(f"{rows:,} rows read, {share:.0%} of the file"))
    except importer.BadRows as err:
        for problem in err.problems[:importer.SHOWN]:
            print(problem, file=sys.stderr)
        if len(err.problems) > importer.SHOWN:
            print(f"... and {len(err.problems) - importer.SHOWN} more bad row(s)", file=sys.stderr)
        raise
    path = cli_args.store_path(args)
    runs = len(parsed.runs)
    with Store(path) as store:
        new, merged = store.merge_many(parsed.records, replace=args.replace,
                                       progress=lambda done: say(f"{done:,} of {runs:,} runs stored"))
    result = {"file": args.file, "store": str(path), "rows": parsed.rows, "runs": runs, "new": new,
              ("replaced" if args.replace else "already_stored"): runs - new, "foms_merged": merged}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        again = f"{runs - new} replaced" if args.replace else f"{runs - new} already stored"
        added = f"; {merged} figure(s) of merit {'set' if args.replace else 'added'} on runs already stored" \
            if merged else ""
        print(f"imported {args.file}: {parsed.rows} rows -> {runs} runs ({new} new, {again}) into {path}{added}")
    return 0


# ------------------------------------------------------------------------------------------------- fit


def cmd_fit(args: argparse.Namespace) -> int:
    from planner.cli.learn_text import fit_summary
    from planner.edges import column_reader, modelfiles, training
    from planner.edges.store import Store

    path = cli_args.store_path(args)
    exp = cli_args.load_optional_experiment(args)
    with Store(path, create=False) as store:
        column_reader.require_runs(store.db, path)
        measured = column_reader.metrics(store.db)
        try:
            previous = modelfiles.load_meta(modelfiles.model_dir(path))
        except InputError:  # a model of another version: replaced by this fit
            previous = None
        goals = previous.goals if previous else {}
        # by default each stored app's own default figure of merit (the first app's is refused if none is
        # measured); a metric's goal: as asked, else the one the last fit ranked it towards, else its definition's
        defaults = [m for m in dict.fromkeys(default_metric(app) for app in column_reader.distinct(store.db, "app"))
                    if m in measured]
        metrics = [resolve_metric(m, args.goal or goals.get(m or DEFAULT_METRIC), measured)
                   for m in dict.fromkeys(args.metric or defaults or [None])]
        if previous:
            metrics += [metric_of(m, goals.get(m)) for m in previous.metrics if m not in {n.name for n in metrics}]
        catalog = cli_args.catalog_of(exp, path)
        fitted = training.train(store, catalog, metrics)
    if args.json:
        print(json.dumps({"directory": str(fitted.directory), **fitted.meta.report}, indent=2))
    else:
        print(fit_summary(fitted.meta.report, fitted.directory))
    return 0


# ------------------------------------------------------------------------------------------- recommend

RECOMMEND_DESCRIPTION = (
    "Rank every known choice (variant + launch options) for APP WORKLOAD on a cluster: measured medians first "
    "where this workload was measured on the cluster, then the model's predictions with an 80% interval. Points "
    "the hard rules exclude, that failed here, or that the classifier expects to fail are left out. Each row "
    "shows the exact launch command (for the options the experiment declares) and why it ranks there. Computed "
    "from the store as it is now, every time.")


def recommend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("app", metavar="APP", help="application (an app of the experiment)")
    p.add_argument("workload", metavar="WORKLOAD", help="workload of the app, e.g. reaxff")
    p.add_argument("--cluster", default=None, metavar="NAME", help="cluster (default: every known cluster)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many to show (default: 5)")
    cli_args.metric_arg(p)
    cli_args.goal_arg(p)
    p.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="workload parameter set to recommend for, when several were run (default: the "
                        "experiment's defaults)")
    cli_args.experiment_arg(p)
    cli_args.store_arg(p)
    cli_args.json_arg(p)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. x=2)")
    return name, value


def cmd_recommend(args: argparse.Namespace) -> int:
    """Computed from the store every time: the measurements of the asked workload come from the runs `fit`
    saved while the store is still at the change it was fitted at (`Store.changes`) and the catalog is the one it
    was fitted with (`modelfiles.catalog_digest`), else from the store;
    scikit-learn is loaded only to fit a missing model or to predict points the table lacks
    (`planner.edges.training`)."""
    from planner.edges.store import Store
    from planner.learn import recommend

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}", field="--top")
    if args.across and args.cluster:
        raise InputError("--across clusters ranks every known cluster together; leave out --cluster", field="--across")
    path = cli_args.store_path(args)
    catalog = cli_args.catalog(args)  # the experiment's errors, and its disagreements with a cluster, first
    with Store(path, create=False) as store:
        request = recommend.Request(args.app, args.workload, args.cluster, args.top, dict(args.param))
        if args.per_dollar:
            from planner.edges import prices

            request.per_dollar = prices.listed()
        print(_recommendation(store, catalog, request, args.metric, args.goal, as_json=args.json))
    return 0


def _recommendation(store: Store, catalog: Catalog, request: Request, metric_name: str | None,
                    goal: str | None, *, as_json: bool) -> str:
    """The recommendation as `recommend` prints it, text or JSON (only the one asked for is made: the JSON of
    every excluded candidate on every cluster is a third of the time)."""
    from planner.cli.learn_text import recommendation
    from planner.edges import column_reader, modelfiles
    from planner.learn import explain, recommend
    from planner.learn.catalog import every_choice

    _check_names(store, catalog, request)
    measured = column_reader.metrics(store.db, request.app)
    directory = modelfiles.model_dir(store.path)
    # without --goal, the goal the model was fitted towards (`fit --goal`), else the metric's by its name
    fitted = modelfiles.load_meta(directory)
    fitted_goals = fitted.goals if fitted else {}
    metric = resolve_metric(metric_name, goal or fitted_goals.get(metric_name or default_metric(request.app)),
                            measured, of=request.app)
    notes: list[str] = []
    digest, changes = modelfiles.catalog_digest(catalog), store.changes()
    found = modelfiles.saved(directory, metric, fitted, digest)
    if found is None:
        from planner.edges import training

        found = training.ensure(store, catalog, metric, notes)
    meta, table = found

    def predict_missing(catalog: Catalog, points: list[tuple[Context, Choice]]) -> Table:
        from planner.edges import training

        return training.predict_missing(directory, meta, catalog, points)

    # measurements of this workload (on this cluster): the only scan of the store a recommendation needs
    # with the profiles measured there: they explain a measured row's rank (never predict one)
    # (as `fit` saved them while the store's change counter and the catalog are exactly as then)
    measured_profiles = [p for p in explain.names(measured) if p != metric.name]
    filters = {"app": request.app, "workload": request.workload, "cluster": request.cluster,
               "explain": measured_profiles}
    snapshot = modelfiles.load_snapshot(directory, meta, changes=changes, catalog=digest)
    runs = column_reader.from_snapshot(snapshot, [metric.name], **filters) if snapshot is not None else None
    if runs is None:
        runs = column_reader.read(store.db, [metric.name], **filters)
    checks = {name: fom["ranking"] for name, fom in meta.report.get("foms", {}).items() if "ranking" in fom}
    model = recommend.ModelInfo(str(directory), meta.runs, meta.changes != changes, checks)

    def stored() -> list[Choice]:
        return every_choice(column_reader.choices_by_cluster(store.db, request.app))

    result = recommend.recommend(request, metric, catalog, runs, table, model, stored, predict_missing, notes)
    return json.dumps(result.as_dict(), indent=2) if as_json else recommendation(result)


def _check_names(store: Store, catalog: Catalog, request: Request) -> None:
    """Unknown names and an empty store are bad input: exit 2 listing what is known."""
    from planner.edges import column_reader

    column_reader.require_runs(store.db, store.path)
    apps = sorted(set(column_reader.distinct(store.db, "app")) | (set(catalog.exp.apps) if catalog.exp else set()))
    if request.app not in apps:
        raise InputError(f"unknown app {request.app!r}; known: {', '.join(apps)}", field="APP")
    workloads = sorted(set(column_reader.distinct(store.db, "workload", app=request.app)) |
                       set(catalog.workloads(request.app)))
    if request.workload not in workloads:
        raise InputError(f"unknown workload {request.workload!r} of {request.app}; known: {', '.join(workloads)}",
                         field="WORKLOAD")
    clusters = sorted(set(column_reader.distinct(store.db, "cluster")) | set(catalog.cluster_infos))
    if request.cluster is not None and request.cluster not in clusters:
        raise InputError(f"unknown cluster {request.cluster!r}; known: {', '.join(clusters)}", field="--cluster")
    column_reader.require_runs(store.db, store.path, request.app)


# -------------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from planner.edges import column_reader
    from planner.edges.store import Store
    from planner.learn import evaluate

    path = cli_args.store_path(args)
    with Store(path, create=False) as store:
        column_reader.require_runs(store.db, path)
        metric = resolve_metric(args.metric, args.goal, column_reader.metrics(store.db))
        runs = column_reader.read(store.db, [metric.name])
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
             f"{LEVEL:.0%} paired bootstrap interval (wild cluster bootstrap-t over the held-out groups):"]
    for name, row in comparison.overall.items():
        lines.append(f"  {name:18}{row.mean_regret:.3f}  {row.difference.text():28} {row.verdict}")
    seeds = ", ".join("-" if value is None else f"{value:.3f}" for value in comparison.per_seed)
    lines.append(f"  model per seed: {seeds}")
    lines.append("  per group (over the model's seeds): " + "; ".join(
        f"{group} {row.mean_regret:.3f} {row.difference.text()}" for group, row in comparison.per_group.items()))
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 1e6 else f"{value:.3g}"


# ---------------------------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    from planner.cli.learn_text import fit_summary
    from planner.edges import column_reader, modelfiles, report, training
    from planner.edges.store import Store
    from planner.learn import explain

    path = cli_args.store_path(args)
    catalog = cli_args.catalog(args)
    with Store(path, create=False) as store:
        column_reader.require_runs(store.db, path)
        out = _writable_dir(args.out)  # before the model is fitted and the figures drawn
        apps = column_reader.distinct(store.db, "app")
        metric = resolve_metric(args.metric, None, column_reader.metrics(store.db, apps[0] if len(apps) == 1 else None),
                                of=apps[0] if len(apps) == 1 else None)
        notes: list[str] = []
        meta, _ = training.ensure(store, catalog, metric, notes)
        runs = column_reader.read(store.db, [metric.name], explain=explain.names(column_reader.metrics(store.db)))
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
                    "Importing the same file again adds nothing; a file giving other metrics of runs already "
                    "stored adds them to those runs.")
    p.add_argument("file", metavar="FILE.csv", help="the CSV file")
    p.add_argument("--replace", action="store_true",
                   help="replace runs already stored with the same id: their columns and the metrics the file "
                        "gives (other metrics are kept; default: keep them, adding only metrics they lack)")
    cli_args.store_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "fit", help="fit the models on the store and report their cross-validated error",
        description="Fit the FOM regressor (log scale, prediction intervals) and the success classifier on "
                    "every stored run; report grouped cross-validated errors; save them next to the store "
                    "(results/models/<store's file name>/) with the store's change tag and library versions, with "
                    "predictions for every known point so that `recommend` answers fast.")
    cli_args.experiment_arg(p)
    cli_args.store_arg(p)
    cli_args.metric_arg(p, repeat=True)
    cli_args.goal_arg(p)
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "recommend", help="ranked variants and launch options for an app and workload, with the exact command",
        description=RECOMMEND_DESCRIPTION)
    recommend_arguments(p)
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
