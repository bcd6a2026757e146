"""Adaptive sweeps: which run to do next, and when to stop. Pure (numpy).

**Belief.** In each context (cluster + workload + parameters) the true value of every candidate
point (its sign x log FOM, so higher is better) is a Gaussian process. Its prior mean is what the
fitted model says before anything ran here: the ranking model's score (`planner.learn.regret_model`: how
close the point comes to the best of its context, learnt from every other context) plus a level
shared by the context; its covariance says that points sharing attributes (the labels
`Catalog.describe` gives each choice group: the build target, the MPI, the launch shape, ...) move
together, so one run teaches about its neighbours. A run observes its point's value with run-to-run
noise; a point's runs are read by their median, as `summary` and `recommend` read them, so that one
slow run (a warm-up, a burst of load on a shared or burstable machine) does not outweigh the others.
The context's level is unknown (a flat prior), so only differences between points matter.

**Refit.** After each batch the posterior is recomputed in closed form: one linear solve over the
measured points, milliseconds for a few hundred candidates. The spread of the truth around the
prior and the run-to-run noise are re-estimated from the context's own measurements, each shrunk
towards what the other contexts showed.

**Choice** (`Adaptive.next_batch`). Each point's expected gain is the expected improvement of one
more run of it over the best measured point (on the posterior mean, so a run that teaches little
because the noise is large gains little), times the chance it runs at all (the classifier's). The
batch is picked greedily, each pick counted as measured at its predicted value before the next
(the kriging believer), so a batch spreads over what it does not know yet. Repeats of a promising
point compete with new points and count against the budget like any run.

**Stopping.** At the budget, when nothing is left to run, or when, in every context, the chance that
some unmeasured point beats the best measured one by `MARGIN` or more is below `CHANCE` (so no single
point has that chance either), and so is the chance that a measured point the plan can run again does
(a contender measured once, within the context's noise of the best: where runs are noisy, it is run
again rather than trusted or dismissed on one run).

Without a prior (no model: nothing stored that the model could learn from) every point starts
equal, and the first batch takes one point per variant.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.core import archs
from planner.core.metrics import Metric
from planner.learn import baselines
from planner.learn.baselines import SUCCESS_SHARE
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, Runs
from planner.learn.features import CHOICE_GROUPS
from planner.learn.table import Predictions

#: An unmeasured point that could beat the best measured one by this much (log of 1.05) ...
MARGIN = math.log(1.05)
#: ... with at least this chance keeps the sweep going.
CHANCE = 0.10
#: Without a prior: how far apart candidates are assumed to be (log scale, ~30%) until runs say otherwise.
DEFAULT_SPREAD = 0.3
#: Without repeats anywhere: the run-to-run noise assumed (log scale, ~10%).
DEFAULT_NOISE = 0.1
#: The smallest spread believed: a prior is never taken as exact.
MIN_SPREAD = 0.02
#: Prior variance of the context's level: flat (only differences between points matter).
LEVEL_VARIANCE = 100.0
#: Share of a point's variance that is its own, not shared with points of the same attributes.
OWN_SHARE = 0.5
#: How many measured points the prior guess of the noise is worth.
PRIOR_WEIGHT = 4.0
#: The model's spread between points may be off by about this factor (sd of its scale, prior mean 1).
SCALE_SD = 0.5
#: Spreads tried (factors of the prior guess) and how far from the guess they are believed (sd of log2 factor).
SPREAD_GRID = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
#: How much of the `nearest_cluster` rule's view the truth may follow beyond the model's (sd of its weight).
RULE_SD = 0.5
#: The lowest share of the best a rule's estimate is read as (a choice that failed there counts as 0).
RULE_FLOOR = 0.05
SPREAD_PRIOR_SD = 1.0


@dataclass
class Point:
    """One candidate (a choice in a context) of an adaptive sweep and what its runs showed."""

    context: Context
    choice: Choice
    labels: tuple[str, ...]  #: one label per choice group (`Catalog.describe`): what it shares with others
    prior: float  #: prior mean of its sign x log FOM
    p_ok: float = 1.0  #: chance that it runs at all (the classifier's)
    runs_left: int = 1  #: runs of it the plan still holds
    values: list[float] = field(default_factory=list)  #: sign x log FOM of its successful runs
    failed: int = 0  #: runs that failed
    note: str | None = None  #: what else makes it uncertain (e.g. never measured on this architecture)
    #: the log share of the best the `nearest_cluster` rule gives it (None: the rule never saw it)
    rule: float | None = None

    @property
    def runs(self) -> int:
        return len(self.values) + self.failed

    @property
    def out(self) -> bool:
        """Failed in most of its runs: not run again, never the best (as `ranking.rank` leaves it out)."""
        return self.failed > 0 and len(self.values) < SUCCESS_SHARE * self.runs

    @property
    def measured(self) -> bool:
        return bool(self.values) and not self.out

    def label(self) -> str:
        options = " ".join(f"{k}={v}" for k, v in sorted(self.choice.options().items())) or "(default options)"
        return f"{self.context.workload} {self.choice.variant} {options}"


@dataclass
class Decision:
    """One run chosen, and why."""

    point: int  #: index into `Adaptive.points`
    gain: float  #: expected gain (log scale) over the best measured point
    ahead: float  #: predicted value minus the best measured one (log scale)
    sd: float  #: posterior standard deviation of the point's value (log scale)
    why: str


@dataclass
class Belief:
    """The posterior in one context."""

    indices: list[int]  #: into `Adaptive.points`
    mean: np.ndarray
    var: np.ndarray
    best: int | None  #: the measured point believed best (index into `Adaptive.points`)
    reference: float  #: the value gains are measured against: the best's posterior mean (else the best prior)
    chance: dict[int, float]  #: per unmeasured point: chance it beats the best by MARGIN or more
    #: per measured point other than the best that the plan can run again: chance it beats the best by MARGIN or more
    contest: dict[int, float] = field(default_factory=dict)

    @property
    def chance_any(self) -> float:
        """That some unmeasured point beats the best by MARGIN or more (as if they were independent: an upper
        bound for points that move together)."""
        return 1.0 - math.prod(1.0 - p for p in self.chance.values())

    @property
    def contest_any(self) -> float:
        """That some measured point other than the best, with runs left, beats it by MARGIN or more (the same
        upper bound)."""
        return 1.0 - math.prod(1.0 - p for p in self.contest.values())

    @property
    def confident(self) -> bool:
        return self.best is not None and self.chance_any < CHANCE and self.contest_any < CHANCE


@dataclass
class Outcome:
    """What an adaptive sweep believes about one context at the end."""

    context: Context
    best: Point | None
    chance: float  #: that some unmeasured point beats the best by MARGIN or more
    likeliest: Point | None  #: the unmeasured point likeliest to
    likeliest_chance: float
    runs_left: int  #: runs an exhaustive sweep would still do here


def kernel(labels: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Correlation of points through what they share, 1 on the diagonal: half of a point's variance is its
    own (interactions no single attribute explains: a release that is slow on one OS only), half is shared
    equally among the attribute groups whose label varies among the points (equal labels correlate). A sum
    of equality kernels: positive semi-definite."""
    n = len(labels)
    shared = np.zeros((n, n))
    groups = 0
    for g in range(len(labels[0]) if n else 0):
        column = [row[g] for row in labels]
        if len(set(column)) > 1:
            codes = np.unique(np.array(column, dtype=object).astype(str), return_inverse=True)[1]
            shared += codes[:, None] == codes[None, :]
            groups += 1
    if not groups:
        return np.eye(n)
    return OWN_SHARE * np.eye(n) + (1 - OWN_SHARE) * shared / groups


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0))) if z.size else z


def expected_improvement(ahead: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(X, 0)] for X ~ N(ahead, sd^2)."""
    sd = np.maximum(sd, 1e-12)
    z = ahead / sd
    return sd * (z * _normal_cdf(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))


class Adaptive:
    """The adaptive loop's state: the points, their runs, the budget; `next_batch` decides, `observe` learns.

    `noise` and `spread` are the prior guesses (log scale) of the run-to-run noise and of how far the truth
    lies from the prior means; `informed` says whether the prior means come from a model.
    """

    def __init__(self, points: list[Point], *, budget: int, batch: int, noise: float, spread: float,
                 informed: bool, spent: int = 0) -> None:
        self.points = points
        self.budget = budget
        self.batch = max(1, batch)
        self.noise2 = noise * noise
        self.spread2 = spread * spread
        self.informed = informed
        self.spent = spent
        self.stopped: str | None = None  #: budget | confident | exhausted
        self.contexts: dict[Context, list[int]] = defaultdict(list)
        for i, point in enumerate(points):
            self.contexts[point.context].append(i)
        self._kernels = {c: kernel([points[i].labels for i in idx]) for c, idx in self.contexts.items()}
        self._version = 0  # bumped by every observation: the spreads estimated before are stale
        self._spreads: dict[tuple[Context, int], float] = {}

    # ------------------------------------------------------------------------------------------ learning

    def observe(self, index: int, value: float | None) -> None:
        """One run of a point ended: its sign x log FOM, or None when it failed."""
        point = self.points[index]
        if value is None:
            point.failed += 1
        else:
            point.values.append(value)
        point.runs_left = max(0, point.runs_left - 1)
        self.spent += 1
        self._version += 1

    def _noise2(self, idx: list[int]) -> float:
        """Run-to-run variance: the prior guess, updated with the repeats measured here (each point with
        repeats counts as one observation of it, read robustly as `pooled_noise` does)."""
        repeated = [self.points[i].values for i in idx if len(self.points[i].values) > 1]
        own = pooled_noise(repeated)
        if own is None:
            return self.noise2
        return (PRIOR_WEIGHT * self.noise2 + len(repeated) * own * own) / (PRIOR_WEIGHT + len(repeated))

    def _covariance(self, context: Context, spread2: float) -> np.ndarray:
        """Prior covariance of the context's points: what they share (the kernel), scaled by the spread, plus
        the model's scale: how far apart the model puts points may be off by a factor (SCALE_SD)."""
        idx = self.contexts[context]
        cov = spread2 * self._kernels[context]
        if self.informed:
            prior = np.array([self.points[i].prior for i in idx])
            centred = prior - prior.mean()
            cov = cov + SCALE_SD**2 * np.outer(centred, centred)
        # the truth may lean towards what the most similar clusters measured, where the model disagrees
        rule = np.array([np.nan if self.points[i].rule is None else self.points[i].rule for i in idx])
        if np.isfinite(rule).sum() > 1:
            centred = np.where(np.isfinite(rule), rule - np.nanmean(rule), 0.0)
            cov = cov + RULE_SD**2 * np.outer(centred, centred)
        return cov

    def _spread2(self, context: Context, noise2: float) -> float:
        """How far the truth lies from the prior means (variance): the value on a grid around the prior guess
        that best explains what was measured here (maximum a posteriori: the marginal likelihood of the
        measured means times a log-normal prior around the guess)."""
        key = (context, self._version)
        if key in self._spreads:
            return self._spreads[key]
        idx = self.contexts[context]
        measured = [k for k, i in enumerate(idx) if self.points[i].measured]
        guess = max(self.spread2, MIN_SPREAD**2)
        best = guess
        if len(measured) >= 2:
            points = [self.points[idx[k]] for k in measured]
            residual = np.array([np.median(p.values) - p.prior for p in points])
            noise = np.diag([noise2 / len(p.values) for p in points])
            best_score = -math.inf
            for factor in SPREAD_GRID:
                spread2 = guess * factor
                gram = self._covariance(context, spread2)[np.ix_(measured, measured)] + LEVEL_VARIANCE + noise
                sign, logdet = np.linalg.slogdet(gram)
                fit = float(residual @ np.linalg.solve(gram, residual))
                score = -0.5 * (fit + logdet) - 0.5 * (math.log(factor) / 2 / SPREAD_PRIOR_SD) ** 2
                if sign > 0 and score > best_score:
                    best, best_score = spread2, score
        self._spreads[key] = max(best, MIN_SPREAD**2)
        return self._spreads[key]

    def belief(self, context: Context, extra: dict[int, int] | None = None) -> Belief:
        """The posterior in a context; `extra` counts runs fantasized (kriging believer: they change the
        variances only)."""
        idx = self.contexts[context]
        extra = extra or {}
        points = [self.points[i] for i in idx]
        noise2 = self._noise2(idx)
        cov = self._covariance(context, self._spread2(context, noise2))
        prior = np.array([p.prior for p in points])
        counts = np.array([len(p.values) + extra.get(i, 0) if not p.out else 0 for i, p in zip(idx, points,
                                                                                               strict=True)])
        observed = np.flatnonzero(counts > 0)
        if len(observed):
            cov = cov + LEVEL_VARIANCE
            means = np.array([np.median(p.values) if p.values else p.prior for p in points])
            gram = cov[np.ix_(observed, observed)] + np.diag(noise2 / counts[observed])
            cross = cov[:, observed]
            solved = np.linalg.solve(gram, np.column_stack([means[observed] - prior[observed], cross.T]))
            mean = prior + cross @ solved[:, 0]
            var = np.maximum(np.diag(cov) - np.einsum("ij,ji->i", cross, solved[:, 1:]), 1e-12)
        else:
            mean, var = prior, np.diag(cov).copy()
        measured = [k for k, p in enumerate(points) if p.measured]
        best = max(measured, key=lambda k: (mean[k], -k)) if measured else None
        reference = float(mean[best]) if best is not None else float(mean.max())
        unmeasured = [k for k, p in enumerate(points) if not p.values and not p.out and p.runs_left > 0]
        beats = 1.0 - _normal_cdf((reference + MARGIN - mean[unmeasured]) / np.sqrt(var[unmeasured]))
        chance = {idx[k]: points[k].p_ok * float(b) for k, b in zip(unmeasured, beats, strict=True)}
        contest = {}
        if best is not None:  # the difference of two posteriors: both points' uncertainty counts
            rivals = [k for k, p in enumerate(points) if p.measured and k != best and p.runs_left > 0]
            ahead = (mean[rivals] - reference - MARGIN) / np.sqrt(var[rivals] + var[best])
            contest = {idx[k]: float(b) for k, b in zip(rivals, _normal_cdf(ahead), strict=True)}
        return Belief(idx, mean, var, None if best is None else idx[best], reference, chance, contest)

    # ------------------------------------------------------------------------------------------ choosing

    def next_batch(self) -> list[Decision]:
        """The next runs to do (empty when the sweep should stop; `stopped` then says why)."""
        left = self.budget - self.spent
        if left <= 0:
            self.stopped = "budget"
            return []
        beliefs = {c: self.belief(c) for c in self.contexts}
        open_contexts = [c for c, b in beliefs.items() if not b.confident]
        runnable = [i for c in open_contexts for i in self.contexts[c]
                    if self.points[i].runs_left > 0 and not self.points[i].out]
        if not runnable:
            self.stopped = "confident" if not open_contexts else "exhausted"
            return []
        size = min(self.batch, left)
        if not self.informed:  # the first batch takes one point per variant, whatever the batch size
            first = self._one_per_variant([c for c in open_contexts if beliefs[c].best is None], left)
            if first:
                return first
        decisions: list[Decision] = []
        extra: dict[int, int] = {}
        noise = {c: self._noise2(self.contexts[c]) for c in open_contexts}
        while len(decisions) < size:
            best_pick: tuple[float, float, int] | None = None
            picks: dict[int, Decision] = {}
            for c in open_contexts:
                belief = beliefs[c] if not extra else self.belief(c, extra)
                for k, i in enumerate(belief.indices):
                    point = self.points[i]
                    if point.out or point.runs_left - extra.get(i, 0) <= 0:
                        continue
                    var = float(belief.var[k])
                    # how far one more run can move the point's posterior mean (less where runs are noisy)
                    step = var / math.sqrt(var + noise[c])
                    ahead = float(beliefs[c].mean[k]) - beliefs[c].reference
                    gain = point.p_ok * float(expected_improvement(np.array([ahead]), np.array([step]))[0])
                    picks[i] = Decision(i, gain, ahead, math.sqrt(var), "")
                    key = (gain, ahead, -i)
                    if best_pick is None or key > best_pick:
                        best_pick = key
            if best_pick is None:
                break
            chosen = picks[-best_pick[2]]
            chosen.why = self._why(chosen, beliefs[self.points[chosen.point].context])
            decisions.append(chosen)
            extra[chosen.point] = extra.get(chosen.point, 0) + 1
        return decisions

    def _one_per_variant(self, contexts: list[Context], size: int) -> list[Decision]:
        """Without a prior: in each context nothing was measured in, the first point of each variant."""
        out: list[Decision] = []
        for c in contexts:
            seen: set[str] = set()
            for i in self.contexts[c]:
                point = self.points[i]
                if point.choice.variant in seen or point.runs_left <= 0 or point.out:
                    continue
                seen.add(point.choice.variant)
                if len(out) < size:
                    out.append(Decision(i, 0.0, 0.0, math.sqrt(self.spread2), "no prior: one point per variant first"))
        return out

    def _why(self, decision: Decision, belief: Belief) -> str:
        point = self.points[decision.point]
        parts = [f"expected gain {_percent(decision.gain)}"]
        if belief.best is None:
            parts.append(f"predicted {math.exp(decision.ahead):.2f}x the best prediction here "
                         f"(uncertainty ±{_percent(decision.sd, sign=False)})")
        elif decision.point == belief.best:
            parts.append(f"repeat of the best measured point ({len(point.values)} run(s) so far, "
                         f"uncertainty ±{_percent(decision.sd, sign=False)})")
        elif point.values:
            parts.append(f"repeat: {math.exp(decision.ahead):.2f}x the best measured after {len(point.values)} "
                         f"run(s) (uncertainty ±{_percent(decision.sd, sign=False)})")
        else:
            parts.append(f"predicted {math.exp(decision.ahead):.2f}x the best measured "
                         f"(uncertainty ±{_percent(decision.sd, sign=False)})")
        if point.p_ok < 0.95:
            parts.append(f"P(success) {point.p_ok:.2f}")
        if point.note and not point.values:
            parts.append(point.note)
        return "; ".join(parts)

    # ------------------------------------------------------------------------------------------ the end

    def outcomes(self) -> list[Outcome]:
        out = []
        for context, idx in self.contexts.items():
            belief = self.belief(context)
            likeliest = max(belief.chance, key=lambda i: belief.chance[i], default=None)
            out.append(Outcome(context, None if belief.best is None else self.points[belief.best],
                               belief.chance_any, None if likeliest is None else self.points[likeliest],
                               belief.chance.get(likeliest, 0.0) if likeliest is not None else 0.0,
                               sum(self.points[i].runs_left for i in idx)))
        return out


def _percent(log_value: float, sign: bool = True) -> str:
    value = (math.exp(log_value) - 1) * 100
    return f"{value:+.1f}%" if sign else f"{value:.0f}%"


def pooled_noise(groups: Sequence[Sequence[float]]) -> float | None:
    """Typical run-to-run standard deviation (log values per point), None without repeats: the median of the
    points' standard deviations, unbiased for a normal law, so that a few outliers (a repeat 3x slower on a
    loaded machine) do not make every run look uninformative."""
    scaled = [float(np.std(values, ddof=1)) / _MEDIAN_SD.get(len(values), 0.9) for values in groups if len(values) > 1]
    return float(np.median(scaled)) if scaled else None


#: Median of the sample standard deviation of n normal values, in units of the true one.
_MEDIAN_SD = {2: 0.6745, 3: 0.8326, 4: 0.8880}


def prior_spread(prior: Sequence[float]) -> float:
    """The spread of the truth around a model's prior means, before anything ran: half the spread the model
    itself predicts between the candidates (it ranks better than it measures), at least MIN_SPREAD."""
    return max(float(np.std(prior)) * 0.5, MIN_SPREAD) if len(prior) > 1 else DEFAULT_SPREAD


# --------------------------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class Budget:
    """How many runs an adaptive sweep may do: a number, or a share of the plan's runs."""

    runs: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """`25%` or `40`; ValueError with what is accepted for anything else (0, 150%, abc)."""
        value = text.strip()
        if value.endswith("%"):
            try:
                share = float(value[:-1]) / 100
            except ValueError:
                share = math.nan
            if not 0 < share <= 1:
                raise ValueError(f"{text!r} is not a share of the plan's runs above 0% and at most 100%")
            return cls(share=share)
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{text!r} is neither a number of runs (at least 1) nor a share such as 25%")
        return cls(runs=int(value))

    def of(self, total: int) -> int:
        """The runs it allows out of a plan of `total` runs; ValueError for more runs than the plan holds."""
        if self.share is not None:
            return max(1, math.ceil(self.share * total - 1e-9))
        assert self.runs is not None
        if self.runs > total:
            raise ValueError(f"{self.runs} runs is more than the {total} runs of the plan")
        return self.runs

    def __str__(self) -> str:
        return f"{self.share:.0%}" if self.share is not None else f"{self.runs} runs"


# ---------------------------------------------------------------------------------------------- start


@dataclass
class Item:
    """A candidate as the caller knows it: where, what, how many runs the plan still holds, what ran already."""

    context: Context
    choice: Choice
    runs_left: int
    values: list[float] = field(default_factory=list)  #: sign x log FOM of its stored successful runs
    failed: int = 0


def start(items: list[Item], catalog: Catalog, runs: Runs, train: np.ndarray, metric: Metric,
          predictions: Predictions | None, *, budget: int, batch: int, spent: int = 0) -> Adaptive:
    """The adaptive loop over these candidates, its prior from `predictions` (the model fitted on the `train`
    runs, which hold nothing of the candidates' contexts; None: no model) and the noise of the `train` runs."""
    # the ranking's estimate of each point's log share of its context's best (log units, unlike a rule's key)
    share = None if predictions is None else \
        predictions.normalized if predictions.normalized is not None else predictions.score
    informed = predictions is not None and (share is not None or predictions.mid is not None)
    prior = np.zeros(len(items))
    if informed:
        assert predictions is not None
        mid = metric.sign * predictions.mid if predictions.mid is not None else None
        if share is not None:
            prior = share.astype(float).copy()
            if mid is not None:  # the score is relative to the context's best: add the predicted level back
                for context in {item.context for item in items}:
                    rows = [i for i, item in enumerate(items) if item.context == context]
                    prior[rows] += float(np.mean(mid[rows] - prior[rows]))
        elif mid is not None:
            prior = mid.copy()
    where = measured_families(runs, train)
    rules = nearest_shares(items, catalog, runs, train, metric)
    points = []
    for i, item in enumerate(items):
        labels = tuple(catalog.describe(group, item.context, item.choice) for group in CHOICE_GROUPS)
        p_ok = float(predictions.p_ok[i]) if predictions is not None else 1.0
        family = _family(catalog.cluster_attrs(item.context.cluster))
        found = where.get((item.choice.app, item.choice.variant))
        note = "variant never measured anywhere" if not found else \
            f"never measured on {family}" if family and family not in found else None
        points.append(Point(item.context, item.choice, labels, float(prior[i]), p_ok, item.runs_left,
                            list(item.values), item.failed, note, rules[i]))
    by_point: dict[tuple[int, int], list[float]] = defaultdict(list)
    value = runs.values[metric.name]
    for r in np.flatnonzero(train & runs.ok):
        if np.isfinite(value[r]) and value[r] > 0:
            by_point[(int(runs.ctx[r]), int(runs.choice[r]))].append(metric.sign * math.log(value[r]))
    noise = pooled_noise(list(by_point.values())) or DEFAULT_NOISE
    spread = prior_spread(prior) if informed else DEFAULT_SPREAD
    return Adaptive(points, budget=budget, batch=batch, noise=noise, spread=spread, informed=informed, spent=spent)


def nearest_shares(items: list[Item], catalog: Catalog, runs: Runs, train: np.ndarray,
                   metric: Metric) -> list[float | None]:
    """Per item: the log of its mean share of the best over the training contexts on the most similar
    clusters (`baselines.nearest_contexts`, what the `nearest_cluster` rule ranks by); None where unseen."""
    by_context: dict[int, list[tuple[Choice, Any]]] = defaultdict(list)
    for (c, k), found in runs.measured(metric.name, train).items():
        by_context[c].append((runs.choices[k], found))
    seen = baselines.history([(runs.contexts[c], catalog.cluster_attrs(runs.contexts[c].cluster), found)
                              for c, found in by_context.items()], metric.sign)
    nearest: dict[Context, dict[Choice, list[float]]] = {}
    for context in {item.context for item in items}:
        shares: dict[Choice, list[float]] = defaultdict(list)
        for other in baselines.nearest_contexts(seen, context, catalog.cluster_attrs(context.cluster)):
            for choice, share in other.normalized.items():
                shares[choice].append(share)
        nearest[context] = shares
    out: list[float | None] = []
    for item in items:
        shares = nearest[item.context].get(item.choice)
        out.append(math.log(max(float(np.mean(shares)), RULE_FLOOR)) if shares else None)
    return out


def measured_families(runs: Runs, mask: np.ndarray) -> dict[tuple[str, str], set[str]]:
    """Per (app, variant): the architecture families of the clusters it ran successfully on."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    pairs = {(int(runs.ctx[r]), int(runs.choice[r])) for r in np.flatnonzero(mask & runs.ok)}
    for c, k in pairs:
        choice = runs.choices[k]
        out[(choice.app, choice.variant)].add(_family(runs.cluster_attrs.get(runs.contexts[c].cluster, {})) or "?")
    return out


def _family(cluster: dict[str, Any]) -> str | None:
    return archs.family(cluster.get("microarchitecture")) or archs.family(cluster.get("arch"))


def batch_size(budget: int) -> int:
    """Runs per batch: about eight refits over the budget, between 1 and 16 runs each."""
    return min(16, max(1, math.ceil(budget / 8)))
