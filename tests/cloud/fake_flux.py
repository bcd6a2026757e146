"""Stand-ins for `flux`, `singularity` and `lmp` on a MiniCluster's lead broker, which cannot run here.

They log every call as a JSON list of its arguments (FAKE_FLUX_LOG) and do what the real commands do to
what the tests observe: `flux exec -r all CMD` runs CMD once per node (FAKE_FLUX_NODES, default 2) and
fails if any node fails; `flux run -N n -n t [-c c] [-o opt] CMD` checks n against the nodes and runs
CMD once, under a `flux-shell` as Flux does (there the broker starts it, here `flux run`); `flux resource
info` reports the nodes; `singularity pull DEST URI` writes DEST;
`singularity exec [--bind B] [--env K=V] --pwd DIR SIF CMD` needs SIF (and each bind's source, under
FAKE_HOST_ROOT where that is set), enters DIR (under FAKE_ROOT) and runs CMD with the environment.

`lmp` stands for all the ranks `flux run` started and prints what real LAMMPS prints: one banner and
"Loop time of ... on N procs" when the ranks joined one MPI job, else one banner and "on 1 procs" per
rank (each rank a singleton run of the whole input), after a line echoing its arguments for the tests.
They join only through a PMI the image's MPI can
use (see `pmi_joins`): the PMI_FD service Flux's shell sets up for `-o pmi=simple` (its default) for
MPICH and Intel MPI; for Open MPI 4 also Flux's libpmi.so, named by FLUX_PMI_LIBRARY_PATH, which must
be visible inside the container (bound in, with the install tree the operator's view links into).

`install(directory)` writes the four commands (flux-shell too) as executables there, with this interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

CORES_PER_NODE = 64
#: where the operator's Flux installs libpmi.so: its spack install tree, which the view at /mnt/flux/view
#: links into and the application container gets a copy of (flux-operator pkg/flux/view.go)
FLUX_PMI_LIBRARY = "/opt/software/linux-ubuntu22.04-aarch64/gcc-11.4.0/flux-core-0.61.2/lib/flux/libpmi.so"
#: the PMI services `-o pmi=LIST` may name that the operator's Flux has (flux-pmix is not in its views)
SIMPLE_PMI = {"simple", "pmi1", "pmi2"}


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
        env = {**env, **pmi_env(options.get("-o", []), env["FLUX_JOB_SIZE"])}
        return subprocess.call([shutil.which("flux-shell") or "flux-shell", *rest], env=env)
    print(f"flux: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def pmi_env(shell_options: list[str], size: str) -> dict[str, str]:
    """What Flux's shell gives each task for its `-o pmi=LIST` (flux-core src/shell/pmi.c, t/t3002-pmi.t):
    the simple service (the default) sets PMI_FD, PMI_RANK and PMI_SIZE and names Flux's libpmi.so;
    `off`, or only services this Flux lacks, set nothing."""
    services = {"simple"}
    for option in shell_options:
        if option.startswith("pmi="):
            services = set(option.removeprefix("pmi=").split(","))
    if not services & SIMPLE_PMI:
        return {}
    return {"PMI_FD": "3", "PMI_RANK": "0", "PMI_SIZE": size, "FLUX_PMI_LIBRARY_PATH": FLUX_PMI_LIBRARY}


def _binds(values: list[str]) -> list[tuple[str, str]]:
    """`--bind SRC[:DEST[:OPTS]]` as (source on the host, destination in the container)."""
    pairs = []
    for value in values:
        parts = value.split(":")
        pairs.append((parts[0], parts[1] if len(parts) > 1 and parts[1] else parts[0]))
    return pairs


def singularity(args: list[str]) -> int:
    if args[:1] == ["pull"]:
        rest = [arg for arg in args[1:] if arg != "--force"]
        Path(rest[0]).write_text(f"image of {rest[1]}\n")
        return 0
    if args[:1] == ["exec"]:
        rest, env, pwd, binds = args[1:], dict(os.environ), None, []
        while rest[0].startswith("--"):
            flag, value, rest = rest[0], rest[1], rest[2:]
            if flag == "--env":
                key, _, val = value.partition("=")
                env[key] = val
            elif flag == "--pwd":
                pwd = value
            elif flag == "--bind":
                binds.append(value)
        image, command = rest[0], rest[1:]
        if not Path(image).is_file():
            print(f"FATAL:   could not open image {image}: failed to retrieve path for {image}", file=sys.stderr)
            return 255
        host = os.environ.get("FAKE_HOST_ROOT")
        for source, dest in _binds(binds):
            if host is not None and not (Path(host) / source.lstrip("/")).exists():
                print(f"FATAL:   container creation failed: mount hook function failure: mount {source}->{dest} "
                      f"error: while mounting {source}: mount source {source} doesn't exist", file=sys.stderr)
                return 255
        workdir = Path(os.environ["FAKE_ROOT"]) / (pwd or "/").lstrip("/")
        workdir.mkdir(parents=True, exist_ok=True)
        env.update(FAKE_CONTAINER_IMAGE=Path(image).read_text().split()[-1], FAKE_CONTAINER_BINDS=json.dumps(binds))
        return subprocess.call(command, cwd=workdir, env=env)
    print(f"singularity: the fake does not know `{' '.join(args)}`", file=sys.stderr)
    return 1


def visible(path: str, depth: int = 0) -> bool:
    """Whether a path exists inside the container: under a bind's destination, with its source (and, for a
    link such as the view's libpmi.so, its target) present on the host (FAKE_HOST_ROOT)."""
    binds = _binds(json.loads(os.environ.get("FAKE_CONTAINER_BINDS", "[]")))
    for source, dest in binds:
        if path == dest or path.startswith(dest.rstrip("/") + "/"):
            real = Path(os.environ.get("FAKE_HOST_ROOT", "/")) / (source + path[len(dest):]).lstrip("/")
            if real.is_symlink():
                target = os.readlink(real)
                target = target if target.startswith("/") else str(PurePosixPath(path).parent / target)
                return depth < 8 and visible(target, depth + 1)
            return real.exists()
    return False


def pmi_joins() -> bool:
    """Whether the image's MPI finds a PMI that joins the ranks into one job (the module docstring says how)."""
    tag = os.environ.get("FAKE_CONTAINER_IMAGE", "").rsplit(":", 1)[-1]
    if "PMI_FD" not in os.environ:
        return False
    if tag.startswith("openmpi"):
        return visible(os.environ.get("FLUX_PMI_LIBRARY_PATH", ""))
    return True


def flux_shell(args: list[str]) -> int:
    return subprocess.call(args)


def lmp(args: list[str]) -> int:
    end = time.process_time() + float(os.environ.get("FAKE_LMP_SECONDS", "0"))  # CPU a profile can see
    while time.process_time() < end:
        pass
    size = int(os.environ.get("FLUX_JOB_SIZE", "1"))
    procs, runs = (size, 1) if size == 1 or pmi_joins() else (1, size)
    print(f"lmp {' '.join(args)}")  # not LAMMPS's: the tests check what reached it
    for _ in range(runs):
        print("LAMMPS (29 Sep 2021 - Update 2)")
        print(f"  {procs} by 1 by 1 MPI processor grid")
        print(f"Loop time of 1.25 on {procs} procs for 100 steps with 304 atoms")
        print("Performance: 0.691 ns/day, 34.722 hours/ns, 80.000 timesteps/s")
        print("Total wall time: 0:00:01")
    return 0


def install(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("flux", "flux-shell", "singularity", "lmp"):
        path = directory / name
        path.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} {name} \"$@\"\n")
        path.chmod(0o755)


if __name__ == "__main__":
    name, arguments = sys.argv[1], sys.argv[2:]
    if name != "flux-shell":  # Flux starts it, not the role: the calls logged are the role's and the job's
        log(name, arguments)
    sys.exit({"flux": flux, "flux-shell": flux_shell, "singularity": singularity, "lmp": lmp}[name](arguments))
