"""Domain types and keys: clusters, variants, runs and their stable ids, stored results. Pure.

`run_key` is the one place a run's identity is built and `key_ids` the one place it is hashed into
the run and configuration ids; `Run` derives its ids from them. Everything that names a run (plan,
import, recommend, the store) goes through them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.core import archs
from planner.core.experiment import Options


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kind: str  # local | eks | slurm
    arch: str  # archspec family: x86_64 | aarch64
    microarchitecture: str | None
    nodes: int
    cores_per_node: int
    gpus_per_node: int = 0
    instance_type: str | None = None
    price_per_hour: float | None = None
    memory_gb: float | None = None
    sif_dir: str = "/tmp/compat-lab/sif"
    container_runtime: str | None = None  # singularity/apptainer where containers can run
    #: how container variants are launched here (registered backends, planner.core.backends); native
    #: variants are always `mpiexec` without a runtime
    launcher: str = "flux"
    runtime: str = "singularity"
    #: PMI flavours the launcher offers here (`srun --mpi=list`); empty where not detected
    pmi: tuple[str, ...] = ()
    #: where the runtime finds a variant's image: `<image_dir>/<variant>` (Charliecloud directory images)
    image_dir: str | None = None
    flux_view: str | None = None  # a MiniCluster's Flux view image (its glibc bounds the images it serves)
    #: the glibc of the nodes' own OS (`2.36`), where known: what a library bound in from them was built against
    glibc: str | None = None

    @property
    def cores(self) -> int:
        return self.nodes * self.cores_per_node

    def attributes(self) -> dict[str, Any]:
        """Attributes as stored with each run and used as model features (`cluster.<name>`)."""
        return {"arch": archs.platform_name(self.arch) or self.arch, "microarchitecture": self.microarchitecture,
                "nodes": self.nodes, "cores_per_node": self.cores_per_node, "gpus_per_node": self.gpus_per_node,
                "instance_type": self.instance_type, "price_per_hour": self.price_per_hour,
                "memory_gb": self.memory_gb, "kind": self.kind}


@dataclass(frozen=True)
class VariantInfo:
    name: str
    kind: str  # native | container
    app: str
    attributes: dict[str, Any]
    image: str | None = None
    executable: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: where it lives: a native prefix (prefix, executable, launcher, share, libdir; see
    #: planner.edges.variant_info), or an
    #: image built here (image: the Charliecloud directory, marker: its .done file; see planner.edges.images)
    layout: dict[str, str] = field(default_factory=dict)
    installed: bool = True
    #: container only: the digest the image's tag named when `variants fetch` last looked (None: unknown)
    image_digest: str | None = None

    @property
    def target(self) -> str | None:
        return self.attributes.get("io.archspec.cpu.target")

    @property
    def needs_gpu(self) -> bool:
        return gpu_needed(self.attributes)

    @property
    def packages(self) -> frozenset[str] | None:
        """The app's packages compiled in (`<app>.packages`), or None when not known (e.g. a native variant not
        installed yet)."""
        listed = self.attributes.get(f"{self.app}.packages")
        return frozenset(str(listed).split()) if listed is not None else None


#: Spellings of "yes" in a compspec `hardware.gpu.available` attribute (declared, detected or imported).
_GPU_YES = frozenset({"yes", "true", "1", "on"})


def gpu_needed(attributes: Mapping[str, Any]) -> bool:
    """Whether a variant with these compspec attributes needs a GPU (absent means no)."""
    return str(attributes.get("hardware.gpu.available", "no")).strip().lower() in _GPU_YES


@dataclass(frozen=True)
class FiredRule:
    """A launch rule that applied to a run: why it matched and what it added (what it would have set but
    the point set itself is `kept`)."""

    name: str
    why: str
    adds: str
    kept: str = ""


@dataclass(frozen=True)
class Run:
    """One point of a plan and one repeat; its ids follow from its key, so they cannot disagree with it."""

    sweep: str
    cluster: str
    app: str
    workload: str
    variant: str
    options: Options
    parameters: dict[str, Any]
    repeat: int
    timeout: float
    #: `inputs.digest` of the input the run reads: a changed input file or substitution is another run
    input: str | None = None
    #: the launch rules that went into `options`, and what the plan should warn about (not in the key:
    #: what the rules added is, through the options)
    rules: tuple[FiredRule, ...] = ()
    warnings: tuple[str, ...] = ()

    def key(self) -> dict[str, Any]:
        return run_key(self.cluster, self.app, self.workload, self.variant,
                       canonical_options(self.options, self.parameters), self.input)

    @functools.cached_property
    def _ids(self) -> tuple[str, str]:
        return key_ids(self.key(), self.repeat)

    @property
    def id(self) -> str:
        return self._ids[0]

    @property
    def config_id(self) -> str:
        """Shared by the repeats of one configuration."""
        return self._ids[1]


@dataclass(frozen=True)
class Excluded:
    sweep: str
    cluster: str
    app: str
    workload: str
    variant: str
    options: dict[str, Any]
    reason: str  # stable code: incompatible | os-abi (compat.OsAbi) | excluded
    detail: str


@dataclass
class Plan:
    runs: list[Run] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    #: per Flux cluster: the MiniCluster configurations serving its planned images (planner.core.compat)
    miniclusters: dict[str, list[Any]] = field(default_factory=dict)


def canonical_options(options: Options, parameters: dict[str, Any]) -> dict[str, Any]:
    """Options without their defaults, plus the workload parameters: stable as options are added."""
    explicit = options.model_dump(exclude_defaults=True)
    for name in options.parameters:
        explicit.pop(name, None)
    return {**explicit, **{f"param.{name}": value for name, value in sorted(parameters.items())}}


def run_key(cluster: str, app: str, workload: str, variant: str, options: dict[str, Any],
            input: str | None = None) -> dict[str, Any]:
    """What names a configuration; `options` as `canonical_options` gives them (and the store keeps them),
    `input` is the digest of the input the run reads (left out where unknown, e.g. imported runs)."""
    key = {"cluster": cluster, "app": app, "workload": workload, "variant": variant, "options": options}
    return {**key, "input": input} if input is not None else key


def key_ids(key: dict[str, Any], repeat: int) -> tuple[str, str]:
    """(run id, configuration id) of one repeat of a `run_key`: what resumes a sweep and dedups an import."""
    return run_id(key, repeat), config_id(key)


def config_id(key: dict[str, Any]) -> str:
    """The configuration id alone (`key_ids`' second), shared by the repeats of one configuration."""
    return stable_id(key)


def run_id(key: dict[str, Any], repeat: int) -> str:
    """The run id alone (`key_ids`' first)."""
    return stable_id({**key, "repeat": repeat})


def run_ids(key: dict[str, Any]) -> Callable[[int], str]:
    """`run_id(key, repeat)` for one key and any repeat, the key's JSON made once (an import makes a million ids):
    the text `stable_id` hashes, with the repeat spliced in where sorting the keys puts it."""
    head = _json({name: value for name, value in key.items() if name < "repeat"})[:-1]
    tail = _json({name: value for name, value in key.items() if name > "repeat"})[1:]
    head += "," if len(head) > 1 else ""
    tail = ("," if len(tail) > 1 else "") + tail
    return lambda repeat: _hash(f'{head}"repeat":{repeat:d}{tail}')


def stable_id(payload: dict[str, Any]) -> str:
    return _hash(_json(payload))


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    id: str
    config_id: str
    cluster: str
    app: str
    workload: str
    variant: str
    options: dict[str, Any]
    repeat: int
    status: str
    reason: str | None = None
    detail: str | None = None
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    wall: float | None = None
    user_time: float | None = None
    sys_time: float | None = None
    maxrss_kb: int | None = None
    #: seconds the run waited in the cluster's queue before it ran (Flux); `wall` excludes it
    queue_wait: float | None = None
    #: whose user/sys time and max RSS these are: "command" (the launched command and what it waited for:
    #: mpiexec and its ranks on this machine) or "flux-client" (the `flux run` client, not the app's tasks)
    rusage_of: str | None = None
    #: ids of the runs that ran at the same time on the cluster (side by side, `sweep --side-by-side`): its
    #: figures were measured sharing the cluster with them; [] alone; None where unknown (imported, older)
    beside: list[str] | None = None
    host: str | None = None
    command: str | None = None
    log_path: str | None = None
    variant_attrs: dict[str, Any] = field(default_factory=dict)
    cluster_attrs: dict[str, Any] = field(default_factory=dict)
    source: str = "sweep"
    foms: dict[str, float] = field(default_factory=dict)
    #: per profiler the run was profiled with: "ok" or "unavailable: why" (its numbers are among `foms`)
    profiles: dict[str, str] = field(default_factory=dict)
