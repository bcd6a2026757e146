"""`python -m planner clusters`: every cluster of the experiment with its attributes, declared and detected."""

from __future__ import annotations

import argparse
import json
from typing import Any

from planner.cli import args as cli_args
from planner.core.experiment import load_experiment


def describe(exp: Any) -> list[dict[str, Any]]:
    from planner.edges import cloud, slurm
    from planner.edges.clusters import cluster_infos

    rows = []
    for name, info in cluster_infos(exp).items():
        row: dict[str, Any] = {"name": name, "kind": info.kind, **info.attributes()}
        if info.kind == "local":
            # native variants: mpiexec in their own prefix; container variants only where Singularity is
            row.update(launcher="mpiexec", runtime="none", containers=info.container_runtime, up=True)
        else:
            row.update(launcher=info.launcher, runtime=info.runtime, pmi=list(info.pmi) or None)
        if info.kind == "slurm":
            up = slurm.state()
            row.update(up=up is not None, host_mpi=(up or {}).get("host_mpi"),
                       charliecloud=(up or {}).get("charliecloud"), images=info.image_dir)
        elif info.kind == "eks":
            row.update(up=bool(cloud.cluster_status(name)["up"]))
        rows.append(row)
    return rows


def cmd_clusters(args: argparse.Namespace) -> int:
    rows = describe(load_experiment(args.experiment))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = cli_args.console()
    for row in rows:
        console.print(f"[bold]{row['name']}[/] ({row['kind']}, {'up' if row.get('up') else 'down'})")
        for key, value in row.items():
            if key not in ("name", "kind", "up") and value not in (None, [], ""):
                console.print(f"  {key}: {json.dumps(value) if isinstance(value, dict | list) else value}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clusters", help="every cluster with its attributes (launcher, runtime, cores, PMI, ...)",
                       description="Every cluster of the experiment with its attributes: declared ones, and what "
                                   "is detected (this machine's cores; local-slurm's PMI flavours and MPI as "
                                   "recorded at bring-up; whether each is up).")
    cli_args.experiment_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_clusters)
