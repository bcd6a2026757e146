"""Hard compatibility rules: can this variant, launched with these options, run on this cluster? Pure.

`check` returns None when the point can run, else a one-line reason a person can act on. These rules
are never overridden by a model: a recommendation never picks a point they exclude.
"""

from __future__ import annotations

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
#: 2.31, jammy 2.35, noble 2.39; Rocky/RHEL 8 2.28, 9 2.34; Debian bullseye 2.31, bookworm 2.36)
GLIBC = {("ubuntu", "20.04"): (2, 31), ("ubuntu", "22.04"): (2, 35), ("ubuntu", "24.04"): (2, 39),
         ("rocky", "8"): (2, 28), ("rocky", "9"): (2, 34), ("debian", "11"): (2, 31), ("debian", "12"): (2, 36)}
#: The Flux Operator's Flux views (converged-computing/flux-views, as the operator's MiniCluster docs list
#: them): image -> (arch, OS, release). A view's flux and libpmi.so need a glibc at least as new as theirs
#: wherever they run: in the pods' image and, for Open MPI's flux PMI component, in the app's image.
FLUX_VIEWS = {
    "ghcr.io/converged-computing/flux-view-ubuntu:tag-noble": ("amd64", "ubuntu", "24.04"),
    "ghcr.io/converged-computing/flux-view-ubuntu:tag-jammy": ("amd64", "ubuntu", "22.04"),
    "ghcr.io/converged-computing/flux-view-ubuntu:tag-focal": ("amd64", "ubuntu", "20.04"),
    "ghcr.io/converged-computing/flux-view-rocky:tag-9": ("amd64", "rocky", "9"),
    "ghcr.io/converged-computing/flux-view-rocky:tag-8": ("amd64", "rocky", "8"),
    "ghcr.io/converged-computing/flux-view-ubuntu:arm-jammy": ("arm64", "ubuntu", "22.04"),
    "ghcr.io/converged-computing/flux-view-ubuntu:arm-focal": ("arm64", "ubuntu", "20.04"),
    "ghcr.io/converged-computing/flux-view-rocky:arm-9": ("arm64", "rocky", "9"),
    "ghcr.io/converged-computing/flux-view-rocky:arm-8": ("arm64", "rocky", "8"),
}


def glibc(vendor: object, version: object) -> tuple[int, int] | None:
    """The glibc of an OS release (`rocky`, `9.3` is Rocky 9), or None when it is not known here."""
    vendor, version = str(vendor or "").lower(), str(version or "")
    return GLIBC.get((vendor, version)) or GLIBC.get((vendor, version.split(".")[0]))


def serving_view(arch: str, image_glibc: tuple[int, int]) -> str | None:
    """The Flux view for `arch` with the newest glibc an image of `image_glibc` can load, if any."""
    fitting = [(glibc(*FLUX_VIEWS[view][1:]), view) for view in FLUX_VIEWS
               if FLUX_VIEWS[view][0] == arch and glibc(*FLUX_VIEWS[view][1:]) <= image_glibc]
    return max(fitting)[1] if fitting else None


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
    view = FLUX_VIEWS.get(cluster.flux_view or "")
    attrs = variant.attributes
    image = glibc(attrs.get("os.vendor"), attrs.get("os.version"))
    if variant.kind != "container" or view is None or image is None:
        return None  # not known: the run tells (a loader's "GLIBC_2.34 not found" is stored as os-abi)
    needs = glibc(*view[1:])
    if needs is None or needs <= image:
        return None
    serves = serving_view(view[0], image)
    where = (f"a MiniCluster with minicluster_flux_view_image={serves} serves it" if serves
             else "no Flux view known here serves it")
    return OsAbi(f"variant {variant.name} is {attrs.get('os.vendor')} {attrs.get('os.version')} (glibc "
                 f"{'.'.join(map(str, image))}), older than cluster {cluster.name}'s Flux view {cluster.flux_view} "
                 f"(glibc {'.'.join(map(str, needs))}), whose flux and libpmi.so would not load in it; {where}")


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
