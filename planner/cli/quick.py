"""`recommend`'s quick path: print the answer saved for exactly this request and these inputs.

`python -m planner recommend ...` comes here before anything heavy is imported (no numpy, pydantic or
rich): the arguments are parsed by the same definitions as the full command line
(`recommend_arguments`, which `planner.cli.learn` registers), the key of the answer is recomputed from the
store, the model and the files as they are now (`planner.edges.answers`), and only an answer saved under an
equal key is printed. Anything else (a parse error, --help, a missing or changed file) returns None and the full
command runs, so errors and new answers come from one place.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

from planner.cli import args as cli_args
from planner.cli.args import default_experiment
from planner.edges import answers

RECOMMEND_DESCRIPTION = (
    "Rank every known choice (variant + launch options) for APP WORKLOAD on a cluster: measured medians first "
    "where this workload was measured on the cluster, then the model's predictions with an 80% interval. Points "
    "the hard rules exclude, that failed here, or that the classifier expects to fail are left out. Each row "
    "shows the exact launch command and why it ranks there. After `fit`, the answers for each app, workload and "
    "cluster at the defaults are saved with the model and printed at once while nothing they depend on changed.")


def recommend_arguments(p: argparse.ArgumentParser) -> None:
    """`recommend`'s arguments: the full command line and the quick path parse alike."""
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


class _NotHere(Exception):
    """The quick path does not answer this command line (the full one reports what is wrong)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotHere(message)


def request(args: argparse.Namespace) -> dict[str, Any]:
    """What was asked, as an answer's key holds it (the store and the experiment are keyed apart)."""
    return {"app": args.app, "workload": args.workload, "cluster": args.cluster, "top": args.top,
            "metric": args.metric, "goal": args.goal,
            "params": [[name, value] for name, value in sorted(dict(args.param).items())]}  # as JSON reads it back


def store_of(args: argparse.Namespace) -> Path:
    return Path(args.store if args.store is not None else answers.default_store())


def key(args: argparse.Namespace, db: sqlite3.Connection, watched: list[str],
        fingerprint: str | None = None) -> dict[str, Any] | None:
    """The key of this command line's answer now (`fingerprint`: the store's, when the caller just read it);
    None without a fitted model."""
    store = store_of(args)
    model = answers.model(answers.model_dir(store))
    if model is None:
        return None
    return answers.key(request(args), store=store, store_fingerprint=fingerprint or answers.fingerprint(db),
                       model=model, experiment=Path(args.experiment or default_experiment(args.app)),
                       watched=watched)


def saved_answer(argv: list[str]) -> str | None:
    """The saved output (text, or JSON with --json) for this command line, or None to run the full command."""
    if any(arg == "-h" or arg.startswith("--h") for arg in argv):  # --help and its abbreviations
        return None
    parser = _Parser(prog="python -m planner recommend", add_help=False)
    recommend_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except _NotHere:
        return None
    store = store_of(args)
    if not store.is_file():
        return None
    try:
        db = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        output = answers.load(answers.model_dir(store), request(args), lambda watched: key(args, db, watched))
    except sqlite3.Error:
        return None
    finally:
        db.close()
    if output is None:
        return None
    return output["json"] if args.json else output["text"]
