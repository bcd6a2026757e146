"""`python -m planner`: the command line.

Exit codes: 0 success, 1 the work ran and failed, 2 bad input (one line naming file, line and field),
130 interrupted (finished runs are kept; the next sweep resumes).

`run` holds the commands that plan and run sweeps and read their results; `learn` those that import,
fit, recommend, evaluate and report; `variants` those that fetch, show and push compspec artifacts;
`args` the argument helpers they share.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from planner.core.errors import InputError, WorkError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `command` one of the learning commands, only those are registered: the modules
    of the others import rich, pydantic and the experiment's models when loaded, which `recommend` need not."""
    from planner.cli import learn
    from planner.cli.args import Parser

    probe = argparse.ArgumentParser().add_subparsers()
    learn.add_commands(probe)
    modules = [learn] if command in probe.choices else _all_modules()
    parser = Parser(
        prog="python -m planner",
        description="compat-lab: run matrices of app variants x launch options on clusters, store every "
                    "figure of merit, learn which variant and options are best, and recommend.",
        epilog="Exit codes: 0 ok, 1 the work ran and failed, 2 bad input, 130 interrupted (resume by re-running).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for module in modules:
        module.add_commands(sub)
    return parser


def _all_modules() -> list[Any]:
    from planner.cli import clusters, learn, run, variants

    return [run, learn, variants, clusters]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if "experiment" in args and args.experiment is None:
        from planner.cli.args import default_experiment

        args.experiment = default_experiment(getattr(args, "app", None))
    try:
        return int(args.func(args))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except WorkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished runs are stored; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
