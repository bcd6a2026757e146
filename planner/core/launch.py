"""A run's launch command, rendered once: run -> argv, environment, working directory. Pure.

`plan`, `sweep --dry-run`, `recommend` and the executed run all show what `render` returns; the
Ansible roles execute it as data and never re-assemble command lines.

- local (native variants): `mpiexec -n T [-bind-to ...] EXECUTABLE APP-ARGS` with the variant's MPI library
  bound through LD_LIBRARY_PATH, or Open MPI's `mpirun -n T ... EXECUTABLE` for a variant of the host's own
  packages; the input's files are staged (linked) into the run's own directory from the adapted copy written
  by `planner.core.inputs`, or from the files the app generates from the run's parameters.
- MiniCluster (container variants): `flux run --job-name=RUN_ID -t TIMEOUTs -N n -n T [-c t]
  [-o cpu-affinity=A] [-o pmi=P] [-o K=V] singularity exec [--bind B] [--env K=V] --pwd WORKDIR SIF EXECUTABLE
  APP-ARGS [ARGS]` (`recommend` describes a configuration, not a run: without the
  job name and limit).
- local-slurm (container variants): `srun --mpi=P -n T [-c t] [--cpu-bind=...] [-J RUN_ID -t M:SS] ch-run
  [--join] [-b SRC:DST] [--set-env=K=V] -c WORKDIR IMAGE -- EXECUTABLE ...`.

The launcher and the per-rank wrapper are registered backends (`planner.core.backends`): `render` picks the
cluster's (`backends`) and puts their words around the app's command.

Launch rules (the experiment's `launch_rules`) are applied before rendering, by `apply_rules`: what a
matching rule adds goes into the run's options, so the command, the run id and the model's features all
see it, and `plan` shows which rules fired and why.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from planner.core import apps
from planner.core import backends as backend
from planner.core.backends import Container, Launcher, Ranks, Runtime
from planner.core.experiment import App, LaunchRule, Options, RuleAdds, Scalar, Source, check_env
from planner.core.inputs import staged_dir
from planner.core.types import ClusterInfo, FiredRule, Run, VariantInfo


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: directory whose files are linked into the run's own directory before the launch (native inputs)
    stage: str | None = None
    #: image to pull before the launch (container variants)
    image: str | None = None
    sif: str | None = None
    #: where in `argv` the command each rank runs starts (after the launcher's words), for per-rank wrappers
    rank_start: int | None = None
    #: profilers of the run (`planner.core.profilers.wrap` sets them, with GNU time around each rank for
    #: rusage): the executor's profiling step runs perf and ebpf around the launch, watching `profile_root`
    profile: tuple[str, ...] = ()
    profile_root: str = "tree"
    #: the job the command submits (`flux run --job-name`, `srun -J`): the executor cancels it on a stop (and
    #: asks Flux for its run time); None for commands that are not jobs
    job: str | None = None
    #: the launcher whose job it is (`flux`, `srun`)
    scheduler: str | None = None

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


def sif_path(cluster: ClusterInfo, image: str, digest: str | None = None) -> str:
    """Where `flux exec singularity pull` caches an image on every node: keyed by the image's full reference
    and, where `variants fetch` learnt it, the digest its tag named then. Two references never share a file
    (the readable part is only a label; the hash of the whole reference decides), and a tag that moved to
    another digest is a new file, pulled again."""
    key = image if digest is None else f"{image}@{digest}"
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", image.split("://", 1)[-1])[-100:].strip("._-") or "image"
    return str(PurePosixPath(cluster.sif_dir) / f"{label}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.sif")


def pull_reference(image: str, digest: str | None) -> str:
    """What is pulled into `sif_path`: the image pinned to the digest its path is keyed by, where known."""
    if digest is None or "://" not in image or image.split("://", 1)[0] not in ("docker", "oras"):
        return image
    scheme, rest = image.split("://", 1)
    name = rest.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:  # the tag goes: the digest names the content
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return f"{scheme}://{name}@{digest}"


# ------------------------------------------------------------------------------------------ launch rules

#: options a rule sets only where the point (or an earlier rule) left them unset
_SCALAR_ADDS = ("pmi", "affinity", "preload")
_TRUE, _FALSE = frozenset({"yes", "true", "1", "on"}), frozenset({"no", "false", "0", "off"})


#: whose PMI a launcher's ranks bootstrap through, as the plan's warning names it
_PMI_OF = {"flux": "Flux's PMI", "srun": "Slurm's PMI plugins"}


def _text(value: Any) -> str:
    """Attribute values as rules compare them: text, lower case, yes/no spellings as true/false (YAML reads
    an unquoted `no` as false, compspec artifacts write "no")."""
    text = str(value).strip().lower()
    return "true" if text in _TRUE else "false" if text in _FALSE else text


def _wanted(wanted: Scalar | list[Scalar]) -> list[Scalar]:
    return wanted if isinstance(wanted, list) else [wanted]


def _why(rule: LaunchRule, app: str, cluster: Mapping[str, Any], variant: Mapping[str, Any]) -> str | None:
    """Why the rule applies (the attributes it matched: `variant mpi.implementation=OpenMPI, ...`), or None."""
    if rule.match.app and app not in rule.match.app:
        return None
    reasons = [f"app={app}"] if rule.match.app else []
    for group, attributes, wanted_by_name in (("variant", variant, rule.match.variant),
                                              ("cluster", cluster, rule.match.cluster)):
        for name, wanted in wanted_by_name.items():
            value = attributes.get(name)
            # `*` and `?` are the wildcards; a `[` is itself (fnmatch would read a character class)
            if value is None or not any(fnmatch.fnmatchcase(_text(value), _text(item).replace("[", "[[]"))
                                        for item in _wanted(wanted)):
                return None
            reasons.append(f"{group} {name}={value}")
    return ", ".join(reasons) or "matches every run"


def _describe(name: str, value: Any) -> str:
    if name == "pmi":
        return f"-o pmi={value}"
    if name == "affinity":
        return f"-o cpu-affinity={value}"
    if name == "shell":
        return " ".join(f"-o {key}={item}" if item else f"-o {key}" for key, item in value.items())
    if name == "bind":
        return " ".join(f"--bind {item}" for item in value)
    if name == "env":
        return " ".join(f"{key}={item}" for key, item in value.items())
    if name == "args":
        return "app flags " + " ".join(value)
    if name == "runtime_args":
        return "runtime flags " + " ".join(value)
    return f"{name}={value}"


def _merge(name: str, value: Any, data: dict[str, Any], given: set[str], taken: dict[str, str]) -> tuple[Any, Any]:
    """(what the rule adds, what it leaves as the point or an earlier rule set it) for one `add` field."""
    if name in _SCALAR_ADDS:
        if value is None:
            return None, None
        if name in given or name in taken:
            return None, f"{name}={data[name]} ({'the point' if name in given else 'rule ' + taken[name]})"
        data[name] = value
        return value, None
    if isinstance(value, tuple):  # bind, args: added once each, in order
        new = tuple(item for item in value if item not in data[name])
        data[name] = (*data[name], *new)
        return new or None, None
    new = {key: item for key, item in value.items() if key not in data[name]}  # env, shell: set keys win
    kept = {key: data[name][key] for key in value if key in data[name]}
    data[name] = {**data[name], **new}
    return new or None, ", ".join(f"{name} {key}={item}" for key, item in kept.items()) or None


def apply_rules(rules: Sequence[LaunchRule], app: str, cluster: ClusterInfo, variant: VariantInfo,
                options: Options) -> tuple[Options, tuple[FiredRule, ...], tuple[str, ...]]:
    """The run's options with what the matching rules add, the rules that fired, and the plan's warnings.

    Rules named in the point's `skip_rules` are left out, so a sweep can compare a launch with and without
    one (e.g. the container's MPI through Flux's PMI against a host MPI bound in)."""
    launcher, runtime = backends(cluster, variant)
    # what starts the ranks and wraps each one are cluster attributes rules can match (`launcher: srun`)
    cluster_attrs = {**cluster.attributes(), "name": cluster.name, "launcher": launcher.name,
                     "runtime": runtime.name, "pmi": " ".join(cluster.pmi) or None}
    variant_attrs = {**variant.attributes, "name": variant.name, "kind": variant.kind}
    data, given = options.model_dump(), set(options.model_fields_set)
    taken: dict[str, str] = {}
    fired, mpi_rule = [], False
    for rule in rules:
        why = None if rule.name in options.skip_rules else _why(rule, app, cluster_attrs, variant_attrs)
        if why is None:
            continue
        adds, kept = [], []
        for name in RuleAdds.model_fields:
            if name not in rule.add.model_fields_set:
                continue
            added, left = _merge(name, getattr(rule.add, name), data, given, taken)
            if added is not None:
                adds.append(_describe(name, added))
                if name in _SCALAR_ADDS:
                    taken[name] = rule.name
            if left:
                kept.append(left)
        fired.append(FiredRule(rule.name, why, "; ".join(adds) or "nothing new", "; ".join(kept)))
        mpi_rule = mpi_rule or "mpi.implementation" in rule.match.variant
    warnings = []
    if launcher.name in ("flux", "srun") and options.tasks > 1 and not mpi_rule:
        implementation = variant.attributes.get("mpi.implementation")
        # without its attributes no rule can match: say where they come from
        unknown = "" if implementation else " (the variant's attributes are not fetched: `python -m planner " \
                                            "variants fetch`)"
        warnings.append(f"no launch rule for mpi.implementation={implementation or 'unknown'}{unknown}: nothing "
                        f"here connects the image's MPI to {_PMI_OF[launcher.name]}, so the {options.tasks} tasks "
                        f"may run as {options.tasks} singleton runs of {app} (the run then fails with reason mpi)")
    return Options.model_validate(data), tuple(fired), tuple(warnings)


# --------------------------------------------------------------------------------------------- render


def _app_args(run: Run, definition: apps.Definition, source: Source) -> list[str]:
    return [*definition.arguments(run.parameters, source, run.options), *run.options.args, *definition.args]


def generated_inputs(run: Run, app: App) -> dict[str, str] | None:
    """The input files the app writes from the run's parameters (None: the variant's own input is staged)."""
    return apps.resolve(run.app, app).generated_inputs(run.parameters, run.options)


def generated_dir(prefix: str, workload: str, files: Mapping[str, str]) -> str:
    """Where a run's generated inputs are written in the variant's prefix: one directory per content."""
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:10]
    return str(PurePosixPath(prefix) / "inputs" / f"{workload}-generated-{digest}")


def _env(run: Run, variant: VariantInfo) -> dict[str, str]:
    env = dict(variant.env)
    env["OMP_NUM_THREADS"] = str(run.options.threads)
    if run.options.preload:
        env["LD_PRELOAD"] = run.options.preload
    env.update(run.options.env)
    return env


def backends(cluster: ClusterInfo, variant: VariantInfo) -> tuple[Launcher, Runtime]:
    """What starts a variant's ranks and what wraps each rank here: native variants are their recipe's launcher
    (`mpiexec`, or `mpirun` for a host variant of Open MPI) without a container; container variants are
    launched the cluster's way (`flux run` + `singularity exec` on a MiniCluster, `srun` + `ch-run` on
    local-slurm)."""
    if variant.kind == "native":
        return backend.launcher(variant.layout.get("launcher_name", "mpiexec")), backend.runtime("none")
    return backend.launcher(cluster.launcher), backend.runtime(cluster.runtime)


#: where a container run reads its adapted input (a container source with `substitute`): the planner's copy,
#: staged on this machine and bound over a directory every Debian image has and none of ours uses (base-files'
#: /srv; ch-run binds only onto targets that exist in the image)
STAGED_INPUTS = "/srv"


def container_stage(run: Run, cluster: ClusterInfo, variant: VariantInfo, source: Source) -> str | None:
    """Where the adapted copy of a container input is staged, on clusters whose images are directories of this
    machine (Charliecloud), which the planner reads the original from; None where the image's input is used as
    it ships (no `substitute`, or an image pulled by the cluster: `plan` warns). Keyed by what the run reads
    (`run.input`: the source and the original's text), so an image with another input gets another copy."""
    if not source.substitute or cluster.image_dir is None:
        return None
    return str(PurePosixPath(cluster.image_dir) / ".inputs" / f"{variant.name}-{run.workload}-{run.input}")


def image_path(cluster: ClusterInfo, variant: VariantInfo) -> str:
    """What the runtime starts: a SIF `flux exec singularity pull` caches on every node, or the cluster's
    directory image of the variant (Charliecloud)."""
    if cluster.image_dir is not None:
        return variant.layout.get("image") or str(PurePosixPath(cluster.image_dir) / variant.name)
    assert variant.image is not None
    return sif_path(cluster, variant.image, variant.image_digest)


def ranks(run: Run, variant: VariantInfo, program: str | None = None) -> Ranks:
    """The launcher's request for a run. A run without a timeout is no execution but a configuration
    described (`recommend`): no job name, no limit."""
    executed = run.timeout > 0
    return Ranks(run.options.tasks, run.options.nodes, run.options.threads, run.options.affinity, run.options.pmi,
                 run.options.shell, run.id if executed else None, run.timeout if executed else None,
                 variant.attributes.get("mpi.implementation"), program)


def render(run: Run, cluster: ClusterInfo, variant: VariantInfo, app: App) -> Launch:
    workload = app.workloads[run.workload]
    definition = apps.resolve(run.app, app)
    executable = variant.executable or definition.executable
    launcher, runtime = backends(cluster, variant)
    if variant.kind == "native":
        source = workload.native
        assert source is not None
        generated = definition.generated_inputs(run.parameters, run.options)
        stage = (generated_dir(variant.layout["prefix"], run.workload, generated) if generated is not None
                 else str(staged_dir(variant.layout["prefix"], run.workload, source)))
        start = launcher.command(ranks(run, variant, variant.layout["launcher"]))
        wrapper = runtime.wrap(Container(None, env=_env(run, variant)))
        env = {**({"LD_LIBRARY_PATH": variant.layout["libdir"]} if variant.layout["libdir"] else {}),
               **start.env, **wrapper.env}
        argv = [*start.argv, *wrapper.argv, variant.layout["executable"], *_app_args(run, definition, source)]
        return Launch(argv, env, stage=stage, rank_start=len(start.argv))
    source = workload.container
    assert source is not None and variant.image is not None
    image = image_path(cluster, variant)
    # The run id names the job, so a stop or a later sweep finds it in the scheduler (`flux jobs --name`,
    # `squeue --name`), and the scheduler's own time limit ends it: a timeout frees the nodes there instead
    # of only ending the client.
    start = launcher.command(ranks(run, variant))
    # OMP_NUM_THREADS=1 is every runtime's default: said only where it is not
    env = {key: value for key, value in _env(run, variant).items()
           if key != "OMP_NUM_THREADS" or run.options.threads > 1}
    binds, read = run.options.bind, source
    staged = container_stage(run, cluster, variant, source)
    if staged is not None:  # the adapted copy, by its path in the container; the data stay the image's own
        binds = (*binds, f"{staged}:{STAGED_INPUTS}")
        read = source.model_copy(update={"workdir": "", "input": f"{STAGED_INPUTS}/{PurePosixPath(source.input).name}"})
    wrapper = runtime.wrap(Container(image, source.workdir, binds, env, run.options.runtime_args))
    argv = [*start.argv, *wrapper.argv, executable, *_app_args(run, definition, read)]
    pulled = cluster.image_dir is None
    return Launch(argv, {**start.env, **wrapper.env},
                  image=pull_reference(variant.image, variant.image_digest) if pulled else None,
                  sif=image if pulled else None, rank_start=len(start.argv),
                  job=run.id if launcher.jobs and run.timeout > 0 else None,
                  scheduler=launcher.name if launcher.jobs else None)
