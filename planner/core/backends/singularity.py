"""Singularity / Apptainer: `singularity exec [--bind B] [--env K=V] --pwd DIR SIF`.

`--env` (Singularity >= 3.6, Apptainer) sets a variable inside the container only; the host environment
passes through too (singularity-exec(1)). Binds are SRC[:DST[:OPTS]].
"""

from __future__ import annotations

from typing import ClassVar

from planner.core.backends.contract import Container, Runtime, Words, register_runtime


@register_runtime("singularity")
class Singularity(Runtime):
    program: ClassVar[str] = "singularity"

    def wrap(self, container: Container) -> Words:
        assert container.image is not None
        argv = [self.program, "exec", *container.args]
        for bind in container.binds:
            argv += ["--bind", bind]
        for key, value in container.env.items():
            argv += ["--env", f"{key}={value}"]
        if container.workdir:
            argv += ["--pwd", container.workdir]
        return Words((*argv, container.image))


@register_runtime("apptainer")
class Apptainer(Singularity):
    program = "apptainer"
