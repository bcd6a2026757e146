"""Variant attributes from compspec artifacts in a real OCI registry (docker-registry on 127.0.0.1).

What a user sees: `variants fetch` fills the cache beside the store, `plan` answers from it offline and
gives the plan the typed attributes gave, `variants show` says where each attribute came from, `variants
push` publishes native variants for another site, and each fault is a one-line message with its exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from planner.core import compspec
from planner.core.compspec import ImageRef
from planner.edges import registry
from planner.edges.variant_info import recipe_digest
from tests.conftest import REPO, TINY, planner
from tests.registry.conftest import Registry, push_image, push_like_lammps_matrix, seed_matrix, start_registry
from tests.registry.matrix import MATRIX, artifact_of
from tests.registry.proxy import FaultProxy
from tests.system import needs

LAMMPS = REPO / "experiments" / "lammps.yaml"
DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def no_user_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own Docker config and ORAS variables stay out of these tests."""
    (tmp_path / "docker").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("ORAS_USER", raising=False)
    monkeypatch.delenv("ORAS_PASS", raising=False)
    monkeypatch.delenv("COMPAT_LAB_REGISTRY_MIRRORS", raising=False)


def run(*args: str, store: Path, host: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    mirrors = {"COMPAT_LAB_REGISTRY_MIRRORS": f"ghcr.io={host}"} if host else {}
    return planner(*args, store=store, env={**mirrors, **(env or {})}, timeout=300)


def plan_json(store: Path, cluster: str, experiment: Path = LAMMPS) -> dict:
    done = run("plan", "-e", str(experiment), "--cluster", cluster, "--json", store=store)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _any_sif(command: str) -> str:
    """The command with its image's cache path left out: fetched, it is keyed by the digest the tag names
    (planner.core.launch.sif_path), which typed attributes do not know."""
    return re.sub(r"\S+\.sif\b", "IMAGE.sif", command)


def same_as_typed(plan: dict, cluster: str) -> None:
    typed = json.loads((DATA / f"plan-{cluster}-typed.json").read_text())
    assert [{"id": r["id"], "variant": r["variant"], "command": _any_sif(r["command"])} for r in plan["runs"]] == \
        [{**r, "command": _any_sif(r["command"])} for r in typed["runs"]]
    assert [{k: x[k] for k in ("variant", "options", "reason", "detail")} for x in plan["excluded"]] == \
        typed["excluded"]


def experiment_with(tmp_path: Path, variants: str) -> Path:
    """The default experiment with these container variants (YAML indented under `variants:`) for its 18."""
    text = LAMMPS.read_text()
    start, end = text.index("  # --- container variants"), text.index("\nclusters:\n")
    path = tmp_path / "exp.yaml"
    path.write_text(text[:start] + variants + text[end:])
    return path


def test_fetched_artifacts_give_the_plan_the_typed_attributes_gave(matrix_registry: Registry, tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    done = run("variants", "fetch", "--json", store=store, host=matrix_registry.host)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert len(report["artifacts"]) == 18 and report["downloaded"] == 18
    assert {a["found_by"] for a in report["artifacts"]} == {f"tag {i.split(':')[1]}-compspec" for i in MATRIX}
    assert Path(report["cache"]) == tmp_path / "planner.sqlite.compspec"  # beside the store
    for cluster in ("eks-arm64", "eks-amd64"):
        same_as_typed(plan_json(store, cluster), cluster)
    again = json.loads(run("variants", "fetch", "--json", store=store, host=matrix_registry.host).stdout)
    assert again["downloaded"] == 0  # each digest is pulled once


def test_a_warm_cache_plans_with_the_registry_gone(tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "registry")
    store = tmp_path / "planner.sqlite"
    try:
        seed_matrix(reg.host)
        assert run("variants", "fetch", store=store, host=reg.host).returncode == 0
    finally:
        reg.stop()
    done = run("plan", "--cluster", "eks-arm64", store=store)
    assert done.returncode == 0, done.stderr
    assert "attributes of 18 container variant(s) from compspec artifacts, cached from 20" in done.stdout
    assert "is built for amd64 (amd64), cluster eks-arm64 is arm64" in done.stdout
    same_as_typed(plan_json(store, "eks-arm64"), "eks-arm64")
    # the registry is down: fetch says so, naming it, and what is cached keeps working
    down = run("variants", "fetch", store=store, host=reg.host)
    assert down.returncode == 1
    assert f"registry {reg.host} unreachable" in down.stderr
    assert "cached attributes of 18 variant(s) keep working (cached from 20" in down.stdout
    shown = json.loads(run("variants", "show", "mpich-ubuntu-22.04-arm64", "--json", store=store).stdout)
    assert shown["attributes"]["mpi.version"]["value"] == "4.0"


def test_without_a_cache_container_attributes_are_unknown_and_the_local_loop_still_works(tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    plan = plan_json(store, "eks-arm64")
    assert {v["attributes"] for v in plan["variants"].values()} == {"unknown"}
    amd = [r for r in plan["runs"] if r["variant"] == "mpich-ubuntu-22.04-amd64"]
    assert amd and all("architecture (io.archspec.cpu.target)" in r["unknown"] for r in amd)  # unknown, not ok
    text = run("plan", "--cluster", "eks-arm64", store=store).stdout
    assert "attributes unknown" in text and "python -m planner variants fetch" in text
    state = tmp_path / "state" / "clusters" / "eks-arm64.json"  # a cluster that is up, as the cluster playbook
    state.parent.mkdir(parents=True)                              # leaves it: nothing is run before the refusal
    state.write_text(json.dumps({"name": "eks-arm64", "lead_broker": "pod", "sif_dir": "/tmp/sif"}))
    refused = run("sweep", "--cluster", "eks-arm64", store=store, env={"COMPAT_LAB_STATE_DIR": str(state.parents[1])})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "attributes unknown for intel-mpi-rocky-8-amd64, " in refused.stderr
    assert "run `python -m planner variants fetch` first" in refused.stderr and not store.exists()
    dry = run("sweep", "--dry-run", "--json", store=store)  # the default local loop needs no registry
    assert dry.returncode == 0, dry.stderr
    assert all(r["variant"].startswith("lammps-") for r in json.loads(dry.stdout)["runs"])


def test_show_says_where_each_attribute_came_from_and_typed_ones_override(matrix_registry: Registry,
                                                                          tmp_path: Path) -> None:
    exp = experiment_with(tmp_path, "  mpich-arm:\n    image: docker://ghcr.io/rse-ops/lammps-matrix:"
                                    "mpich-ubuntu-22.04-arm64\n"
                                    "    attributes: {mpi.version: '4.0.2', os.name: '[/] [bold]x'}\n")
    store = tmp_path / "planner.sqlite"
    assert run("variants", "fetch", "-e", str(exp), store=store, host=matrix_registry.host).returncode == 0
    shown = json.loads(run("variants", "show", "mpich-arm", "-e", str(exp), "--json", store=store).stdout)
    digest = shown["artifact"]["digest"]
    assert shown["attributes"]["io.archspec.cpu.target"] == {"value": "arm64", "source": f"artifact {digest[:19]}"}
    assert shown["attributes"]["mpi.version"] == {"value": "4.0.2", "source": "experiment",
                                                  "overrides": {"value": "4.0", "source": f"artifact {digest[:19]}"}}
    text = run("variants", "show", "-e", str(exp), store=store).stdout
    assert "mpi.version = 4.0.2  <- experiment (overrides 4.0 from artifact sha256:" in text
    assert "os.name = [/] [bold]x  <- experiment (overrides Ubuntu 22.04.3 LTS from" in text  # data, not markup
    plan = run("plan", "-e", str(exp), "--cluster", "eks-arm64", store=store).stdout
    assert "mpich-arm: mpi.version, os.name typed in the experiment, overriding the artifact" in plan


def test_artifacts_that_are_not_compspec_or_corrupt_are_one_line_errors(own_registry: Registry,
                                                                         tmp_path: Path) -> None:
    client = registry.Client(own_registry.host)
    bad_kind = push_like_lammps_matrix(client, ImageRef(own_registry.host, "faults/a", "x"),
                                       b'{"kind": "Recipe", "version": "1", "compatibilities": []}')
    push_like_lammps_matrix(client, ImageRef(own_registry.host, "faults/b", "x"), b"{}", "application/vnd.other")
    corrupt = push_like_lammps_matrix(client, ImageRef(own_registry.host, "faults/c", "x"),
                                      artifact_of(next(iter(MATRIX))))
    blob = own_registry.storage / "docker/registry/v2/blobs/sha256" / corrupt[7:9] / corrupt[7:] / "data"
    blob.write_bytes(blob.read_bytes().replace(b"arm64", b"amd64"))  # same size, other content
    store = tmp_path / "planner.sqlite"
    for repo, expected in (("a", f"artifact {bad_kind}: not a compspec CompatibilitySpec: kind"),
                           ("b", "not a compspec artifact (artifactType application/vnd.other"),
                           ("c", f"artifact {corrupt}: content does not match its digest")):
        exp = experiment_with(tmp_path, f"  bad:\n    image: docker://ghcr.io/faults/{repo}:x\n")
        done = run("variants", "fetch", "-e", str(exp), store=store, host=own_registry.host)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
        assert "ghcr.io/faults/" in done.stderr or f"{own_registry.host}/faults/" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_missing_artifact_is_reported_and_planned_as_unknown(matrix_registry: Registry, tmp_path: Path) -> None:
    exp = experiment_with(tmp_path, "  ghost:\n    image: docker://ghcr.io/rse-ops/lammps-matrix:no-such-tag\n")
    store = tmp_path / "planner.sqlite"
    done = run("variants", "fetch", "-e", str(exp), store=store, host=matrix_registry.host)
    assert done.returncode == 1
    assert "ghost: no compspec artifact for docker://ghcr.io/rse-ops/lammps-matrix:no-such-tag" in done.stderr
    assert "no-such-tag-compspec" in done.stderr
    plan = plan_json(store, "eks-arm64", exp)
    assert plan["variants"]["ghost"] == {"attributes": "unknown"}
    assert {tuple(r["unknown"]) for r in plan["runs"] if r["variant"] == "ghost"} == {
        ("architecture (io.archspec.cpu.target)", "gpu (hardware.gpu.available)", "packages (lammps.packages)")}


def test_a_moved_tag_is_fetched_again_and_the_plan_says_what_changed(own_registry: Registry, tmp_path: Path) -> None:
    client = registry.Client(own_registry.host)
    image = "ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
    ref = ImageRef(own_registry.host, "rse-ops/lammps-matrix", "mpich-ubuntu-22.04-arm64")
    push_image(client, ref, "arm64")
    first = push_like_lammps_matrix(client, ref, artifact_of(image))
    exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{image}\n")
    store = tmp_path / "planner.sqlite"
    assert run("variants", "fetch", "-e", str(exp), store=store, host=own_registry.host).returncode == 0
    moved = push_like_lammps_matrix(client, ref, compspec.generate("lammps-prototype",
                                                                   {**MATRIX[image], "mpi.version": "4.1"}))
    done = run("variants", "fetch", "-e", str(exp), store=store, host=own_registry.host)
    assert done.returncode == 0
    assert f"attributes changed (artifact {first[:19]} -> {moved[:19]}): mpi.version 4.0 -> 4.1" in done.stdout
    plan = run("plan", "-e", str(exp), "--cluster", "eks-arm64", store=store).stdout
    assert f"attributes changed: mpich-arm: artifact {first[:19]} -> {moved[:19]}: mpi.version 4.0 -> 4.1" in plan
    assert plan_json(store, "eks-arm64", exp)["variants"]["mpich-arm"]["changes"] == ["mpi.version 4.0 -> 4.1"]


@pytest.mark.parametrize(("status", "failures", "code"), [(503, 2, 0), (429, None, 1), (500, None, 1)])
def test_throttling_and_server_errors_are_retried_then_reported(matrix_registry: Registry, tmp_path: Path,
                                                                status: int, failures: int | None, code: int) -> None:
    exp = experiment_with(tmp_path, "  mpich-arm:\n    image: docker://ghcr.io/rse-ops/lammps-matrix:"
                                    "mpich-ubuntu-22.04-arm64\n")
    store = tmp_path / "planner.sqlite"
    with FaultProxy(matrix_registry.host, status, failures) as proxy:
        done = run("variants", "fetch", "-e", str(exp), store=store, host=proxy.host)
    assert done.returncode == code, done.stdout + done.stderr
    if code == 0:
        assert "fetched 1 compspec artifact(s)" in done.stdout  # two 503s, then retried through
    else:
        assert f"registry {proxy.host} answered {status} " in done.stderr and "4 times" in done.stderr
        assert proxy.seen == 4  # bounded: four attempts, then the message


def test_basic_auth_credentials_come_from_the_docker_config_and_are_never_shown(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-Pa55-not-to-be-seen"
    htpasswd = tmp_path / "htpasswd"
    needs("htpasswd")
    subprocess.run(["htpasswd", "-B", "-i", "-c", str(htpasswd), "lab"], input=secret, text=True, check=True,
                   capture_output=True)
    reg = start_registry(tmp_path / "registry", htpasswd=htpasswd)
    try:
        monkeypatch.setenv("ORAS_USER", "lab")
        monkeypatch.setenv("ORAS_PASS", secret)
        client = registry.Client(reg.host)
        image = "ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
        push_like_lammps_matrix(client, ImageRef(reg.host, "rse-ops/lammps-matrix", "mpich-ubuntu-22.04-arm64"),
                                artifact_of(image))
        monkeypatch.delenv("ORAS_USER")
        monkeypatch.delenv("ORAS_PASS")
        exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{image}\n")
        store = tmp_path / "results" / "planner.sqlite"
        anonymous = run("variants", "fetch", "-e", str(exp), store=store, host=reg.host)
        assert anonymous.returncode == 1
        assert f"registry {reg.host} asks for credentials" in anonymous.stderr
        config = tmp_path / "docker" / "config.json"
        config.write_text(json.dumps({"auths": {reg.host: {"auth": oras_auth("lab", "wrong")}}}))
        wrong = run("variants", "fetch", "-e", str(exp), store=store, host=reg.host)
        assert wrong.returncode == 1 and f"registry {reg.host} refused the credentials" in wrong.stderr
        config.write_text(json.dumps({"auths": {reg.host: {"auth": oras_auth("lab", secret)}}}))
        done = run("variants", "fetch", "-e", str(exp), store=store, host=reg.host)
        assert done.returncode == 0, done.stdout + done.stderr
        shown = run("variants", "show", "-e", str(exp), store=store)
        seen = [anonymous, wrong, done, shown]
        plan = run("plan", "-e", str(exp), "--cluster", "eks-arm64", store=store)
        seen.append(plan)
    finally:
        reg.stop()
    encoded = oras_auth("lab", secret)
    for proc in seen:
        assert secret not in proc.stdout + proc.stderr and encoded not in proc.stdout + proc.stderr
    for path in (tmp_path / "results").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes() and encoded.encode() not in path.read_bytes(), path


def oras_auth(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_native_variants_are_pushed_and_fetched_back_by_another_site(matrix_registry: Registry,
                                                                     tmp_path: Path) -> None:
    from planner.core.experiment import load_experiment

    cache = tmp_path / "cache"
    exp = load_experiment(LAMMPS)
    for name, mpi, version in (("lammps-2025-mpich", "mpich", "5.0.2"), ("lammps-2023-mpich", "mpich", "3.0.4")):
        prefix = cache / "variants" / name
        prefix.mkdir(parents=True)
        (prefix / "facts.json").write_text(json.dumps({
            "recipe": recipe_digest(exp, name), "arch": "x86_64", "lammps_version": "20250722",
            "lammps_packages": ["KSPACE", "MOLECULE", "REAXFF"], "mpi_implementation": mpi, "mpi_version": version,
            "os_vendor": "debian", "os_version": "12", "os_name": "Debian GNU/Linux 12 (bookworm)"}))
    env = {"COMPAT_LAB_CACHE": str(cache)}
    site = ImageRef(matrix_registry.host, "site-a/lammps", "lammps-2025-mpich")
    subject = push_image(registry.Client(matrix_registry.host), site, "amd64")  # an image for one of them
    store = tmp_path / "a" / "planner.sqlite"
    pushed = run("variants", "push", "--registry", f"{matrix_registry.host}/site-a/lammps",
                 "--variant", "lammps-2025-mpich", "--variant", "lammps-2023-mpich", store=store, env=env)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert f"pushed lammps-2025-mpich -> {matrix_registry.host}/site-a/lammps:lammps-2025-mpich-compspec" in \
        pushed.stdout and f"subject {subject[:19]}" in pushed.stdout
    here = json.loads(run("variants", "show", "--json", store=store, env=env).stdout)
    # another site declares them by URI and fetches them back
    other = experiment_with(tmp_path, "".join(
        f"  remote-{n}:\n    image: docker://{matrix_registry.host}/site-a/lammps:lammps-{n}-mpich\n"
        for n in ("2025", "2023")))
    store_b = tmp_path / "b" / "planner.sqlite"
    fetched = json.loads(run("variants", "fetch", "-e", str(other), "--json", store=store_b).stdout)
    found = {a["image"].rsplit(":", 1)[1]: a["found_by"] for a in fetched["artifacts"]}
    assert found == {"lammps-2025-mpich": f"referrers tag {compspec.referrers_tag(subject)}",
                     "lammps-2023-mpich": "tag lammps-2023-mpich-compspec"}
    there = {v["name"]: v for v in json.loads(run("variants", "show", "-e", str(other), "--json",
                                                   store=store_b).stdout)}
    for year in ("2025", "2023"):
        mine = {k: a["value"] for k, a in next(v for v in here if v["name"] == f"lammps-{year}-mpich")[
            "attributes"].items()}
        theirs = {k: a["value"] for k, a in there[f"remote-{year}"]["attributes"].items()}
        assert theirs == mine and theirs["lammps.packages"] == "KSPACE MOLECULE REAXFF"
        assert all(a["source"].startswith("artifact sha256:") for a in there[f"remote-{year}"]["attributes"].values())


def test_import_matrix_adds_every_image_once(tmp_path: Path) -> None:
    manifest = tmp_path / "manifests.yaml"
    manifest.write_text("# image URI -> artifact URI\nimages:\n" + "".join(
        f"  - name: {image}\n    artifact: {image}-compspec\n" for image in MATRIX))
    exp = tmp_path / "exp.yaml"
    exp.write_text(TINY.read_text())
    store = tmp_path / "planner.sqlite"
    done = run("variants", "import-matrix", str(manifest), "-e", str(exp), store=store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{exp}: added 18 variant(s), 0 already declared")
    text = exp.read_text()
    assert TINY.read_text().splitlines()[0] in text  # comments kept
    assert "  mpich-ubuntu-22.04-arm64:\n    image: docker://ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64" \
        in text
    again = run("variants", "import-matrix", str(manifest), "-e", str(exp), store=store)
    assert again.stdout.startswith(f"{exp}: added 0 variant(s), 18 already declared") and exp.read_text() == text
    shown = json.loads(run("variants", "show", "mpich-ubuntu-22.04-arm64", "-e", str(exp), "--json",
                           store=store).stdout)
    assert shown["image"] == "docker://ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
    assert shown["known"] is False and shown["attributes"] == {}  # until fetched
    clash = tmp_path / "clash.yaml"
    clash.write_text("images:\n  - name: ghcr.io/other/lammps:mpich-ubuntu-22.04-arm64\n")
    refused = run("variants", "import-matrix", str(clash), "-e", str(exp), store=store)
    assert refused.returncode == 2 and exp.read_text() == text
    assert refused.stderr.startswith(f"error: {exp}:") and "already exists with another image" in refused.stderr
