"""Expand an experiment into a plan: runs to execute and points excluded with their reason. Pure.

The inputs are the validated `Experiment`, the clusters as `ClusterInfo` (attributes detected by
the edges) and the variants as `VariantInfo` (declared compspec attributes merged with the facts a
materialized variant reports). Compatibility rules live in `compat`; the experiment's launch rules are
applied to each point's options (`launch.apply_rules`) before those rules judge it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from planner.core import apps, compat
from planner.core.errors import InputError
from planner.core.experiment import Experiment, Options, Sweep
from planner.core.inputs import digest as input_digest
from planner.core.launch import apply_rules
from planner.core.types import ClusterInfo, Excluded, Plan, Run, VariantInfo


def expand(exp: Experiment, clusters: dict[str, ClusterInfo], variants: dict[str, VariantInfo], *,
           cluster: str | None = None, workloads: Iterable[str] = (), only_variants: Iterable[str] = (),
           repeats: int | None = None, inputs: Mapping[tuple[str, str], str] | None = None) -> Plan:
    """Every point of every sweep (filtered by cluster, workloads and variants) as a run or an exclusion.

    `inputs` holds the text of each (variant, workload) input the edges could read; it goes into the run ids.
    A Flux cluster whose view is not configured gets the view its planned images' OS call for (compat.miniclusters),
    and the points of images that view cannot serve are excluded as os-abi.
    """
    plan = _expand(exp, clusters, variants, cluster, workloads, only_variants, repeats, inputs)
    chosen = {}
    for name, info in clusters.items():
        if info.launcher != "flux" or info.kind == "local" or cluster not in (None, name):
            continue
        planned = sorted({run.variant for run in plan.runs if run.cluster == name}
                         | {x.variant for x in plan.excluded if x.cluster == name and x.reason == "os-abi"})
        if not planned:
            continue
        configs = compat.miniclusters(info, [variants[v] for v in planned])
        plan.miniclusters[name] = configs
        if configs and info.flux_view is None:
            chosen[name] = dataclasses.replace(info, flux_view=configs[0].view.image)
    if chosen:
        miniclusters = plan.miniclusters
        plan = _expand(exp, {**clusters, **chosen}, variants, cluster, workloads, only_variants, repeats, inputs)
        plan.miniclusters = miniclusters
    return plan


def _expand(exp: Experiment, clusters: dict[str, ClusterInfo], variants: dict[str, VariantInfo],
            cluster: str | None, workloads: Iterable[str], only_variants: Iterable[str], repeats: int | None,
            inputs: Mapping[tuple[str, str], str] | None) -> Plan:
    inputs = inputs or {}
    wanted_workloads, wanted_variants = set(workloads), set(only_variants)
    _check_filters(exp, cluster, wanted_workloads, wanted_variants)
    plan, seen = Plan(), set()
    for index, sweep in enumerate(exp.sweeps):
        names = [c for c in sweep.clusters if cluster in (None, c)]
        variant_names = list(exp.variants) if sweep.variants == "*" else list(sweep.variants)
        variant_names = [v for v in variant_names if exp.variants[v].app == sweep.app
                         and (not wanted_variants or v in wanted_variants)]
        app = exp.apps[sweep.app]
        definition = apps.resolve(sweep.app, app)
        for cluster_name in names:
            info = clusters[cluster_name]
            for workload_name in sweep.workloads:
                if wanted_workloads and workload_name not in wanted_workloads:
                    continue
                workload = app.workloads[workload_name]
                for variant_name in variant_names:
                    variant = variants[variant_name]
                    for point in sweep.options.points():
                        options, parameters = _options(exp, index, sweep, point, workload.parameters)
                        labels = {**point, "variant": variant_name, "workload": workload_name,
                                  "cluster": cluster_name}
                        common = (sweep.name, cluster_name, sweep.app, workload_name, variant_name)
                        rule = sweep.options.excludes(labels)
                        if rule is not None:
                            plan.excluded.append(Excluded(*common, dict(point), "excluded",
                                                          f"matches exclude rule {rule}"))
                            continue
                        options, fired, warnings = apply_rules(exp.launch_rules, sweep.app, info, variant, options)
                        why = (compat.check(info, variant, workload_name, workload, options)
                               or definition.parameter_error(parameters, options))
                        if why is not None:
                            plan.excluded.append(Excluded(*common, dict(point), compat.reason_code(why), why))
                            continue
                        source = workload.native if variant.kind == "native" else workload.container
                        if source is not None and source.uses is not None:  # what the input cannot take
                            parameters = {k: v for k, v in parameters.items() if k in source.uses}
                        if variant.kind == "container" and source is not None and source.substitute \
                                and info.image_dir is None:
                            # what the run reads is the image's input as shipped: so is its id
                            source = source.model_copy(update={"substitute": ()})
                            warnings = (*warnings, f"workload {workload_name}'s substitutions are not applied on "
                                                   f"{cluster_name}: it pulls the image, whose input is read as "
                                                   "shipped")
                        read = input_digest(source, inputs.get((variant_name, workload_name)))
                        for repeat in range(repeats or sweep.repeats):
                            run = Run(*common, options, parameters, repeat, sweep.timeout, read, fired, warnings)
                            if run.id in seen:
                                continue
                            seen.add(run.id)
                            plan.runs.append(run)
    return plan


def _options(exp: Experiment, index: int, sweep: Sweep, point: dict[str, Any],
             defaults: dict[str, Any]) -> tuple[Options, dict[str, Any]]:
    try:
        options = Options.model_validate(point)
    except ValidationError as err:  # load_experiment validates every point; this guards direct callers
        raise exp.error(f"impossible option {point}: {err.errors()[0]['msg']}", "sweeps", index, "options") from None
    parameters = {**defaults, **{k: v for k, v in options.parameters.items() if k in defaults}}
    return options, parameters


def _check_filters(exp: Experiment, cluster: str | None, workloads: set[str], variants: set[str]) -> None:
    if cluster is not None and cluster not in exp.clusters:
        raise InputError(f"unknown cluster {cluster!r}; known: {', '.join(exp.clusters)}", field="--cluster")
    known = {w for app in exp.apps.values() for w in app.workloads}
    for name in sorted(workloads - known):
        raise InputError(f"unknown workload {name!r}; known: {', '.join(sorted(known))}", field="--workload")
    for name in sorted(variants - set(exp.variants)):
        raise InputError(f"unknown variant {name!r}; known: {', '.join(exp.variants)}", field="--variant")
