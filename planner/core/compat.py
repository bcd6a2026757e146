"""Hard compatibility rules: can this variant, launched with these options, run on this cluster? Pure.

`check` returns None when the point can run, else a one-line reason a person can act on. These rules
are never overridden by a model: a recommendation never picks a point they exclude.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.core import apps, archs
from planner.core.backends import Container, Ranks
from planner.core.experiment import Options, Workload
from planner.core.launch import backends
from planner.core.types import ClusterInfo, VariantInfo


def suffix_packages(app: str | None) -> dict[str, str]:
    """The package each accelerator suffix needs compiled into the app (its `<app>.packages` attribute), as
    the app's registered definition declares them (none for an app without one)."""
    found = apps.definition(app) if app else None
    return dict(found.suffix_packages) if found else {}


class OsAbi(str):
    """A reason that is an OS ABI mismatch (the plan stores it as `os-abi`, not `incompatible`)."""

    code = "os-abi"


def reason_code(why: str) -> str:
    """The failure reason code a plan stores for an exclusion `check` returned."""
    return getattr(why, "code", "incompatible")


#: glibc of the OS releases images and Flux views are built on (the distributions' archives: Ubuntu focal
#: 2.31, jammy 2.35, noble 2.39, bionic 2.27; Rocky/RHEL 8 2.28, 9 2.34; Debian bullseye 2.31, bookworm 2.36)
GLIBC = {("ubuntu", "20.04"): (2, 31), ("ubuntu", "22.04"): (2, 35), ("ubuntu", "24.04"): (2, 39),
         ("rocky", "8"): (2, 28), ("rocky", "9"): (2, 34), ("debian", "11"): (2, 31), ("debian", "12"): (2, 36),
         ("ubuntu", "18.04"): (2, 27)}


def glibc(vendor: object, version: object) -> tuple[int, int] | None:
    """The glibc of an OS release (`rocky`, `9.3` is Rocky 9), or None when it is not known here."""
    vendor, version = str(vendor or "").lower(), str(version or "")
    return GLIBC.get((vendor, version)) or GLIBC.get((vendor, version.split(".")[0]))


@dataclass(frozen=True)
class OsImage:
    """An image a MiniCluster itself runs, built on one OS release (None: not published): a Flux view or the
    pods' image with Singularity. `source` is where its arch and OS were read."""

    image: str
    arch: str
    os: str | None
    release: str | None
    source: str

    @property
    def glibc(self) -> tuple[int, int] | None:
        return glibc(self.os, self.release)

    @property
    def label(self) -> str:
        found = self.glibc
        return (f"{self.image} ({self.os} {self.release}, glibc {'.'.join(map(str, found))})" if found
                else f"{self.image} (OS not published)")


_VIEWS_SOURCE = ("flux-operator docs/getting_started/custom-resource-definition.md (flux.container.image: \"the "
                 "bases of interest\", arm builds in converged-computing/flux-views/arm), listed again by kubeflow "
                 "trainer's flux plugin: \"for the view, you primarily want it to match the base container "
                 "platform, OS and version\"")
#: The Flux Operator's Flux views. A view's flux and libpmi.so need a glibc at least as new as theirs wherever
#: they run: `flux` in the pods' image, libpmi.so (Open MPI's flux PMI component) in the app's image; an older
#: view in a newer OS loads (ocifit-k8s pkg/flux: "Rocky should work even with Ubuntu, but ubuntu 22.04 won't
#: work with 24.04").
FLUX_VIEWS = tuple(OsImage(f"ghcr.io/converged-computing/flux-view-{os}:{tag}", arch, os, release, _VIEWS_SOURCE)
                   for tag, arch, os, release in (
                       ("tag-noble", "amd64", "ubuntu", "24.04"), ("tag-jammy", "amd64", "ubuntu", "22.04"),
                       ("tag-focal", "amd64", "ubuntu", "20.04"), ("tag-9", "amd64", "rocky", "9"),
                       ("tag-8", "amd64", "rocky", "8"), ("arm-jammy", "arm64", "ubuntu", "22.04"),
                       ("arm-focal", "arm64", "ubuntu", "20.04"), ("arm-9", "arm64", "rocky", "9"),
                       ("arm-8", "arm64", "rocky", "8")))
VIEWS = {view.image: view for view in FLUX_VIEWS}
#: The pods' images with Singularity, one per arch (roles/minicluster `minicluster_image`): the view's `flux`
#: runs in them.
POD_IMAGES = {
    "arm64": OsImage("ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm", "arm64", "ubuntu",
                     "24.04", "converged-computing/rainbow-experiments experiments/jobspec-ng/singularity-prototype/"
                     "docker/singularity/Dockerfile.arm: FROM ubuntu:latest@sha256:3f85b7ca..., ubuntu:noble-20240429"),
    "amd64": OsImage("ghcr.io/rse-ops/singularity:tag-mamba", "amd64", None, None,
                     "flux-operator examples/singularity use it; its Dockerfile is not published, so its OS is not "
                     "known here and no view is checked against it"),
}


def serving_view(arch: str, image_glibc: tuple[int, int]) -> str | None:
    """The Flux view for `arch` with the newest glibc both an image of `image_glibc` and the arch's pods' image
    can load, if any."""
    pod = POD_IMAGES.get(arch)
    bound = min(image_glibc, pod.glibc) if pod and pod.glibc else image_glibc
    fitting = [(view.glibc, view.image) for view in FLUX_VIEWS if view.arch == arch and view.glibc
               and view.glibc <= bound]
    return max(fitting)[1] if fitting else None


@dataclass(frozen=True)
class MiniClusterConfig:
    """One MiniCluster configuration of a cluster and the planned images it serves. The first of a cluster's is
    the cluster's own: the view as configured (the experiment's `flux_view`, or what a cluster that is up runs) or,
    with none configured, chosen here from the planned images' os.* attributes."""

    view: OsImage
    pod_image: OsImage | None
    variants: tuple[str, ...]
    chosen: bool
    #: why this configuration would fail anyway (its view newer than its pods' image), or None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"flux_view": self.view.image, "flux_view_os": self.view.label,
                "pod_image": self.pod_image.image if self.pod_image else None,
                "pod_image_os": self.pod_image.label if self.pod_image else None,
                "variants": list(self.variants), "chosen": self.chosen, "problem": self.problem}


def image_glibc(variant: VariantInfo) -> tuple[int, int] | None:
    """The glibc of a container variant's OS from its fetched os.* attributes; None for a native variant or an
    OS not known here."""
    if variant.kind != "container":
        return None
    return glibc(variant.attributes.get("os.vendor"), variant.attributes.get("os.version"))


def miniclusters(cluster: ClusterInfo, planned: list[VariantInfo]) -> list[MiniClusterConfig]:
    """The MiniCluster configurations that serve the container images planned on a Flux cluster: its own first
    (as configured, else the view of its arch with the newest glibc no planned image is older than), then one
    per view that serves what the first cannot. An image no view serves is in none (the plan excludes it)."""
    arch = archs.platform_name(cluster.arch) or str(cluster.arch)
    pod = POD_IMAGES.get(arch)
    images = {v.name: image_glibc(v) for v in planned if v.kind == "container"}
    known = [found for found in images.values() if found]
    if cluster.flux_view:
        first = VIEWS.get(cluster.flux_view) or OsImage(cluster.flux_view, arch, None, None, "configured")
    else:
        views = [v for v in FLUX_VIEWS if v.arch == arch and v.glibc and (not pod or not pod.glibc
                                                                         or v.glibc <= pod.glibc)]
        bound = min(known, default=None)
        fitting = [v for v in views if bound is None or v.glibc <= bound]
        if not views:
            return []
        # none fits every image: the one that serves most of them (the oldest), newest flux first among equals
        first = max(fitting or views, key=lambda v: (sum(1 for g in known if g >= v.glibc), v.glibc))
    serves = lambda view, found: found is None or view.glibc is None or found >= view.glibc  # noqa: E731
    problem = None
    if pod and pod.glibc and first.glibc and first.glibc > pod.glibc:
        problem = (f"the view's flux needs glibc {'.'.join(map(str, first.glibc))}, newer than the pods' image "
                   f"{pod.label}: flux would not start")
    out = [MiniClusterConfig(first, pod, tuple(n for n, g in images.items() if serves(first, g)),
                             not cluster.flux_view, problem)]
    rest: dict[str, list[str]] = {}
    for name, found in images.items():
        if not serves(first, found) and (view := serving_view(arch, found)):
            rest.setdefault(view, []).append(name)
    out += [MiniClusterConfig(VIEWS[view], pod, tuple(names), True) for view, names in rest.items()]
    return out


def check(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
          options: Options) -> str | None:
    for rule in (_kind, _backends, _architecture, _gpu, _packages, _resources, _os_abi, _host_libraries):
        reason = rule(cluster, variant, workload_name, workload, options)
        if reason:
            return reason
    return None


def _kind(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
          options: Options) -> str | None:
    if variant.kind == "native":
        if cluster.kind != "local":
            return f"native variant {variant.name} exists only on the local cluster, not on {cluster.name}"
        if workload.native is None:
            return f"workload {workload_name} has no native input"
        if options.bind:
            return "bind mounts need a container variant; native variants bind libraries through env"
        if options.pmi is not None or options.shell:
            return "pmi and shell are Flux options; native variants are launched with mpiexec"
        return None
    here = _built_here(variant)
    if here and cluster.kind == "eks":
        return f"image {variant.image} is in this machine's registry, which {cluster.name} cannot reach"
    if cluster.kind == "slurm" and not here:
        return (f"{cluster.name} runs the images built on this machine (Charliecloud directories), not "
                f"{variant.image}")
    if cluster.kind == "slurm" and not cluster.container_runtime:
        return f"container variant {variant.name} needs Charliecloud's ch-run, not installed on {cluster.name}"
    if cluster.kind == "local" and not cluster.container_runtime:
        return f"container variant {variant.name} needs singularity or apptainer, not installed on {cluster.name}"
    if workload.container is None:
        return f"workload {workload_name} has no container input"
    return None


def _built_here(variant: VariantInfo) -> bool:
    """An image this machine built and publishes to its own registry (localhost), or whose directory it has."""
    host = (variant.image or "").split("://", 1)[-1].split("/", 1)[0]
    return bool(variant.layout.get("image")) or host.split(":", 1)[0] in ("localhost", "127.0.0.1")


def _backends(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
              options: Options) -> str | None:
    """What the cluster's launcher and runtime refuse, and a PMI flavour the cluster does not offer."""
    launcher, runtime = backends(cluster, variant)
    why = launcher.refuses(Ranks(options.tasks, options.nodes, options.threads, options.affinity, options.pmi,
                                 options.shell)) \
        or runtime.refuses(Container(variant.image, binds=options.bind, args=options.runtime_args))
    if why:
        return f"{why} (cluster {cluster.name} launches {variant.name} with {launcher.name}, runtime {runtime.name})"
    if options.pmi is not None and cluster.pmi and options.pmi not in cluster.pmi:
        return (f"PMI {options.pmi} is not offered on cluster {cluster.name}: its {launcher.name} offers "
                f"{', '.join(cluster.pmi)}")
    return None


def _architecture(cluster: ClusterInfo, variant: VariantInfo, *_: object) -> str | None:
    target = variant.target
    host_family = archs.family(cluster.arch) or archs.family(cluster.microarchitecture)
    fam = archs.family(target, host_family)
    if fam is None:
        return None  # unknown target: let the run tell (exec-format) rather than guess
    if host_family is not None and fam != host_family:
        return (f"variant {variant.name} is built for {archs.platform_name(fam)} ({target}), "
                f"cluster {cluster.name} is {archs.platform_name(host_family)}")
    if archs.can_run(cluster.microarchitecture, target) is False:
        return (f"variant {variant.name} is built for {archs.normalize(target) or target}, whose instruction set "
                f"{cluster.microarchitecture} lacks (not the target, a descendant, nor a superset of its extensions)")
    return None


def _gpu(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
         options: Options) -> str | None:
    if (variant.needs_gpu or options.suffix in {"gpu", "kk"}) and cluster.gpus_per_node == 0:
        return f"variant {variant.name} with suffix {options.suffix} needs a GPU; cluster {cluster.name} has none"
    return None


def _packages(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
              options: Options) -> str | None:
    have = variant.packages
    if have is None:
        return None  # not known before installation; the run itself reports missing-package
    needed = list(workload.requires)
    by_suffix = suffix_packages(variant.app)
    if options.suffix in by_suffix:
        needed.append(by_suffix[options.suffix])
    missing = [name for name in needed if name not in have]
    if missing:
        why = f"for -sf {options.suffix}" if by_suffix.get(options.suffix) in missing else \
            f"for workload {workload_name}"
        return f"variant {variant.name} lacks {variant.app} package {', '.join(missing)} {why}"
    return None


def _resources(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
               options: Options) -> str | None:
    if options.nodes > cluster.nodes:
        return f"{options.nodes} nodes requested; cluster {cluster.name} has {cluster.nodes}"
    cpus = options.tasks * options.threads
    if cpus > cluster.cores:
        return (f"{options.tasks} tasks x {options.threads} threads = {cpus} cores; "
                f"cluster {cluster.name} has {cluster.cores}")
    per_node = -(-options.tasks // options.nodes) * options.threads
    if per_node > cluster.cores_per_node:
        return (f"{per_node} cores per node requested; cluster {cluster.name} has {cluster.cores_per_node} per node")
    return None


def undecided(variant: VariantInfo, workload: Workload, options: Options) -> list[str]:
    """The rules above that passed only for want of an attribute: they report "unknown", not "ok"."""
    out = []
    if variant.target is None:
        out.append("architecture (io.archspec.cpu.target)")
    if "hardware.gpu.available" not in variant.attributes:
        out.append("gpu (hardware.gpu.available)")
    if variant.packages is None and (workload.requires or options.suffix in suffix_packages(variant.app)):
        out.append(f"packages ({variant.app}.packages)")
    return out


def _os_abi(cluster: ClusterInfo, variant: VariantInfo, *_: object) -> str | None:
    view = VIEWS.get(cluster.flux_view or "")
    image = image_glibc(variant)
    if view is None or image is None or view.glibc is None:
        return None  # not known: the run tells (a loader's "GLIBC_2.34 not found" is stored as os-abi)
    if view.glibc <= image:
        return None
    serves = serving_view(view.arch, image)
    where = (f"a MiniCluster with minicluster_flux_view_image={serves} serves it" if serves
             else "no Flux view known here serves it")
    attrs = variant.attributes
    return OsAbi(f"variant {variant.name} is {attrs.get('os.vendor')} {attrs.get('os.version')} (glibc "
                 f"{'.'.join(map(str, image))}), older than cluster {cluster.name}'s Flux view {cluster.flux_view} "
                 f"(glibc {'.'.join(map(str, view.glibc))}), whose flux and libpmi.so would not load in it; {where}")


def _glibc_version(text: object) -> tuple[int, ...] | None:
    parts = str(text or "").strip().split(".")
    return tuple(int(part) for part in parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None


def bound_libraries(options: Options) -> list[str]:
    """The run's binds that put host libraries on the loader's path in the container: those whose target holds an
    LD_LIBRARY_PATH entry or the LD_PRELOAD of the run (`ch-run -b SRC:DST --set-env=LD_LIBRARY_PATH=DST`)."""
    paths = [*options.env.get("LD_LIBRARY_PATH", "").split(":"), *(options.preload or "").replace(":", " ").split()]
    paths = [path.rstrip("/") for path in paths if path.startswith("/")]
    found = []
    for bind in options.bind:
        source, _, target = bind.partition(":")
        target = (target or source).split(":", 1)[0].rstrip("/") or "/"
        if any(path == target or path.startswith(target.rstrip("/") + "/") for path in paths):
            found.append(bind)
    return found


def _host_libraries(cluster: ClusterInfo, variant: VariantInfo, workload_name: str, workload: Workload,
                    options: Options) -> str | None:
    """A library bound in from the nodes was built against their glibc and may need any symbol version up to it
    (Debian 12's libmpi.so.40 needs GLIBC_2.34): an image with an older glibc (its artifact's `os.glibc`) cannot
    load it. Measured on local-slurm (docs/slurm.md): Debian 12's Open MPI bound into the Debian 11 image fails
    with "version `GLIBC_2.34' not found (required by /usr/local/lib/libmpi.so.40)". Unknown either side: the
    run tells (stored as os-abi)."""
    if variant.kind != "container" or not bound_libraries(options):
        return None
    image, host = _glibc_version(variant.attributes.get("os.glibc")), _glibc_version(cluster.glibc)
    if image is None or host is None or image >= host:
        return None
    return OsAbi(f"variant {variant.name} has glibc {variant.attributes.get('os.glibc')} (os.glibc), older than "
                 f"glibc {cluster.glibc} of cluster {cluster.name}'s nodes, whose libraries the run binds in "
                 f"({', '.join(bound_libraries(options))}): a library built there may need GLIBC_{cluster.glibc}")
