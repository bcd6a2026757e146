"""Issue 19: a registry is untrusted input. `variants fetch` against a hostile registry on 127.0.0.1
(tests/registry/hostile.py): digests are checked before they become a URL or a file name, every answer is
read up to a size cap within a total timeout, every malformed answer is one line and exit 1 or 2 (never a
traceback), credentials go only to the host they were given for, and what reaches the terminal has no
control characters. Each case fails on the code before this change (a traceback, a hang, a huge read, a
path or a request made of what the registry said, credentials sent to another host)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path

import pytest

from planner.core import compspec
from planner.core.compspec import ARTIFACT_TYPE
from planner.edges import registry
from tests.registry.hostile import Answer, HostileRegistry, endless, slowly
from tests.registry.matrix import MATRIX, artifact_of
from tests.registry.test_registry import experiment_with, no_user_credentials, run  # noqa: F401 (a fixture)

IMAGE = "ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
REPO = "/v2/rse-ops/lammps-matrix"
ARTIFACT_TAG = f"{REPO}/manifests/mpich-ubuntu-22.04-arm64-compspec"
JSON = {"Content-Type": registry.OCI_MANIFEST}


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _artifact_manifest(layer_digest: object, size: int = 10) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
                       "config": registry.EMPTY_CONFIG,
                       "layers": [{"mediaType": ARTIFACT_TYPE, "digest": layer_digest, "size": size}]}).encode()


def _good(data: bytes) -> dict[str, Answer]:
    """The routes of a registry that serves `data` as the image's artifact, by the tag convention."""
    return {ARTIFACT_TAG: Answer(200, JSON, _artifact_manifest(_digest(data), len(data))),
            f"{REPO}/blobs/{_digest(data)}": Answer(200, {"Content-Type": ARTIFACT_TYPE}, data)}


def _fetch(tmp_path: Path, host: str, env: dict[str, str] | None = None):
    exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{IMAGE}\n")
    return run("variants", "fetch", "-e", str(exp), store=tmp_path / "planner.sqlite", host=host, env=env)


def _one_line(done) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


DEEP = b"[" * 100_000 + b"]" * 100_000
BAD_CHUNKS = b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"

CASES = {
    # a digest that would be a path (`..`) or no string at all: refused before any use
    "digest-traversal": ({ARTIFACT_TAG: Answer(200, JSON, _artifact_manifest("sha256:../../x"))}, 2,
                         "the artifact's layer digest 'sha256:../../x' is not a digest"),
    "digest-not-a-string": ({ARTIFACT_TAG: Answer(200, JSON, _artifact_manifest(5))}, 2,
                            "the artifact's layer digest 5 is not a digest"),
    "digest-short": ({ARTIFACT_TAG: Answer(200, JSON, _artifact_manifest("sha256:abc"))}, 2,
                     "'sha256:abc' is not a digest"),
    "manifest-a-list": ({ARTIFACT_TAG: Answer(200, JSON, b"[]")}, 1, "is not a JSON object"),
    "manifest-deep": ({ARTIFACT_TAG: Answer(200, JSON, DEEP)}, 1, "is not JSON this reads (RecursionError)"),
    "manifest-not-utf8": ({ARTIFACT_TAG: Answer(200, JSON, b"\xff\xfe{")}, 1, "is not JSON this reads"),
    "layers-not-a-list": ({ARTIFACT_TAG: Answer(200, JSON, json.dumps(
        {"artifactType": ARTIFACT_TYPE, "config": [], "layers": {"a": 1}}).encode())}, 2,
        "has 0 layers of type"),
    "redirect-loop": ({ARTIFACT_TAG: Answer(302, {"Location": ARTIFACT_TAG, "Content-Length": "0"})}, 1,
                      "redirected GET /v2/rse-ops/lammps-matrix/manifests/mpich-ubuntu-22.04-arm64-compspec more "
                      "than 5 times"),
    "bad-gzip": ({ARTIFACT_TAG: Answer(200, {**JSON, "Content-Encoding": "gzip"}, b"not gzip at all")}, 1,
                 "that cannot be read (ContentDecodingError)"),
    "bad-chunking": ({ARTIFACT_TAG: Answer(200, raw=BAD_CHUNKS)}, 1, "that cannot be read (ChunkedEncodingError)"),
    "gzip-bomb": ({ARTIFACT_TAG: Answer(200, {**JSON, "Content-Encoding": "gzip"},
                                        gzip.compress(b" " * (64 << 20)))}, 1, "with more than 4194304 bytes"),
    "huge-declared": ({ARTIFACT_TAG: Answer(200, {**JSON, "Content-Length": str(800 << 20)},
                                            endless(b" " * 65536, 800 << 20))}, 1, "with more than 4194304 bytes"),
    "huge-undeclared": ({ARTIFACT_TAG: Answer(200, JSON, endless(b" " * 65536, 64 << 20))}, 1,
                        "with more than 4194304 bytes"),
    "blob-not-its-digest": ({ARTIFACT_TAG: Answer(200, JSON, _artifact_manifest(_digest(b"other"))),
                             f"{REPO}/blobs/{_digest(b'other')}": Answer(200, {}, b"something else")}, 2,
                            "content does not match its digest"),
    "token-realm-garbage": ({ARTIFACT_TAG: Answer(401, {"Www-Authenticate": 'Bearer realm="http://127.0.0.1:1/t"',
                                                        "Content-Length": "0"})}, 1, "token realm"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_answer_is_one_line_and_exit_1_or_2(case: str, tmp_path: Path) -> None:
    routes, code, message = CASES[case]
    with HostileRegistry(routes) as hostile:
        done = _fetch(tmp_path, hostile.host)
    assert done.returncode == code, done.stdout + done.stderr
    assert message in _one_line(done)
    assert hostile.sent < 16 << 20  # nothing huge was read
    assert not any("/blobs/" in seen.path for seen in hostile.seen if "blob" not in case)
    assert not list(tmp_path.rglob("x.json"))


def test_a_registry_sending_one_byte_every_second_is_left_after_the_total_timeout(tmp_path: Path) -> None:
    body = _artifact_manifest(_digest(b"x"))
    with HostileRegistry({ARTIFACT_TAG: Answer(200, {**JSON, "Content-Length": str(len(body))},
                                               slowly(body, 1.0))}) as hostile:
        started = time.monotonic()
        done = _fetch(tmp_path, hostile.host, env={registry.TOTAL_TIMEOUT_ENV: "3"})
        seconds = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert "timed out: GET /v2/rse-ops/lammps-matrix/manifests/mpich-ubuntu-22.04-arm64-compspec took longer than 3 s" \
        in _one_line(done)
    assert seconds < 30


def test_control_characters_never_reach_the_terminal(tmp_path: Path) -> None:
    attributes = {**MATRIX[IMAGE], "mpi.implementation": "mpich\x1b]0;owned\x07\x1b[2J", "os.name": "x\ry\x9b31m"}
    data = compspec.generate("lammps-prototype", attributes)
    with HostileRegistry(_good(data)) as hostile:
        done = _fetch(tmp_path, hostile.host)
        assert done.returncode == 0, done.stdout + done.stderr
    exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{IMAGE}\n")
    shown = run("variants", "show", "-e", str(exp), store=tmp_path / "planner.sqlite")
    assert shown.returncode == 0 and "mpi.implementation = mpich]0;owned[2J" in shown.stdout
    for text in (done.stdout, done.stderr, shown.stdout, shown.stderr):
        assert not any((ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0 for c in text), repr(text)


def _token_flow(realm: HostileRegistry, data: bytes) -> dict[str, Answer]:
    """A registry that wants a Bearer token from `realm` (another host), then serves the artifact."""
    challenge = {"Www-Authenticate": f'Bearer realm="http://{realm.host}/token",service="registry",'
                                     'scope="repository:rse-ops/lammps-matrix:pull"', "Content-Length": "0"}
    return {path: Answer(401, challenge) for path in _good(data)}


@pytest.mark.parametrize("named", [False, True])
def test_credentials_never_go_to_a_token_realm_on_another_host(tmp_path: Path, named: bool) -> None:
    data = artifact_of(IMAGE)
    with HostileRegistry({"/token": Answer(200, {"Content-Type": "application/json"}, b'{"token": "t0k"}')}) as realm, \
            HostileRegistry() as hostile:
        hostile.routes.update(_token_flow(realm, data))
        env = {"ORAS_USER": "lab", "ORAS_PASS": "s3cret", **({"ORAS_REGISTRY": hostile.host} if named else {})}
        done = _fetch(tmp_path, hostile.host, env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # the stand-in registry never accepts the token
    assert realm.seen and all("Authorization" not in seen.headers for seen in realm.seen)
    sent = [seen.headers.get("Authorization", "") for seen in hostile.seen]
    assert not any(value.startswith("Basic") for value in sent)
    assert "Bearer t0k" in sent  # the anonymous token was used where it was asked for


def test_oras_credentials_go_only_to_the_registry_oras_registry_names(tmp_path: Path) -> None:
    data = artifact_of(IMAGE)
    basic = {"Www-Authenticate": 'Basic realm="hostile"', "Content-Length": "0"}
    with HostileRegistry({path: Answer(401, basic) for path in _good(data)}) as hostile:
        elsewhere = _fetch(tmp_path, hostile.host, env={"ORAS_USER": "lab", "ORAS_PASS": "s3cret",
                                                        "ORAS_REGISTRY": "registry.example.org"})
        unnamed = _fetch(tmp_path, hostile.host, env={"ORAS_USER": "lab", "ORAS_PASS": "s3cret"})
    for done in (elsewhere, unnamed):
        assert done.returncode == 1 and f"registry {hostile.host} asks for credentials" in _one_line(done)
    assert not any("Authorization" in seen.headers for seen in hostile.seen)


def test_a_damaged_cache_index_naming_a_path_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    index = tmp_path / "planner.sqlite.compspec" / "index.json"
    index.parent.mkdir()
    index.write_text(json.dumps({"images": {f"docker://{IMAGE}": {
        "image": f"docker://{IMAGE}", "digest": "sha256:../../../etc/passwd", "registry": "ghcr.io",
        "found_by": "tag", "fetched": "2026-01-01 00:00:00 UTC"}}}))
    exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{IMAGE}\n")
    done = run("plan", "-e", str(exp), "--cluster", "eks-arm64", store=store)
    assert done.returncode == 2 and "the artifact cache index is damaged" in _one_line(done)
