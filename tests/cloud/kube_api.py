"""A stand-in for an EKS cluster's Kubernetes API server, on loopback, with a stand-in Flux Operator.

Why a stand-in: Kubernetes cannot run here (no container runtime, no kubelet, no network), and the
playbooks' Kubernetes steps (roles/flux_operator, roles/minicluster) must still be executed by a test.
This server speaks the parts of the Kubernetes REST API those steps use, through the real `kubernetes`
client and the real `kubernetes.core` modules:

- discovery (/version, /api, /apis, /api/v1, /apis/<group>/<version>), where a CustomResourceDefinition
  adds its group only once it is created, as on a real API server;
- objects of the built-in kinds the Flux Operator's manifest holds (namespaces, service accounts,
  config maps, services, RBAC, deployments, CRDs) and pods: create, get, list by label selector,
  replace, delete (a namespace takes its objects with it, an owner its dependents), and patch as
  `kubernetes.core.k8s` sends it: JSON merge patch (its client-side apply) and server-side apply;
- refusals a real API server makes: a namespaced object in a namespace that does not exist (404), an
  object that exists (409), a kind or apiVersion that does not match the URL (400), a server-side apply
  without a field manager (400), a request without the kubeconfig's bearer token (401), and a custom
  object that its CRD's openAPIV3Schema refuses (422 Invalid, validated with jsonschema against the
  CRD as it was applied: the vendored upstream one in the tests);
- controllers: a Deployment becomes Available one tick after it is created or changed; the stand-in
  Flux Operator, once its controller Deployment is Available, gives each MiniCluster `size` pods named
  `<name>-<index>-<5 random characters>` and labelled `job-name=<name>` (its indexed Job's), Pending first
  and Running and Ready once its image is "pulled": `pull_seconds` after it was created (a kubelet keeps a
  pod Pending, its container waiting in ContainerCreating, while it pulls the images: Kubernetes' pod
  lifecycle, "Pending ... includes time ... downloading container images over the network"). A pod's
  /dev/shm is what a container runtime gives, 64 MiB (containerd's CRI and Docker's default shm size),
  unless the MiniCluster's container declares the memory-backed volume there (`volumes: {<name>: {emptyDir:
  true, emptyDirMedium: memory, path: /dev/shm, emptyDirSizeLimit: ...}}`, flux-operator PR 226): then its
  size limit. The pod's `stand-in.compat-lab/shm-mib` annotation says which, and the stand-in `lmp`
  (tests/cloud/fake_flux.py) fails like MPICH when its ranks do not fit. Each pod gets a directory of its
  own (`pods_root/<ns>/<pod>`);
  `on_pod(directory, minicluster, index)` fills it (the tests write the operator's Flux environment
  script there, pointing at tests/cloud/fake_flux.py), and tests/cloud/fake_kubectl.py runs `kubectl exec`
  commands in it.

What it does not do, and the tests do not rely on: watches, pruning of unknown fields, strategic merge
of lists (a strategic merge patch is applied as a JSON merge patch), admission, quotas, scheduling.

`python kube_api.py --port N --pods-root DIR` serves it on its own (for a look with kubectl).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import random
import re
import string
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: the Flux Operator's controller, as its manifest names it (roles/flux_operator defaults)
OPERATOR = ("operator-system", "operator-controller-manager")
MINICLUSTER = ("flux-framework.org", "miniclusters")
#: the annotation naming a pod's directory, where the stand-in kubectl runs what is exec'd in the pod
POD_DIRECTORY = "stand-in.compat-lab/directory"
#: the annotation giving a pod's /dev/shm size in MiB (see shm_mib)
POD_SHM = "stand-in.compat-lab/shm-mib"
#: a container's /dev/shm without a volume there: containerd's CRI and Docker default to 64 MiB
RUNTIME_SHM_MIB = 64
MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
TICK = 0.2  # seconds between two passes of the controllers
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    schema: dict | None = None  # a custom resource's openAPIV3Schema

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource_name(self) -> str:
        """How the API server names the resource in its messages: `pods`, `miniclusters.flux-framework.org`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def describe(self) -> dict[str, Any]:
        return {"name": self.plural, "singularName": self.kind.lower(), "namespaced": self.namespaced,
                "kind": self.kind, "verbs": ["create", "delete", "get", "list", "patch", "update"]}


BUILT_IN = [
    Kind("", "v1", "namespaces", "Namespace", False),
    Kind("", "v1", "pods", "Pod", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True),
    Kind("", "v1", "configmaps", "ConfigMap", True),
    Kind("", "v1", "services", "Service", True),
    Kind("apps", "v1", "deployments", "Deployment", True),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selected(labels: dict[str, str], selector: str) -> bool:
    """Equality- and existence-based label selectors (`a=b,c!=d,e,!f`)."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def shm_mib(minicluster: dict) -> int:
    """The /dev/shm (MiB) of a MiniCluster's pods: the runtime's 64 MiB, or the memory-backed volume declared
    there (an emptyDir of medium memory at /dev/shm; no size limit is the pod's memory, taken as plenty)."""
    for container in minicluster["spec"].get("containers", []):
        for volume in (container.get("volumes") or {}).values():
            if volume.get("path") == "/dev/shm" and volume.get("emptyDir") \
                    and str(volume.get("emptyDirMedium", "")).lower() == "memory":
                limit = str(volume.get("emptyDirSizeLimit") or "")
                match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?", limit)
                if not match:
                    return 1 << 20
                return int(match.group(1)) * MEMORY_UNITS.get(match.group(2) or "", 1) // 2**20
    return RUNTIME_SHM_MIB


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Cluster:
    """The objects, keyed by (group, plural, namespace, name), and the controllers acting on them."""

    pods_root: Path
    on_pod: Callable[[Path, dict, int], None] = lambda directory, minicluster, index: None
    token: str | None = None
    objects: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    version: int = 0
    rolling_out: dict[str, int] = field(default_factory=dict)  # deployment uid -> generation being rolled out
    pull_seconds: float = 0.0  # how long a MiniCluster pod's image pull keeps it Pending
    pulling: dict[str, float] = field(default_factory=dict)  # pod uid -> when its pull ends (monotonic)

    # --- kinds ----------------------------------------------------------------------------------
    def kinds(self) -> list[Kind]:
        custom = []
        for crd in self.list_of("apiextensions.k8s.io", "customresourcedefinitions"):
            spec = crd["spec"]
            for version in spec.get("versions", []):
                if version.get("served", True):
                    custom.append(Kind(spec["group"], version["name"], spec["names"]["plural"], spec["names"]["kind"],
                                       spec.get("scope") == "Namespaced",
                                       version.get("schema", {}).get("openAPIV3Schema")))
        return BUILT_IN + custom

    def kind(self, group: str, version: str, plural: str) -> Kind:
        for kind in self.kinds():
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def list_of(self, group: str, plural: str, namespace: str | None = None) -> list[dict]:
        return [obj for (g, p, ns, _), obj in sorted(self.objects.items())
                if (g, p) == (group, plural) and (namespace is None or ns == namespace)]

    # --- objects --------------------------------------------------------------------------------
    def _bump(self, obj: dict) -> dict:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def validate(self, kind: Kind, obj: dict, namespace: str, name: str | None) -> None:
        if obj.get("apiVersion") != kind.api_version or obj.get("kind") != kind.kind:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) and kind "
                                              f"({obj.get('kind')}) do not match {kind.api_version} {kind.kind}")
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise ApiError(422, "Invalid", f"{kind.kind} is invalid: metadata.name: Required value: name is required")
        pattern = DNS_LABEL if kind.plural in {"namespaces", "pods", "services"} else DNS_SUBDOMAIN
        if not pattern.match(meta["name"]):
            raise ApiError(422, "Invalid", f'{kind.kind} "{meta["name"]}" is invalid: metadata.name: Invalid value')
        if name is not None and meta["name"] != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta['name']}) does not match the name "
                                              f"on the URL ({name})")
        if kind.namespaced and meta.get("namespace", namespace) != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        if kind.namespaced and ("", "namespaces", "", namespace) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        if kind.schema is not None:
            errors = sorted(jsonschema.Draft7Validator(kind.schema).iter_errors(obj), key=lambda e: str(list(e.path)))
            if errors:
                causes = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
                raise ApiError(422, "Invalid", f'{kind.kind}.{kind.group} "{meta["name"]}" is invalid: {causes}')

    def create(self, kind: Kind, namespace: str, obj: dict) -> dict:
        with self.lock:
            self.validate(kind, obj, namespace, None)
            key = (kind.group, kind.plural, namespace if kind.namespaced else "", obj["metadata"]["name"])
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{kind.resource_name} "{key[3]}" already exists')
            obj = copy.deepcopy(obj)
            meta = obj["metadata"]
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
            if kind.namespaced:
                meta["namespace"] = namespace
            self.objects[key] = self._bump(obj)
            return copy.deepcopy(obj)

    def get(self, kind: Kind, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.objects.get((kind.group, kind.plural, namespace if kind.namespaced else "", name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{kind.resource_name} "{name}" not found')
            return copy.deepcopy(obj)

    def update(self, kind: Kind, namespace: str, name: str, new: dict, *, create: bool = False) -> dict:
        with self.lock:
            try:
                old = self.get(kind, namespace, name)
            except ApiError:
                if create:
                    return self.create(kind, namespace, new)
                raise
            # what the server owns stays the server's
            new = copy.deepcopy(new)
            new.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "generation", "namespace"):
                if key in old["metadata"]:
                    new["metadata"][key] = old["metadata"][key]
            if "status" in old and "status" not in new:
                new["status"] = old["status"]
            self.validate(kind, new, namespace, name)
            if {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
                    {k: v for k, v in old.items() if k not in ("metadata", "status")}:
                new["metadata"]["generation"] = old["metadata"]["generation"] + 1
            self.objects[(kind.group, kind.plural, namespace if kind.namespaced else "", name)] = self._bump(new)
            return copy.deepcopy(new)

    def delete(self, kind: Kind, namespace: str, name: str) -> dict:
        with self.lock:
            obj = self.get(kind, namespace, name)
            del self.objects[(kind.group, kind.plural, namespace if kind.namespaced else "", name)]
            gone = {obj["metadata"]["uid"]}
            # the namespace controller and the garbage collector, at once
            changed = True
            while changed:
                changed = False
                for key, other in list(self.objects.items()):
                    owners = {ref.get("uid") for ref in other["metadata"].get("ownerReferences", [])}
                    in_deleted_namespace = kind.plural == "namespaces" and key[2] == name
                    if in_deleted_namespace or owners & gone:
                        gone.add(other["metadata"]["uid"])
                        del self.objects[key]
                        changed = True
            return obj

    # --- controllers ----------------------------------------------------------------------------
    def reconcile(self) -> None:
        with self.lock:
            for deployment in self.list_of("apps", "deployments"):
                self._deployment(deployment)
            operator = self.objects.get(("apps", "deployments", *OPERATOR))
            if operator and _available(operator):
                for minicluster in self.list_of(*MINICLUSTER):
                    self._minicluster(minicluster)
            for pod in self.list_of("", "pods"):
                pulled = time.monotonic() >= self.pulling.get(pod["metadata"]["uid"], 0)
                if pod["status"]["phase"] == "Pending" and pulled:
                    self._start(pod)

    def _deployment(self, deployment: dict) -> None:
        meta, status = deployment["metadata"], deployment.get("status") or {}
        if status.get("observedGeneration") == meta["generation"]:
            return
        if self.rolling_out.get(meta["uid"]) != meta["generation"]:  # first tick: seen, rolling out
            self.rolling_out[meta["uid"]] = meta["generation"]
            deployment["status"] = {"replicas": 0, "conditions": [{"type": "Progressing", "status": "True"}]}
            return
        replicas = deployment["spec"].get("replicas", 1)
        deployment["status"] = {
            "observedGeneration": meta["generation"], "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                           {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        self._bump(deployment)

    def _minicluster(self, minicluster: dict) -> None:
        meta = minicluster["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        pods = [pod for pod in self.list_of("", "pods", namespace)
                if pod["metadata"].get("labels", {}).get("job-name") == name]
        if pods:
            return
        pods_kind = self.kind("", "v1", "pods")
        (container,) = minicluster["spec"]["containers"][:1]
        for index in range(minicluster["spec"]["size"]):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            pod_name = f"{name}-{index}-{suffix}"
            directory = self.pods_root / namespace / pod_name
            self.create(pods_kind, namespace, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod_name, "namespace": namespace,
                             "annotations": {POD_DIRECTORY: str(directory), POD_SHM: str(shm_mib(minicluster))},
                             "labels": {"job-name": name, "batch.kubernetes.io/job-completion-index": str(index)},
                             "ownerReferences": [{"apiVersion": minicluster["apiVersion"], "kind": "MiniCluster",
                                                  "name": name, "uid": meta["uid"]}]},
                "spec": {"containers": [{"name": name, "image": container["image"]}],
                         "nodeSelector": minicluster["spec"].get("pod", {}).get("nodeSelector", {})}})
            directory.mkdir(parents=True, exist_ok=True)
            self.on_pod(directory, minicluster, index)
            pod = self.objects[("", "pods", namespace, pod_name)]
            pod["status"] = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                             "containerStatuses": [{"name": name, "image": container["image"], "ready": False,
                                                    "state": {"waiting": {"reason": "ContainerCreating"}}}]}
            self.pulling[pod["metadata"]["uid"]] = time.monotonic() + self.pull_seconds

    def _start(self, pod: dict) -> None:
        containers = pod["spec"]["containers"]
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                         "containerStatuses": [{"name": c["name"], "image": c["image"], "ready": True,
                                                "started": True} for c in containers]}
        self._bump(pod)


def _available(deployment: dict) -> bool:
    return any(c["type"] == "Available" and c["status"] == "True"
               for c in (deployment.get("status") or {}).get("conditions", []))


class KubeAPI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, cluster: Cluster) -> None:
        self.cluster = cluster
        self._stop = threading.Event()
        super().__init__(("127.0.0.1", port), Handler)
        self._controllers = threading.Thread(target=self._loop, daemon=True)
        self._controllers.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            self.cluster.reconcile()

    def server_close(self) -> None:
        self._stop.set()
        self._controllers.join(timeout=5)
        super().server_close()


class Handler(BaseHTTPRequestHandler):
    server: KubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        cluster = self.server.cluster
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if cluster.token and self.headers.get("Authorization") != f"Bearer {cluster.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            code, body = self._route(url.path.rstrip("/"), query, raw)
        except ApiError as err:
            code, body = err.code, err.status()
        self._send(code, body)

    def _route(self, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        cluster = self.server.cluster
        with cluster.lock:
            kinds = cluster.kinds()
        if path == "/version":
            return 200, {"major": "1", "minor": "34", "gitVersion": "v1.34.0-stand-in", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for kind in kinds:
                if kind.group and kind.version not in groups.setdefault(kind.group, []):
                    groups[kind.group].append(kind.version)
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                 "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
                for group, versions in groups.items()]}
        parts = path.split("/")[1:]
        if parts[0] == "api":
            group, rest = "", parts[1:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, rest = parts[1], parts[2:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        version, rest = rest[0], rest[1:]
        if not rest:
            served = [kind.describe() for kind in kinds if (kind.group, kind.version) == (group, version)]
            if not served:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return 200, {"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": f"{group}/{version}" if group else version, "resources": served}
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        with cluster.lock:
            kind = cluster.kind(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        if len(rest) > 2:
            raise ApiError(404, "NotFound", f"the stand-in serves no subresource {rest[2]}")
        return self._verb(kind, namespace, name, query, raw)

    def _verb(self, kind: Kind, namespace: str, name: str | None, query: dict[str, str],
              raw: bytes) -> tuple[int, Any]:
        cluster = self.server.cluster
        method = self.command
        content_type = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if name is None and method == "GET":
            with cluster.lock:
                items = cluster.list_of(kind.group, kind.plural, namespace if kind.namespaced else None)
                items = [copy.deepcopy(item) for item in items
                         if selected(item["metadata"].get("labels", {}), query.get("labelSelector", ""))]
                return 200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                             "metadata": {"resourceVersion": str(cluster.version)}, "items": items}
        if name is None and method == "POST":
            return 201, cluster.create(kind, namespace, self._body(raw, content_type))
        if name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on a collection here")
        if method == "GET":
            return 200, cluster.get(kind, namespace, name)
        if method == "PUT":
            return 200, cluster.update(kind, namespace, name, self._body(raw, content_type))
        if method == "DELETE":
            return 200, cluster.delete(kind, namespace, name)
        if method == "PATCH":
            body = self._body(raw, content_type)
            if content_type == "application/apply-patch+yaml":
                if not query.get("fieldManager"):
                    raise ApiError(400, "BadRequest", "PATCH /apply requires fieldManager to be set")
                with cluster.lock:
                    try:
                        current = cluster.get(kind, namespace, name)
                    except ApiError:
                        return 201, cluster.create(kind, namespace, body)
                    return 200, cluster.update(kind, namespace, name, merge_patch(current, body))
            if content_type in {"application/merge-patch+json", "application/strategic-merge-patch+json"}:
                with cluster.lock:
                    return 200, cluster.update(kind, namespace, name, merge_patch(cluster.get(kind, namespace, name),
                                                                                 body))
            raise ApiError(415, "UnsupportedMediaType", f"the stand-in does not apply {content_type} patches")
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    @staticmethod
    def _body(raw: bytes, content_type: str) -> Any:
        try:
            return yaml.safe_load(raw) if content_type.endswith("yaml") else json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as err:
            raise ApiError(400, "BadRequest", f"the body is not {content_type}: {err}") from None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def kubeconfig(url: str, token: str, name: str = "stand-in") -> str:
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: {url}\n  name: {name}\n"
            f"contexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\n"
            f"users:\n- name: {name}\n  user:\n    token: {token}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pods-root", type=Path, required=True)
    args = parser.parse_args()
    KubeAPI(args.port, Cluster(args.pods_root)).serve_forever()


if __name__ == "__main__":
    main()
