"""Shared fixtures: the repository, the planner as a user runs it, and one real tiny sweep per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "data" / "tiny.yaml"


def planner(*args: str, store: Path | None = None, cwd: Path = REPO, timeout: float = 900,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m planner ARGS` as a user would, and return the finished process."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["PLANNER_STORE"] = str(store)
    return subprocess.run([sys.executable, "-m", "planner", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny experiment swept once for real (native variants installed on first use); returns the store."""
    store = tmp_path_factory.mktemp("tiny-sweep") / "planner.sqlite"
    done = planner("sweep", "-e", str(TINY), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    return store
