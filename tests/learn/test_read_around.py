"""A store that already holds values learning cannot use (a FOM <= 0 or infinite, NaN/inf attributes,
options that are not JSON) is read around them with one warning by fit, recommend, evaluate and report;
`forget` removes them, after which the warning is gone."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from planner.cli import main
from planner.edges.store import Store
from tests.learn.conftest import METRIC, records_from_plan

WARNING = ("warning: read around stored runs learning cannot use: 3 with figures of merit <= 0 or not finite "
           "(e.g. bad-zero); 1 with NaN/inf attributes (e.g. bad-nan); 1 with options or attributes not JSON "
           "objects (e.g. bad-json); list or remove them with `python -m planner forget --id ID`")


def _poison(store: Path) -> None:
    good = records_from_plan("local")[0]
    bad = [dataclasses.replace(good, id="bad-zero", foms={METRIC: 0.0}),
           dataclasses.replace(good, id="bad-negative", foms={METRIC: -3.0}),
           dataclasses.replace(good, id="bad-inf", foms={METRIC: float("inf")}),
           dataclasses.replace(good, id="bad-nan", cluster_attrs={**good.cluster_attrs, "memory_gb": float("nan")}),
           dataclasses.replace(good, id="bad-json")]
    with Store(store) as s:
        s.add_many(bad)
    db = sqlite3.connect(store)
    with db:
        db.execute("UPDATE runs SET options = '[1, 2' WHERE id = 'bad-json'")
    db.close()


@pytest.mark.parametrize("argv", [["fit"], ["recommend", "lammps", "lj", "--cluster", "local", "--json"],
                                  ["evaluate", "--group-by", "workload", "--json"], ["report", "--out", "REPORT"]],
                         ids=["fit", "recommend", "evaluate", "report"])
def test_unusable_rows_are_read_around_with_one_warning(argv: list[str], local_store: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _poison(local_store)
    argv = [str(tmp_path / "report") if a == "REPORT" else a for a in argv]
    assert main([*argv, "--store", str(local_store)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: read around")]
    assert set(warnings) == {WARNING}


def test_forget_removes_them_and_the_warning_goes(local_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _poison(local_store)
    for run_id in ("bad-zero", "bad-negative", "bad-inf", "bad-nan", "bad-json"):
        assert main(["forget", "--id", run_id, "--yes", "--store", str(local_store)]) == 0
    capsys.readouterr()
    assert main(["fit", "--store", str(local_store)]) == 0
    assert "warning" not in capsys.readouterr().err
