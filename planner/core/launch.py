"""A run's launch command, rendered once: run -> argv, environment, working directory. Pure.

`plan`, `sweep --dry-run`, `recommend` and the executed run all show what `render` returns; the
Ansible roles execute it as data and never re-assemble command lines.

- local (native variants): `mpiexec -n T [-bind-to ...] lmp -in IN -v k v ... [-sf S -pk omp N] -nocite`,
  the variant's MPI library bound through LD_LIBRARY_PATH; the input's files are staged (linked) into
  the run's own directory from the adapted copy written by `planner.core.inputs`.
- MiniCluster (container variants): `flux run -N n -n T [-c t] [-o cpu-affinity=A] singularity exec
  [--bind B] [--env K=V] --pwd WORKDIR SIF lmp -v k v ... -in IN [-sf S] -nocite`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from planner.core.experiment import App, Source, check_env
from planner.core.inputs import staged_dir
from planner.core.types import ClusterInfo, Run, VariantInfo


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: directory whose files are linked into the run's own directory before the launch (native inputs)
    stage: str | None = None
    #: image to pull before the launch (container variants)
    image: str | None = None
    sif: str | None = None

    def __post_init__(self) -> None:
        # names were validated where they entered (experiment, CSV); one that was not is a bug, and must
        # never reach the printed command as shell code
        check_env(self.env)
        if any("\0" in word for word in self.argv):
            raise ValueError(f"a launch argument holds a NUL byte: {self.argv}")

    def shell(self) -> str:
        """The command as a person would type it, environment first; pasted into a shell, it runs exactly
        `argv` with `env`: every word is quoted, and names are identifiers, so assignments stay assignments."""
        env = " ".join(f"{shlex.quote(key)}={shlex.quote(value)}" for key, value in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)


def sif_path(cluster: ClusterInfo, image: str) -> str:
    """Where `flux exec singularity pull` caches an image on every node."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", image.split("://", 1)[-1].split("/")[-1])
    return str(PurePosixPath(cluster.sif_dir) / f"{name}.sif")


def _app_args(run: Run, app: App, source: Source) -> list[str]:
    uses = source.uses if source.uses is not None else tuple(run.parameters)
    args: list[str] = []
    for name in uses:
        args += ["-v", name, str(run.parameters[name])]
    args += ["-in", PurePosixPath(source.input).name if source.workdir else source.input]
    if run.options.suffix != "none":
        args += ["-sf", run.options.suffix]
        if run.options.suffix == "omp":
            args += ["-pk", "omp", str(run.options.threads)]
    return args + list(app.args)


def _env(run: Run, variant: VariantInfo) -> dict[str, str]:
    env = dict(variant.env)
    env["OMP_NUM_THREADS"] = str(run.options.threads)
    if run.options.preload:
        env["LD_PRELOAD"] = run.options.preload
    env.update(run.options.env)
    return env


def _mpiexec_binding(run: Run, variant: VariantInfo) -> tuple[list[str], dict[str, str]]:
    """Hydra's binding flags, or Intel MPI's pinning variables (its hydra ignores -bind-to)."""
    affinity, threads = run.options.affinity, run.options.threads
    if affinity == "default":
        return [], {}
    if "intel" in str(variant.attributes.get("mpi.implementation", "")).lower():
        if affinity == "off":
            return [], {"I_MPI_PIN": "off"}
        return [], {"I_MPI_PIN": "on", "I_MPI_PIN_DOMAIN": "omp" if threads > 1 else "core"}
    if affinity == "off":
        return ["-bind-to", "none"], {}
    return ["-bind-to", f"core:{threads}" if threads > 1 else "core"], {}


def render(run: Run, cluster: ClusterInfo, variant: VariantInfo, app: App) -> Launch:
    workload = app.workloads[run.workload]
    executable = variant.executable or app.executable
    if variant.kind == "native":
        source = workload.native
        assert source is not None
        flags, pin_env = _mpiexec_binding(run, variant)
        env = {"LD_LIBRARY_PATH": variant.layout["libdir"], **pin_env, **_env(run, variant)}
        argv = [variant.layout["mpiexec"], "-n", str(run.options.tasks), *flags, variant.layout["lmp"],
                *_app_args(run, app, source)]
        return Launch(argv, env, stage=str(staged_dir(variant.layout["prefix"], run.workload, source)))
    source = workload.container
    assert source is not None and variant.image is not None
    sif = sif_path(cluster, variant.image)
    argv = ["flux", "run", "-N", str(run.options.nodes), "-n", str(run.options.tasks)]
    if run.options.threads > 1:
        argv += ["-c", str(run.options.threads)]
    if run.options.affinity != "default":
        argv += ["-o", f"cpu-affinity={run.options.affinity}"]
    argv += ["singularity", "exec"]
    for bind in run.options.bind:
        argv += ["--bind", bind]
    for key, value in _env(run, variant).items():
        if key != "OMP_NUM_THREADS" or run.options.threads > 1:
            argv += ["--env", f"{key}={value}"]
    argv += ["--pwd", source.workdir, sif, executable, *_app_args(run, app, source)]
    return Launch(argv, {}, image=variant.image, sif=sif)
