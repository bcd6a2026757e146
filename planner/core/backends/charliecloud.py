"""Charliecloud's `ch-run [--join] [-b SRC:DST] [--set-env=K=V] [-c DIR] IMAGE --` (0.31, ch-run(1)).

Each `ch-run` enters its own user and mount namespaces unless `--join` makes the ranks of one node share
one (it counts its peers from Slurm's or PMI's environment); binds need their target to exist in the image;
`--set-env=K=V` sets a variable inside the container (the host environment passes through otherwise).
`ch-run` needs `$USER` set. The image is a directory (or SquashFS) that `ch-run` mounts read-only.
"""

from __future__ import annotations

from planner.core.backends.contract import Container, Runtime, Words, register_runtime


@register_runtime("charliecloud")
class Charliecloud(Runtime):
    def wrap(self, container: Container) -> Words:
        assert container.image is not None
        argv = ["ch-run", *container.args]
        for bind in container.binds:
            argv += ["-b", bind]
        for key, value in container.env.items():
            argv.append(f"--set-env={key}={value}")
        if container.workdir:
            argv += ["-c", container.workdir]
        return Words((*argv, container.image, "--"))
