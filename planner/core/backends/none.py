"""No container: each rank runs the command on the host, with the environment set around the launch."""

from __future__ import annotations

from planner.core.backends.contract import Container, Runtime, Words, register_runtime


@register_runtime("none")
class NoContainer(Runtime):
    contains = False

    def wrap(self, container: Container) -> Words:
        return Words((), dict(container.env))

    def refuses(self, container: Container) -> str | None:
        if container.binds:
            return "bind mounts need a container runtime; without one, libraries come in through env"
        if container.args:
            return f"runtime flags {' '.join(container.args)} need a container runtime"
        return None
