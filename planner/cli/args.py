"""Argument helpers shared by the command modules: experiment, store, selection, metric and goal."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from planner.core import apps
from planner.core.metrics import DEFAULT_METRIC, GOALS

if TYPE_CHECKING:
    from rich.console import Console

    from planner.core.experiment import Experiment
    from planner.learn.acquisition import Budget
    from planner.learn.catalog import Catalog

DEFAULT_EXPERIMENT = apps.default_experiment()
DEFAULT_CLUSTER = "local"


class Parser(argparse.ArgumentParser):
    """argparse with the planner's one-line errors (exit 2), the usage left to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def console() -> Console:
    from rich.console import Console

    # piped output (CI logs, `| less`) gets a wide table instead of rich's 80-column default
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def experiment_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-e", "--experiment", default=None, metavar="FILE",
                        help=f"experiment file (default: experiments/APP.yaml where the command names an APP that "
                             f"has one, else {DEFAULT_EXPERIMENT})")


def default_experiment(app: str | None) -> str:
    """The experiment file of a command given no -e: the app's own (`recommend hpcc ...` reads
    experiments/hpcc.yaml) where the command names an app that has one, else DEFAULT_EXPERIMENT."""
    own = Path("experiments") / f"{app}.yaml"
    if app and re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", app) and own.is_file():
        return str(own)
    return DEFAULT_EXPERIMENT


def store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, metavar="PATH",
                        help="results store (default: $PLANNER_STORE or ./results/planner.sqlite)")


def selection_args(parser: argparse.ArgumentParser) -> None:
    """Which part of the experiment: the file, the cluster, and optional workload/variant filters."""
    experiment_arg(parser)
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER, help="cluster name (default: local)")
    parser.add_argument("--workload", action="append", default=[], metavar="W",
                        help="only this workload (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="V", help="only this variant (repeatable)")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def repeats(text: str) -> int:
    from planner.core.experiment import MAX_REPEATS

    if positive(text) > MAX_REPEATS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_REPEATS}, the most repeats a sweep takes")
    return int(text)


def budget(text: str) -> Budget:
    from planner.learn.acquisition import Budget

    try:
        return Budget.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def store_path(args: argparse.Namespace) -> Path:
    """The store named by --store, else $PLANNER_STORE, else the default; refused if it cannot be a store."""
    from planner.edges.store import check_path, default_path

    return check_path(default_path() if args.store is None else args.store)


def load_optional_experiment(args: argparse.Namespace) -> Experiment | None:
    """The experiment file; the default one may be absent (imported data needs none), a named one may not."""
    from planner.core.experiment import load_experiment

    if args.experiment == DEFAULT_EXPERIMENT and not Path(DEFAULT_EXPERIMENT).exists():
        return None
    return load_experiment(args.experiment)


def catalog(args: argparse.Namespace) -> Catalog:
    """What the experiment declares (nothing without one); the store's attributes are added as they are read."""
    return catalog_of(load_optional_experiment(args), store_path(args))


def catalog_of(exp: Experiment | None, store: Path) -> Catalog:
    """The experiment's clusters and variants, container variants with the artifacts fetched for this store
    (`variants fetch --store`, kept beside it)."""
    from planner.edges.clusters import cluster_infos
    from planner.edges.compspec_cache import ArtifactCache, cache_path
    from planner.edges.variant_info import variant_infos
    from planner.learn.catalog import Catalog

    if exp is None:
        return Catalog()
    return Catalog(exp, cluster_infos(exp), variant_infos(exp, artifacts=ArtifactCache(cache_path(store))))


def json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def metric_arg(parser: argparse.ArgumentParser, repeat: bool = False) -> None:
    if repeat:
        parser.add_argument("--metric", action="append", default=[], metavar="M",
                            help=f"figure of merit to model (repeatable; default: {DEFAULT_METRIC})")
    else:
        parser.add_argument("--metric", default=None, metavar="M",
                            help=f"figure of merit to rank by (default: {DEFAULT_METRIC}, comparable across "
                                 "variants and options within a workload)")


def goal_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--goal", choices=GOALS, default=None,
                        help="maximize or minimize the metric (default: min for times such as loop_time, "
                             "max for rates)")
