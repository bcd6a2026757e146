"""The experiment file's schema: pydantic models of apps, workloads, variants, clusters, options, launch
rules and sweeps. `schemas/experiment.json` is generated from them. Pure.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from planner.core import apps, yamlfile
from planner.core.apps import OUTPUT_REASONS
from planner.core.backends import LAUNCHERS
from planner.core.errors import InputError
from planner.core.experiment.values import (
    MAX_POINTS,
    MAX_REPEATS,
    NAME,
    Affinity,
    Count,
    Name,
    Pmi,
    Scalar,
    ShellOptions,
    check_args,
    check_env,
    check_option_env,
    check_preload,
    check_text,
    parameter_error,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _no_nul_byte(cls, value: Any, info: ValidationInfo) -> Any:
        """Values reach command lines and environments, which cannot hold a NUL byte (execve refuses it).
        (`lines` is the loader's own map of the file's keys, each checked in its place.)"""
        if info.field_name != "lines":
            _refuse_nul(value)
        return value


def _refuse_nul(value: Any) -> None:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_nul(item)


class Substitution(_Strict):
    """A regular expression replaced in every line of an input when its adapted copy is written."""

    pattern: str
    replace: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from err
        return value

    @model_validator(mode="after")
    def _replacement_fits(self) -> Substitution:
        # re parses the replacement (escapes, group references) even when nothing matches
        try:
            re.sub(self.pattern, self.replace, "")
        except (re.error, IndexError) as err:  # IndexError: a group name the pattern does not define
            raise ValueError(f"replace {self.replace!r} is not a valid replacement for pattern "
                             f"{self.pattern!r} ({err})") from err
        return self


class Source(_Strict):
    """Where one kind of variant finds a workload's input.

    native: `workdir` is relative to the variant's share directory (where its app's wheel keeps its examples);
    container: `workdir` is an absolute path inside the image.
    """

    workdir: str
    input: str
    substitute: tuple[Substitution, ...] = ()
    uses: tuple[str, ...] | None = None


class Workload(_Strict):
    description: str = ""
    #: defaults, which also declare each parameter's kind (see `parameter_error`)
    parameters: dict[Name, Scalar] = {}
    requires: tuple[str, ...] = ()
    native: Source | None = None
    container: Source | None = None

    @field_validator("parameters")
    @classmethod
    def _defaults_are_valid_values(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for name, default in value.items():
            error = parameter_error(name, default, default)
            if error:
                raise ValueError(error)
        return value

    @model_validator(mode="after")
    def _has_a_source(self) -> Workload:
        if self.native is None and self.container is None:
            raise ValueError("a workload needs a `native` or a `container` source (or both)")
        for source in (self.native, self.container):
            unknown = set(source.uses or ()) - set(self.parameters) if source else set()
            if unknown:
                raise ValueError(f"`uses` names unknown parameters {sorted(unknown)}; "
                                 f"known: {sorted(self.parameters)}")
        return self


class FomSpec(_Strict):
    """A figure of merit declared as data: the first group of `pattern` (its last match in the output)."""

    pattern: str
    unit: str = ""
    goal: Literal["max", "min"] = "max"
    scale: float = 1.0
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            groups = re.compile(value).groups
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from err
        if groups < 1:
            raise ValueError(f"pattern {value!r} needs a group around the value, e.g. 'Time: (\\S+)'")
        return value


class App(_Strict):
    """An app: a registered definition (planner.core.apps: `definition`, else the app's name) and what the
    file declares on top, or an app declared by this data alone. Unset fields are the definition's."""

    description: str = ""
    definition: Name | None = None
    executable: str | None = None
    args: tuple[str, ...] | None = None
    success: str | None = None
    foms: dict[Name, FomSpec] = {}
    #: the app's own failure lines (regular expressions) by reason code, searched before the common ones
    failures: dict[Literal[OUTPUT_REASONS], tuple[str, ...]] = {}  # type: ignore[valid-type]
    default_metric: Name | None = None
    workloads: dict[Name, Workload]

    @field_validator("failures")
    @classmethod
    def _patterns_compile(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for patterns in value.values():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as err:
                    raise ValueError(f"{pattern!r} is not a valid regular expression ({err})") from err
        return value


#: a Debian package name (policy 5.6.1)
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def _deprecated_recipe_keys(schema: dict[str, Any]) -> None:
    """The schema accepts the keys an app definition renamed, marked deprecated, as the loader does."""
    for old, new in apps.recipe_aliases().items():
        schema["properties"][old] = {**schema["properties"][new], "deprecated": True,
                                     "description": f"deprecated name of `{new}`"}


class NativeRecipe(_Strict):
    """A native variant: pip requirements installed into the variant's own prefix (`packages`), or the app
    as this host's own Debian packages provide it (`host`: checked, never installed by the planner).
    `launcher` starts its ranks: MPICH's hydra (`mpiexec`) or Open MPI's `mpirun`."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_deprecated_recipe_keys)

    packages: tuple[str, ...] = ()
    host: tuple[str, ...] = ()
    launcher: Literal["mpiexec", "mpirun"] = "mpiexec"
    #: another native variant whose installed binary and inputs this one runs (with its own environment)
    binary_from: Name | None = None
    env: dict[str, str] = {}

    _env = field_validator("env")(check_env)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_keys(cls, data: Any) -> Any:
        """Keys an app definition renamed (apps.Definition.recipe_aliases), read under their new name."""
        if isinstance(data, dict):
            for old, new in apps.recipe_aliases().items():
                if old in data:
                    if new in data:
                        raise ValueError(f"`{old}` is the deprecated name of `{new}`; give one of them")
                    data = {(new if key == old else key): value for key, value in data.items()}
        return data

    @field_validator("host")
    @classmethod
    def _debian_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not DEBIAN_PACKAGE.fullmatch(name):
                raise ValueError(f"{name!r} is not a Debian package name ([a-z0-9][a-z0-9+.-]+)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> NativeRecipe:
        if bool(self.packages) == bool(self.host):
            raise ValueError("a native recipe has either `packages` (pip requirements installed into its prefix) "
                             "or `host` (this host's Debian packages), not both and not neither")
        if self.packages and self.launcher != "mpiexec":
            raise ValueError("a pip variant's ranks are started by its wheel's MPICH `mpiexec`; `launcher` chooses "
                             "for `host` variants")
        if self.host and self.binary_from:
            raise ValueError("`binary_from` borrows a pip variant's binary; a `host` variant runs the host's own")
        return self


class ImageBuild(_Strict):
    """A container image built on this machine from Debian's archive (`planner variants build`, through
    roles/container_images): the Debian release it is based on and the MPI the app's build uses."""

    debian: Literal["bullseye", "bookworm", "trixie"]
    mpi: Literal["openmpi", "mpich"]


class Variant(_Strict):
    """A build of an app. A container is declared by its `image` URI alone: its attributes come from its
    compspec artifact (`planner variants fetch`); `compspec` names the artifact where it is neither a
    referrer of the image nor tagged `<tag>-compspec`. `attributes` typed here override, and say so.
    `build` makes a container one this machine builds and publishes (`variants build`, `variants push`)."""

    #: the app it builds; may be left out where the file declares one app
    app: Name | None = None
    description: str = ""
    image: str | None = None
    native: NativeRecipe | None = None
    build: ImageBuild | None = None
    executable: str | None = None
    compspec: str | None = None
    attributes: dict[str, Scalar] = {}

    @model_validator(mode="after")
    def _one_kind(self) -> Variant:
        if (self.image is None) == (self.native is None):
            raise ValueError("a variant has exactly one of `image` (a container URI) or `native` (a recipe)")
        if self.image is not None and not re.match(r"^(docker|oras|library|shub)://\S+$", self.image):
            raise ValueError(f"image {self.image!r} is not a URI such as docker://ghcr.io/org/name:tag")
        if self.compspec is not None and self.image is None:
            raise ValueError("`compspec` names the artifact of an image; native variants get theirs generated")
        if self.build is not None and self.image is None:
            raise ValueError("`build` makes a container image; give the `image` URI it is published as")
        return self

    @property
    def kind(self) -> Literal["native", "container"]:
        return "native" if self.native is not None else "container"


class Cluster(_Strict):
    #: local: this machine, native variants (mpiexec); eks: a Flux MiniCluster (flux run + singularity);
    #: slurm: local-slurm, this machine's one-node Slurm (srun + ch-run; roles/local_slurm)
    kind: Literal["local", "eks", "slurm"]
    description: str = ""
    arch: Literal["amd64", "arm64"] | None = None
    nodes: Count = Field(1, ge=1)
    cores_per_node: Count | None = Field(None, ge=1)
    gpus_per_node: Count = Field(0, ge=0)
    instance_type: str | None = None
    microarchitecture: str | None = None
    price_per_hour: float | None = Field(None, ge=0)
    sif_dir: str = "/tmp/compat-lab/sif"
    flux_view: str | None = None  # eks: the MiniCluster's Flux view image; unset: the plan's, from the images' os.*

    @model_validator(mode="after")
    def _eks_is_described(self) -> Cluster:
        if self.kind == "eks" and (self.arch is None or self.cores_per_node is None):
            raise ValueError("an eks cluster needs `arch` and `cores_per_node`")
        return self


#: PMI flavours a run may ask for: every registered launcher's (Flux's services, `flux run -o pmi=LIST`;
#: Slurm's MPI plugins, `srun --mpi=NAME`); the launcher of the run's cluster refuses what it does not offer.
PMI_SERVICES = tuple(dict.fromkeys(name for launcher in LAUNCHERS.values() for name in launcher.pmi))
#: a Flux shell option's name, as `-o NAME=VALUE` takes it (`pmi-simple.exchange.k`, `hwloc.xmlfile`)
SHELL_OPTION = re.compile(r"[a-z][a-z0-9_.-]*")
#: shell options with an option of their own here, so a rule or a sweep sets them in one place
_OWN_SHELL_OPTIONS = {"pmi": "pmi", "cpu-affinity": "affinity"}


def check_pmi(value: str | None) -> str | None:
    if value is None:
        return value
    services = value.split(",")
    unknown = [name for name in services if name not in PMI_SERVICES]
    if unknown or not value:
        raise ValueError(f"pmi {value!r}: a comma-separated list of {', '.join(PMI_SERVICES)}")
    if "off" in services and len(services) > 1:
        raise ValueError(f"pmi {value!r}: `off` stands alone")
    return value


def check_shell(options: dict[str, str]) -> dict[str, str]:
    for name in options:
        if name in _OWN_SHELL_OPTIONS:
            raise ValueError(f"shell option {name!r} has an option of its own: use `{_OWN_SHELL_OPTIONS[name]}`")
        if not SHELL_OPTION.fullmatch(name):
            raise ValueError(f"shell option name {name!r} is not [a-z][a-z0-9_.-]* (flux run -o NAME=VALUE)")
    return options


class Options(_Strict):
    """One launch of a variant. Unknown keys are workload parameters, checked against the workload.

    `pmi` is the PMI flavour the launcher offers the ranks (`flux run -o pmi=LIST`, `srun --mpi=NAME`),
    `shell` Flux shell options (`-o NAME=VALUE`), `args` app flags added to the command line, `runtime_args`
    the container runtime's own flags (`ch-run --join`), `skip_rules` names launch rules this point does
    without (see `LaunchRule`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    nodes: Count = Field(1, ge=1, le=4096)
    tasks: Count = Field(1, ge=1, le=1_000_000)
    threads: Count = Field(1, ge=1, le=1024)
    affinity: Affinity = "default"
    suffix: Literal["none", "omp", "opt", "intel", "gpu", "kk"] = "none"
    env: dict[str, str] = {}
    preload: str | None = None
    bind: tuple[str, ...] = ()
    pmi: Pmi = None
    shell: ShellOptions = {}
    args: tuple[str, ...] = ()
    runtime_args: tuple[str, ...] = ()
    skip_rules: tuple[Name, ...] = ()

    _env = field_validator("env")(check_option_env)
    _pmi = field_validator("pmi")(check_pmi)
    _shell = field_validator("shell")(check_shell)
    _args = field_validator("args")(check_args)
    _preload = field_validator("preload")(check_preload)

    @model_validator(mode="after")
    def _tasks_cover_nodes(self) -> Options:
        if self.tasks < self.nodes:
            raise ValueError(f"tasks ({self.tasks}) must be at least nodes ({self.nodes})")
        for key, value in (self.model_extra or {}).items():
            if not re.match(NAME, key) or not isinstance(value, Scalar):
                raise ValueError(f"{key!r} is not a launch option ({', '.join(OPTION_NAMES)}) "
                                 "nor a workload parameter with a scalar value")
            _refuse_nul(value)
        return self

    @property
    def parameters(self) -> dict[str, Scalar]:
        return dict(self.model_extra or {})


OPTION_NAMES = tuple(name for name in Options.model_fields)


class RuleMatch(_Strict):
    """What a launch rule applies to. Each key names an attribute (a variant's compspec attribute such as
    `mpi.implementation`, a cluster's `kind`, `launcher`, `arch`, ...) and gives a value or a list of values,
    any of which matches; values compare as text, case-insensitively, with `*` and `?` as wildcards. An
    attribute the variant or cluster does not have matches nothing."""

    app: tuple[Name, ...] = ()
    variant: dict[str, Scalar | list[Scalar]] = {}
    cluster: dict[str, Scalar | list[Scalar]] = {}


class RuleAdds(_Strict):
    """What a rule adds to the launch. Options a point sets itself win: `pmi`, `affinity` and `preload`
    are taken from a rule only where the point leaves them unset; `bind`, `args`, `env` and `shell` are
    added to (the point's own `env` and `shell` keys win), and so are `runtime_args`."""

    pmi: Pmi = None
    affinity: Affinity | None = None
    preload: str | None = None
    bind: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    shell: ShellOptions = {}
    runtime_args: tuple[str, ...] = ()

    _env = field_validator("env")(check_option_env)
    _pmi = field_validator("pmi")(check_pmi)
    _shell = field_validator("shell")(check_shell)
    _args = field_validator("args")(check_args)
    _preload = field_validator("preload")(check_preload)


class LaunchRule(_Strict):
    """Compatibility metadata turned into how to launch: when `match` holds for a run's variant and
    cluster, `add` goes into the run's options (and so into its command, its id and the model's features)."""

    name: Name
    description: str = ""
    match: RuleMatch
    add: RuleAdds

    @model_validator(mode="after")
    def _adds_something(self) -> LaunchRule:
        if not self.add.model_fields_set:
            raise ValueError(f"launch rule {self.name} adds nothing; `add` takes "
                             f"{', '.join(RuleAdds.model_fields)}")
        return self


class OptionMatrix(_Strict):
    """Ramble-like: `set` fixes values, `vary` is crossed, each `zip` group varies its lists together
    (groups are crossed with each other and with `vary`), `exclude` drops the points matching all of
    an entry's keys (a list value matches any of its items)."""

    set: dict[str, Any] = {}
    vary: dict[str, list[Any]] = {}
    zip: tuple[dict[str, list[Any]], ...] = ()
    exclude: tuple[dict[str, Any], ...] = ()

    @field_validator("*")
    @classmethod
    def _no_nul_byte(cls, value: Any) -> Any:
        """Each value is checked where it is given, with its own line (experiment._check_option_values)."""
        return value

    def points(self) -> list[dict[str, Any]]:
        """Every point of the matrix, in a stable order, before exclusion and validation."""
        axes: list[list[dict[str, Any]]] = [[{key: value} for value in values] for key, values in self.vary.items()]
        axes += [[dict(zip(group, row, strict=True)) for row in zip(*group.values(), strict=True)]
                 for group in self.zip]
        points = [dict(self.set)]
        for axis in axes:
            points = [{**point, **choice} for point in points for choice in axis]
        return points

    def excludes(self, point: dict[str, Any]) -> dict[str, Any] | None:
        """The first `exclude` entry matching the point (options plus variant/workload/cluster names)."""
        for entry in self.exclude:
            if all(_matches(point.get(key), wanted) for key, wanted in entry.items()):
                return entry
        return None

    @field_validator("vary")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"`{key}` varies over an empty list")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> OptionMatrix:
        count = math.prod(len(values) for values in self.vary.values())
        count *= math.prod(len(next(iter(group.values()))) for group in self.zip)
        if count > MAX_POINTS:
            raise ValueError(f"the option matrix has {count:,} points; at most {MAX_POINTS:,} are accepted "
                             "(split the sweep or use `zip` instead of crossing `vary` lists)")
        return self

    @field_validator("zip")
    @classmethod
    def _same_lengths(cls, groups: tuple[dict[str, list[Any]], ...]) -> tuple[dict[str, list[Any]], ...]:
        for group in groups:
            lengths = {key: len(values) for key, values in group.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"a zip group's lists must have the same length, got {lengths}")
            if not group or 0 in lengths.values():
                raise ValueError("a zip group needs at least one non-empty list")
        return groups


def _matches(value: Any, wanted: Any) -> bool:
    return value in wanted if isinstance(wanted, list) else value == wanted


#: What a sweep can record beside the figures of merit (planner.core.profilers): per-rank rusage, perf stat
#: software events, eBPF scheduler/futex/poll profiles.
Profiler = Literal["rusage", "perf", "ebpf"]


class Sweep(_Strict):
    name: Name
    clusters: tuple[Name, ...] = Field(min_length=1)
    #: the app it runs; may be left out where the file declares one app
    app: Name | None = None
    workloads: tuple[Name, ...] = Field(min_length=1)
    variants: tuple[Name, ...] | Literal["*"] = "*"
    options: OptionMatrix = OptionMatrix()
    repeats: Count = Field(1, ge=1, le=MAX_REPEATS)
    timeout: float = Field(600, gt=0, le=7 * 24 * 3600)
    #: recorded for every run of the sweep (off by default; `sweep --profile` chooses for one sweep)
    profile: tuple[Profiler, ...] = ()


class Experiment(_Strict):
    name: Name
    description: str = ""
    apps: dict[Name, App]
    variants: dict[Name, Variant]
    clusters: dict[Name, Cluster]
    sweeps: tuple[Sweep, ...] = Field(min_length=1)
    #: applied in this order; see `LaunchRule` and planner.core.launch.apply_rules
    launch_rules: tuple[LaunchRule, ...] = ()
    #: the file it came from and a map of YAML paths to line numbers, for error messages
    source: str = ""
    lines: dict[tuple[Any, ...], int] = Field(default_factory=dict, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _the_only_app(cls, data: Any) -> Any:
        """A file with one app need not name it in each variant and sweep."""
        apps = data.get("apps") if isinstance(data, dict) else None
        if not isinstance(apps, dict) or len(apps) != 1:
            return data
        only = next(iter(apps))
        variants, sweeps = data.get("variants"), data.get("sweeps")
        if isinstance(variants, dict):
            variants = {name: {"app": only, **v} if isinstance(v, dict) else v for name, v in variants.items()}
        if isinstance(sweeps, list):
            sweeps = [{"app": only, **s} if isinstance(s, dict) else s for s in sweeps]
        return {**data, **({"variants": variants} if variants is not None else {}),
                **({"sweeps": sweeps} if sweeps is not None else {})}

    def line_of(self, *path: Any) -> int | None:
        return yamlfile.line_for(self.lines, path)

    def error(self, message: str, *path: Any) -> InputError:
        return InputError(message, file=self.source, line=self.line_of(*path), field=yamlfile.dotted(path))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _friendly(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field; see schemas/experiment.json for the accepted fields"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"]
    if kind == "literal_error" or kind.endswith("_type") or kind.startswith(("greater", "less")):
        return f"{message} (got {error.get('input')!r})"
    return message.removeprefix("Value error, ")
