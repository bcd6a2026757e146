"""The Ansible side passes its own checks: every playbook parses, the whole repository lints clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cloud.conftest import BIN
from tests.conftest import REPO

PLAYBOOKS = sorted(str(path.relative_to(REPO)) for path in
                   [*REPO.glob("playbooks/*.yml"), REPO / "tests" / "cloud" / "flux_sweep.yml"])


def ansible_env(tmp_path: Path) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_HOME": str(tmp_path / ".ansible"), "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable}


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook: str, tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", playbook], cwd=REPO,
                          env=ansible_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    """Exceptions live in .ansible-lint-ignore or inline `# noqa` with a reason, never in a skip list."""
    done = subprocess.run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", "-f", "pep8"],
                          cwd=REPO, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr
