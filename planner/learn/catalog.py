"""The points a recommendation ranks: choices in contexts, their features, hard-rule verdicts and commands.

A `Catalog` joins what the store measured (cluster and variant attributes as they were when the runs
happened) with what the experiment declares (clusters, variants, sweeps, and so the exact launch
command). Points the experiment knows are judged by `planner.core.compat.check` with the experiment's own
objects and rendered by `planner.core.launch.render`. Imported points (a cluster or variant the experiment
does not declare) are judged by the same `compat.check` on stand-ins built from their stored
attributes, so the rules attributes can decide (architecture ancestry, GPU, packages for a suffix,
cores) still hold; they have no launch command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from planner.core import archs, compat
from planner.core.errors import InputError
from planner.core.experiment import Experiment, Options, Source, Workload, parameter_error
from planner.core.launch import apply_rules, render
from planner.core.plan import expand
from planner.core.types import ClusterInfo, Run, VariantInfo, canonical_options
from planner.learn.columns import Choice, Context, Runs, canonical
from planner.learn.features import Features, choice_features, context_features, describe

#: Build targets that mean "for the machine it was built on": an imported build of one runs only there.
HOST_TARGETS = (archs.NATIVE, "host")
#: Stands in for the input of a workload the experiment does not declare (imported data).
_ANY_SOURCE = Source(workdir="/", input="-")


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Everything known about clusters, variants and workloads, from the store and the experiment.

    Built by the CLI (`planner.cli.args.catalog`, from the experiment file); `with_stored` gives a new
    one that also knows the attributes stored with some runs. Only its private caches ever change.
    """

    exp: Experiment | None = None
    cluster_infos: dict[str, ClusterInfo] = dataclasses.field(default_factory=dict)
    variant_infos: dict[str, VariantInfo] = dataclasses.field(default_factory=dict)
    stored_clusters: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    stored_variants: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: imported builds for one machine (`HOST_TARGETS`), per (app, variant): the clusters they ran on
    built_on: dict[tuple[str, str], frozenset[str]] = dataclasses.field(default_factory=dict)
    #: features, verdicts and descriptions, computed once per point
    _cache: dict[Any, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    #: the experiment's points per app: they depend on the experiment alone, so `with_stored` keeps them
    _points: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def with_stored(self, clusters: dict[str, dict[str, Any]],
                    variants: dict[tuple[str, str], dict[str, Any]]) -> Catalog:
        """This catalog with these stored attributes too (they win over the experiment's and earlier ones)."""
        if all(self.stored_clusters.get(k) == v for k, v in clusters.items()) and \
                all(self.stored_variants.get(k) == v for k, v in variants.items()):
            return self
        return dataclasses.replace(self, stored_clusters={**self.stored_clusters, **clusters},
                                   stored_variants={**self.stored_variants, **variants}, _cache={})

    def with_built_on(self, found: dict[tuple[str, str], Iterable[str]]) -> Catalog:
        """This catalog knowing these clusters too as where each imported host build ran (`built_on`)."""
        merged = {key: frozenset(self.built_on.get(key, frozenset()) | set(clusters))
                  for key, clusters in found.items()}
        if all(self.built_on.get(key) == clusters for key, clusters in merged.items()):
            return self
        return dataclasses.replace(self, built_on={**self.built_on, **merged}, _cache={})

    # ----------------------------------------------------------------------------------- attributes

    def cluster_attrs(self, name: str) -> dict[str, Any]:
        """As stored with the runs (what was measured), else as the experiment describes the cluster."""
        if name in self.stored_clusters:
            return self.stored_clusters[name]
        info = self.cluster_infos.get(name)
        return info.attributes() if info else {}

    def variant_attrs(self, app: str, name: str) -> dict[str, Any]:
        if (app, name) in self.stored_variants:
            return self.stored_variants[(app, name)]
        info = self.variant_infos.get(name)
        return dict(info.attributes) if info and info.app == app else {}

    def clusters(self) -> list[str]:
        return sorted(set(self.stored_clusters) | set(self.cluster_infos))

    # ------------------------------------------------------------------------------------- features

    def features(self, context: Context, choice: Choice) -> Features:
        return {**self._context_features(context), **self._choice_features(context.cluster, choice)}

    def context_features(self, context: Context) -> Features:
        return self._context_features(context)

    def _context_features(self, context: Context) -> Features:
        key = ("ctx", context)
        if key not in self._cache:
            self._cache[key] = context_features(app=context.app, workload=context.workload,
                                                params=context.parameters(),
                                                cluster=self.cluster_attrs(context.cluster))
        return self._cache[key]

    def _choice_features(self, cluster: str, choice: Choice) -> Features:
        key = ("choice", cluster, choice)
        if key not in self._cache:
            self._cache[key] = choice_features(app=choice.app, cluster=self.cluster_attrs(cluster),
                                               variant=self.variant_attrs(choice.app, choice.variant),
                                               launch=choice.options())
        return self._cache[key]

    def describe(self, group: str, context: Context, choice: Choice) -> str:
        key = ("describe", group, context.cluster if group == "cpu" else None, choice.variant, choice.launch)
        if key not in self._cache:
            self._cache[key] = describe(group, app=choice.app, cluster=self.cluster_attrs(context.cluster),
                                        variant=self.variant_attrs(choice.app, choice.variant),
                                        launch=choice.options())
        return self._cache[key]

    # ---------------------------------------------------------------------------------- hard rules

    def rule(self, context: Context, choice: Choice) -> str | None:
        """Why the hard rules say this choice cannot run in this context, or None when it can."""
        key = ("rule", context, choice)
        if key not in self._cache:
            self._cache[key] = self._rule(context, choice)
        return self._cache[key]

    def _rule(self, context: Context, choice: Choice) -> str | None:
        key = ("options", choice.launch, context.params)
        if key not in self._cache:
            try:
                self._cache[key] = Options.model_validate({**choice.options(), **context.parameters()})
            except ValidationError as err:
                self._cache[key] = f"options {choice.launch} are not valid launch options ({err.errors()[0]['msg']})"
        options = self._cache[key]
        if isinstance(options, str):
            return options
        elsewhere = self._built_elsewhere(context, choice)
        if elsewhere is not None:
            return elsewhere
        workload = self._workload(context)
        cluster = self.cluster_infos.get(context.cluster) or self._stand_in_cluster(context.cluster, choice)
        variant = self._known_variant(choice) or self._stand_in_variant(choice)
        if self.exp is not None and self._known(context, choice):
            # judged as the plan judges it: with what the experiment's launch rules add (a bind, a PMI flavour)
            options = apply_rules(self.exp.launch_rules, context.app, cluster, variant, options)[0]
        if workload is None or not self._known(context, choice):
            stand_in = ("workload", context.app, context.workload)
            if stand_in not in self._cache:
                requires = workload.requires if workload is not None else ()
                self._cache[stand_in] = Workload(requires=requires, native=_ANY_SOURCE, container=_ANY_SOURCE)
            workload = self._cache[stand_in]
        return compat.check(cluster, variant, context.workload, workload, options)

    def _built_elsewhere(self, context: Context, choice: Choice) -> str | None:
        """Why an imported build for one machine (-march=native, host) cannot be assumed to run on this cluster:
        it is the binary built on the machine it was measured on, not a recipe to build it here."""
        if self._known_variant(choice) is not None:
            return None  # the experiment's own variants are judged by compat.check
        target = self.variant_attrs(choice.app, choice.variant).get("io.archspec.cpu.target")
        if target not in HOST_TARGETS:
            return None
        hosts = self.built_on.get((choice.app, choice.variant), frozenset())
        if context.cluster in hosts:
            return None
        where = f"built on {', '.join(sorted(hosts))}" if hosts else "built on the machine it was measured on"
        return f"a {target} build {where}: it runs there, it is not known to run on {context.cluster}"

    def _workload(self, context: Context) -> Workload | None:
        app = self.exp.apps.get(context.app) if self.exp else None
        return app.workloads.get(context.workload) if app is not None else None

    def _known_variant(self, choice: Choice) -> VariantInfo | None:
        info = self.variant_infos.get(choice.variant)
        return info if info is not None and info.app == choice.app else None

    def _known(self, context: Context, choice: Choice) -> bool:
        """The experiment declares this cluster, variant and workload: its rules and command apply."""
        workload = self._workload(context)
        return workload is not None and context.cluster in self.cluster_infos and \
            self._known_variant(choice) is not None

    def _stand_in_variant(self, choice: Choice) -> VariantInfo:
        key = ("variant", choice.app, choice.variant)
        if key not in self._cache:
            if (choice.app, choice.variant) not in self.stored_variants:
                # judging it with no attributes would pass every rule (an unknown target "may run")
                raise InputError(f"variant {choice.variant} of {choice.app} has no attributes in the store nor in the "
                                 "fitted model: run `python -m planner fit` again")
            self._cache[key] = VariantInfo(choice.variant, "container", choice.app,
                                           self.variant_attrs(choice.app, choice.variant),
                                           image=f"docker://{choice.variant}")
        return self._cache[key]

    def _stand_in_cluster(self, name: str, choice: Choice) -> ClusterInfo:
        key = ("cluster", name)
        if key not in self._cache:
            self._cache[key] = self._cluster_from_attributes(name)
        cluster = self._cache[key]
        if not cluster.arch:  # nothing known contradicts the build: let the architecture rule pass
            target = self.variant_attrs(choice.app, choice.variant).get("io.archspec.cpu.target")
            return dataclasses.replace(cluster, arch=archs.family(target) or "")
        return cluster

    def _cluster_from_attributes(self, name: str) -> ClusterInfo:
        attrs = self.cluster_attrs(name)
        micro = archs.normalize(attrs.get("microarchitecture"))
        family = archs.family(micro) or archs.family(attrs.get("arch"))
        nodes = int(attrs.get("nodes") or 1)
        # unknown core counts set no limit: the resources rule only excludes what it can know
        cores = int(attrs.get("cores_per_node") or 1_000_000)
        return ClusterInfo(name, str(attrs.get("kind") or "imported"), family or "", micro, nodes, cores,
                           int(attrs.get("gpus_per_node") or 0), attrs.get("instance_type"),
                           container_runtime="imported")

    # ------------------------------------------------------------------------------------- commands

    def command(self, context: Context, choice: Choice) -> str | None:
        """The exact launch command on this cluster, or None when the experiment does not declare the point
        (`no_command` says why)."""
        if self.exp is None or not self._known(context, choice) or not self.declares(context.cluster, choice):
            return None
        launch = choice.options()
        stored = context.parameters()
        workload = self._workload(context)
        assert workload is not None
        # in the workload's declared order, as the plan passes them (`-v x 1 -v y 1 ...`)
        params = {**{k: stored[k] for k in workload.parameters if k in stored}, **stored}
        # imported values were never checked against the workload: one the app would take as code is not shown
        if any(parameter_error(k, workload.parameters[k], v) for k, v in params.items() if k in workload.parameters):
            return None
        try:
            options = Options.model_validate(launch)
        except ValidationError:
            return None
        run = Run("recommend", context.cluster, context.app, context.workload, choice.variant, options, params, 0, 0.0)
        try:
            return render(run, self.cluster_infos[context.cluster], self.variant_infos[choice.variant],
                          self.exp.apps[context.app]).shell()
        except (AssertionError, KeyError):  # e.g. a native variant on a workload without a native input
            return None

    def declares(self, cluster: str, choice: Choice) -> bool:
        """The experiment's sweeps declare this choice on this cluster: its options are the experiment's own,
        checked by its rules. Options only measured (an imported CSV's `option.preload`, `option.env`, ...)
        may hold anything and are never shown as a command to run."""
        key = ("declared", choice.app)
        if key not in self._cache:
            _, declared = self.experiment_points(choice.app)
            self._cache[key] = {(name, found) for name, choices in declared.items() for found in choices}
        return (cluster, choice) in self._cache[key]

    def no_command(self, context: Context, choice: Choice) -> str:
        """Why `command` gives no command for this point."""
        if self.exp is None or not self._known(context, choice):
            return "unavailable: the experiment does not declare this cluster, variant and workload"
        if not self.declares(context.cluster, choice):
            return ("imported, not validated: the experiment's sweeps do not declare these options on this cluster, "
                    "so they were never checked as its own are")
        return "unavailable: its workload parameters are not ones the experiment's workload accepts"

    # ------------------------------------------------------------------------------ experiment points

    def experiment_points(self, app: str) -> tuple[list[Context], dict[str, list[Choice]]]:
        """Contexts the experiment's sweeps declare for an app, and their choices per cluster (those of
        excluded points included: recommend says why they are left out)."""
        if self.exp is None or app not in self.exp.apps:
            return [], {}
        if app not in self._points:
            self._points[app] = self._experiment_points(app)
        contexts, choices = self._points[app]
        return list(contexts), {cluster: list(found) for cluster, found in choices.items()}

    def _experiment_points(self, app: str) -> tuple[list[Context], dict[str, list[Choice]]]:
        assert self.exp is not None
        plan = expand(self.exp, self.cluster_infos, self.variant_infos)
        contexts: dict[Context, None] = {}
        choices: dict[str, dict[Choice, None]] = {}
        for run in plan.runs:
            if run.app == app:
                contexts[Context(run.cluster, app, run.workload, canonical(run.parameters))] = None
                choices.setdefault(run.cluster, {})[Choice(app, run.variant, _launch_text(run.options))] = None
        for point in plan.excluded:
            if point.app != app:
                continue
            try:
                options = Options.model_validate(point.options)
            except ValidationError:
                continue
            choices.setdefault(point.cluster, {})[Choice(app, point.variant, _launch_text(options))] = None
        return list(contexts), {cluster: list(found) for cluster, found in choices.items()}

    def workloads(self, app: str) -> list[str]:
        if self.exp is None or app not in self.exp.apps:
            return []
        return list(self.exp.apps[app].workloads)

    def default_params(self, app: str, workload: str) -> str | None:
        if self.exp is None or app not in self.exp.apps or workload not in self.exp.apps[app].workloads:
            return None
        return canonical(dict(self.exp.apps[app].workloads[workload].parameters))


def _launch_text(options: Options) -> str:
    """Launch options as the store keeps them: without defaults and without workload parameters."""
    return canonical(canonical_options(options, {}))


def choice_sets(clusters: Iterable[str], stored: dict[str, list[Choice]],
                declared: dict[str, list[Choice]]) -> dict[str, list[Choice]]:
    """The choices to rank on each cluster: those measured or declared there; on a cluster where nothing
    was measured or declared, every choice measured anywhere (the hard rules then keep what can run)."""
    everything = every_choice(stored)
    return {cluster: list(dict.fromkeys(stored.get(cluster, []) + declared.get(cluster, []))) or everything
            for cluster in clusters}


def every_choice(stored: dict[str, list[Choice]]) -> list[Choice]:
    return list(dict.fromkeys(choice for found in stored.values() for choice in found))


def built_on(runs: Runs) -> dict[tuple[str, str], set[str]]:
    """Per (app, variant) whose build target is one machine's own (`HOST_TARGETS`): the clusters it ran on
    successfully (a native build stored as incompatible or failed on a cluster did not run there)."""
    found: dict[tuple[str, str], set[str]] = {}
    for c, k in set(zip(runs.ctx[runs.ok].tolist(), runs.choice[runs.ok].tolist(), strict=True)):
        choice = runs.choices[k]
        if runs.variant_attrs.get((choice.app, choice.variant), {}).get("io.archspec.cpu.target") in HOST_TARGETS:
            found.setdefault((choice.app, choice.variant), set()).add(runs.contexts[c].cluster)
    return found
