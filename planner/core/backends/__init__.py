"""Launchers and container runtimes, each one registered module (see `contract`). Pure.

Importing the package registers them all; `launcher(name)` and `runtime(name)` look one up.
"""

from planner.core.backends import charliecloud, flux, mpiexec, mpirun, none, singularity, srun  # noqa: F401
from planner.core.backends.contract import (
                                            LAUNCHERS,
                                            RUNTIMES,
                                            Container,
                                            Launcher,
                                            Ranks,
                                            Runtime,
                                            Words,
                                            launcher,
                                            register_launcher,
                                            register_runtime,
                                            runtime,
)

__all__ = ["LAUNCHERS", "RUNTIMES", "Container", "Launcher", "Ranks", "Runtime", "Words", "launcher",
           "register_launcher", "register_runtime", "runtime"]
