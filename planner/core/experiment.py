"""The experiment file: apps, workloads, variants, clusters and sweeps, validated.

`load_experiment(path)` reads YAML and returns an `Experiment`, or raises `InputError` whose one-line
message names the file, the line and the field at fault and what would be accepted.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from planner.core import apps, files, yamlfile
from planner.core.apps import OUTPUT_REASONS
from planner.core.backends import LAUNCHERS
from planner.core.errors import InputError
from planner.core.yamlfile import MAX_FILE_BYTES

Scalar = str | int | float | bool
NAME = r"^[a-z0-9][a-z0-9_.-]*$"
#: Names become directory and file names (a variant's prefix), which the file system caps at 255 bytes.
NAME_MAX = 64
Name = Annotated[str, Field(pattern=NAME, max_length=NAME_MAX)]
#: Repeats per point, in the file and on the command line.
MAX_REPEATS = 100
#: Points one sweep's option matrix may expand to: refused before expanding, not after filling memory.
MAX_POINTS = 100_000
#: what a shell (and execve) takes as an environment variable name
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: a string workload parameter: one word of the app's input language (`-v name value`) that cannot start a
#: switch, quote, comment or add a command
PARAMETER_WORD = re.compile(r"[A-Za-z0-9_.,:/+@%=][A-Za-z0-9_.,:/+@%=-]*")


def check_env(env: dict[str, str]) -> dict[str, str]:
    """Environment given to a launch (experiment options, variant recipes, imported `option.env`)."""
    for name, value in env.items():
        if not ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not [A-Za-z_][A-Za-z0-9_]*")
        if "\0" in value:
            raise ValueError(f"the value of {name} holds a NUL byte")
    return env


#: environment variables whose value the dynamic loader or a shell runs as code: never a launch option's
#: (a preloaded library has its own option, `preload`, checked as one word)
CODE_ENV = {"LD_PRELOAD": "use the `preload` option", "LD_AUDIT": "the dynamic loader runs the library it names",
            "BASH_ENV": "bash runs the file it names", "ENV": "sh runs the file it names",
            "PROMPT_COMMAND": "bash runs it", "SHELLOPTS": "it changes how every bash behaves",
            "PYTHONSTARTUP": "python runs the file it names", "PERL5OPT": "perl takes it as options"}


def check_option_env(env: dict[str, str]) -> dict[str, str]:
    """Environment a launch option or rule adds: names as `check_env`, and none the loader or a shell runs."""
    check_env(env)
    for name in env:
        if name in CODE_ENV or name.startswith("BASH_FUNC_"):
            raise ValueError(f"environment variable {name} is not a launch option's: "
                             f"{CODE_ENV.get(name, 'bash runs it as a function')}")
    return env


def check_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """App flags (`args` of an option, a rule): flags, and values each one word as a string parameter's
    (`PARAMETER_WORD`): what reaches the app's command line is checked as what reaches its input. Which flags,
    and how many values each takes, is the app definition's (apps.Definition.check_args, in `_check_flags`)."""
    for word in args:
        if not (word.startswith("-") and not word[1:2].isdigit()) and not PARAMETER_WORD.fullmatch(word):
            raise ValueError(f"app flag value {word!r} is not one word of letters, digits and _ . , : / + @ % = -")
    return args


def check_preload(value: str | None) -> str | None:
    """A library to preload (LD_PRELOAD): paths as a string parameter's words, colon-separated."""
    if value is not None and not PARAMETER_WORD.fullmatch(value):
        raise ValueError(f"preload {value!r} is not a library path: one word of letters, digits and "
                         "_ . , : / + @ % = - not starting with -")
    return value


def check_text(value: str | None) -> str | None:
    if value is not None and "\0" in value:
        raise ValueError(f"{value!r} holds a NUL byte")
    return value


def parameter_kind(default: Scalar) -> str:
    """A workload parameter's kind is its default's: number, string or boolean."""
    if isinstance(default, bool):
        return "boolean"
    return "string" if isinstance(default, str) else "number"


def parameter_error(name: str, default: Scalar, value: Any) -> str | None:
    """Why `value` cannot be given to the workload parameter `name` (passed to the app, e.g. as `-v name value`)."""
    kind = parameter_kind(default)
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{name} is a boolean (default {default!r}); got {value!r}"
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return None
        return f"{name} is a number (default {default!r}); got {value!r}"
    if isinstance(value, str) and PARAMETER_WORD.fullmatch(value):
        return None
    return (f"{name} is a string (default {default!r}): one word of letters, digits and _ . , : / + @ % = - "
            f"not starting with -; got {value!r}")

#: Launch option names every sweep may vary; workload parameters (x, y, z, steps, ...) may be varied too.


def _not_bool(value: Any) -> Any:
    # pydantic reads `true` as 1 for an int field; YAML's `tasks: true` is a mistake, not one task
    if isinstance(value, bool):
        raise ValueError(f"a whole number is needed, not {str(value).lower()}")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]


def _on_off(value: Any) -> Any:
    # YAML 1.1 reads an unquoted `off` as false and `on` as true; `pmi: off` and `affinity: off` mean the words
    return ("on" if value else "off") if isinstance(value, bool) else value


def _numbers_as_text(value: Any) -> Any:
    # a Flux shell option's value is text on the command line: `pmi-simple.exchange.k: 2` means "2"
    if isinstance(value, dict):
        return {key: str(item) if isinstance(item, int | float) and not isinstance(item, bool) else item
                for key, item in value.items()}
    return value


Affinity = Annotated[Literal["default", "on", "per-task", "off"], BeforeValidator(_on_off)]
Pmi = Annotated[str | None, BeforeValidator(_on_off)]
ShellOptions = Annotated[dict[str, str], BeforeValidator(_numbers_as_text)]


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
    flux_view: str | None = None  # eks: the MiniCluster's Flux view image (roles/minicluster)

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


# ----------------------------------------------------------------------------------------------- loading


def parse_experiment(text: str, source: str = "<experiment>") -> Experiment:
    """Validate experiment YAML text; pure apart from the name it is given for messages."""
    document = yamlfile.load(text, source)
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        raise InputError("an experiment file is a mapping with keys name, apps, variants, clusters, sweeps",
                         file=source, line=1)
    try:
        experiment = Experiment.model_validate({**data, "source": source, "lines": lines})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(part for part in first["loc"] if not _is_union_tag(part))
        raise InputError(_friendly(first), file=source, line=yamlfile.line_for(lines, loc),
                         field=yamlfile.dotted(loc) or None) from None
    _check_references(experiment)
    return experiment


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


def _check_references(exp: Experiment) -> None:
    """Names that must exist elsewhere in the file: the mistakes a schema cannot see."""
    for name, variant in exp.variants.items():
        if variant.app is None:
            raise exp.error(f"`app` is needed where the file declares several apps ({', '.join(exp.apps)})",
                            "variants", name)
        if variant.app not in exp.apps:
            raise exp.error(f"unknown app {variant.app!r}; known: {', '.join(exp.apps)}", "variants", name, "app")
        base = variant.native.binary_from if variant.native else None
        if base is not None and (base not in exp.variants or exp.variants[base].native is None):
            native = [n for n, v in exp.variants.items() if v.native is not None and n != name]
            raise exp.error(f"binary_from names {base!r}, which is not a native variant; "
                            f"known: {', '.join(native)}", "variants", name, "native", "binary_from")
        if variant.build is not None and variant.image is not None and not variant.image.endswith(f":{name}"):
            raise exp.error(f"a built image is published under its variant's name: the image must end in :{name} "
                            f"(got {variant.image})", "variants", name, "image")
    for name in exp.variants:
        chain = [name]
        while (native := exp.variants[chain[-1]].native) is not None and native.binary_from:
            if native.binary_from in chain:
                raise exp.error(f"binary_from goes round in a circle ({' -> '.join([*chain, native.binary_from])}); "
                                "it must end at a variant that installs the app itself",
                                "variants", name, "native", "binary_from")
            chain.append(native.binary_from)
    for app_name, app in exp.apps.items():
        definition = apps.resolve(app_name, app)
        if app.definition is not None and apps.definition(app.definition) is None:
            raise exp.error(f"no app definition {app.definition!r}; registered: {', '.join(apps.BUILTIN)}",
                            "apps", app_name, "definition")
        for workload_name, workload in app.workloads.items():
            for key, default in workload.parameters.items():
                error = definition.value_error(key, default)
                if error:
                    raise exp.error(error, "apps", app_name, "workloads", workload_name, "parameters", key)
    _check_rules(exp)
    for index, sweep in enumerate(exp.sweeps):
        where = ("sweeps", index)
        if sweep.app is None:
            raise exp.error(f"`app` is needed where the file declares several apps ({', '.join(exp.apps)})", *where)
        if sweep.app not in exp.apps:
            raise exp.error(f"unknown app {sweep.app!r}; known: {', '.join(exp.apps)}", *where, "app")
        for i, cluster in enumerate(sweep.clusters):
            if cluster not in exp.clusters:
                raise exp.error(f"unknown cluster {cluster!r}; known: {', '.join(exp.clusters)}",
                                *where, "clusters", i)
        workloads = exp.apps[sweep.app].workloads
        for i, workload in enumerate(sweep.workloads):
            if workload not in workloads:
                raise exp.error(f"unknown workload {workload!r} of {sweep.app}; known: {', '.join(workloads)}",
                                *where, "workloads", i)
        if sweep.variants != "*":
            for i, variant in enumerate(sweep.variants):
                if variant not in exp.variants:
                    raise exp.error(f"unknown variant {variant!r}; known: {', '.join(exp.variants)}",
                                    *where, "variants", i)
        parameters = set().union(*(workloads[w].parameters for w in sweep.workloads))
        _check_option_names(exp, sweep, where, parameters)
        _check_option_values(exp, sweep, where, [workloads[w] for w in sweep.workloads])


def _check_flags(exp: Experiment, app_names: tuple[str, ...], args: tuple[str, ...], *loc: Any) -> None:
    """App flags as the definition of each app they may reach accepts them."""
    for app_name in app_names:
        try:
            apps.resolve(app_name, exp.apps[app_name]).check_args(args)
        except ValueError as err:
            raise exp.error(str(err), *loc) from None


def _check_rules(exp: Experiment) -> None:
    seen: dict[str, int] = {}
    for index, rule in enumerate(exp.launch_rules):
        if rule.name in seen:
            raise exp.error(f"launch rule {rule.name!r} is already defined (launch_rules[{seen[rule.name]}]); "
                            "names must be unique: `skip_rules` refers to them", "launch_rules", index, "name")
        seen[rule.name] = index
        for i, app in enumerate(rule.match.app):
            if app not in exp.apps:
                raise exp.error(f"unknown app {app!r}; known: {', '.join(exp.apps)}",
                                "launch_rules", index, "match", "app", i)
        _check_flags(exp, rule.match.app or tuple(exp.apps), rule.add.args, "launch_rules", index, "add", "args")


def _skipped_rules(exp: Experiment, value: Any, loc: tuple[Any, ...]) -> None:
    for name in value if isinstance(value, list | tuple) else [value]:
        if not any(rule.name == name for rule in exp.launch_rules):
            known = ", ".join(rule.name for rule in exp.launch_rules) or "none"
            raise exp.error(f"skip_rules names {name!r}, which is not a launch rule; known: {known}", *loc)


def _check_option_names(exp: Experiment, sweep: Sweep, where: tuple[Any, ...], parameters: set[str]) -> None:
    accepted = set(OPTION_NAMES) | parameters
    matrix = sweep.options
    sections: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("set",), matrix.set), (("vary",), matrix.vary),
        *((("zip", i), group) for i, group in enumerate(matrix.zip)),
        *((("exclude", i), entry) for i, entry in enumerate(matrix.exclude)),
    ]
    for path, section in sections:
        for key in section:
            if key in accepted or (path[0] == "exclude" and key in {"variant", "workload", "cluster"}):
                continue
            raise exp.error(f"unknown option {key!r}; accepted: {', '.join(sorted(accepted))}",
                            *where, "options", *path, key)


#: launch options whose values reach a command line or an environment as text
_TEXT_OPTIONS = ("env", "preload", "bind", "pmi", "shell", "args", "skip_rules")


def _check_option_values(exp: Experiment, sweep: Sweep, where: tuple[Any, ...], workloads: list[Workload]) -> None:
    """Each value a sweep gives to a workload parameter or a text option, with the line it is on: a value
    reaches the app's input (`-v name value`, a generated input file) or the run's environment."""
    matrix = sweep.options
    definition = apps.resolve(sweep.app or "", exp.apps[sweep.app or ""])
    sections: list[tuple[tuple[Any, ...], dict[str, Any], bool]] = [
        (("set",), matrix.set, False), (("vary",), matrix.vary, True),
        *((("zip", i), group, True) for i, group in enumerate(matrix.zip)),
    ]
    for path, section, listed in sections:
        for key, values in section.items():
            for index, value in (enumerate(values) if listed else [(None, values)]):
                loc = (*where, "options", *path, key, *(() if index is None else (index,)))
                if key in _TEXT_OPTIONS:
                    try:
                        Options.model_validate({key: value})
                    except ValidationError as err:
                        raise exp.error(_friendly(err.errors()[0]), *loc) from None
                    if key == "skip_rules":
                        _skipped_rules(exp, value, loc)
                    if key == "args":
                        _check_flags(exp, (sweep.app or "",), tuple(value), *loc)
                    continue
                for workload in workloads:
                    if key in workload.parameters:
                        error = (parameter_error(key, workload.parameters[key], value)
                                 or definition.value_error(key, value))
                        if error:
                            raise exp.error(error, *loc)


def load_experiment(path: str | Path) -> Experiment:
    return parse_experiment(files.read_text(path, "experiment file", MAX_FILE_BYTES), str(path))
