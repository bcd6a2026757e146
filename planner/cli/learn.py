"""The learning commands: import, fit, recommend, evaluate, report (registered by planner.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from planner.cli import args as cli_args
from planner.core.errors import InputError

# ---------------------------------------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> int:
    from planner.edges import importer
    from planner.edges.store import Store

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
    from planner.edges import datasets
    from planner.learn import model

    path = cli_args.store_path(args)
    db = datasets.open_store(path)
    datasets.require_runs(db, path)
    apps = datasets.distinct(db, "app")
    try:
        previous = model.load_meta(model.model_dir(path))
    except InputError:  # a model of another version: replaced by this fit
        previous = None
    metrics = list(dict.fromkeys(args.metric or model.default_metrics(db, apps)))
    for metric in args.metric:
        if not any(datasets.has_metric(db, metric, app) for app in apps):
            raise InputError(f"no stored run measured {metric!r}; measured: {', '.join(datasets.metrics(db))}",
                             field="--metric")
    if not metrics:
        raise InputError(f"no stored run has the default metric; choose --metric from: "
                         f"{', '.join(datasets.metrics(db)) or 'none'}", field="--metric")
    if previous:
        metrics += [m for m in previous.get("metrics", {}) if m not in metrics]
    bundle = model.train(db, path, cli_args.catalog(args), metrics)
    report = bundle.meta["report"]
    if args.json:
        print(json.dumps({"directory": str(bundle.directory), **report}, indent=2))
    else:
        print(model.summary(report, bundle.directory))
    return 0


# ------------------------------------------------------------------------------------------- recommend


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. x=2)")
    return name, value


def cmd_recommend(args: argparse.Namespace) -> int:
    from planner.edges import datasets
    from planner.learn import recommend

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}", field="--top")
    path = cli_args.store_path(args)
    db = datasets.open_store(path)
    request = recommend.Request(args.app, args.workload, args.cluster, args.top, args.metric, args.goal,
                                dict(args.param))
    result = recommend.recommend(db, path, cli_args.catalog(args), request)
    print(json.dumps(result, indent=2) if args.json else recommend.render_text(result))
    return 0


# -------------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from planner.edges import datasets
    from planner.learn import evaluate

    path = cli_args.store_path(args)
    db = datasets.open_store(path)
    result = evaluate.evaluate(db, path, cli_args.catalog(args), args.group_by, args.metric, args.goal)
    print(json.dumps(result, indent=2) if args.json else evaluate.render_text(result))
    return 0


# ---------------------------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    from planner.edges import datasets, report

    path = cli_args.store_path(args)
    db = datasets.open_store(path)
    result = report.write(db, path, cli_args.catalog(args), Path(args.out), args.metric)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"wrote {len(result['figures'])} figures and {result['index']}")
    return 0


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
    cli_args.json_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "recommend", help="ranked variants and launch options for an app and workload, with the exact command",
        description="Rank every known choice (variant + launch options) for APP WORKLOAD on a cluster: "
                    "measured medians first where this workload was measured on the cluster, then the "
                    "model's predictions with an 80% interval. Points the hard rules exclude, that failed "
                    "here, or that the classifier expects to fail are left out. Each row shows the exact "
                    "launch command and why it ranks there.")
    p.add_argument("app", metavar="APP", help="application, e.g. lammps")
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
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "evaluate", help="leave-one-group-out quality of the recommendations against three baselines",
        description="For each cluster (or workload), fit the models on every run outside it, pick in each of "
                    "its contexts among the choices measured there, and score the pick against the "
                    "measurements: top-1 share, mean and max regret (best / pick; 1.0 is perfect), picks that "
                    "failed or were incompatible. Baselines: random, arch_match (a variant of the cluster's "
                    "CPU family), most_often_best (the choice best in the most training contexts).")
    p.add_argument("--group-by", choices=("cluster", "workload"), required=True,
                   help="what to hold out: each cluster, or each workload, in turn")
    cli_args.metric_arg(p)
    cli_args.goal_arg(p)
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
