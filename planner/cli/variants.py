"""The variants commands: fetch, show, build, push, import-matrix; and the plan's notes on where attributes came from.

`fetch` is the only command that reads a registry; everything else reads the cache beside the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.markup import escape

from planner.cli import args as cli_args
from planner.core import apps, compat, compspec, matrix
from planner.core.errors import InputError, WorkError
from planner.core.experiment import load_experiment
from planner.edges.compspec_cache import ArtifactCache, cache_path

MIRRORS_ENV = "COMPAT_LAB_REGISTRY_MIRRORS"
FETCH_HINT = "python -m planner variants fetch"


def artifacts(args: argparse.Namespace) -> ArtifactCache:
    return ArtifactCache(cache_path(cli_args.store_path(args)))


def _mirrors(args: argparse.Namespace) -> dict[str, str]:
    try:
        mirrors = compspec.parse_mirrors(os.environ.get(MIRRORS_ENV, ""))
    except ValueError as err:
        raise InputError(str(err), field=MIRRORS_ENV) from None
    try:
        mirrors.update(compspec.parse_mirrors(",".join(args.mirror)))
    except ValueError as err:
        raise InputError(str(err), field="--mirror") from None
    return mirrors


# ------------------------------------------------------------------------------------------------ fetch


def cmd_fetch(args: argparse.Namespace) -> int:
    from planner.edges import registry

    exp = load_experiment(args.experiment)
    _check_names(exp, args.variant)
    cache = artifacts(args)
    started = time.perf_counter()
    report = registry.fetch(exp, cache, _mirrors(args), names=args.variant)
    pulled = _pull_images(exp, report, _mirrors(args)) if args.images else []
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps({"cache": str(cache.root), "seconds": round(seconds, 3), "downloaded": report.downloaded,
                          "artifacts": [vars(entry) for entry in report.entries], "missing": report.missing,
                          "failed": report.failed, "invalid": report.invalid, "skipped": report.skipped,
                          "images": pulled}, indent=2))
    else:
        console = cli_args.console()
        hosts = sorted({entry.registry for entry in report.entries})
        console.print(f"fetched {len(report.entries)} compspec artifact(s) ({report.downloaded} downloaded, the rest "
                      f"already cached) from {', '.join(hosts) or 'no registry'} in {seconds:.2f} s into {cache.root}")
        by_image = {v.image: n for n, v in exp.variants.items()}
        for entry in report.entries:
            console.print(f"  {by_image[entry.image]}  {entry.digest[:19]}  {entry.found_by}", markup=False)
            if entry.image in report.changed:
                console.print(f"    attributes changed (artifact {entry.previous[:19]} -> {entry.digest[:19]}): "
                              f"{'; '.join(entry.changes)}", markup=False)
        for item in pulled:
            console.print(f"  image {item['name']} {'pulled' if item['pulled'] else 'already fetched'} into "
                          f"{item['image']}", markup=False)
        for line in report.skipped:
            console.print(f"  skipped {line}", markup=False)
        for line in report.missing + report.failed:
            print(f"error: {line}", file=sys.stderr)
        if report.failed:
            cached = [e for e in (cache.entry(v.image) for v in exp.variants.values() if v.image) if e]
            if cached:
                since = min(entry.fetched for entry in cached)
                console.print(f"cached attributes of {len(cached)} variant(s) keep working (cached from {since})")
    for line in report.invalid:
        print(f"error: {line}", file=sys.stderr)
    if report.invalid:
        return 2
    return 1 if report.failed or report.missing else 0


def _pull_images(exp: Any, report: Any, mirrors: dict[str, str]) -> list[dict[str, Any]]:
    """The images built here (`build:`) whose artifacts were fetched, pulled from the registry into the variants
    cache: local-slurm then runs what was fetched (a failure is the fetch's: one line in `report.failed`)."""
    from planner.core import compspec
    from planner.edges import images, registry
    from planner.edges.variant_info import cache_dir

    by_image = {variant.image: name for name, variant in exp.variants.items() if variant.build is not None}
    clients: dict[str, Any] = {}
    out = []
    for entry in report.entries:
        name = by_image.get(entry.image)
        if name is None or entry.image_digest is None:
            continue
        ref = compspec.mirrored(compspec.image_ref(entry.image), mirrors)
        client = clients.setdefault(ref.registry, registry.Client(ref.registry, named=False))
        try:
            path, now = images.pull_image(client, ref, entry.image_digest, cache_dir(), name)
        except (registry.RegistryError, OSError) as err:
            report.failed.append(f"{name}: image {entry.image}: {err}")
            continue
        out.append({"name": name, "image": str(path), "digest": entry.image_digest, "pulled": now})
    return out


def _check_names(exp: Any, names: list[str]) -> None:
    for name in names:
        if name not in exp.variants:
            raise InputError(f"unknown variant {name!r}; known: {', '.join(exp.variants)}", field="--variant")


# ------------------------------------------------------------------------------------------------- show


def cmd_show(args: argparse.Namespace) -> int:
    from planner.edges.variant_info import provenances

    exp = load_experiment(args.experiment)
    if args.name:
        _check_names(exp, [args.name])
    cache = artifacts(args)
    out = []
    for name, (info, where) in provenances(exp, artifacts=cache).items():
        if args.name and name != args.name:
            continue
        item: dict[str, Any] = {"name": name, "kind": info.kind, "image": info.image, "known": where.known,
                                "attributes": {key: {"value": value, "source": where.sourced.sources[key]}
                                               for key, value in where.sourced.attributes.items()}}
        for key, (value, source) in where.sourced.overridden.items():
            item["attributes"][key]["overrides"] = {"value": value, "source": source}
        if where.artifact is not None:
            item["artifact"] = vars(where.artifact)
        if info.kind == "native" and not info.installed:
            item["note"] = "not installed yet: its facts are detected when a sweep installs it"
        out.append(item)
    if args.json:
        print(json.dumps(out if not args.name else out[0], indent=2))
        return 0
    console = cli_args.console()
    for item in out:
        head = f"[bold]{item['name']}[/] ({item['kind']}{', ' + escape(item['image']) if item['image'] else ''})"
        console.print(head, soft_wrap=True)
        artifact = item.get("artifact")
        if artifact:
            console.print(f"  artifact {artifact['digest']} ({artifact['found_by']} on {artifact['registry']}), "
                          f"cached from {artifact['fetched']}", markup=False, soft_wrap=True)
            if artifact["changes"]:
                console.print(f"  changed from {artifact['previous']}: {'; '.join(artifact['changes'])}",
                              markup=False, soft_wrap=True)
        if not item["known"]:
            console.print(f"  [yellow]attributes unknown[/]: no compspec artifact cached; run `{FETCH_HINT}`")
        if item.get("note"):
            console.print(f"  {item['note']}")
        for key, attr in item["attributes"].items():
            value = _short(attr["value"])
            extra = f" (overrides {_short(attr['overrides']['value'])} from {attr['overrides']['source']})" \
                if "overrides" in attr else ""
            console.print(f"  {escape(key)} = {escape(value)}  [dim]<- {escape(attr['source'] + extra)}[/]",
                          soft_wrap=True)
    return 0


def _short(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else f"{text[:width - 3]}... ({len(text.split())} items)"


# ------------------------------------------------------------------------------------------------- push


def _manifests() -> str:
    """The manifests of the registered apps' upstream image matrices, for the help."""
    found = [d.image_manifest for d in map(apps.definition, apps.BUILTIN) if d is not None and d.image_manifest]
    return " or ".join(found) or "an upstream image matrix's manifest"


def cmd_push(args: argparse.Namespace) -> int:
    from planner.edges import images, registry
    from planner.edges.variant_info import provenances

    try:
        target = registry.registry_target(args.registry)
    except ValueError as err:
        raise InputError(str(err), field="--registry") from None
    exp = load_experiment(args.experiment)
    _check_names(exp, args.variant)
    natives = [n for n, v in exp.variants.items() if v.native and (not args.variant or n in args.variant)]
    built = [n for n, v in exp.variants.items() if v.build and (not args.variant or n in args.variant)]
    if not natives and not built:
        raise InputError("the experiment has no native or built variant to push", file=args.experiment)
    console, client, failed = cli_args.console(), registry.Client(target.registry), 0
    for name in built:
        failed += _push_built(console, client, target, name, images.app_of(exp, name))
    for name, (info, where) in provenances(exp, artifacts=artifacts(args)).items():
        if name not in natives:
            continue
        if not info.installed:
            console.print(f"[yellow]skipped[/] {name}: not installed, so nothing is detected yet (a local sweep "
                          "installs it)")
            failed += 1
            continue
        try:
            pushed = registry.push(client, target, name, compspec.generate(name, where.sourced.attributes))
        except registry.RegistryError as err:
            console.print(f"[red]error[/]: {name}: {err}", soft_wrap=True)
            return 1
        subject = f", subject {pushed.subject[:19]}" if pushed.subject else ""
        console.print(f"pushed {name} -> {pushed.reference} ({pushed.digest[:19]}{subject})", markup=False)
    return 1 if failed else 0


def _push_built(console: Any, client: Any, target: compspec.ImageRef, name: str, app: Any) -> int:
    """Publish a built image and its artifact (read from the image); 1 when it is not built yet."""
    from planner.edges import images, registry
    from planner.edges.variant_info import cache_dir

    cache = cache_dir()
    if not images.is_built(cache, name):
        console.print(f"[yellow]skipped[/] {name}: not built yet (python -m planner variants build {name})")
        return 1
    started = time.perf_counter()
    artifact = images.artifact_path(cache, name)
    if not artifact.exists() or artifact.stat().st_mtime < images.marker(cache, name).stat().st_mtime:
        images.write_artifact(cache, name, app)  # the role was run by hand, or rebuilt the image since
    data = artifact.read_bytes()
    family = compspec.attributes(compspec.parse(data)).get("io.archspec.cpu.target", "")
    try:
        digest = images.push_image(client, target, name, cache, "arm64" if family == "aarch64" else "amd64")
        pushed = registry.push(client, target, name, data)
    except registry.RegistryError as err:
        raise WorkError(f"{name}: {err}") from None
    console.print(f"pushed {name} -> {client.host}/{target.repository}:{name} ({digest[:19]}) and "
                  f"{pushed.reference} ({pushed.digest[:19]}) in {time.perf_counter() - started:.1f} s", markup=False)
    return 0


# ------------------------------------------------------------------------------------------------ build


def cmd_build(args: argparse.Namespace) -> int:
    from planner.edges import images
    from planner.edges.sweep import cancel_on_sigint
    from planner.edges.variant_info import cache_dir

    exp = load_experiment(args.experiment)
    buildable = images.built_variants(exp)
    for name in args.name:
        if name not in exp.variants:
            raise InputError(f"unknown variant {name!r}; known: {', '.join(exp.variants)}", field="NAME")
        if name not in buildable:
            raise InputError(f"variant {name!r} has no `build:` recipe; buildable: {', '.join(buildable) or 'none'}",
                             file=args.experiment)
    names = args.name or buildable
    if not names:
        raise InputError("the experiment declares no variant with a `build:` recipe", file=args.experiment)
    from rich.console import Console

    # with --json, stdout carries the JSON only: progress goes to stderr
    cache, console = cache_dir(), Console(stderr=True, highlight=False) if args.json else cli_args.console()
    console.print(f"[bold]Building {len(names)} image(s)[/] into {cache / images.IMAGES}: {', '.join(names)} "
                  "(once; built images are kept)", soft_wrap=True)
    with console.status("building images") as status, cancel_on_sigint() as cancelled:
        seconds = images.build(exp, names, cache, on_task=lambda task: status.update(f"building images: {task}"),
                               cancel=cancelled)
    out = [{"name": name, "image": str(images.image_dir(cache, name)),
            "artifact": str(images.artifact_path(cache, name)),
            "attributes": compspec.attributes(compspec.parse(images.artifact_path(cache, name).read_bytes()))}
           for name in names]
    if args.json:
        print(json.dumps({"seconds": round(seconds, 3), "images": out}, indent=2))
        return 0
    for item in out:
        attrs, app = item["attributes"], images.app_of(exp, item["name"])
        console.print(f"  {item['name']}  {item['image']}  {app.title or app.name} {attrs.get(f'{app.name}.release')}, "
                      f"{attrs.get('mpi.implementation')} {attrs.get('mpi.version')}, {attrs.get('os.name')} "
                      f"(glibc {attrs.get('os.glibc')}), {attrs.get('io.archspec.cpu.target')}",
                      markup=False, soft_wrap=True)
    console.print(f"built or checked in {seconds:.1f} s; next: python -m planner variants push --registry "
                  "HOST:PORT/REPO", soft_wrap=True)
    return 0


# ---------------------------------------------------------------------------------------- import-matrix


def cmd_import_matrix(args: argparse.Namespace) -> int:
    from planner.core import files
    from planner.core.yamlfile import MAX_FILE_BYTES

    # regular files of a bounded size only: a FIFO would block and /dev/zero never end
    manifest = files.read_text(args.file, "matrix manifest", MAX_FILE_BYTES)
    images = matrix.parse_matrix(manifest, args.file)
    path = Path(args.experiment)
    text = files.read_text(path, "experiment file", MAX_FILE_BYTES)
    new_text, added, kept = matrix.add_variants(text, args.experiment, images)
    if added:
        tmp = path.with_name(f".{path.name}.import")
        tmp.write_text(new_text)
        os.replace(tmp, path)
    print(f"{args.experiment}: added {len(added)} variant(s), {len(kept)} already declared"
          + (f": {', '.join(added)}" if added else ""))
    if added:
        print(f"next: {FETCH_HINT} -e {args.experiment}")
    return 0


# --------------------------------------------------------------------------------------- the plan's notes


def plan_notes(ws: Any, plan: Any) -> dict[str, Any]:
    """Where the planned variants' attributes came from: per variant, and per run the rules left unknown."""
    from planner.edges.variant_info import provenances

    names = {run.variant for run in plan.runs} | {x.variant for x in plan.excluded}
    where = provenances(ws.exp, ws.cache, ws.artifacts)
    variants: dict[str, Any] = {}
    for name in sorted(names):
        info, prov = where[name]
        if info.kind != "container":
            continue
        if prov.artifact is not None:
            variants[name] = {"attributes": "artifact", "digest": prov.artifact.digest,
                              "cached_from": prov.artifact.fetched, "changes": prov.artifact.changes,
                              "previous": prov.artifact.previous}
        else:
            variants[name] = {"attributes": "experiment" if prov.known else "unknown"}
        if prov.sourced.overridden:
            variants[name]["overridden"] = sorted(prov.sourced.overridden)
    unknown = {}
    for run in plan.runs:
        rules = compat.undecided(ws.variants[run.variant], ws.exp.apps[run.app].workloads[run.workload], run.options)
        if rules:
            unknown[run.id] = rules
    return {"variants": variants, "unknown": unknown}


def print_plan_notes(notes: dict[str, Any]) -> None:
    console = cli_args.console()
    variants = notes["variants"]
    fetched = {name: v for name, v in variants.items() if v["attributes"] == "artifact"}
    if fetched:
        since = min(v["cached_from"] for v in fetched.values())
        console.print(f"attributes of {len(fetched)} container variant(s) from compspec artifacts, cached from "
                      f"{since} (python -m planner variants show)", soft_wrap=True)
    for name, v in fetched.items():
        if v["changes"]:
            console.print(f"[yellow]attributes changed[/]: {name}: artifact {v['previous'][:19]} -> "
                          f"{v['digest'][:19]}: {escape('; '.join(v['changes']))}", soft_wrap=True)
    for name, v in variants.items():
        if v.get("overridden"):
            console.print(f"  {name}: {escape(', '.join(v['overridden']))} typed in the experiment, overriding the "
                          "artifact", soft_wrap=True)
    unknown = [name for name, v in variants.items() if v["attributes"] == "unknown"]
    if unknown:
        console.print(f"[yellow]attributes unknown[/]: {', '.join(unknown)} (no compspec artifact cached: run "
                      f"`{FETCH_HINT}`)", soft_wrap=True)
    rules = Counter(rule for listed in notes["unknown"].values() for rule in listed)
    if rules:
        console.print(f"rules that report unknown for want of attributes: "
                      f"{', '.join(f'{rule} in {n} runs' for rule, n in rules.items())}", soft_wrap=True)


# ------------------------------------------------------------------------------------------------- main


def add_commands(sub: Any) -> None:
    p = sub.add_parser("variants", help="compspec artifacts: fetch into the cache, show attributes, push, import",
                       description="Variant attributes come from compspec artifacts in OCI registries (referrers "
                                   "of the image, or the <tag>-compspec tag), fetched into a cache beside the "
                                   "store, from detection (the app's own report, the host) for native variants, "
                                   "and from the experiment as an override.")
    commands = p.add_subparsers(dest="variants_command", required=True, metavar="COMMAND")

    f = commands.add_parser("fetch", help="pull every container variant's artifact into the cache (once per digest)",
                            description="Pull each container variant's compspec artifact into the cache beside the "
                                        "store, so plan, sweep and recommend work offline. Exit 1 when a registry "
                                        "failed or an artifact is missing, 2 when an artifact does not validate.")
    cli_args.experiment_arg(f)
    f.add_argument("--variant", action="append", default=[], metavar="V", help="only this variant (repeatable)")
    f.add_argument("--images", action="store_true",
                   help="also pull the images built here (`build:`) from the registry into the variants cache, once "
                        "per digest: local-slurm then runs what was fetched")
    f.add_argument("--mirror", action="append", default=[], metavar="FROM=TO",
                   help=f"read registry FROM at TO, e.g. ghcr.io=127.0.0.1:5000 (repeatable; also ${MIRRORS_ENV})")
    cli_args.json_arg(f)
    cli_args.store_arg(f)
    f.set_defaults(func=cmd_fetch)

    s = commands.add_parser("show", help="each variant's attributes and where each came from",
                            description="Print each variant's attributes with their source: an artifact (digest, "
                                        "when fetched), the experiment (an override, and what it replaced) or "
                                        "detection (the app's own report, the host). Reads the cache only.")
    s.add_argument("name", nargs="?", default=None, metavar="NAME", help="only this variant")
    cli_args.experiment_arg(s)
    cli_args.json_arg(s)
    cli_args.store_arg(s)
    s.set_defaults(func=cmd_show)

    u = commands.add_parser("push", help="publish built images and native variants' artifacts to a registry",
                            description="Publish each built image (variants build) to HOST[:PORT]/REPO as <name> "
                                        "(an OCI image, one tar layer) with its artifact read from the image; and "
                                        "generate a compspec artifact for each installed native variant from what "
                                        "was detected (the app's own report, the host). Artifacts go to "
                                        "<name>-compspec, with a subject where REPO:<name> is an image manifest.")
    u.add_argument("--registry", required=True, metavar="HOST[:PORT]/REPO")
    u.add_argument("--variant", action="append", default=[], metavar="V", help="only this variant (repeatable)")
    cli_args.experiment_arg(u)
    cli_args.store_arg(u)
    u.set_defaults(func=cmd_push)

    b = commands.add_parser("build", help="build the variants declared with `build:` as images on this machine",
                            description="Build each variant declared with a `build:` recipe from Debian's archive "
                                        "(roles/container_images: mmdebstrap, root) into <cache>/images/NAME as a "
                                        "Charliecloud directory image, once, and write its compspec artifact from "
                                        "what the image holds (os-release, what the app's definition runs to tell "
                                        "its build, the MPI library its executable links).")
    b.add_argument("name", nargs="*", metavar="NAME", help="only these variants (default: all with `build:`)")
    cli_args.experiment_arg(b)
    cli_args.json_arg(b)
    b.set_defaults(func=cmd_build)

    m = commands.add_parser("import-matrix", help="add every image of a matrix manifest as a variant",
                            description="Add each image of a matrix manifest (images: [{name, artifact}], as "
                                        f"{_manifests()}) to the experiment as a container variant "
                                        "declared by its URI; images already declared are kept.")
    m.add_argument("file", metavar="FILE")
    cli_args.experiment_arg(m)
    m.set_defaults(func=cmd_import_matrix)
