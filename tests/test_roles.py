"""Every role's molecule scenario (default driver, localhost): converge, idempotence, verify.

Roles whose real target cannot run here (EKS, Kubernetes) say in their scenario what they fake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ROLES = sorted(p.parent.parent.parent.name for p in (REPO / "roles").glob("*/molecule/default/molecule.yml"))


def test_every_role_has_argument_specs_and_a_scenario() -> None:
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES
    for role in roles:
        assert (REPO / "roles" / role / "meta" / "argument_specs.yml").is_file(), role
        assert (REPO / "roles" / role / "defaults" / "main.yml").is_file(), role


@pytest.mark.molecule
@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario(role: str, tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
           "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "eph"),
           "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    done = subprocess.run([os.path.join(bindir, "molecule"), "test"], cwd=REPO / "roles" / role, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)
    tail = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, tail
    for step in ("converge", "idempotence", "verify"):
        assert f"{step}: Executed: Successful" in (done.stdout + done.stderr), f"{step} did not run:\n{tail}"
