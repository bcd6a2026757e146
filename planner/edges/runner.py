"""The one adapter around ansible-runner: a typed request in, events streamed out, a typed result back.

Every invocation gets a fresh private data directory (removed afterwards), the venv's `bin` first on
PATH so its `ansible-playbook` is found, the venv's Python as the interpreter for localhost (Ansible's
discovery can pick a missing pyenv shim), and Ansible's local state kept out of the user's HOME and
the repository. Events are not written to disk: the handler gets each one as it happens.

Extra variables are data, never code: they carry values from experiment files, CSVs, stores and
cluster state files, and Ansible renders any `{{ ... }}` or `{% ... %}` it finds in an extra variable
(a `lookup('pipe', ...)` there runs a command on this machine). So they are not handed over as
ansible-runner `extravars` (passed to `-e` as they are); they are written to a vars file in the
private data directory with each value tagged `!unsafe`, which Ansible never templates, and passed
with `-e @FILE`. That also keeps a large matrix off the command line (one argument is at most 128 KiB).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

from planner.edges.watchdog import ENV as WATCHDOG_ENV
from planner.edges.watchdog import owned_by, reap

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PlaybookRequest:
    playbook: str  # path relative to the repository, e.g. playbooks/sweep.yml
    inventory: str  # path relative to the repository, e.g. inventories/local
    extravars: dict[str, Any] = field(default_factory=dict)
    tags: str | None = None
    limit: str | None = None
    verbosity: int = 0
    forks: int | None = None  # Ansible's workers (hosts served at once); None: Ansible's default, 5


@dataclass
class PlaybookResult:
    status: str  # successful | failed | canceled | timeout
    rc: int
    failures: list[str] = field(default_factory=list)  # "task: message" of failed tasks

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


ItemHandler = Callable[[str, dict[str, Any]], None]


def run_playbook(request: PlaybookRequest, *, on_item: ItemHandler | None = None,
                 on_task: Callable[[str], None] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 on_death: PlaybookRequest | None = None) -> PlaybookResult:
    """Run a playbook; `on_item(task_name, result)` is called as each loop item finishes. Should this
    process die meanwhile, the watchdog ends what it started here, then runs `on_death` (what stops the
    work elsewhere, e.g. a sweep's jobs on a cluster)."""
    failures: list[str] = []

    def handle(event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        task = data.get("task", "")
        if kind in {"runner_item_on_ok", "runner_item_on_failed"} and on_item is not None:
            on_item(task, data.get("res") or {})
        elif kind == "playbook_on_task_start" and on_task is not None:
            on_task(task)
        elif kind in {"runner_on_failed", "runner_on_unreachable"} and not data.get("ignore_errors"):
            res = data.get("res") or {}
            message = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
            failures.append(f"{task}: {_first_line(str(message))}")
        return False  # keep nothing on disk: the handler is the consumer

    bindir = str(Path(sys.executable).parent)
    # ansible-playbook and everything it starts carry our PID; the watchdog stops them if we die uncleanly
    argv = [sys.executable, "-m", "planner.edges.watchdog", str(os.getpid())]
    orders = None
    if on_death is not None:  # run by the watchdog with this module's entry point below, from a file (it may be large)
        fd, orders = tempfile.mkstemp(prefix="compat-lab-on-death-", suffix=".json")
        with os.fdopen(fd, "w") as orders_file:
            json.dump(dataclasses.asdict(on_death), orders_file)
        argv += [sys.executable, "-m", "planner.edges.runner", orders]
    watchdog = subprocess.Popen(argv, cwd=str(REPO), start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result = _run(request, handle, cancel, failures, bindir)
    finally:
        watchdog.terminate()
        watchdog.wait()
        if orders is not None:
            Path(orders).unlink(missing_ok=True)
    if result.status == "canceled":
        _settle(os.getpid())
    return result


#: characters of a task result (str of it) ansible-runner passes on in an event (see _run)
MAX_EVENT_RES = 16 << 20
#: how long the executors get to end their runs after a cancel (their own grace is 5 s)
SETTLE_SECONDS = 8.0


def _settle(owner: int) -> None:
    """A cancel ends ansible-playbook at once, while each executor still ends its run's process group:
    wait for them (a Ctrl-C returns with nothing left running), then end whatever is left."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while owned_by(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    reap(owner)


def _run(request: PlaybookRequest, handle: Callable[[dict[str, Any]], bool], cancel: Callable[[], bool] | None,
         failures: list[str], bindir: str) -> PlaybookResult:
    with tempfile.TemporaryDirectory(prefix="compat-lab-runner-") as private:
        envvars = {
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_LOCAL_TEMP": str(Path(private) / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(Path(private) / "remote-tmp"),
            "ANSIBLE_HOME": str(Path(private) / "ansible-home"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            # ansible-runner's event callback empties a task result whose str() passes MAX_EVENT_RES characters
            # (default 700000; ansible_runner/display_callback/callback/awx_display.py), and a raw task's
            # stdout counts twice (stdout, stdout_lines): a run's JSON line past ~330 KB arrived without it.
            # The executors keep that line small (roles/run_matrix/files/execute_run.py); the limit is set
            # here with room for JSON's and repr's escaping of the worst text a run can write.
            "MAX_EVENT_RES": str(MAX_EVENT_RES),
            WATCHDOG_ENV: str(os.getpid()),
        }
        data = Path(private) / "extravars.yml"
        data.write_text(unsafe_vars({"ansible_python_interpreter": sys.executable, **request.extravars}))
        runner = ansible_runner.run(
            private_data_dir=private, project_dir=str(REPO), playbook=str(REPO / request.playbook),
            inventory=str(REPO / request.inventory), cmdline=shlex.join(["-e", f"@{data}"]), envvars=envvars,
            tags=request.tags, limit=request.limit, verbosity=request.verbosity or None, forks=request.forks,
            quiet=True,
            event_handler=handle, cancel_callback=cancel, suppress_env_files=True,
            settings={"suppress_ansible_output": True},
        )
    return PlaybookResult(runner.status, runner.rc if runner.rc is not None else 1, failures)


class _Unsafe:
    """A value Ansible must take as it is (YAML tag `!unsafe`, which covers everything nested in it)."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _UnsafeDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's emitter where PyYAML has it: a matrix of thousands of runs is written in milliseconds."""


def _represent_unsafe(dumper: yaml.SafeDumper, data: _Unsafe) -> yaml.Node:
    node = dumper.represent_data(data.value)
    node.tag = "!unsafe"
    return node


_UnsafeDumper.add_representer(_Unsafe, _represent_unsafe)


def unsafe_vars(variables: dict[str, Any]) -> str:
    """A vars file (YAML) that gives Ansible each variable's value as data it never templates."""
    return yaml.dump({name: _Unsafe(value) for name, value in variables.items()}, Dumper=_UnsafeDumper,
                     allow_unicode=True, width=1 << 30, sort_keys=False)


if __name__ == "__main__":
    # `python -m planner.edges.runner FILE`: how the watchdog runs a PlaybookRequest (on_death), kept as JSON
    # in FILE, which it removes once read
    order = Path(sys.argv[1])
    request = PlaybookRequest(**json.loads(order.read_text()))
    order.unlink()
    sys.exit(0 if run_playbook(request).ok else 1)


def _first_line(message: str) -> str:
    """A task's message in one line: its first, with the next where the first only announces it
    (`Validation of arguments failed:` says why on the line after)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()] or ["failed"]
    return " ".join(lines[:2]) if lines[0].endswith(":") and len(lines) > 1 else lines[0]
