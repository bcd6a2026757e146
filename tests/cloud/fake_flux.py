"""Stand-ins for `flux`, `singularity` and `lmp` on a MiniCluster's lead broker, which cannot run here.

They log every call as a JSON list of its arguments (FAKE_FLUX_LOG) and do what the real commands do to
what the tests observe: `flux exec -r all CMD` runs CMD once per node (FAKE_FLUX_NODES, default 2) and
fails if any node fails; `flux run -N n -n t [-c c] [-o opt] CMD` checks n against the nodes and runs
CMD once; `flux resource info` reports the nodes; `singularity pull DEST URI` writes DEST;
`singularity exec [--bind B] [--env K=V] --pwd DIR SIF CMD` needs SIF, enters DIR (under FAKE_ROOT) and
runs CMD with the environment; `lmp` prints the LAMMPS lines the planner parses.

`install(directory)` writes the three commands as executables there, with this interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CORES_PER_NODE = 64


def log(name: str, args: list[str]) -> None:
    with open(os.environ["FAKE_FLUX_LOG"], "a") as handle:
        handle.write(json.dumps([name, *args]) + "\n")


def nodes() -> int:
    return int(os.environ.get("FAKE_FLUX_NODES", "2"))


def flux(args: list[str]) -> int:
    if not os.environ.get("FLUX_URI"):
        print("flux: FLUX_URI is not set: not connected to a Flux instance", file=sys.stderr)
        return 1
    if args[:2] == ["exec", "-r"] and args[2] == "all":
        return max(subprocess.call(args[3:], env={**os.environ, "FAKE_NODE": str(rank)}) for rank in range(nodes()))
    if args[:2] == ["resource", "info"]:
        print(f"{nodes()} Nodes, {nodes() * CORES_PER_NODE} Cores, 0 GPUs")
        return 0
    if args[:1] == ["run"]:
        rest, options = args[1:], {}
        while rest and rest[0] in {"-N", "-n", "-c", "-o"}:
            options.setdefault(rest[0], []).append(rest[1])
            rest = rest[2:]
        wanted = int(options.get("-N", ["1"])[0])
        if wanted > nodes():
            print(f"flux-run: ERROR: unsatisfiable request: {wanted} nodes, {nodes()} up", file=sys.stderr)
            return 1
        env = {**os.environ, "FLUX_JOB_NNODES": str(wanted), "FLUX_JOB_SIZE": options.get("-n", ["1"])[0]}
        return subprocess.call(rest, env=env)
    print(f"flux: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def singularity(args: list[str]) -> int:
    if args[:1] == ["pull"]:
        rest = [arg for arg in args[1:] if arg != "--force"]
        Path(rest[0]).write_text(f"image of {rest[1]}\n")
        return 0
    if args[:1] == ["exec"]:
        rest, env, pwd = args[1:], dict(os.environ), None
        while rest[0].startswith("--"):
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--env":
                key, _, val = value.partition("=")
                env[key] = val
            elif flag == "--pwd":
                pwd = value
        image, command = rest[0], rest[1:]
        if not Path(image).is_file():
            print(f"FATAL:   could not open image {image}: failed to retrieve path for {image}", file=sys.stderr)
            return 255
        workdir = Path(os.environ["FAKE_ROOT"]) / (pwd or "/").lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.call(command, cwd=workdir, env=env)
    print(f"singularity: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def lmp(args: list[str]) -> int:
    print("LAMMPS (29 Sep 2021 - Update 2)")
    print(f"lmp {' '.join(args)} on {os.environ.get('FLUX_JOB_SIZE', '1')} procs")
    print("Total wall time: 0:00:01")
    return 0


def install(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("flux", "singularity", "lmp"):
        path = directory / name
        path.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {name} \"$@\"\n")
        path.chmod(0o755)


if __name__ == "__main__":
    name, arguments = sys.argv[1], sys.argv[2:]
    log(name, arguments)
    sys.exit({"flux": flux, "singularity": singularity, "lmp": lmp}[name](arguments))
