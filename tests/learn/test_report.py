"""`planner report`: PNG plots and an index.html that shows them."""

from __future__ import annotations

import json
from pathlib import Path

from planner.edges.store import Store
from tests.conftest import planner

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_writes_readable_pngs_and_an_index(synthetic_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = planner("report", "--out", str(out), "--json", "--store", str(synthetic_store))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"fom_lammps_lj.png", "fom_lammps_reaxff.png", "heatmap.png", "failures.png",
            "predicted_vs_measured.png", "importances.png"} <= set(result["figures"])
    page = (out / "index.html").read_text()
    for name in result["figures"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
        assert f'src="{name}"' in page
    assert "grouped CV" in page and "Measured best per cluster and workload" in page


def test_report_on_an_empty_store_says_to_sweep_or_import(tmp_path: Path) -> None:
    empty = tmp_path / "planner.sqlite"
    Store(empty).close()
    done = planner("report", "--out", str(tmp_path / "r"), "--store", str(empty))
    assert done.returncode == 2 and "first" in done.stderr
    assert not (tmp_path / "r").exists()
