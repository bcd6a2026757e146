"""App definitions: what an application is to the planner, each one registered definition. Pure.

An app declares its executable and arguments, how its workload's input is given (generated from the
workload's parameters, or an input file of the variant adapted and staged), its figures of merit (a name,
a regular expression, a unit and a goal), its success line and its failure-reason patterns: its own lines,
told apart from the launcher's and the wrappers' noise (a Flux broker, the Flux Operator's helper scripts).

`definition(name)` returns a registered definition (each module of this package that exposes `DEFINITION`);
an experiment's app may instead be declared as data only (`foms`, `failures`, `success` in its `apps:`
entry: see `resolve`), parsed by this module's generic `Definition`. Modelled on Ramble's application
definitions (`figure_of_merit(name, fom_regex, group_name, units)`, `success_criteria(mode="string")`).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# The experiment's models (App, Options, Source) are taken as they come, not imported: the experiment
# module reads this one to check an app's values, and the two must not import each other.
App = Options = Source = Any

#: Failure reason codes (stable: stored with each run and accepted by `import`).
REASONS = ("os-abi", "exec-format", "missing-gpu", "mpi", "missing-package", "missing-input", "timeout",
           "killed", "incompatible", "unknown")
#: reasons read from a run's output, in priority order: the first that matches names the failure
OUTPUT_REASONS = ("os-abi", "exec-format", "missing-gpu", "missing-package", "missing-input", "killed", "mpi")
Goal = Literal["max", "min"]

_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
#: lines spoken by Flux itself (broker, job shell, job tools) or by the Flux Operator's wrapper scripts and
#: helper binaries (`/flux_operator/wait-0.sh: line 9: /usr/bin/goshare-wait-fs: ...`), not by the app;
#: and Slurm's (`srun: error: vm: tasks 0-1: Segmentation fault` reports what the ranks' own lines explain)
_FLUX_LINE = re.compile(r"^\s*(?:broker\.\w+\[\d+\]:|flux-(?:shell|job|run|submit|broker|exec)\b|"
                        r"Flux Operator\b|srun: |slurmstepd(?:-[\w.-]+)?: )")
_OPERATOR_SPEAKER = re.compile(r"/flux_operator/|goshare|wait-fs|flux-view\.sh|flux-connect\.sh|^/mnt/flux/|"
                               r"^compat-lab$")
#: a shared library the dynamic loader cannot find; MPI's own libraries make it an `mpi` failure
MISSING_MPI_LIBRARY = re.compile(r"error while loading shared libraries: (?:libmpi|libpmi|libmpich|"
                                 r"libopen-(?:rte|pal)|libfabric|libucp|libucs|libpmix|libhwloc)\S*: cannot open",
                                 re.IGNORECASE)
#: what any app's output may show, whatever the app: the loader, the kernel, MPI, the container runtime
COMMON_FAILURES: dict[str, str] = {
    # the loader's words for a binary or library built against a newer C/C++ runtime than the image has:
    # `version 'GLIBC_2.34' not found`, a versioned symbol it lacks (`symbol lookup error: ... undefined
    # symbol: X, version GLIBC_2.34`), glibc-internal symbols of another release (`relocation error: ...
    # version GLIBC_PRIVATE not defined`); Open MPI repeats them when it cannot dlopen a component
    # (`mca_base_component_repository_open: unable to open mca_pmix_flux: ...`, opal/mca/base)
    "os-abi": r"`?(GLIBC|GLIBCXX|CXXABI)_[\d.]+'? not found|version `GLIBC|"
              r"undefined symbol: \S+, version (GLIBC|GLIBCXX|CXXABI)_|version GLIBC_PRIVATE not defined",
    "exec-format": r"exec format error|cannot execute binary file|wrong ELF class",
    "missing-gpu": r"libcuda\.so[.\d]*: cannot open shared object|no CUDA-capable device|"
                   r"CUDA driver version is insufficient|cudaErrorNoDevice|found no NVIDIA driver",
    "missing-input": r"FATAL:.*(image|file).*(not found|does not exist)|could not open image|Failed to open input|"
                     r"mount source \S+ doesn't exist",
    "killed": r"KILLED BY SIGNAL|Killed$|oom[-_ ]kill|Out of memory|signal 9\b|SIGKILL|"
              r"Segmentation fault|BAD TERMINATION .*(EXIT CODE: 13[79]|signal)",
    "mpi": MISSING_MPI_LIBRARY.pattern + r"|Fatal error in (P?MPI|internal)|MPI_Init|PMI[x2]?_?\w*.*(fail|error)|"
           r"PMI server|"
           r"HYDU_|HYD_pmcd|ORTE|mpirun noticed|MPIDI_|An error occurred in MPI_|"
           r"unable to (launch|connect)|ucx.*error|libfabric|OFI.*fail|UCX ERROR|"
           r"MPI_ABORT was invoked|mpiexec.*(error|failed)|flux-job: .*(failed|exception)",
}


@dataclass
class Parsed:
    status: str  # ok | failed
    reason: str | None
    detail: str | None
    foms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "detail": self.detail, "foms": self.foms}


@dataclass(frozen=True)
class Fom:
    """A figure of merit: `pattern`'s first group (the last match in the output) times `scale`; a pattern
    of None is computed by the definition itself (derived rates)."""

    name: str
    unit: str
    goal: Goal
    pattern: str | None = None
    scale: float = 1.0
    description: str = ""


def is_app_line(line: str) -> bool:
    """Whether a line comes from the application (or its MPI, loader or container runtime), not from Flux
    or the operator's wrappers. A wrapper names itself before its first `: ` message separators."""
    if _FLUX_LINE.search(line):
        return False
    speakers = line.split(": ")[:-1]
    return not any(_OPERATOR_SPEAKER.search(speaker) for speaker in speakers)


def _compiled(patterns: Mapping[str, Sequence[str]]) -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
    return tuple((reason, tuple(re.compile(p, re.IGNORECASE) for p in patterns.get(reason, ())))
                 for reason in OUTPUT_REASONS)


@dataclass(frozen=True)
class Definition:
    """One app. Subclasses (the registered modules) override what their output needs: `foms`,
    `ran_as_asked`, `arguments`, `generated_inputs`."""

    name: str
    executable: str
    #: words after the workload's own arguments
    args: tuple[str, ...] = ()
    #: the app's name as its own documentation spells it, in messages
    title: str = ""
    #: text whose presence in the output means the app finished its work (Ramble's `mode="string"`)
    success: str = ""
    foms_declared: tuple[Fom, ...] = ()
    #: the app's own failure lines, by reason (added to COMMON_FAILURES for that reason)
    failures: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: a line naming the app's own error, shown as the detail of an `unknown` failure
    error_line: str | None = None
    #: a file the app writes its results to in the run's directory, parsed with its output (hpcc)
    output_file: str | None = None
    #: the figure of merit ranked by default
    default_metric: str | None = None
    #: where a pip wheel of the app keeps its executable and its shared data (inputs), under site-packages
    wheel_executable: str = ""
    wheel_share: str = ""
    description: str = ""
    #: command-line flags an experiment's options and rules may add, by each spelling, with the canonical
    #: name (none for an app that declares none); the values each takes from a fixed set, and how many words
    #: a flag takes where that is fixed
    flags: Mapping[str, str] = field(default_factory=dict)
    flag_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    flag_arity: Mapping[str, int] = field(default_factory=dict)
    #: the package each accelerator suffix option (`suffix`) needs compiled into the app
    suffix_packages: Mapping[str, str] = field(default_factory=dict)
    #: what an image inspection runs inside the image to read the app's build (`help_attributes`), and the
    #: name of the shared libraries besides the executable that hold the app's code
    help_args: tuple[str, ...] = ()
    code_libraries: tuple[str, ...] = ()
    #: deprecated keys of a native recipe, each with the key that replaced it (old -> new): still read from
    #: experiment files, and kept in the recipe's digest so an installed variant is not reinstalled
    recipe_aliases: Mapping[str, str] = field(default_factory=dict)
    #: the experiment file sweeping this app that the commands read when given none (one definition has it)
    default_experiment: str | None = None
    #: an upstream matrix of container images of the app and its manifest (`variants import`)
    image_matrix: str | None = None
    image_manifest: str | None = None

    # ------------------------------------------------------------------------------------ output
    @property
    def _failures(self) -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
        merged = {reason: (*self.failures.get(reason, ()), *([COMMON_FAILURES[reason]]
                                                              if reason in COMMON_FAILURES else []))
                  for reason in OUTPUT_REASONS}
        return _compiled(merged)

    def foms(self, text: str) -> dict[str, float]:
        """Figures of merit of the output: each declared pattern's last match."""
        out: dict[str, float] = {}
        for fom in self.foms_declared:
            if fom.pattern is None:
                continue
            matches = re.findall(fom.pattern, text, re.MULTILINE)
            if matches:
                last = matches[-1]
                try:
                    out[fom.name] = float(last[0] if isinstance(last, tuple) else last) * fom.scale
                except ValueError:
                    continue
        return out

    def ran_as_asked(self, text: str, tasks: int | None) -> str | None:
        """Why a finished output is not one run on `tasks` ranks (singleton runs), or None when it is."""
        return None

    def classify(self, text: str) -> tuple[str, str | None]:
        """The failure reason code of an output that did not succeed, and the line that shows it: the app's own
        lines are searched first (every reason in priority order), the launcher's and wrappers' after."""
        lines = text.splitlines()
        app = [line for line in lines if is_app_line(line)]
        others = [line for line in lines if not is_app_line(line)]
        for group in (app, others):
            found = self._first(group)
            if found is not None and found[0] == "mpi":
                # MPI gave up because the loader refused a library it needs, e.g. Flux's libpmi.so from a view
                # newer than the image: Open MPI 4's flux PMI component says only "PMI_Init [...pmix_flux.c:...]:
                # Operation failed" (it prints no dlerror()), the loader's words come from the launcher's side
                # (roles/run_matrix asks `ldd` in the image): they name the cause
                found = self._first(lines, "os-abi") or found
            if found is not None:
                return found
        error = re.search(self.error_line, text) if self.error_line else None
        return "unknown", (error.group(0).strip()[:300] if error else None)

    def _first(self, lines: Sequence[str], only: str | None = None) -> tuple[str, str] | None:
        """The first reason (in priority order, or only `only`) a line shows, and that line."""
        for reason, patterns in self._failures:
            if only in (None, reason):
                for line in lines:
                    if any(pattern.search(line) for pattern in patterns):
                        return reason, line.strip()[:300]
        return None

    def parse(self, text: str, *, exit_code: int | None = None, timed_out: bool = False,
              success: str | None = None, tasks: int | None = None) -> Parsed:
        """Status, reason and FOMs of one run's output; `exit_code` and `timed_out` come from the launcher,
        `tasks` is how many ranks the launch asked for (checked against the app's own count where it says)."""
        success = success or self.success
        found = self.foms(text)
        if timed_out:
            return Parsed("failed", "timeout", "the run exceeded its timeout and was stopped", found)
        if success in text and exit_code in (None, 0):
            wrong = self.ran_as_asked(text, tasks)
            if wrong:
                return Parsed("failed", "mpi", wrong, found)
            return Parsed("ok", None, None, found)
        reason, detail = self.classify(text)
        if reason == "unknown" and exit_code is not None and (exit_code < 0 or exit_code in (137, 143)):
            reason, detail = "killed", f"the process was killed (exit code {exit_code})"
        elif reason == "mpi" and exit_code in (-9, 9, 137) and not MISSING_MPI_LIBRARY.search(detail or ""):
            # a rank killed from outside (OOM killer, a person, the scheduler): its peers' MPI errors follow from
            # it, and the launcher may end before it says which rank was killed (hydra exits 9, the rank's signal
            # as its exit code; a launcher killed itself is 137 / -9)
            reason, detail = "killed", f"the process was killed (exit code {exit_code}); then: {detail}"
        if detail is None:
            detail = f"no success line ({success!r}); exit code {exit_code}" if exit_code is not None \
                else f"no success line ({success!r})"
        return Parsed("failed", reason, detail, found)

    # ------------------------------------------------------------------------------------ launch
    def arguments(self, parameters: Mapping[str, Any], source: Source, options: Options) -> list[str]:
        """The app's words after its executable, before `options.args` and `args`."""
        return []

    def generated_inputs(self, parameters: Mapping[str, Any], options: Options) -> dict[str, str] | None:
        """Input files written from the workload's parameters (name -> text), or None when the input is the
        variant's own file, adapted and staged (planner.core.inputs)."""
        return None

    def value_error(self, name: str, value: Any) -> str | None:
        """Why `value` cannot be the workload parameter `name` beyond its kind (exit 2 on load), or None."""
        return None

    def parameter_error(self, parameters: Mapping[str, Any], options: Options) -> str | None:
        """Why these parameters cannot run with these options (the plan excludes the point), or None."""
        return None

    def goal(self, metric: str) -> Goal | None:
        return next((fom.goal for fom in self.foms_declared if fom.name == metric), None)

    # ------------------------------------------------------------------------------------ flags and images
    def check_args(self, args: Sequence[str]) -> Sequence[str]:
        """App flags an option or a rule adds to this app's command line: each one of `flags`, followed by as
        many values as it takes (the values' words are checked where they are read: experiment.check_args)."""
        title = self.title or self.name
        switch, taken = None, 0
        for word in args:
            if word.startswith("-") and not word[1:2].isdigit():
                if switch is not None and self.flag_arity.get(switch, taken) > taken:
                    raise ValueError(f"{title} flag {switch} needs {self.flag_arity[switch]} value(s) before {word!r}")
                if word not in self.flags:
                    accepted = ", ".join(sorted(set(self.flags.values())))
                    raise ValueError(f"{word!r} is not a {title} flag an experiment may add; accepted: "
                                     + (f"{accepted} (flags that read or write files of their choosing are not)"
                                        if accepted else "none"))
                switch, taken = self.flags[word], 0
                continue
            if switch is None:
                raise ValueError(f"app flag {word!r} follows no {title} flag")
            if self.flag_arity.get(switch, taken + 1) <= taken:
                raise ValueError(f"{title} flag {switch} takes {self.flag_arity[switch]} value(s); "
                                 f"{word!r} is one more")
            choices = self.flag_choices.get(switch)
            if choices and taken == 0 and word not in choices:
                raise ValueError(f"{title} flag {switch} takes one of {', '.join(choices)} here; got {word!r}")
            taken += 1
        if switch is not None and self.flag_arity.get(switch, taken) > taken:
            raise ValueError(f"{title} flag {switch} needs {self.flag_arity[switch]} value(s)")
        return args

    def help_attributes(self, text: str) -> dict[str, Any]:
        """compspec attributes of the app's build from the output of `help_args` (`mpi_library`: the MPI
        library's own version line, where the app prints it); ValueError when the output is not the app's."""
        raise ValueError(f"the {self.title or self.name} definition reads no attributes from an image")


def _registered() -> tuple[str, ...]:
    """The modules of this package that expose `DEFINITION`: the definition naming the default experiment
    first (the commands' default app), then by name. Adding an app is adding a module."""
    modules = {m.name: importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
               if not m.name.startswith("_")}
    found = {name: module.DEFINITION for name, module in modules.items() if hasattr(module, "DEFINITION")}
    return tuple(sorted(found, key=lambda name: (found[name].default_experiment is None, name)))


def definition(name: str) -> Definition | None:
    """The registered definition of that name, or None."""
    if name not in BUILTIN:
        return None
    module = importlib.import_module(f"{__name__}.{name}")
    found: Definition = module.DEFINITION
    return found


def default_experiment() -> str:
    """The experiment file the commands read when given none: the one a registered definition names."""
    found = definition(BUILTIN[0])
    assert found is not None and found.default_experiment, "no registered app definition names a default experiment"
    return found.default_experiment


def recipe_aliases() -> dict[str, str]:
    """Deprecated native-recipe keys of every registered definition (old -> new)."""
    return {old: new for name in BUILTIN for old, new in definition(name).recipe_aliases.items()}  # type: ignore[union-attr]


def resolve(name: str, app: App | None = None) -> Definition:
    """An experiment's app as a definition: its registered definition (`definition:`, else the app's name)
    with what the experiment declares on top (executable, args, success, foms, failures), or a definition
    made from the experiment's data alone."""
    base = definition(app.definition or name) if app is not None else definition(name)
    if app is None:
        return base or Definition(name, name)
    if base is None:
        base = Definition(name, app.executable or name, success=app.success or "")
    extra = tuple(Fom(fom_name, spec.unit, spec.goal, spec.pattern, spec.scale, spec.description)
                  for fom_name, spec in app.foms.items())
    failures = {reason: (*patterns, *base.failures.get(reason, ())) for reason, patterns in app.failures.items()}
    return replace(base, executable=app.executable or base.executable,
                   args=tuple(app.args) if app.args is not None else base.args,
                   success=app.success or base.success,
                   foms_declared=(*extra, *(f for f in base.foms_declared if f.name not in app.foms)),
                   failures={**base.failures, **failures},
                   default_metric=app.default_metric or base.default_metric or (extra[0].name if extra else None))


def goal(metric: str) -> Goal | None:
    """The goal a registered definition declares for a figure of merit of that name, or None."""
    for name in BUILTIN:
        found = definition(name)
        declared = found.goal(metric) if found else None
        if declared:
            return declared
    return None


def default_metric(app: str | None) -> str | None:
    found = definition(app) if app else None
    return found.default_metric if found else None


#: the registered definitions (see `_registered`)
BUILTIN = _registered()
