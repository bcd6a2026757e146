"""The learning commands: import, fit, recommend, evaluate, report (registered by planner.cli)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from planner.cli import DEFAULT_EXPERIMENT, _experiment_arg, _store_arg, store_path
from planner.errors import InputError
from planner.experiment import Experiment, load_experiment


def load_optional_experiment(args: argparse.Namespace) -> Experiment | None:
    """The experiment file; the default one may be absent (imported data needs none), a named one may not."""
    if args.experiment == DEFAULT_EXPERIMENT and not Path(DEFAULT_EXPERIMENT).exists():
        return None
    return load_experiment(args.experiment)


def _catalog(args: argparse.Namespace) -> Any:
    from planner import candidates

    return candidates.build(load_optional_experiment(args), {}, {})


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _metric_arg(parser: argparse.ArgumentParser, repeat: bool = False) -> None:
    from planner.summary import DEFAULT_METRIC

    if repeat:
        parser.add_argument("--metric", action="append", default=[], metavar="M",
                            help=f"figure of merit to model (repeatable; default: {DEFAULT_METRIC})")
    else:
        parser.add_argument("--metric", default=None, metavar="M",
                            help=f"figure of merit to rank by (default: {DEFAULT_METRIC}, comparable across "
                                 "variants and options within a workload)")


def _goal_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--goal", choices=("max", "min"), default=None,
                        help="maximize or minimize the metric (default: min for times such as loop_time, "
                             "max for rates)")


# ------------------------------------------------------------------------------------------------- fit


def cmd_fit(args: argparse.Namespace) -> int:
    from planner import dataset, model

    path = store_path(args)
    db = dataset.open_store(path)
    dataset.require_runs(db, path)
    apps = dataset.distinct(db, "app")
    previous = model.load_meta(model.model_dir(path))
    metrics = list(dict.fromkeys(args.metric or model.default_metrics(db, apps)))
    for metric in args.metric:
        if not any(dataset.has_metric(db, metric, app) for app in apps):
            raise InputError(f"no stored run measured {metric!r}; measured: {', '.join(dataset.metrics(db))}",
                             field="--metric")
    if not metrics:
        raise InputError(f"no stored run has the default metric; choose --metric from: "
                         f"{', '.join(dataset.metrics(db)) or 'none'}", field="--metric")
    if previous:
        metrics += [m for m in previous.get("metrics", {}) if m not in metrics]
    bundle = model.train(db, path, _catalog(args), metrics)
    report = bundle.meta["report"]
    if args.json:
        print(json.dumps({"directory": str(bundle.directory), **report}, indent=2))
    else:
        print(fit_summary(report, bundle.directory))
    return 0


def fit_summary(report: dict[str, Any], directory: Path) -> str:
    lines = [f"fitted on {report['runs']} runs ({report['points']} points, {report['features']} features) in "
             f"{report['seconds']['fit']:.1f} s; predictions tabulated in {report['seconds']['table']:.1f} s"]
    success = report["success"]
    if "note" in success:
        lines.append(f"success classifier: {success['note']}")
    elif "balanced_accuracy" in success:
        lines.append(f"success classifier: {success['failed']} of {success['runs']} runs failed or were "
                     f"incompatible; {success['folds']}-fold grouped CV on {success['cv_runs']} runs: accuracy "
                     f"{success['accuracy']:.3f}, balanced accuracy {success['balanced_accuracy']:.3f} "
                     f"({success['false_ok']} failures predicted ok)")
    for metric, cv in report["foms"].items():
        if "mae_log" not in cv:
            lines.append(f"{metric}: fitted on {cv['runs']} runs; too few points to cross-validate")
            continue
        lines.append(f"{metric} (log scale): {cv['folds']}-fold grouped CV on {cv['cv_runs']} runs: median error "
                     f"x{cv['median_factor']:.3f}, mean |log error| {cv['mae_log']:.3f}; where nothing was measured "
                     f"in a context its level is predicted with mean |log error| {cv['level_error_log']:.3f} "
                     f"(x{math.exp(cv['level_error_log']):.2f})")
    lines.append(f"saved to {directory}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- recommend


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. x=2)")
    return name, value


def cmd_recommend(args: argparse.Namespace) -> int:
    from planner import dataset, recommend

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}", field="--top")
    path = store_path(args)
    db = dataset.open_store(path)
    request = recommend.Request(args.app, args.workload, args.cluster, args.top, args.metric, args.goal,
                                dict(args.param))
    result = recommend.recommend(db, path, _catalog(args), request)
    print(json.dumps(result, indent=2) if args.json else recommend.render_text(result))
    return 0


# -------------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from planner import dataset, evaluate

    path = store_path(args)
    db = dataset.open_store(path)
    result = evaluate.evaluate(db, path, _catalog(args), args.group_by, args.metric, args.goal)
    print(json.dumps(result, indent=2) if args.json else evaluate.render_text(result))
    return 0


# -------------------------------------------------------------------------------------------- commands


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "fit", help="fit the models on the store and report their cross-validated error",
        description="Fit the FOM regressor (log scale, prediction intervals) and the success classifier on "
                    "every stored run; report grouped cross-validated errors; save them next to the store "
                    "(results/models/<store name>/) with the store's fingerprint and library versions, with "
                    "predictions for every known point so that `recommend` answers fast.")
    _experiment_arg(p)
    _store_arg(p)
    _metric_arg(p, repeat=True)
    _json_arg(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "recommend", help="ranked variants and launch options for an app and workload, with the exact command",
        description="Rank every known choice (variant + launch options) for APP WORKLOAD on a cluster: "
                    "measured medians first where this workload was measured on the cluster, then the "
                    "model's predictions with an 80%% interval. Points the hard rules exclude, that failed "
                    "here, or that the classifier expects to fail are left out. Each row shows the exact "
                    "launch command and why it ranks there.")
    p.add_argument("app", metavar="APP", help="application, e.g. lammps")
    p.add_argument("workload", metavar="WORKLOAD", help="workload of the app, e.g. reaxff")
    p.add_argument("--cluster", default=None, metavar="NAME", help="cluster (default: every known cluster)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many to show (default: 5)")
    _metric_arg(p)
    _goal_arg(p)
    p.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="workload parameter set to recommend for, when several were run (default: the "
                        "experiment's defaults)")
    _experiment_arg(p)
    _store_arg(p)
    _json_arg(p)
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
    _metric_arg(p)
    _goal_arg(p)
    _experiment_arg(p)
    _store_arg(p)
    _json_arg(p)
    p.set_defaults(func=cmd_evaluate)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
