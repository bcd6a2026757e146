"""Issue 19: the environment values a launch option, a launch rule or an imported row gives go through the guard
string parameters do (`experiment.ENV_VALUE`): `$(...)`, spaces, Jinja and a `,NAME=` that Singularity's
`--env K=V` reads as one more variable (past the name check: `1,LD_PRELOAD=/tmp/evil.so`) are refused, exit 2,
one line naming the field; nothing runs and nothing is stored. On today's main each is accepted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import planner
from tests.one_run import lj_experiment

EVIL = ["$(touch /tmp/compat-lab-evil)", "1,LD_PRELOAD=/tmp/evil.so", "{{ lookup('pipe', 'id') }}"]


@pytest.mark.parametrize("value", EVIL)
@pytest.mark.parametrize("where", ["option", "rule"])
def test_an_experiment_env_value_outside_the_guard_is_refused(tmp_path: Path, where: str, value: str) -> None:
    env = json.dumps({"OMP_NUM_THREADS": value})
    if where == "option":
        experiment = lj_experiment(tmp_path / "e.yaml", options=f"{{tasks: 1, env: {env}}}")
        field = "sweeps[0].options.set.env"
    else:
        experiment = lj_experiment(tmp_path / "e.yaml", rules=f"[{{name: evil, match: {{}}, add: {{env: {env}}}}}]")
        field = "launch_rules[0].add.env"
    done = planner("sweep", "-e", str(experiment), "--dry-run", store=tmp_path / "planner.sqlite")
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert field in line and "the value of OMP_NUM_THREADS" in line, line
    assert not (tmp_path / "planner.sqlite").exists()


def test_an_imported_env_value_outside_the_guard_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    good = tmp_path / "good.csv"
    good.write_text("cluster,app,workload,variant,repeat,status,metric,value,option.env\n"
                    "c1,lammps,lj,vA,0,ok,fom,5,OMPI_MCA_btl=^openib;OMP_NUM_THREADS=2\n")
    assert planner("import", str(good), "--store", str(store)).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("cluster,app,workload,variant,repeat,status,metric,value,option.env\n"
                   "c1,lammps,lj,vB,0,ok,fom,5,OMP_NUM_THREADS=$(id)\n"
                   'c1,lammps,lj,vB,1,ok,fom,5,"OMP_NUM_THREADS=1,LD_PRELOAD=/tmp/evil.so"\n'
                   "c1,lammps,lj,vB,2,ok,fom,5,OMP_NUM_THREADS=a b\n")
    done = planner("import", str(bad), "--store", str(store))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in lines[:3]] == [f"{bad}:{n}" for n in (2, 3, 4)], lines
    assert all("option.env" in line and "the value of OMP_NUM_THREADS" in line for line in lines[:3]), lines
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT variant FROM runs").fetchall() == [("vA",)]
