"""The system programs the tests run (tests/system-packages.txt): a test that needs a missing one is
skipped, naming the package to install, or fails under CI=true, where every test must run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PACKAGES_FILE = Path(__file__).with_name("system-packages.txt")


def packages() -> dict[str, str]:
    """program -> the Debian/Ubuntu package that installs it."""
    table = {}
    for line in PACKAGES_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            program, package = line.split()[:2]
            table[program] = package
    return table


def _present(program: str) -> bool:
    return os.path.exists(program) if program.startswith("/") else shutil.which(program) is not None


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI runs every test: scripts/system-packages.sh installs it)")
    pytest.skip(reason)


def needs(*programs: str) -> None:
    """Skip (or, under CI, fail) unless every program is installed; the message names the packages."""
    table = packages()
    unknown = [program for program in programs if program not in table]
    if unknown:
        raise ValueError(f"add {unknown} to {PACKAGES_FILE.name}")
    missing = [program for program in programs if not _present(program)]
    if missing:
        names = sorted({table[program] for program in missing})
        _missing(f"needs {', '.join(missing)} (apt-get install {' '.join(names)}, or run scripts/system-packages.sh "
                 "as root)")


def needs_root(what: str) -> None:
    """Skip (or, under CI, fail) unless running as root, which `what` needs."""
    if os.geteuid() != 0:
        _missing(f"needs root for {what}")
