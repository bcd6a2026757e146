"""Values that reach a launch are checked when the experiment file loads: workload parameters against
the kind their default declares (they become LAMMPS input language through `-v name value`), environment
names against what a shell takes, and NUL bytes nowhere. Each refused value: exit 2 and one line
`file:line: field: what is wrong` from `python -m planner plan`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from planner.cli import main
from tests.conftest import TINY

GOOD = TINY.read_text()
SET = "      set: {affinity: per-task}"
LJ_PARAMETERS = "        parameters: {x: 1, y: 1, z: 1, steps: 20}"


def _set(extra: str) -> str:
    """The tiny experiment with more options set for its sweep (line of `set`: the options' line)."""
    return GOOD.replace(SET, SET[:-1] + ", " + extra + "}", 1)


def _with_label(default: str, value: str | None = None) -> str:
    """lj declares a string parameter `label` (used by its native input), optionally set by the sweep."""
    text = GOOD.replace(LJ_PARAMETERS, LJ_PARAMETERS[:-1] + f", label: {default}}}", 1)
    text = text.replace("workloads: [lj, chain, reaxff]", "workloads: [lj]", 1)
    return text.replace(SET, SET[:-1] + f", label: {value}}}", 1) if value is not None else text


SET_LINE = GOOD.splitlines().index(SET) + 1
LJ_LINE = GOOD.splitlines().index(LJ_PARAMETERS) + 1
WORD = "one word of letters, digits and _ . , : / + @ % = - not starting with -"
LABEL = f"label is a string (default 'melt'): {WORD}; got "

CASES = [
    # numeric parameters take numbers only
    ("steps-shell", _set("steps: '20 every 10 \"shell touch pwned\"'"), SET_LINE, "sweeps[0].options.set.steps",
     "steps is a number (default 20); got '20 every 10 \"shell touch pwned\"'"),
    ("steps-numeric-text", _set("steps: '20'"), SET_LINE, "sweeps[0].options.set.steps",
     "steps is a number (default 20); got '20'"),
    ("steps-boolean", _set("steps: true"), SET_LINE, "sweeps[0].options.set.steps",
     "steps is a number (default 20); got True"),
    ("steps-nan", _set("steps: .nan"), SET_LINE, "sweeps[0].options.set.steps",
     "steps is a number (default 20); got nan"),
    ("x-varied-text", GOOD.replace(SET, SET + "\n      vary: {x: [1, '2 y']}", 1), SET_LINE + 1,
     "sweeps[0].options.vary.x[1]", "x is a number (default 1); got '2 y'"),
    ("x-zipped-text", GOOD.replace("- {tasks: [2, 1], threads: [1, 2], suffix: [none, omp]}",
                                   "- {tasks: [2, 1], x: [1, '${y}']}", 1), SET_LINE + 2,
     "sweeps[0].options.zip[0].x[1]", "x is a number (default 1); got '${y}'"),
    # string parameters: declared by a string default, one word
    ("label-spaces", _with_label("melt", "'melt every 10'"), SET_LINE, "sweeps[0].options.set.label",
     LABEL + "'melt every 10'"),
    ("label-quote", _with_label("melt", "'a\"b'"), SET_LINE, "sweeps[0].options.set.label",
     LABEL + "'a\"b'"),
    ("label-switch", _with_label("melt", "-echo"), SET_LINE, "sweeps[0].options.set.label",
     LABEL + "'-echo'"),
    ("label-number", _with_label("melt", "3"), SET_LINE, "sweeps[0].options.set.label",
     LABEL + "3"),
    ("label-bad-default", _with_label("'a $b'"), LJ_LINE, "apps.lammps.workloads.lj.parameters",
     f"label is a string (default 'a $b'): {WORD}; got 'a $b'"),
    ("undeclared-parameter", _set("colour: red"), SET_LINE, "sweeps[0].options.set.colour",
     "unknown option 'colour'; accepted: "),
    # environment names and NUL bytes
    ("env-substitution", _set("env: {'$(touch pwned)': x}"), SET_LINE, "sweeps[0].options.set.env",
     "environment variable name '$(touch pwned)' is not [A-Za-z_][A-Za-z0-9_]*"),
    ("env-equals", _set("env: {'A=B': x}"), SET_LINE, "sweeps[0].options.set.env",
     "environment variable name 'A=B' is not [A-Za-z_][A-Za-z0-9_]*"),
    ("env-nul-name", _set('env: {"A\\0": x}'), SET_LINE, "sweeps[0].options.set.env", "'A\\x00' holds a NUL byte"),
    ("env-nul-value", _set('env: {A: "x\\0y"}'), SET_LINE, "sweeps[0].options.set.env",
     "'x\\x00y' holds a NUL byte"),
    ("env-varied", GOOD.replace(SET, SET + "\n      vary: {env: [{A: x}, {'1A': x}]}", 1), SET_LINE + 1,
     "sweeps[0].options.vary.env[1]", "environment variable name '1A' is not [A-Za-z_][A-Za-z0-9_]*"),
    ("preload-nul", _set('preload: "/lib/x\\0.so"'), SET_LINE, "sweeps[0].options.set.preload",
     "'/lib/x\\x00.so' holds a NUL byte"),
    ("bind-nul", _set('bind: ["/a\\0:/b"]'), SET_LINE, "sweeps[0].options.set.bind", "'/a\\x00:/b' holds a NUL byte"),
    ("label-nul", _with_label("melt", '"a\\0"'), SET_LINE, "sweeps[0].options.set.label",
     LABEL + "'a\\x00'"),
    ("input-nul", GOOD.replace("input: in.chain", 'input: "in.chain\\0"', 1),
     GOOD.splitlines().index("          input: in.chain") + 1, "apps.lammps.workloads.chain.native.input",
     "'in.chain\\x00' holds a NUL byte"),
    ("app-args-nul", GOOD.replace('args: ["-nocite"]', 'args: ["-nocite\\0"]', 1),
     GOOD.splitlines().index('    args: ["-nocite"]') + 1, "apps.lammps.args", "'-nocite\\x00' holds a NUL byte"),
    ("variant-env-name", GOOD.replace("      env: {I_MPI_FABRICS: shm}", "      env: {'I_MPI FABRICS': shm}", 1),
     GOOD.splitlines().index("      env: {I_MPI_FABRICS: shm}") + 1, "variants.lammps-2025-impi.native.env",
     "environment variable name 'I_MPI FABRICS' is not [A-Za-z_][A-Za-z0-9_]*"),
]


@pytest.mark.parametrize(("name", "text", "line", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_value_that_cannot_reach_a_launch_is_refused(name: str, text: str, line: int, field: str, message: str,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.strip().startswith(f"error: {path}:{line}: {field}: {message}"), err


def test_declared_values_reach_the_command_as_one_word_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with_label("melt", "run/a.b-c")
    text = text.replace("- {pattern: '^run\\s+\\d+', replace: 'run ${steps}'}",
                        "- {pattern: '^run\\s+\\d+', replace: 'print ${label}\\nrun ${steps}'}", 1)
    text = text.replace(SET[:-1], SET[:-1] + ", env: {_A1: '^a,b:c', I_MPI_DEBUG: '5=5'}, steps: 2.5e+1", 1)
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert main(["plan", "-e", str(path), "--json", "--store", str(tmp_path / "s.sqlite")]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs
    for run in runs:
        words = shlex.split(run["command"])
        # (env values are one word since they are checked as parameters; a space or `$` in one is data all the same:
        # tests/test_data_is_not_code.py pastes such a command into bash)
        assert "_A1=^a,b:c" in words and "I_MPI_DEBUG=5=5" in words
        assert re.search(r" -v steps 25\.0 -v label run/a\.b-c -in ", shlex.join(words))
