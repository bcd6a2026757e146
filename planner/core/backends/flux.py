"""Flux's `flux run`: `flux run [--job-name=ID -t LIMIT] -N n -n T [-c t] [-o cpu-affinity=A] [-o pmi=P]
[-o K=V]`.

Its PMI services are the shell's (flux-shell-options(7), `pmi=LIST`): simple is built in (pmi1 and pmi2
are its aliases), pmix comes from the flux-pmix plugin, cray-pals from flux-coral2, off disables PMI. A
run is a Flux job named after its run id, so a stop or a later sweep finds it (`flux jobs --name`), and
Flux's own limit ends it; `flux cancel` takes job ids, so the executor looks the id up by name.
"""

from __future__ import annotations

import dataclasses

from planner.core.backends.contract import Launcher, Ranks, Words, register_launcher

#: PMI services a run may ask Flux for (a comma-separated list of them)
SERVICES = ("simple", "pmi1", "pmi2", "pmix", "cray-pals", "off")


@register_launcher("flux")
class Flux(Launcher):
    pmi = SERVICES
    jobs = True

    def command(self, ranks: Ranks) -> Words:
        argv = ["flux", "run"]
        if ranks.job is not None:
            argv += [f"--job-name={ranks.job}", "-t", duration(ranks.limit or 0)]
        argv += ["-N", str(ranks.nodes), "-n", str(ranks.tasks)]
        if ranks.threads > 1:
            argv += ["-c", str(ranks.threads)]
        if ranks.affinity != "default":
            argv += ["-o", f"cpu-affinity={ranks.affinity}"]
        if ranks.pmi is not None:
            argv += ["-o", f"pmi={ranks.pmi}"]
        for name, value in ranks.shell.items():
            argv += ["-o", f"{name}={value}" if value else name]
        return Words(tuple(argv))

    def refuses(self, ranks: Ranks) -> str | None:
        if ranks.pmi is not None and "off" in ranks.pmi.split(",") and ranks.pmi != "off":
            return f"pmi {ranks.pmi!r}: `off` stands alone"
        return super().refuses(dataclasses.replace(ranks, shell={}))  # shell options are Flux's own


def duration(seconds: float) -> str:
    """Seconds as a Flux standard duration (RFC 23; a bare number would be minutes to `flux run -t`)."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"
