"""The experiment file: the default file is valid, and every malformed file gets exit 2 with a one-line
message naming file:line and the field at fault."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.cli import main
from planner.core.errors import InputError
from planner.core.experiment import load_experiment, parse_experiment
from tests.conftest import REPO, TINY

GOOD = TINY.read_text()


def test_default_experiment_describes_both_worlds() -> None:
    exp = load_experiment(REPO / "experiments" / "lammps.yaml")
    images = [v for v in exp.variants.values() if v.image and not v.build]
    built = [v for v in exp.variants.values() if v.build]
    natives = [v for v in exp.variants.values() if v.native]
    assert len(images) == 18
    assert all(not v.attributes for v in images + built)  # declared by URI: attributes come from their artifacts
    assert {v.image.rsplit("-", 1)[1] for v in images} == {"arm64", "amd64"}
    assert {(v.build.debian, v.build.mpi) for v in built} >= {("bullseye", "openmpi"), ("bookworm", "openmpi"),
                                                             ("trixie", "openmpi"), ("bookworm", "mpich")}
    assert len(natives) >= 3
    assert any(v.native.binary_from for v in natives)  # the Intel MPI bound into the same binary
    assert {"lj", "eam", "chain", "rhodo", "reaxff"} <= set(exp.apps["lammps"].workloads)
    assert {"local", "local-slurm", "eks-arm64", "eks-amd64"} <= set(exp.clusters)


def _mutate(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def _rules(add: str, match: str = "match: {variant: {mpi.implementation: mpich}}", sweep: str = "") -> str:
    """The tiny experiment with one launch rule `r1` (and its sweep's `set` replaced where `sweep` is given)."""
    text = _mutate("set: {affinity: per-task}", sweep) if sweep else GOOD
    return text + f"\nlaunch_rules:\n  - name: r1\n    {match}\n    {add}\n"


CASES = [
    ("bad-yaml", _mutate("name: lammps-tiny", "name: [lammps-tiny"), r"not valid YAML"),
    ("unknown-field", _mutate("    repeats: 1", "    repeats: 1\n    colour: blue"),
     r"sweeps\[0\]\.colour: unknown field"),
    ("wrong-type", _mutate("    repeats: 1", "    repeats: many"), r"sweeps\[0\]\.repeats: .*integer"),
    ("unknown-variant", _mutate("variants: [lammps-2025-mpich,", "variants: [lammps-2099-mpich,"),
     r"sweeps\[0\]\.variants\[0\]: unknown variant 'lammps-2099-mpich'; known: lammps-2025-mpich"),
    ("unknown-workload", _mutate("workloads: [lj, chain, reaxff]", "workloads: [lj, chian]"),
     r"sweeps\[0\]\.workloads\[1\]: unknown workload 'chian'"),
    ("unknown-cluster", _mutate("    clusters: [local]", "    clusters: [laptop]"),
     r"sweeps\[0\]\.clusters\[0\]: unknown cluster 'laptop'"),
    ("impossible-option", _mutate("tasks: [2, 1]", "tasks: [2, 0]"), r"impossible option .*tasks"),
    ("bad-affinity", _mutate("set: {affinity: per-task}", "set: {affinity: sideways}"),
     r"impossible option .*affinity"),
    ("unknown-option", _mutate("set: {affinity: per-task}", "set: {affinity: per-task, gpus: 2}"),
     r"sweeps\[0\]\.options\.set\.gpus: unknown option 'gpus'; accepted: .*tasks"),
    ("zip-lengths", _mutate("threads: [1, 2]", "threads: [1, 2, 4]"), r"same length"),
    ("duplicate-key", _mutate("    repeats: 1", "    repeats: 1\n    repeats: 2"), r"duplicate key 'repeats'"),
    ("missing-field", _mutate('native:\n      packages: ["lammps==2023', 'native:\n      pkgs: ["lammps==2023'),
     r"variants\.lammps-2023-mpich\.native\.(packages: required|pkgs: unknown)"),
    ("bad-regex",
     _mutate("replace: 'run ${steps}'}", "replace: 'run ${steps}'}\n            - {pattern: '(', replace: x}"),
     r"not a valid regular expression"),
    ("tasks-below-nodes", _mutate("set: {affinity: per-task}", "set: {affinity: per-task, nodes: 3}"),
     r"tasks \(2\) must be at least nodes \(3\)"),
    ("lammps-from-unknown", _mutate("binary_from: lammps-2025-mpich", "binary_from: lammps-1999"),
     r"binary_from names 'lammps-1999', which is not a native variant"),
    ("not-a-mapping", "- just\n- a list\n", r"an experiment file is a mapping"),
    ("negative-timeout", _mutate("timeout: 120", "timeout: -5"), r"sweeps\[0\]\.timeout: .*greater than 0"),
    ("rule-unknown-field", _rules("add: {pmi: simple, colour: blue}"),
     r"launch_rules\[0\]\.add\.colour: unknown field"),
    ("rule-bad-pmi", _rules("add: {pmi: pmix2}"),
     r"launch_rules\[0\]\.add\.pmi: pmi 'pmix2': a comma-separated list of simple, pmi1, pmi2, pmix"),
    ("rule-pmi-off-and-more", _rules("add: {pmi: 'off,simple'}"), r"`off` stands alone"),
    ("rule-adds-nothing", _rules("add: {}"), r"launch_rules\[0\]: .*adds nothing; `add` takes pmi, affinity"),
    ("rule-without-match", _rules("add: {pmi: simple}", match=""), r"launch_rules\[0\]\.match: required field"),
    ("rule-shell-pmi", _rules("add: {shell: {pmi: simple}}"),
     r"shell option 'pmi' has an option of its own: use `pmi`"),
    ("rule-shell-name", _rules("add: {shell: {'--exclusive': ''}}"), r"shell option name '--exclusive' is not"),
    ("rule-bad-env", _rules("add: {env: {'A B': x}}"), r"environment variable name 'A B'"),
    ("rule-duplicate-name", _rules("add: {pmi: simple}\n  - name: r1\n    match: {}\n    add: {pmi: off}"),
     r"launch_rules\[1\]\.name: launch rule 'r1' is already defined \(launch_rules\[0\]\)"),
    ("rule-unknown-app", _rules("add: {pmi: simple}", match="match: {app: [gromacs]}"),
     r"launch_rules\[0\]\.match\.app\[0\]: unknown app 'gromacs'"),
    ("skip-unknown-rule", _rules("add: {pmi: simple}", sweep="set: {affinity: per-task, skip_rules: [r2]}"),
     r"sweeps\[0\]\.options\.set\.skip_rules: skip_rules names 'r2', which is not a launch rule; known: r1"),
    ("option-bad-pmi", _mutate("set: {affinity: per-task}", "set: {affinity: per-task, pmi: slurm}"),
     r"sweeps\[0\]\.options\.set\.pmi: pmi 'slurm'"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_malformed_experiment_exit_2_with_file_line_field(name: str, text: str, expected: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    code = main(["plan", "-e", str(path), "--json", "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(rf"error: {re.escape(str(path))}:\d+", lines[0]), lines[0]
    assert re.search(expected, lines[0]), lines[0]


def test_line_number_points_at_the_field(tmp_path: Path) -> None:
    text = _mutate("    repeats: 1", "    repeats: many")
    line = text.splitlines().index("    repeats: many") + 1
    with pytest.raises(InputError) as err:
        parse_experiment(text, "x.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("x.yaml", line, "sweeps[0].repeats")
    assert str(err.value).startswith(f"x.yaml:{line}: sweeps[0].repeats: ")
    assert "integer" in err.value.detail


def test_cli_exit_code_is_2_for_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", "-e", str(tmp_path / "nope.yaml"), "--store", str(tmp_path / "s.sqlite")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.yaml'}: experiment file not found"
    assert not (tmp_path / "s.sqlite").exists()


def test_a_bad_rule_names_its_line(tmp_path: Path) -> None:
    text = _rules("add: {pmi: pmix2}")
    line = text.splitlines().index("    add: {pmi: pmix2}") + 1
    with pytest.raises(InputError) as err:
        parse_experiment(text, "x.yaml")
    assert (err.value.line, err.value.field) == (line, "launch_rules[0].add.pmi")


def test_the_default_rules_cover_the_three_mpi_families_on_flux() -> None:
    rules = load_experiment(REPO / "experiments" / "lammps.yaml").launch_rules
    flux = [rule for rule in rules if rule.match.cluster == {"launcher": "flux"}]
    covered = {str(value).lower() for rule in flux for value in rule.match.variant.get("mpi.implementation", [])}
    assert {"mpich", "openmpi", "intel-mpi"} <= covered  # the spellings of lammps-matrix's artifacts
    # the others are local-slurm's: srun's PMI plugin, and Charliecloud's namespaces
    assert all(rule in flux or rule.match.cluster in ({"launcher": "srun"}, {"runtime": "charliecloud"})
               for rule in rules)
