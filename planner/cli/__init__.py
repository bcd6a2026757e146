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

from planner.core.errors import InputError, WorkError


def build_parser() -> argparse.ArgumentParser:
    from planner.cli import clusters, learn, run, variants
    from planner.cli.args import Parser

    parser = Parser(
        prog="python -m planner",
        description="compat-lab: run matrices of app variants x launch options on clusters, store every "
                    "figure of merit, learn which variant and options are best, and recommend.",
        epilog="Exit codes: 0 ok, 1 the work ran and failed, 2 bad input, 130 interrupted (resume by re-running).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run.add_commands(sub)
    learn.add_commands(sub)
    variants.add_commands(sub)
    clusters.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
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
