"""A stand-in for `kubectl exec`, the one kubectl command the `kubernetes.core.kubectl` connection plugin runs.

Why a stand-in: there are no containers here to exec into. The connection plugin (real, unchanged) runs
`kubectl [--kubeconfig K] [--context C] [-n NS] exec -i POD [-c CONTAINER] -- /bin/sh -c CMD`; this
does what kubectl and the kubelet do to what a test can observe:

- it asks the API server of the kubeconfig (the loopback stand-in, tests/cloud/kube_api.py, with the
  kubeconfig's bearer token) for the pod, and refuses as kubectl does a pod that does not exist, a
  container the pod lacks and a pod that is not running; a server that is not on loopback is refused
  before any connection (no test touches another address);
- it runs the command in the pod's own directory (the pod's `stand-in.compat-lab/directory` annotation)
  with the pod's environment, not the caller's. A pod has a file system of its own: the pod-local
  trees `/tmp` and `/mnt` named in the command are that directory's `tmp` and `mnt`, and paths under the
  directory are shown as the pod sees them in what the command prints. Everything else (the fake `flux`,
  `singularity` and `lmp` the pod's Flux environment script puts on PATH) is the host's.

`install(directory)` writes it there as an executable named `kubectl`, with this interpreter.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

POD_DIRECTORY = "stand-in.compat-lab/directory"  # tests/cloud/kube_api.py sets it on each pod
POD_PATH = re.compile(r"(?<![\w.~/-])/(tmp|mnt)(?=/|\b)")
POD_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def parse(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """kubectl's global flags and exec's (`-n`, `-c`, `-i`) before `--`, then the command."""
    flags: dict[str, str] = {}
    words: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return flags | {"_words": " ".join(words)}, rest
        if arg in {"-i", "--stdin", "-t", "--tty"}:
            continue
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            flags[key] = value
        elif arg.startswith("-"):
            flags[{"n": "namespace", "c": "container"}.get(arg.lstrip("-"), arg.lstrip("-"))] = rest.pop(0)
        else:
            words.append(arg)
    return flags | {"_words": " ".join(words)}, []


def server_of(kubeconfig: Path, context: str | None) -> tuple[str, str | None, str | None]:
    """(server URL, bearer token, default namespace) of the kubeconfig's context."""
    config = yaml.safe_load(kubeconfig.read_text())
    name = context or config.get("current-context")
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next((u["user"] for u in config.get("users", []) if u["name"] == ctx.get("user")), {})
    return cluster["server"], user.get("token"), ctx.get("namespace")


def main(args: list[str]) -> int:
    flags, command = parse(args)
    words = flags.pop("_words").split()
    if words[:1] != ["exec"] or len(words) != 2 or not command:
        return fail(f"the stand-in kubectl runs only `exec POD -- COMMAND`, not `kubectl {' '.join(args)}`")
    pod_name = words[1]
    kubeconfig = Path(flags.get("kubeconfig") or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    try:
        server, token, default_namespace = server_of(kubeconfig, flags.get("context"))
    except (OSError, StopIteration, KeyError, TypeError, yaml.YAMLError) as err:
        return fail(f"error: invalid configuration: {kubeconfig}: {err}")
    host = urllib.parse.urlsplit(server).hostname or ""
    if host != "localhost" and not (host.replace(".", "").isdigit() and ipaddress.ip_address(host).is_loopback):
        return fail(f"the stand-in kubectl reaches only a loopback API server, not {server}")
    namespace = flags.get("namespace") or default_namespace or "default"
    request = urllib.request.Request(f"{server}/api/v1/namespaces/{namespace}/pods/{pod_name}",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            pod = json.load(response)
    except urllib.error.HTTPError as err:
        status = json.load(err)
        return fail(f"Error from server ({status.get('reason')}): {status.get('message')}")
    except urllib.error.URLError as err:
        return fail(f"The connection to the server {server.split('://')[-1]} was refused - did you specify the "
                    f"right host or port? ({err.reason})")
    containers = [c["name"] for c in pod["spec"]["containers"]]
    container = flags.get("container") or containers[0]
    if container not in containers:
        return fail(f"error: unable to upgrade connection: container {container} not found in pod {pod_name}")
    if pod.get("status", {}).get("phase") != "Running":
        return fail(f"error: unable to upgrade connection: pod {pod_name} is not running")
    directory = Path(pod["metadata"]["annotations"][POD_DIRECTORY])
    inside = [POD_PATH.sub(lambda m: f"{directory}/{m.group(1)}", arg) for arg in command]
    done = subprocess.run(inside, cwd=directory, env={**POD_ENV, "HOME": str(directory / "root")},
                          stdin=sys.stdin.buffer, capture_output=True, check=False)
    root = str(directory).encode()
    for stream, data in ((sys.stdout, done.stdout), (sys.stderr, done.stderr)):
        stream.buffer.write(data.replace(root + b"/", b"/").replace(root, b"/"))
    return done.returncode


def install(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kubectl"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
