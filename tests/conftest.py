"""Shared fixtures: the repository, the planner as a user runs it, the tests' own caches, the native
variants installed once, and one real tiny sweep per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "data" / "tiny.yaml"
#: The tests' caches, in the repository's ignored .cache/ and never the user's ~/.cache. The native
#: variants are installed into CACHE/compat-lab on first use (about 40 s) and kept for later sessions.
CACHE = REPO / ".cache"


def pytest_configure(config: pytest.Config) -> None:
    # before collection, so that every cache_dir() of this process and of the planners it starts agrees
    os.environ["XDG_CACHE_HOME"] = str(CACHE)
    os.environ["COMPAT_LAB_CACHE"] = str(CACHE / "compat-lab")


def planner(*args: str, store: Path | None = None, cwd: Path = REPO, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m planner ARGS` as a user would, and return the finished process."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["PLANNER_STORE"] = str(store)
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="session")
def native_variants() -> Path:
    """The tiny experiment's native variants, installed by the planner into the tests' cache; returns it."""
    from planner.core.experiment import load_experiment
    from planner.edges.sweep import Workspace, materialize, native_variants_needed

    ws = Workspace.load(load_experiment(TINY))
    natives = [name for name, variant in ws.variants.items() if variant.kind == "native"]
    materialize(ws, native_variants_needed(ws, [], natives), Console(quiet=True))
    assert all(ws.variants[name].installed for name in natives)
    return ws.cache


@pytest.fixture(scope="session")
def tiny_sweep(native_variants: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny experiment swept once for real; returns the store."""
    store = tmp_path_factory.mktemp("tiny-sweep") / "planner.sqlite"
    done = planner("sweep", "-e", str(TINY), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    return store


@pytest.fixture(scope="session")
def bpf() -> None:
    """For tests marked `bpf`: real bpftrace and perf, which need root (CI here is root and the README's test
    command installs both); elsewhere the test is skipped, saying what is missing."""
    from tests.system import needs, needs_root

    needs("bpftrace", "perf")
    needs_root("BPF")


def needs_image_tools() -> None:
    """Skip, naming the packages, where images cannot be built: they need root, mmdebstrap, ch-run and readelf
    (CI has all, and fails instead of skipping)."""
    from tests.system import needs, needs_root

    needs("mmdebstrap", "ch-run", "readelf")
    needs_root("building images (mmdebstrap --mode=root)")


@pytest.fixture(scope="session")
def built_images() -> dict[str, Path]:
    """The container variants the default experiment builds (roles/container_images), built once into the
    tests' cache (minutes, root, Debian's mirror) or found complete there: variant name -> image directory."""
    import json

    needs_image_tools()
    done = planner("variants", "build", "--json", "-e", str(REPO / "experiments" / "lammps.yaml"), timeout=3600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {item["name"]: Path(item["image"]) for item in json.loads(done.stdout)["images"]}
