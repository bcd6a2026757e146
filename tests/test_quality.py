"""The code passes its own linters: ruff on Python, the packaging metadata pins every dependency."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "planner", "tests", "benchmarks"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:]


def test_every_dependency_has_lower_and_upper_bounds() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    for requirement in requirements:
        assert re.search(r">=[\d.]+", requirement) and re.search(r"<[\d.]+", requirement), requirement
