"""Every role's molecule scenario (default driver, localhost): converge, idempotence, verify; and
roles/local_cluster run without the planner installs where the planner looks.

Roles whose real target cannot run here (EKS, Kubernetes) say in their scenario what they fake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from planner.core.experiment import load_experiment
from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.variant_info import recipe_digest, variant_infos
from tests.conftest import REPO, TINY, needs_image_tools
from tests.slurm.conftest import require_slurm

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
    if role == "local_slurm":
        require_slurm()
    if role == "container_images":
        needs_image_tools()
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
    home = tmp_path / "home"  # a wrong default lands here, never in the user's HOME
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("COMPAT_LAB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    if setting == "COMPAT_LAB_CACHE":
        cache = tmp_path / "cache"
        monkeypatch.setenv("COMPAT_LAB_CACHE", str(cache))
    elif setting == "XDG_CACHE_HOME":
        cache = tmp_path / "xdg" / "compat-lab"
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent))
    else:
        cache = home / ".cache" / "compat-lab"
    name = "lammps-2025-mpich"
    # The session's installed prefix lent to this cache with the facts of another recipe (a prefix without
    # facts is a half-done install, which the role removes and redoes): pip finds the packages there
    # (nothing is downloaded) and the role has only the facts to write; the session's cache is not touched.
    prefix = cache / "variants" / name
    prefix.mkdir(parents=True)
    for entry in (native_variants / "variants" / name).iterdir():
        if entry.name != "facts.json":
            (prefix / entry.name).symlink_to(entry)
    facts = json.loads((native_variants / "variants" / name / "facts.json").read_text())
    (prefix / "facts.json").write_text(json.dumps({**facts, "recipe": "another"}))
    exp = load_experiment(TINY)
    assert not variant_infos(exp)[name].installed
    variant = exp.variants[name].native
    done = run_playbook(PlaybookRequest("playbooks/cluster.yml", "inventories/local", tags="local_cluster",
                                        extravars={"local_cluster_variants": [
                                            {"name": name, "packages": list(variant.packages), "binary_from": None,
                                             "recipe": recipe_digest(exp, name)}]}))
    assert done.ok, done.failures
    found = variant_infos(exp)[name]
    assert found.installed
    assert found.layout["facts"] == str(prefix / "facts.json")
    assert found.attributes["lammps.version"] == "20250722"
