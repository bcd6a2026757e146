"""The contract every launcher and container runtime implements, and the registry that names them. Pure.

A **launcher** starts a run's ranks (`mpiexec`, `mpirun`, `srun`, `flux run`): asked for `Ranks` it gives
the words of its command up to the command each rank runs, the environment it adds, the PMI flavours it can
be asked for, and, where its runs are scheduler jobs, how one is cancelled by name. A **runtime** is the
per-rank wrapper (`none`, `singularity`/`apptainer`, `ch-run`): asked for a `Container` it gives the words
put before the app's command (image, binds, environment, working directory).

Each is one class registered under its name, the way ReFrame registers its backends
(reframe/core/backends.py: `register_launcher(name)` decorates the class, `getlauncher(name)` finds it; a
launcher's `command(job)` returns argv words; reframe/core/containers.py: a platform's launch command from
its image, mount points and options). Launch rules match those names (cluster attributes `launcher`,
`runtime`). Adding one is one module in this package plus its conformance test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar


@dataclass(frozen=True)
class Ranks:
    """What a launcher is asked to start."""

    tasks: int
    nodes: int = 1
    threads: int = 1
    #: default | on | per-task | off (experiment.Affinity)
    affinity: str = "default"
    #: the PMI flavour asked for (`-o pmi=`, `--mpi=`), None for the launcher's own default
    pmi: str | None = None
    #: Flux shell options (`-o NAME=VALUE`); only `flux run` takes them
    shell: Mapping[str, str] = field(default_factory=dict)
    #: job name (the run id) and time limit in seconds, for launchers whose runs are scheduler jobs;
    #: None where the command describes a configuration rather than executes a run (`recommend`)
    job: str | None = None
    limit: float | None = None
    #: the variant's `mpi.implementation` (Intel MPI pins through variables, not flags)
    mpi: str | None = None
    #: the launcher's own path where the variant brings it (a native prefix's mpiexec)
    program: str | None = None


@dataclass(frozen=True)
class Container:
    """What a runtime is asked to wrap around each rank's command."""

    #: what the runtime starts: a SIF path, a Charliecloud image directory; None for no container
    image: str | None
    workdir: str | None = None
    binds: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: the runtime's own flags (`ch-run --join`), from the run's `runtime_args`
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Words:
    """Command words and the environment they need set around the command."""

    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


class Launcher:
    #: the registered name: what `cluster.launcher` says and launch rules match
    name: ClassVar[str]
    #: PMI flavours a run may ask for (`Options.pmi`); empty: the launcher takes no PMI choice
    pmi: ClassVar[tuple[str, ...]] = ()
    #: whether its runs are scheduler jobs carrying the run id as job name and a time limit
    jobs: ClassVar[bool] = False

    def command(self, ranks: Ranks) -> Words:
        raise NotImplementedError

    def refuses(self, ranks: Ranks) -> str | None:
        """Why the launcher cannot start these ranks as asked (what the real one would refuse), or None."""
        if ranks.pmi is not None and not self.pmi:
            return f"{self.name} takes no PMI choice (pmi={ranks.pmi})"
        if ranks.pmi is not None and any(item not in self.pmi for item in ranks.pmi.split(",")):
            return f"{self.name} offers PMI {', '.join(self.pmi)}, not {ranks.pmi}"
        if ranks.shell:
            return f"shell options are Flux's (flux run -o); {self.name} has none"
        return None

    def cancel(self, job: str) -> tuple[str, ...] | None:
        """The command that cancels the job named `job` (its run id), where one command can (`scancel --name`);
        None otherwise (`flux cancel` takes ids: the executor looks them up by name)."""
        return None


class Runtime:
    #: the registered name: what `cluster.runtime` says and launch rules match
    name: ClassVar[str]
    #: whether it runs images (`none` does not)
    contains: ClassVar[bool] = True

    def wrap(self, container: Container) -> Words:
        raise NotImplementedError

    def refuses(self, container: Container) -> str | None:
        if self.contains and not container.image:
            return f"{self.name} needs an image"
        return None


LAUNCHERS: dict[str, Launcher] = {}
RUNTIMES: dict[str, Runtime] = {}
_T = TypeVar("_T", bound=type)


def _register(table: dict, name: str) -> Callable[[_T], _T]:
    def register(cls: _T) -> _T:
        if name in table:
            raise ValueError(f"a backend named {name!r} is already registered")
        cls.name = name  # type: ignore[attr-defined]
        table[name] = cls()
        return cls
    return register


def register_launcher(name: str) -> Callable[[_T], _T]:
    return _register(LAUNCHERS, name)


def register_runtime(name: str) -> Callable[[_T], _T]:
    return _register(RUNTIMES, name)


def launcher(name: str) -> Launcher:
    try:
        return LAUNCHERS[name]
    except KeyError:
        raise KeyError(f"no launcher {name!r}; registered: {', '.join(sorted(LAUNCHERS))}") from None


def runtime(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise KeyError(f"no container runtime {name!r}; registered: {', '.join(sorted(RUNTIMES))}") from None
