"""compspec artifacts in OCI registries: fetch them into the cache, push those of native variants.

An image's artifact is found the ways the field publishes it, in this order: the `compspec` reference
the experiment names; the OCI 1.1 referrers of the image manifest (the referrers API, else the tag schema
`sha256-<digest>` for registries without it, such as the CNCF distribution registry); the tag
`<tag>-compspec` (as the upstream image matrices of apps.Definition.image_matrix do: `oras push
<image>-compspec --artifact-type application/org.supercontainers.compspec
spec.json:application/org.supercontainers.compspec`). Push writes the same: the artifact with its
`artifactType`, a `subject` where the registry holds an image manifest for the variant, and the tag.

The client is oras-py's `Registry` with one change: its request loop. oras retries any error for minutes;
here a 429 or 5xx is retried a bounded number of times with backoff (honouring Retry-After), then reported
in one line naming the registry. Credentials come from the Docker config (`$DOCKER_CONFIG/config.json`,
else `~/.docker/config.json`, credential helpers included) or `ORAS_USER`/`ORAS_PASS`; they are sent only
to the registry that asks and never printed. Loopback registries are spoken to over plain HTTP.

A registry is untrusted input. Every answer is read up to a size cap (`MAX_BODY`) within connect, read
and total timeouts (`COMPAT_LAB_REGISTRY_TIMEOUT`, default 60 s per request), redirects are few, and a
digest it names is checked (`algorithm:hex` of the right length) before it becomes a URL or a file name.
Whatever it answers (JSON nested too deeply, a list for a manifest, bad gzip or chunking, a redirect loop)
is one line naming it. Credentials go to the host they were given for only: a Docker config entry's host;
`ORAS_USER`/`ORAS_PASS` to the host `ORAS_REGISTRY` names or, without it, to the registry a client was
made for by name (`variants push --registry`) but not to the registries an experiment's images name; a
token realm on another host gets no credentials (an anonymous token request), nor does a redirect.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oras.auth.utils
import oras.container
import oras.provider
import requests
import urllib3.exceptions

from planner.core import compspec
from planner.core.compspec import ARTIFACT_TYPE, TAG_SUFFIX, ImageRef
from planner.core.experiment import Experiment
from planner.edges.compspec_cache import ArtifactCache, Entry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json")
#: the OCI 1.1 empty config an artifact carries
EMPTY_CONFIG = {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
LOOPBACK = ("127.", "localhost", "[::1]")
#: bytes of any one answer: manifests, indexes, tokens and compspec artifacts are a few KiB
MAX_BODY = 4 << 20
#: seconds to connect, and between two reads of an answer
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 10.0
#: seconds one request may take in all (a registry sending one byte every few seconds never trips the
#: read timeout); `COMPAT_LAB_REGISTRY_TIMEOUT` overrides it
TOTAL_TIMEOUT_ENV, TOTAL_TIMEOUT = "COMPAT_LAB_REGISTRY_TIMEOUT", 60.0
MAX_REDIRECTS = 5
#: the host `ORAS_USER`/`ORAS_PASS` are for
ORAS_HOST_ENV = "ORAS_REGISTRY"


class RegistryError(Exception):
    """The registry could not be used (down, refusing, throttling); the message is one line naming it."""

    def __init__(self, message: str) -> None:
        super().__init__(compspec.printable(" ".join(message.split())))


class _TotalTimeout(Exception):
    """A request that took longer than the total timeout."""


def total_timeout() -> float:
    text = os.environ.get(TOTAL_TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else TOTAL_TIMEOUT
    except ValueError:
        seconds = TOTAL_TIMEOUT
    return seconds if 0 < seconds < float("inf") else TOTAL_TIMEOUT


def _host_port(netloc: str, scheme: str) -> tuple[str, int]:
    """(host, port) of `host[:port]`, the port defaulting to the scheme's."""
    parsed = urllib3.util.parse_url(f"{scheme}://{netloc}")
    return (parsed.host or "").lower(), parsed.port or (443 if scheme == "https" else 80)


class InvalidArtifact(Exception):
    """An artifact that is not compspec or does not validate: one line naming the image and the digest."""


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Client(oras.provider.Registry):
    """One registry host: manifests, blobs, referrers; bounded retries; credentials never shown."""

    def __init__(self, host: str, *, attempts: int = 4, backoff: float = 0.25, timeout: float = READ_TIMEOUT,
                 named: bool = True) -> None:
        """`named`: the user named this registry (`--registry`), so `ORAS_USER`/`ORAS_PASS` are for it even
        without `ORAS_REGISTRY`; a registry an experiment's image names is not (`fetch` passes False)."""
        super().__init__(hostname=host, insecure=host.startswith(LOOPBACK))
        self.host, self.attempts, self.backoff, self.timeout = host, attempts, backoff, timeout
        self.named = named
        self.session.max_redirects = MAX_REDIRECTS
        self._authorization: str | None = None
        self._referrers_api: bool | None = None  # learnt once per registry

    # ------------------------------------------------------------------------------------------ requests

    def _credentials(self) -> str | None:
        """base64 user:password for this host from the environment or the Docker config, if any."""
        env_host = os.environ.get(ORAS_HOST_ENV, "").strip()
        env_for_me = env_host.lower() == self.host.lower() if env_host else self.named
        if env_for_me and os.environ.get("ORAS_USER") and os.environ.get("ORAS_PASS"):
            return oras.auth.utils.get_basic_auth(os.environ["ORAS_USER"], os.environ["ORAS_PASS"])
        config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
        if config.exists():
            try:
                self.auth._auth_config = oras.auth.utils.load_configs([str(config)])
                for name in oras.utils.iter_localhosts(self.host):
                    if self.auth._load_auth(name):
                        return self.auth._basic_auth
            except (OSError, ValueError, TypeError, AttributeError, KeyError) as err:
                raise RegistryError(f"{config}: not a Docker config this reads ({type(err).__name__})") from None
        return None

    def _token(self, challenge: str, basic: str | None) -> str:
        """A Bearer token from the realm the challenge names (OCI distribution's token flow). Credentials go
        with the request only when the realm is on this registry's own host."""
        fields = oras.auth.utils.parse_auth_header(challenge)
        realm = getattr(fields, "realm", None)
        parsed = urllib3.util.parse_url(realm or "")
        if not realm or parsed.scheme not in ("http", "https") or not parsed.host:
            raise RegistryError(f"registry {self.host} asks for a token from no usable realm")
        headers = {}
        if basic and _host_port(parsed.netloc or "", parsed.scheme) == _host_port(self.host, self.prefix):
            headers["Authorization"] = f"Basic {basic}"
        params = {key: value for key in ("service", "scope") if (value := getattr(fields, key, None))}
        try:
            response = self._bounded("GET", realm, None, headers, None, params=params, redirects=False)
        except _TotalTimeout:
            raise RegistryError(f"registry {self.host}'s token realm took longer than {total_timeout():g} s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError):
            raise RegistryError(f"registry {self.host}'s token realm could not be read") from None
        if response.status_code != 200:
            raise RegistryError(f"registry {self.host} did not give a token ({response.status_code}); log in "
                                f"(docker login {self.host}, or DOCKER_CONFIG, or ORAS_USER and ORAS_PASS)")
        answer = _json(response.content, f"registry {self.host}'s token")
        token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or any(c.isspace() or not c.isprintable() for c in token):
            raise RegistryError(f"registry {self.host}'s token realm answered no token")
        return token

    def _authorize(self, response: requests.Response) -> None:
        challenge = response.headers.get("Www-Authenticate", "")
        basic = self._credentials()
        if challenge.lower().startswith("bearer"):
            self._authorization = f"Bearer {self._token(challenge, basic)}"
        elif basic:
            self._authorization = f"Basic {basic}"
        else:
            raise RegistryError(f"registry {self.host} asks for credentials: log in (docker login {self.host}), "
                                "or set DOCKER_CONFIG, or ORAS_USER and ORAS_PASS")

    def do_request(self, url: str, method: str = "GET", data: Any = None, headers: dict | None = None,
                   json: dict | None = None, stream: bool = False) -> requests.Response:
        """One request with authentication, and a bounded retry with backoff on 429, 5xx and lost connections."""
        path = url.split(self.host, 1)[-1].split("?", 1)[0]
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._send(url, method, data, headers, json, stream)
                if response.status_code == 401:
                    self._authorize(response)
                    response = self._send(url, method, data, headers, json, stream)
                    if response.status_code == 401:
                        raise RegistryError(f"registry {self.host} refused the credentials it was given (401)")
            except _TotalTimeout:
                raise RegistryError(f"registry {self.host} timed out: {method} {path} took longer than "
                                    f"{total_timeout():g} s") from None
            except requests.TooManyRedirects:
                raise RegistryError(f"registry {self.host} redirected {method} {path} more than {MAX_REDIRECTS} "
                                    "times") from None
            except _BodyTooLarge as err:
                raise RegistryError(f"registry {self.host} answered {method} {path} with more than {err} bytes; "
                                    "nothing that large is read") from None
            except (requests.ConnectionError, requests.Timeout) as err:
                if attempt == self.attempts:
                    kind = "timed out" if isinstance(err, requests.Timeout) else "unreachable (connection refused " \
                                                                                  "or reset)"
                    raise RegistryError(f"registry {self.host} {kind} after {self.attempts} attempts") from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
                # bad gzip or chunking, a header or a redirect target that is not one
                raise RegistryError(f"registry {self.host} sent an answer to {method} {path} that cannot be read "
                                    f"({type(err).__name__})") from None
            if response.status_code not in RETRY_STATUS:
                return response
            if attempt == self.attempts:
                raise RegistryError(f"registry {self.host} answered {response.status_code} {response.reason} "
                                    f"{self.attempts} times to {method} {path}; try again later")
            time.sleep(self._wait(response, attempt))
        raise AssertionError("unreachable")

    def _wait(self, response: requests.Response, attempt: int) -> float:
        after = response.headers.get("Retry-After", "")
        wait = self.backoff * 2 ** (attempt - 1)
        return min(float(after), 10 * self.backoff * 2 ** attempt) if after.isdigit() else wait

    def _send(self, url: str, method: str, data: Any, headers: dict | None, json: dict | None,
              stream: bool) -> requests.Response:
        headers = dict(headers or {})
        if self._authorization:
            headers["Authorization"] = self._authorization
        return self._bounded(method, url, data, headers, json)

    def _bounded(self, method: str, url: str, data: Any, headers: dict, json: dict | None, *,
                 params: dict | None = None, redirects: bool = True) -> requests.Response:
        """One request whose answer is read whole, up to MAX_BODY bytes, within the total timeout. It runs in
        a thread of its own, so that a registry sending a byte every few seconds (headers included, which no
        socket timeout covers) is left behind at the deadline; the thread ends with its connection."""
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                response = self.session.request(method, url, data=data, json=json, headers=headers, params=params,
                                                stream=True, verify=self._tls_verify, allow_redirects=redirects,
                                                timeout=(CONNECT_TIMEOUT, self.timeout))
                with response:
                    declared = response.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > MAX_BODY:
                        raise _BodyTooLarge(MAX_BODY)
                    body = bytearray()
                    for chunk in response.iter_content(64 << 10):
                        body += chunk
                        if len(body) > MAX_BODY:
                            raise _BodyTooLarge(MAX_BODY)
                    response._content = bytes(body)
                outcome["response"] = response
            except BaseException as err:  # handed to the caller's thread, which raises it
                outcome["error"] = err

        worker = threading.Thread(target=work, name=f"registry {self.host}", daemon=True)
        worker.start()
        worker.join(total_timeout())
        if worker.is_alive():
            raise _TotalTimeout()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    # ---------------------------------------------------------------------------------------- operations

    def _container(self, ref: ImageRef) -> oras.container.Container:
        return oras.container.Container(f"{ref.repository}:{ref.tag or 'latest'}", registry=self.host)

    def _url(self, ref: ImageRef, what: str) -> str:
        return f"{self.prefix}://{self.host}/v2/{ref.repository}/{what}"

    def _fail(self, response: requests.Response, what: str) -> RegistryError:
        return RegistryError(f"registry {self.host}: {what}: {response.status_code} {str(response.reason)[:80]}")

    def manifest(self, ref: ImageRef, reference: str | None = None) -> tuple[str, dict[str, Any], int] | None:
        """(digest, manifest, size) of a tag or digest, or None when the registry has none."""
        reference = reference or ref.reference
        response = self.do_request(self._url(ref, f"manifests/{reference}"),
                                   headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"manifest {ref.repository}:{reference}")
        manifest = _json(response.content, f"registry {self.host}: manifest {ref.repository}:{reference}")
        if not isinstance(manifest, dict):
            raise RegistryError(f"registry {self.host}: manifest {ref.repository}:{reference} is not a JSON object")
        return _digest(response.content), manifest, len(response.content)

    def referrers(self, ref: ImageRef, digest: str) -> tuple[list[dict[str, Any]], str]:
        """Descriptors of the compspec artifacts that refer to a manifest, and how they were found."""
        if self._referrers_api is not False:
            response = self.do_request(self._url(ref, f"referrers/{digest}?artifactType={ARTIFACT_TYPE}"),
                                       headers={"Accept": OCI_INDEX})
            self._referrers_api = response.status_code == 200 and \
                response.headers.get("Content-Type", "").startswith(OCI_INDEX)
            if self._referrers_api:
                index = _json(response.content, f"registry {self.host}: the referrers of {digest}")
                if not isinstance(index, dict):
                    raise RegistryError(f"registry {self.host}: the referrers of {digest} are not a JSON object")
                return _compspec_descriptors(index), "referrers"
        tag = compspec.referrers_tag(digest)
        found = self.manifest(ref, tag)
        return (_compspec_descriptors(found[1]) if found else []), f"referrers tag {tag}"

    def blob(self, ref: ImageRef, digest: str) -> bytes:
        response = self.do_request(self._url(ref, f"blobs/{compspec.check_digest(digest)}"))
        if response.status_code == 404:
            raise RegistryError(f"registry {self.host}: blob {digest} of {ref.repository} is missing")
        if response.status_code != 200:
            raise self._fail(response, f"blob {digest}")
        return response.content

    def download_blob(self, ref: ImageRef, digest: str, size: int, path: Path) -> None:
        """Stream a large blob (an image layer) to `path`, checking its size and digest as it comes; RegistryError
        (and nothing left at `path`) when either does not match."""
        url = self._url(ref, f"blobs/{compspec.check_digest(digest)}")
        sha, got = hashlib.sha256(), 0

        def get() -> requests.Response:
            headers = {"Authorization": self._authorization} if self._authorization else {}
            return self.session.get(url, headers=headers, stream=True, verify=self._tls_verify,
                                    timeout=(CONNECT_TIMEOUT, max(self.timeout, 60)))
        try:
            response = get()
            if response.status_code == 401:  # the registry's token, as for every other request
                response.close()
                self._authorize(response)
                response = get()
            with response, path.open("wb") as out:
                if response.status_code != 200:
                    raise self._fail(response, f"blob {digest}")
                for chunk in response.iter_content(1 << 20):
                    got += len(chunk)
                    if got > size:
                        raise RegistryError(f"registry {self.host}: blob {digest} is larger than the {size} bytes "
                                            "its manifest says")
                    sha.update(chunk)
                    out.write(chunk)
            if got != size or f"sha256:{sha.hexdigest()}" != digest:
                raise RegistryError(f"registry {self.host}: blob {digest} arrived with another size or digest "
                                    f"({got} bytes, sha256:{sha.hexdigest()[:12]}...)")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
            path.unlink(missing_ok=True)
            raise RegistryError(f"registry {self.host}: download of blob {digest} failed ({type(err).__name__})") \
                from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def put_blob(self, ref: ImageRef, data: bytes, media_type: str) -> dict[str, Any]:
        descriptor = {"mediaType": media_type, "digest": _digest(data), "size": len(data)}
        with tempfile.NamedTemporaryFile() as handle:
            handle.write(data)
            handle.flush()
            response = self.upload_blob(handle.name, self._container(ref), descriptor)
        if response.status_code not in (200, 201, 202):
            raise self._fail(response, f"upload of blob {descriptor['digest']}")
        return descriptor

    def put_blob_file(self, ref: ImageRef, path: Path, digest: str, size: int, media_type: str) -> dict[str, Any]:
        """Upload a large blob streamed from a file (an image layer), unless the registry has it already."""
        descriptor = {"mediaType": media_type, "digest": digest, "size": size}
        if self.do_request(self._url(ref, f"blobs/{digest}"), "HEAD").status_code == 200:
            return descriptor
        started = self.do_request(self._url(ref, "blobs/uploads/"), "POST")
        if started.status_code != 202 or "Location" not in started.headers:
            raise self._fail(started, f"upload of blob {digest}")
        location = started.headers["Location"]
        if location.startswith("/"):
            location = f"{self.prefix}://{self.host}{location}"
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   **({"Authorization": self._authorization} if self._authorization else {})}
        try:  # one attempt: a stream cannot be replayed by the retry loop
            with path.open("rb") as handle:
                response = self.session.request("PUT", location, data=handle, headers=headers,
                                                timeout=max(self.timeout, 600), verify=self._tls_verify)
        except (requests.ConnectionError, requests.Timeout):
            raise RegistryError(f"registry {self.host} dropped the upload of blob {digest} ({size} bytes)") from None
        if response.status_code not in (201, 202):
            raise self._fail(response, f"upload of blob {digest}")
        return descriptor

    def put_manifest(self, ref: ImageRef, tag: str, manifest: dict[str, Any], media_type: str) -> requests.Response:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        response = self.do_request(self._url(ref, f"manifests/{tag}"), "PUT", data=body,
                                   headers={"Content-Type": media_type})
        if response.status_code not in (200, 201, 202):
            raise self._fail(response, f"manifest {ref.repository}:{tag}")
        return response


class _BodyTooLarge(Exception):
    """An answer longer than MAX_BODY (the argument)."""


def _json(data: bytes, what: str) -> Any:
    """A registry's JSON answer, or RegistryError naming `what` (not JSON, nested too deeply, not UTF-8)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise RegistryError(f"{what} is not JSON this reads ({type(err).__name__})") from None


def _compspec_descriptors(index: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = index.get("manifests", [])
    return [item for item in manifests if isinstance(item, dict) and item.get("artifactType") == ARTIFACT_TYPE] \
        if isinstance(manifests, list) else []


# ------------------------------------------------------------------------------------------------- fetch


@dataclass
class FetchReport:
    entries: list[Entry] = field(default_factory=list)
    downloaded: int = 0
    missing: list[str] = field(default_factory=list)  # variants without an artifact anywhere
    failed: list[str] = field(default_factory=list)  # registry problems, one line each
    invalid: list[str] = field(default_factory=list)  # artifacts that are not compspec or do not validate
    skipped: list[str] = field(default_factory=list)  # images not in an OCI registry
    changed: list[str] = field(default_factory=list)  # images whose artifact moved to another digest


def fetch(exp: Experiment, cache: ArtifactCache, mirrors: dict[str, str], *,
          names: list[str] | None = None) -> FetchReport:
    """Pull every container variant's artifact into the cache (once per digest); the cache index is
    written once at the end, so a fetch that fails half-way leaves what was cached before usable."""
    report, clients, down = FetchReport(), {}, {}  # one client (session, credentials) per registry
    for name, variant in exp.variants.items():
        if variant.image is None or (names and name not in names):
            continue
        ref = compspec.image_ref(variant.image)
        if ref is None:
            report.skipped.append(f"{name}: {variant.image} is not in an OCI registry")
            continue
        ref = compspec.mirrored(ref, mirrors)
        # an image built here lives in this machine's registry, which need not run for the others' fetch
        unpublished = " (built here: start the local registry and run variants push)" if variant.build else ""
        if ref.registry in down:
            (report.skipped if unpublished else report.failed).append(f"{name}: {down[ref.registry]}{unpublished}")
            continue
        if ref.registry not in clients:
            clients[ref.registry] = Client(ref.registry, named=False)
        registry = clients[ref.registry]
        try:
            found = _find(registry, ref, variant.compspec, mirrors)
            if found is None:
                report.missing.append(f"{name}: no compspec artifact for {variant.image} (looked for a "
                                      f"{variant.compspec or 'referrer'} and the tag {ref.tag}{TAG_SUFFIX} "
                                      f"on {ref.registry})")
                continue
            descriptor, artifact_repo, found_by, image_digest = found
            try:
                digest = compspec.check_digest(descriptor.get("digest"), "the artifact's layer digest")
            except compspec.ArtifactError as err:
                raise InvalidArtifact(f"{variant.image}: {err}") from None
            if not cache.has(digest):
                data = registry.blob(artifact_repo, digest)
                if _digest(data) != digest:
                    raise InvalidArtifact(f"{variant.image}: artifact {digest}: content does not match its digest "
                                          "(corrupt in the registry)")
                try:
                    compspec.parse(data)
                except compspec.ArtifactError as err:
                    raise InvalidArtifact(f"{variant.image}: artifact {digest}: {err}") from None
                cache.put(digest, data)
                report.downloaded += 1
        except RegistryError as err:
            if "unreachable" in str(err) or "timed out" in str(err):
                down[ref.registry] = str(err)
            (report.skipped if unpublished and ref.registry in down else report.failed).append(
                f"{name}: {err}{unpublished if ref.registry in down else ''}")
            continue
        except InvalidArtifact as err:
            report.invalid.append(str(err))
            continue
        entry = _entry(cache, variant.image, digest, ref.registry, found_by, image_digest)
        if entry.previous and entry.previous != (cache.entry(variant.image) or entry).previous:
            report.changed.append(variant.image)
        report.entries.append(entry)
    cache.record(report.entries)
    return report


def _entry(cache: ArtifactCache, image: str, digest: str, registry: str, found_by: str,
           image_digest: str | None) -> Entry:
    old = cache.entry(image)
    if old is None or old.digest == digest:
        previous, changes = (old.previous, old.changes) if old else (None, [])
        return Entry(image, digest, registry, found_by, now(), previous, changes, image_digest)
    before = compspec.attributes(compspec.parse(cache.read(old.digest))) if cache.has(old.digest) else {}
    after = compspec.attributes(compspec.parse(cache.read(digest)))
    return Entry(image, digest, registry, found_by, now(), old.digest, compspec.changes(before, after), image_digest)


def _created(descriptor: dict[str, Any]) -> str:
    annotations = descriptor.get("annotations")
    created = annotations.get("org.opencontainers.image.created") if isinstance(annotations, dict) else None
    return created if isinstance(created, str) else ""


def _find(registry: Client, ref: ImageRef, named: str | None,
          mirrors: dict[str, str]) -> tuple[dict[str, Any], ImageRef, str, str | None] | None:
    """(the artifact's compspec layer, the repository it lives in, how it was found, the digest of the image
    manifest its tag names now), or None."""
    image = registry.manifest(ref)
    image_digest = image[0] if image is not None else None
    if named is not None:
        target = compspec.image_ref(named)
        if target is None:
            raise InvalidArtifact(f"{named} is not an artifact reference such as ghcr.io/org/app:tag-compspec")
        target = compspec.mirrored(target, mirrors)
        found = _layer(registry, target, f"compspec {named}")
        return (*found, image_digest) if found else None
    if image is not None:
        descriptors, how = registry.referrers(ref, image[0])
        if descriptors:
            newest = max(descriptors, key=_created)
            try:
                digest = compspec.check_digest(newest.get("digest"), "a referrer's digest")
            except compspec.ArtifactError as err:
                raise InvalidArtifact(f"{ref}: {err}") from None
            found = _layer(registry, ImageRef(ref.registry, ref.repository, None, digest), how)
            return (*found, image_digest) if found else None
    found = _layer(registry, ref.with_tag(f"{ref.tag}{TAG_SUFFIX}"), f"tag {ref.tag}{TAG_SUFFIX}")
    return (*found, image_digest) if found else None


def _layer(registry: Client, ref: ImageRef, how: str) -> tuple[dict[str, Any], ImageRef, str] | None:
    found = registry.manifest(ref)
    if found is None:
        return None
    digest, manifest, _ = found
    config = manifest.get("config")
    kind = manifest.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
    listed = manifest.get("layers", [])
    layers = [layer for layer in (listed if isinstance(listed, list) else [])
              if isinstance(layer, dict) and layer.get("mediaType") == ARTIFACT_TYPE]
    if kind != ARTIFACT_TYPE and not layers:
        raise InvalidArtifact(f"{ref}: artifact {digest}: not a compspec artifact (artifactType "
                              f"{compspec.printable(str(kind))[:80]}; expected {ARTIFACT_TYPE})")
    if len(layers) != 1:
        raise InvalidArtifact(f"{ref}: artifact {digest}: has {len(layers)} layers of type {ARTIFACT_TYPE}, "
                              "expected one")
    return layers[0], ref, how


# -------------------------------------------------------------------------------------------------- push


@dataclass(frozen=True)
class Pushed:
    variant: str
    reference: str  # host/repo:<name>-compspec
    digest: str  # of the artifact manifest
    subject: str | None  # digest of the image manifest it refers to, where there is one


def push(client: Client, target: ImageRef, variant: str, artifact: bytes) -> Pushed:
    """Publish one artifact as the upstream image matrices do (tag `<name>-compspec`), with a subject where the
    registry holds an image `<name>`; without the referrers API the `sha256-<digest>` index is updated."""
    image = target.with_tag(variant)
    layer = client.put_blob(image, artifact, ARTIFACT_TYPE)
    layer["annotations"] = {"org.opencontainers.image.title": "spec.json"}
    client.put_blob(image, b"{}", EMPTY_CONFIG["mediaType"])
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
                                "config": EMPTY_CONFIG, "layers": [layer],
                                "annotations": {"org.opencontainers.image.created":
                                                datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    subject = client.manifest(image)
    if subject is not None:
        manifest["subject"] = {"mediaType": subject[1].get("mediaType", OCI_MANIFEST), "digest": subject[0],
                               "size": subject[2]}
    tag = f"{variant}{TAG_SUFFIX}"
    response = client.put_manifest(image, tag, manifest, OCI_MANIFEST)
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = _digest(body)
    if subject is not None and "OCI-Subject" not in response.headers:
        _add_referrer(client, image, subject[0], {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
                                                  "artifactType": ARTIFACT_TYPE,
                                                  "annotations": manifest["annotations"]})
    return Pushed(variant, f"{client.host}/{target.repository}:{tag}", digest, subject[0] if subject else None)


def _add_referrer(client: Client, ref: ImageRef, subject: str, descriptor: dict[str, Any]) -> None:
    """The referrers tag schema: the index at `sha256-<subject hex>` lists what refers to the subject."""
    tag = compspec.referrers_tag(subject)
    found = client.manifest(ref, tag)
    index = found[1] if found else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    index["manifests"] = [m for m in index.get("manifests", []) if m.get("digest") != descriptor["digest"]]
    index["manifests"].append(descriptor)
    client.put_manifest(ref, tag, index, OCI_INDEX)


def registry_target(text: str) -> ImageRef:
    """`HOST[:PORT]/REPO` as `variants push --registry` takes it."""
    ref = compspec.image_ref(text.rstrip("/") + ":x")
    if ref is None:
        raise ValueError(f"{text!r} is not HOST[:PORT]/REPO (e.g. 127.0.0.1:5000/compat-lab/variants)")
    return ImageRef(ref.registry, ref.repository, None)
