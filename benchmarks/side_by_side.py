#!/usr/bin/env python3
"""Runs side by side against one at a time: the wall of the same sweep with `--side-by-side` over `--alone`.

    python benchmarks/side_by_side.py flux [--runs N] [--seconds S] [--json]
    python benchmarks/side_by_side.py slurm [--runs N] [--steps N] [--variant V] [--json]

`flux`: one-node runs (64 ranks on 64-core nodes) on a two-node MiniCluster, on the stand-in lead broker of
tests/cloud (tests/cloud/fake_flux.py: Flux's scheduler starts a job once its cores are free; each run's
`lmp` sleeps S seconds), through the planner as a user runs it (tests/cloud/flux_planner.py only swaps the
playbook for the stand-in's). Two runs fit the cluster at once: the target is a ratio <= 0.6.

`slurm`: 1-rank runs (a 4000-atom LJ melt, real LAMMPS in a Charliecloud image under `srun`) on local-slurm,
which must be up (`ansible-playbook playbooks/cluster.yml -e cluster=local-slurm`) with the image built;
its artifact is the one the images role wrote by inspecting it. Two 1-rank runs fit a 2-core node at once,
so the ratio is at best about 0.5 on an idle machine; on a busy one the runs share the cores with the rest.

Each sweep runs on a fresh store; prints both walls, the ratio, the runs stored ok, how many ran beside
another, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: the stand-in's variant (its artifact cannot be fetched here: its attributes are typed, as tests/cloud does)
FLUX_VARIANT = "mpich-ubuntu-22.04-arm64"
#: a 4000-atom LJ melt (tests/slurm's input)
SMALL_INPUT = "\n".join(["units lj", "atom_style atomic", "lattice fcc 0.8442", "region b block 0 10 0 10 0 10",
                         "create_box 1 b", "create_atoms 1 box", "mass 1 1.0", "velocity all create 3.0 87287",
                         "pair_style lj/cut 2.5", "pair_coeff 1 1 1.0 1.0 2.5", "fix 1 all nve", "run ${steps}",
                         ""])


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"sweep failed (exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    return time.monotonic() - started


def outcome(store: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT status, beside FROM runs").fetchall()
    return {"runs": len(rows), "ok": sum(status == "ok" for status, _ in rows),
            "beside_another": sum(bool(json.loads(beside or "[]")) for _, beside in rows)}


def flux(args: argparse.Namespace, tmp: Path) -> dict:
    from tests.cloud.fake_flux import install

    lammps = yaml.safe_load((REPO / "experiments" / "lammps.yaml").read_text())
    eks = lammps["clusters"]["eks-arm64"]
    exp = {"name": "side-by-side", "apps": {"lammps": lammps["apps"]["lammps"]},
           "variants": {FLUX_VARIANT: {**lammps["variants"][FLUX_VARIANT], "attributes": {
               "io.archspec.cpu.target": "aarch64", "mpi.implementation": "mpich", "lammps.packages": "REAXFF"}}},
           "clusters": {"eks-arm64": {**eks, "sif_dir": str(tmp / "sif")}},
           "sweeps": [{"name": "one-node", "clusters": ["eks-arm64"], "app": "lammps", "workloads": ["reaxff"],
                       "variants": [FLUX_VARIANT], "repeats": 1, "timeout": 600,
                       "options": {"set": {"nodes": 1, "tasks": eks["cores_per_node"], "affinity": "per-task"},
                                   "vary": {"x": list(range(1, 1 + args.runs))}}}]}
    (tmp / "lammps.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    install(tmp / "fakes")
    (tmp / "slow").mkdir()
    (tmp / "slow" / "lmp").write_text(f'#!/bin/sh\nsleep {args.seconds}\nexec {tmp}/fakes/lmp "$@"\n')
    (tmp / "slow" / "lmp").chmod(0o755)
    (tmp / "flux-view.sh").write_text(
        f'export PATH="{tmp}/slow:{tmp}/fakes:$PATH"\nfluxsocket=local://{tmp}/run/flux/local\n'
        f'export FAKE_ROOT="{tmp}/container" FAKE_FLUX_LOG="{tmp}/calls.jsonl" FAKE_FLUX_NODES=2\n'
        "unset COMPAT_LAB_OWNER_PID\n")
    (tmp / "inventory.yml").write_text(json.dumps({"flux_lead_broker": {"hosts": {"eks-arm64-lead-broker": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    state = tmp / "state" / "clusters" / "eks-arm64.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"lead_broker": {"pod": "p", "namespace": "n", "container": "c", "kubeconfig": "",
                                                 "context": ""}, "sif_dir": str(tmp / "sif")}))
    env = {**os.environ, "COMPAT_LAB_STATE_DIR": str(tmp / "state")}
    walls = {}
    for mode in ("--alone", "--side-by-side"):
        store = tmp / mode.strip("-") / "planner.sqlite"
        # each sweep its own directory on the lead broker (one would find the other's results there)
        stand_in = {"run_matrix_flux_env_script": str(tmp / "flux-view.sh"),
                    "run_matrix_flux_work_dir": str(tmp / mode.strip("-") / "pod")}
        argv = [sys.executable, "-m", "tests.cloud.flux_planner", str(tmp / "inventory.yml"), json.dumps(stand_in),
                "--", "sweep", "-e", str(tmp / "lammps.yaml"), "--cluster", "eks-arm64", "--store", str(store), mode]
        walls[mode] = (timed(argv, env), outcome(store))
    return report(walls, {"runs": args.runs, "run_seconds": args.seconds, "nodes": 2})


def slurm(args: argparse.Namespace, tmp: Path) -> dict:
    from planner.edges import slurm as local_slurm
    from tests.slurm.conftest import write_artifacts

    if local_slurm.state() is None:
        sys.exit("local-slurm is not up: ansible-playbook playbooks/cluster.yml -e cluster=local-slurm (as root)")
    lammps = yaml.safe_load((REPO / "experiments" / "lammps.yaml").read_text())
    (tmp / "inputs").mkdir()
    (tmp / "inputs" / "in.small").write_text(SMALL_INPUT)
    exp = {"name": "side-by-side", "apps": {"lammps": {"workloads": {"small": {
        "parameters": {"steps": args.steps}, "container": {"workdir": "/mnt", "input": "in.small",
                                                           "uses": ["steps"]}}}}},
        "variants": {args.variant: lammps["variants"][args.variant]},
        "clusters": {"local-slurm": lammps["clusters"]["local-slurm"]},
        "launch_rules": lammps["launch_rules"],
        "sweeps": [{"name": "one-rank", "clusters": ["local-slurm"], "app": "lammps", "workloads": ["small"],
                    "variants": [args.variant], "repeats": args.runs, "timeout": 600,
                    "options": {"set": {"tasks": 1, "bind": [f"{tmp}/inputs:/mnt"]}}}]}
    (tmp / "slurm.yaml").write_text(yaml.safe_dump(exp, sort_keys=False))
    walls = {}
    for mode in ("--alone", "--side-by-side"):
        store = tmp / mode.strip("-") / "planner.sqlite"
        store.parent.mkdir()
        write_artifacts(store, [args.variant])
        argv = [sys.executable, "-m", "planner", "sweep", "-e", str(tmp / "slurm.yaml"), "--cluster", "local-slurm",
                "--store", str(store), mode]
        walls[mode] = (timed(argv, dict(os.environ)), outcome(store))
    return report(walls, {"runs": args.runs, "steps": args.steps, "variant": args.variant,
                          "cores": os.cpu_count()})


def report(walls: dict, setup: dict) -> dict:
    alone, together = walls["--alone"], walls["--side-by-side"]
    return {**setup, "alone_wall": round(alone[0], 2), "side_by_side_wall": round(together[0], 2),
            "ratio": round(together[0] / alone[0], 3), "alone": alone[1], "side_by_side": together[1],
            "load_average": [round(load, 2) for load in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="where", required=True)
    on_flux = sub.add_parser("flux")
    on_flux.add_argument("--runs", type=int, default=10)
    on_flux.add_argument("--seconds", type=float, default=8.0)
    on_slurm = sub.add_parser("slurm")
    on_slurm.add_argument("--runs", type=int, default=8, help="repeats of the one 1-rank point")
    on_slurm.add_argument("--steps", type=int, default=300)
    on_slurm.add_argument("--variant", default="lammps-debian12-openmpi")
    for each in (on_flux, on_slurm):
        each.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-side-by-side-") as tmp:
        out = (flux if args.where == "flux" else slurm)(args, Path(tmp))
        if os.environ.get("KEEP"):
            subprocess.run(["cp", "-a", tmp, os.environ["KEEP"]], check=True)
    print(json.dumps(out) if args.json else "\n".join(f"{key}: {value}" for key, value in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
