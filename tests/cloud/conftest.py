"""Fixtures of the cloud suite: a real moto server on loopback, the AWS front, the fake eksctl, playbook runs.

What is real: moto_server (started once per session, killed at the end), Ansible and its modules, the
roles and playbooks, eksctl's archive being downloaded and checksum-verified. What is faked, because it
cannot run here: eksctl itself (tests/cloud/fake_eksctl.py acts on the emulator instead of AWS), the
throttling and the EC2 vCPU quotas moto lacks (tests/cloud/aws_front.py), and in test_flux_runs.py the
`flux` and `singularity` commands of a MiniCluster pod.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.cloud.aws_front import Front
from tests.cloud.fake_eksctl import package
from tests.conftest import REPO

BIN = Path(sys.executable).parent
REFERENCE = REPO.parent / "shared" / "reference"
HPC_QUOTA = "L-F7808C92"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto_server on a free loopback port for the whole session."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def front_server(moto_url: str) -> Iterator[Front]:
    front = Front(free_port(), moto_url)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    yield front
    front.shutdown()
    front.server_close()


@pytest.fixture
def aws(front_server: Front, moto_url: str) -> Front:
    """The emulator behind its front, emptied before each test; the HPC vCPU quota seeded at 512."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    front_server.config.reset()
    front_server.config.quotas[HPC_QUOTA] = 512
    return front_server


def client(front: Front, service: str, region: str = "us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=front.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@dataclass(frozen=True)
class Eksctl:
    url: str
    checksum: str


@pytest.fixture(scope="session")
def fake_eksctl(tmp_path_factory: pytest.TempPathFactory) -> Eksctl:
    """The fake eksctl packaged as a release archive, as eks_cluster downloads and verifies it."""
    archive, digest = package(tmp_path_factory.mktemp("eksctl-release"))
    return Eksctl(f"file://{archive}", f"sha256:{digest}")


@dataclass
class Played:
    rc: int
    out: str
    state_dir: Path

    def __repr__(self) -> str:  # what an assertion shows: the end of the playbook's output
        return f"rc={self.rc}\n{self.out[-6000:]}"


@pytest.fixture
def playbook(tmp_path: Path, aws: Front):
    """Run `ansible-playbook ARGS` from the repository as a user would, against the emulator.

    The user's own AWS configuration is kept out; credentials are dummies in the environment; the state
    directory (eksctl, kubeconfigs, state files) is the test's own.
    """
    state_dir = tmp_path / "state"

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Played:
        full_env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ANSIBLE_"))}
        full_env.update({
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true", "COMPAT_LAB_STATE_DIR": str(state_dir),
            "FAKE_EKSCTL_LOG": str(tmp_path / "eksctl.log"),
        })
        full_env.update(env or {})
        done = subprocess.run([str(BIN / "ansible-playbook"), *args, "-e", f"eks_cluster_aws_endpoint_url={aws.url}"],
                              cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        return Played(done.returncode, done.stdout + done.stderr, state_dir)

    return run
