"""`variants fetch --images`: the image built here, pushed to the real local registry, pulled back into the
variants cache by its digest, and local-slurm running what was fetched."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import CACHE, planner
from tests.registry.conftest import start_registry
from tests.slurm.test_local_slurm import experiment

VARIANT = "lammps-debian12-mpich"  # the smallest image (301 MB)


def test_fetch_pulls_the_image_and_local_slurm_runs_what_was_fetched(
        local_slurm: dict[str, str], built_images: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    reg = start_registry(tmp_path / "registry")
    store = tmp_path / "fresh" / "planner.sqlite"
    pulled: list[Path] = []
    try:
        env = {"COMPAT_LAB_REGISTRY_MIRRORS": f"localhost:5000={reg.host}"}
        pushed = planner("variants", "push", "--registry", f"{reg.host}/compat-lab/lammps", "--variant", VARIANT,
                         env=env)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        fetch = ("variants", "fetch", "--images", "--json", "--variant", VARIANT)
        first = planner(*fetch, store=store, env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        [image] = json.loads(first.stdout)["images"]
        pulled.append(Path(image["image"]))
        assert image["pulled"] and image["digest"].startswith("sha256:")
        assert Path(image["image"]).parent == (CACHE / "compat-lab" / "images" / ".fetched").resolve()
        assert (Path(image["image"]) / "opt" / "lammps" / "bench" / "in.lj").is_file()
        again = planner(*fetch, store=store, env=env)  # once per digest
        assert again.returncode == 0 and not json.loads(again.stdout)["images"][0]["pulled"], again.stdout
        reg.stop()  # what runs is what was fetched: the registry is not needed any more

        path = experiment(tmp_path, [VARIANT], [{"name": "fetched"}])
        done = planner("sweep", "-e", str(path), "--cluster", "local-slurm", store=store)
        assert done.returncode == 0, done.stdout + done.stderr
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            [(status, command)] = db.execute("SELECT status, command FROM runs").fetchall()
        assert status == "ok" and f" {image['image']} -- lmp " in command, command
    finally:
        reg.stop()
        for found in pulled:  # this test's copy, keyed by the digest of this push
            shutil.rmtree(found, ignore_errors=True)
            Path(f"{found}.done").unlink(missing_ok=True)
