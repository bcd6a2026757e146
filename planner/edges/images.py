"""Container images built on this machine: build them, read their attributes from them, publish them.

`build` runs roles/container_images through the runner adapter (as the native install runs
roles/local_cluster), which builds each image into `<cache>/images/<variant>/` (a Charliecloud directory
image) and marks it complete with `<cache>/images/<variant>.done`. `inspect` reads what an image holds
(its os-release and dpkg status, `ch-run IMAGE -- ` what the app's definition reads (its `help_args`), `ldd`
of its executable, the ELF notes of the files holding its code) and
planner.core.image_attributes turns that into compspec attributes; `write_artifact` keeps the generated
artifact beside the image (`<variant>.compspec.json`). `push_image` lays an image out as an OCI image
(one uncompressed tar layer) in a registry, where `registry.push` then hangs its artifact.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.core import apps, compspec, image_attributes
from planner.core.compspec import ImageRef
from planner.core.errors import WorkError
from planner.core.experiment import Experiment
from planner.edges.runner import PlaybookRequest, run_playbook

IMAGES = "images"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
#: what ch-run gets from the environment when the planner inspects an image: ch-run needs $USER, and
#: Open MPI refuses to start as root unless told (CI runs as root); nothing else of the caller's leaks in
INSPECT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
SEARCH_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def image_dir(cache: Path, name: str) -> Path:
    return cache / IMAGES / name


def marker(cache: Path, name: str) -> Path:
    """The image is complete only once this exists (the role writes it last)."""
    return cache / IMAGES / f"{name}.done"


def artifact_path(cache: Path, name: str) -> Path:
    return cache / IMAGES / f"{name}.compspec.json"


def fetched_dir(cache: Path, name: str, digest: str) -> Path:
    """Where `variants fetch --images` unpacks the image whose manifest has `digest`: one directory per digest,
    complete once `<dir>.done` exists."""
    return cache / IMAGES / ".fetched" / f"{name}-{digest.split(':', 1)[-1][:16]}"


def fetched(cache: Path, name: str, digest: str | None) -> Path | None:
    """The image fetched for this manifest digest, when its unpacking finished."""
    if digest is None:
        return None
    found = fetched_dir(cache, name, digest)
    return found if Path(f"{found}.done").is_file() and found.is_dir() else None


def is_built(cache: Path, name: str) -> bool:
    return marker(cache, name).is_file() and image_dir(cache, name).is_dir()


def built_variants(exp: Experiment) -> list[str]:
    return [name for name, variant in exp.variants.items() if variant.build is not None]


# ------------------------------------------------------------------------------------------------ build


def build(exp: Experiment, names: list[str], cache: Path, *, on_task: Callable[[str], None] = lambda _: None,
          cancel: Callable[[], bool] = lambda: False) -> float:
    """Build the images (each once: the role skips an image whose marker holds its recipe), then write each
    one's artifact from what it holds; returns the seconds it took."""
    started = time.monotonic()
    items = [{"name": name, **exp.variants[name].build.model_dump()} for name in names]  # type: ignore[union-attr]
    result = run_playbook(PlaybookRequest("playbooks/images.yml", "inventories/local", tags="container_images",
                                          extravars={"container_images_variants": items,
                                                     "container_images_cache_dir": str(cache)}),
                          on_task=on_task, cancel=cancel)
    if cancel():
        raise KeyboardInterrupt
    if not result.ok:
        failures = "; ".join(" ".join(f.split()) for f in result.failures) or result.status
        raise WorkError(f"building images {', '.join(names)} failed: {failures}")
    for name in names:
        write_artifact(cache, name, app_of(exp, name))
    return time.monotonic() - started


def app_of(exp: Experiment, name: str) -> apps.Definition:
    """The definition of the app a variant builds."""
    app = exp.variants[name].app or ""
    return apps.resolve(app, exp.apps[app])


# ---------------------------------------------------------------------------------------------- inspect


def in_image(root: Path, path: str) -> Path:
    """The host path of `path` inside the image at `root`, following the image's symlinks within the image
    (an absolute link such as /etc/os-release -> /usr/lib/os-release means the image's /usr, not the host's)."""
    parts, resolved, hops = [p for p in path.split("/") if p], root, 0
    while parts:
        part = parts.pop(0)
        candidate = resolved / part if part not in (".", "..") else \
            (resolved if part == "." or resolved == root else resolved.parent)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise WorkError(f"{path} in {root}: too many symbolic links")
            target = os.readlink(candidate)
            parts = [p for p in target.split("/") if p] + parts
            resolved = root if target.startswith("/") else resolved
            continue
        resolved = candidate
    return resolved


def _read(root: Path, path: str) -> str | None:
    try:
        return in_image(root, path).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def which(root: Path, program: str) -> str:
    for directory in SEARCH_PATH:
        inside = f"{directory}/{program}"
        if in_image(root, inside).is_file():
            return inside
    raise WorkError(f"image {root} has no {program} on {':'.join(SEARCH_PATH)}")


def ch_run(root: Path, argv: list[str], timeout: float = 300) -> str:
    env = {**INSPECT_ENV, "USER": os.environ.get("USER") or getpass.getuser(), "HOME": "/"}
    try:
        done = subprocess.run(["ch-run", str(root), "--", *argv], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise WorkError("ch-run is not installed (apt-get install charliecloud-runtime)") from None
    if done.returncode != 0:
        raise WorkError(f"ch-run {root} -- {' '.join(argv)} failed ({done.returncode}): "
                        f"{(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def _notes(path: Path) -> str:
    done = subprocess.run(["readelf", "--notes", "--wide", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    return done.stdout


def inspect(cache: Path, name: str, app: apps.Definition) -> dict[str, Any]:
    """compspec attributes of a built image of `app`, read from the image."""
    root = image_dir(cache, name)
    os_release = _read(root, "/etc/os-release")
    if os_release is None:
        raise WorkError(f"image {root} has no /etc/os-release")
    status = _read(root, "/var/lib/dpkg/status") or ""
    executable = which(root, app.executable)
    ldd = ch_run(root, ["ldd", executable])
    # the app's code is in its executable and in the libraries of its own it links (a Debian executable may
    # be a small main() over the library)
    code = [in_image(root, executable)] + [
        in_image(root, line.split("=>")[1].split("(")[0].strip()) for line in ldd.splitlines()
        if "=>" in line and any(library in line for library in app.code_libraries)]
    with code[0].open("rb") as handle:
        header = handle.read(20)
    return image_attributes.attributes(
        os_release_text=os_release, debian_version=_read(root, "/etc/debian_version"),
        libc_version=image_attributes.dpkg_version(status, "libc6"), help_text=ch_run(root, list(app.help_args)),
        app=app, ldd_text=ldd, machine=image_attributes.elf_machine(header), notes=[_notes(path) for path in code])


def write_artifact(cache: Path, name: str, app: apps.Definition) -> Path:
    """The image's compspec artifact, generated from what it holds, kept beside it."""
    try:
        data = compspec.generate(name, inspect(cache, name, app))
    except image_attributes.ImageFactsError as err:
        raise WorkError(f"image {image_dir(cache, name)}: {err}") from None
    path = artifact_path(cache, name)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------- push


class _Hashing:
    """A write-only file that hashes what goes through it."""

    def __init__(self, handle: Any) -> None:
        self.handle, self.sha, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.handle.write(data)


def layer_tar(root: Path, path: Path) -> tuple[str, int]:
    """The image directory as one uncompressed tar layer (paths relative to the image root, numeric owners);
    returns (digest, size)."""
    with path.open("wb") as handle:
        hashing = _Hashing(handle)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for entry in sorted(os.listdir(root)):
                tar.add(root / entry, arcname=entry)
    return f"sha256:{hashing.sha.hexdigest()}", hashing.size


def push_image(client: Any, target: ImageRef, name: str, cache: Path, arch: str) -> str:
    """Publish a built image as `<target>:<name>` (an OCI image manifest with one tar layer, for the OCI
    architecture `arch`: amd64, arm64); returns the manifest's digest."""
    from planner.edges import registry

    root = image_dir(cache, name)
    ref = target.with_tag(name)
    tar = cache / IMAGES / f".{name}.layer.tar"
    try:
        digest, size = layer_tar(root, tar)
        layer = client.put_blob_file(ref, tar, digest, size, OCI_LAYER_TAR)
    finally:
        tar.unlink(missing_ok=True)
    config = json.dumps({"architecture": arch, "os": "linux",
                         "config": {"Env": [f"PATH={INSPECT_ENV['PATH']}"]},
                         "rootfs": {"type": "layers", "diff_ids": [digest]}}, separators=(",", ":")).encode()
    manifest = {"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST,
                "config": client.put_blob(ref, config, OCI_CONFIG), "layers": [layer],
                "annotations": {"org.opencontainers.image.title": name}}
    client.put_manifest(ref, name, manifest, registry.OCI_MANIFEST)
    return f"sha256:{hashlib.sha256(json.dumps(manifest, separators=(',', ':')).encode()).hexdigest()}"


# ------------------------------------------------------------------------------------------------- pull


def pull_image(client: Any, ref: ImageRef, digest: str, cache: Path, name: str) -> tuple[Path, bool]:
    """Unpack the image `variants push` published (an OCI manifest with one uncompressed tar layer) whose manifest
    has `digest` into `fetched_dir`, once per digest: (the directory, whether it was pulled now). What a pull
    killed half-way left is removed and pulled again; nothing is trusted before its marker exists."""
    from planner.edges import registry

    dest = fetched_dir(cache, name, digest)
    if fetched(cache, name, digest) is not None:
        return dest, False
    found = client.manifest(ref, digest)
    if found is None or found[0] != digest:
        raise registry.RegistryError(f"registry {client.host}: image {ref.repository}@{digest} is gone")
    layers = found[1].get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict) \
            or layers[0].get("mediaType") != OCI_LAYER_TAR or not isinstance(layers[0].get("size"), int):
        raise registry.RegistryError(f"registry {client.host}: image {ref.repository}@{digest} is not one "
                                     f"uncompressed tar layer ({OCI_LAYER_TAR}), as `variants push` publishes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial, tar = dest.with_name(f".{dest.name}.partial"), dest.with_name(f".{dest.name}.layer.tar")
    for stale in (partial, dest):
        if stale.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(stale)], check=True)
    try:
        client.download_blob(ref, layers[0]["digest"], layers[0]["size"], tar)
        partial.mkdir()
        with tarfile.open(tar, mode="r:") as archive:
            # "tar": nothing outside the directory, no device files' privileges; owners as recorded (numeric)
            archive.extractall(partial, filter="tar", numeric_owner=True)
    finally:
        tar.unlink(missing_ok=True)
    os.rename(partial, dest)
    Path(f"{dest}.done").write_text(digest + "\n")
    return dest, True
