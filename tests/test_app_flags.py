"""Issue 19: app flags (`args` of an option or of a launch rule) and preloads are checked as parameters are.
`args: ["-in", FILE]` made LAMMPS read another input script, whose `shell` command ran a program: the
experiment is now refused (exit 2, one line naming the field) and LAMMPS never starts. Real LAMMPS, as a
user runs it: on today's main the marker file is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import planner
from tests.one_run import lj_experiment

pytestmark = pytest.mark.lammps


def _experiment(tmp_path: Path, options: str = "{tasks: 1}", rules: str = "[]") -> Path:
    return lj_experiment(tmp_path / "flags.yaml", options=options, rules=rules, timeout=120)


def _evil_input(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.in"
    evil.write_text(f"shell touch {marker}\n")
    return evil, marker


@pytest.mark.parametrize("where", ["option", "rule"])
def test_an_input_script_given_as_an_app_flag_is_refused_and_never_run(native_variants: Path, tmp_path: Path,
                                                                        where: str) -> None:
    evil, marker = _evil_input(tmp_path)
    flags = json.dumps(["-in", str(evil)])
    if where == "option":
        experiment = _experiment(tmp_path, options=f"{{tasks: 1, args: {flags}}}")
        field = "sweeps[0].options.set.args"
    else:
        experiment = _experiment(tmp_path, rules=f"[{{name: evil, match: {{}}, add: {{args: {flags}}}}}]")
        field = "launch_rules[0].add.args"
    done = planner("sweep", "-e", str(experiment), store=tmp_path / "planner.sqlite")
    assert not marker.exists(), "LAMMPS ran the shell command of an input given as an app flag"
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert field in line and "'-in' is not a LAMMPS flag an experiment may add" in line


def test_flags_and_preloads_that_are_words_still_run(native_variants: Path, tmp_path: Path) -> None:
    experiment = _experiment(tmp_path, options="{tasks: 1, args: [-echo, screen, -var, label, run1], "
                                               "preload: /nonexistent/libnothing.so}")
    done = planner("sweep", "-e", str(experiment), store=tmp_path / "planner.sqlite")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executed 1 runs (1 ok, 0 failed)" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("-log", "/etc/x"), "'-log' is not a LAMMPS flag"),
    (("-screen", "out"), "'-screen' is not a LAMMPS flag"),
    (("-var", "x", "$(touch m)"), "app flag value '$(touch m)' is not one word"),
    (("-var", "x", "1;", "shell"), "app flag value '1;' is not one word"),
    (("-echo", "file.txt"), "LAMMPS flag -echo takes one of screen, log, both, none here"),
    (("-reorder", "custom", "map.txt"), "LAMMPS flag -reorder takes one of nth here"),
    (("-nocite", "extra"), "LAMMPS flag -nocite takes 0 value(s)"),
    (("word",), "app flag 'word' follows no LAMMPS flag"),
])
def test_app_flags_outside_the_guard_are_refused_saying_why(args: tuple[str, ...], message: str) -> None:
    from planner.core import apps
    from planner.core.experiment import check_args

    with pytest.raises(ValueError) as caught:
        apps.definition("lammps").check_args(check_args(args))  # type: ignore[union-attr]
    assert message in str(caught.value)


def test_preloads_and_environment_that_run_code_are_refused() -> None:
    from planner.core.experiment import check_option_env, check_preload

    for value in ("/lib/x.so /tmp/y.so", "{{ lookup('pipe', 'id') }}", "-x", "$(id)"):
        with pytest.raises(ValueError, match="is not a library path"):
            check_preload(value)
    assert check_preload("/usr/lib/libjemalloc.so.2:/opt/lib/libx.so") is not None
    for name in ("BASH_ENV", "LD_PRELOAD", "LD_AUDIT", "ENV", "BASH_FUNC_ls%%"):
        with pytest.raises(ValueError):
            check_option_env({name: "/tmp/evil"})
    assert check_option_env({"I_MPI_FABRICS": "shm", "OMPI_MCA_btl": "^openib"})
