"""HPC Challenge (hpcc 1.5.0, as Debian packages it): its input generated from the workload's parameters,
its figures of merit read from the summary it writes to `hpccoutf.txt`. Pure.

One hpcc run is the whole suite: HPL, DGEMM, STREAM, PTRANS, RandomAccess, FFT and the latency/bandwidth
rings, each sized from the HPL problem (the other tests take about as much memory as its N x N matrix).
hpcc reads `hpccinf.txt` (HPL's input format, then PTRANS's sizes) from its working directory and appends
its results to `hpccoutf.txt` there, ending with a `Begin of Summary section.` of `Name=value` lines, a
`Success=1|0` verdict and the line `End of HPC Challenge tests.`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.core.apps import Definition, Fom, Parsed

if TYPE_CHECKING:
    from planner.core.experiment import Options

INPUT = "hpccinf.txt"
OUTPUT = "hpccoutf.txt"
#: the first lines every hpcc that is (or thinks it is) rank 0 writes
_BANNER = re.compile(r"This is the DARPA/DOE HPC Challenge Benchmark")
_PROCS = re.compile(r"^CommWorldProcs=(\d+)", re.MULTILINE)
_VERDICT = re.compile(r"^Success=(\d)", re.MULTILINE)
#: the parameters hpccinf.txt takes from the workload (HPL's N, NB, P, Q), each a whole number at least this
#: (p = q = 0: a grid from the tasks)
PARAMETERS = {"n": 1, "nb": 1, "p": 0, "q": 0}


def _summary(name: str) -> str:
    return rf"^{name}=([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$"


FOMS = (
    Fom("hpl_gflops", "GFLOP/s", "max", _summary("HPL_Tflops"), 1000.0, "HPL: LU solve of a dense N x N system"),
    Fom("hpl_time", "s", "min", _summary("HPL_time"), description="HPL's solve time"),
    Fom("dgemm_gflops", "GFLOP/s", "max", _summary("StarDGEMM_Gflops"), description="DGEMM on every rank at once"),
    Fom("stream_triad_gbs", "GB/s", "max", _summary("StarSTREAM_Triad"),
        description="STREAM triad per rank, every rank at once"),
    Fom("stream_copy_gbs", "GB/s", "max", _summary("StarSTREAM_Copy"), description="STREAM copy per rank"),
    Fom("ptrans_gbs", "GB/s", "max", _summary("PTRANS_GBs"), description="PTRANS: parallel matrix transpose"),
    Fom("randomaccess_gups", "GUP/s", "max", _summary("MPIRandomAccess_GUPs"),
        description="RandomAccess over MPI: giga-updates of a distributed table per second"),
    Fom("fft_gflops", "GFLOP/s", "max", _summary("MPIFFT_Gflops"), description="FFT over MPI"),
    Fom("ring_latency_us", "us", "min", _summary("RandomlyOrderedRingLatency_usec"),
        description="latency in a randomly ordered ring of the ranks"),
    Fom("ring_bandwidth_gbs", "GB/s", "max", _summary("RandomlyOrderedRingBandwidth_GBytes"),
        description="bandwidth in a randomly ordered ring of the ranks"),
    Fom("procs", "procs", "max", _summary("CommWorldProcs"), description="MPI ranks hpcc ran on"),
)

FAILURES = {
    "missing-input": (r">>> cannot open file \S+ <<<",),
}


def grid(tasks: int) -> tuple[int, int]:
    """HPL's process grid for `tasks` ranks: P <= Q, as square as the count allows (HPL's advice)."""
    p = max(d for d in range(1, math.isqrt(tasks) + 1) if tasks % d == 0)
    return p, tasks // p


def hpccinf(n: int, nb: int, p: int, q: int) -> str:
    """hpccinf.txt: HPL's input (one problem size, block size and grid; Debian's example otherwise), then
    PTRANS's (no sizes beyond HPL's)."""
    rows = [
        ("HPLinpack benchmark input file", None), ("Innovative Computing Laboratory, University of Tennessee", None),
        ("HPL.out", "output file name (if any)"), ("8", "device out (6=stdout,7=stderr,file)"),
        ("1", "# of problems sizes (N)"), (str(n), "Ns"), ("1", "# of NBs"), (str(nb), "NBs"),
        ("0", "PMAP process mapping (0=Row-,1=Column-major)"), ("1", "# of process grids (P x Q)"),
        (str(p), "Ps"), (str(q), "Qs"), ("16.0", "threshold"), ("1", "# of panel fact"),
        ("2", "PFACTs (0=left, 1=Crout, 2=Right)"), ("1", "# of recursive stopping criterium"),
        ("4", "NBMINs (>= 1)"), ("1", "# of panels in recursion"), ("2", "NDIVs"),
        ("1", "# of recursive panel fact."), ("1", "RFACTs (0=left, 1=Crout, 2=Right)"), ("1", "# of broadcast"),
        ("1", "BCASTs (0=1rg,1=1rM,2=2rg,3=2rM,4=Lng,5=LnM)"), ("1", "# of lookahead depth"), ("1", "DEPTHs (>=0)"),
        ("2", "SWAP (0=bin-exch,1=long,2=mix)"), ("64", "swapping threshold"),
        ("0", "L1 in (0=transposed,1=no-transposed) form"), ("0", "U  in (0=transposed,1=no-transposed) form"),
        ("1", "Equilibration (0=no,1=yes)"), ("8", "memory alignment in double (> 0)"),
        ("##### This line (no. 32) is ignored (it serves as a separator). ######", None),
        ("0", "Number of additional problem sizes for PTRANS"), (str(n), "values of N"),
        ("0", "number of additional blocking sizes for PTRANS"), (str(nb), "values of NB"),
    ]
    return "".join(f"{value:<13}{comment}\n" if comment else f"{value}\n" for value, comment in rows)


@dataclass(frozen=True)
class Hpcc(Definition):
    def ran_as_asked(self, text: str, tasks: int | None) -> str | None:
        runs = len(_BANNER.findall(text))
        procs = [int(found) for found in _PROCS.findall(text)]
        if runs > 1:
            if tasks and runs == tasks and procs and max(procs) == 1:
                return f"{runs} singleton runs, not one {tasks}-rank run (the ranks never joined one MPI job)"
            return f"{runs} hpcc runs in one output, not one run"
        if tasks and procs and max(procs) < tasks:
            return f"hpcc ran on {max(procs)} procs, not the {tasks} tasks asked for"
        return None

    def parse(self, text: str, **kwargs: Any) -> Parsed:
        parsed = super().parse(text, **kwargs)
        verdict = _VERDICT.findall(text)
        if parsed.status == "ok" and verdict and verdict[-1] != "1":
            # hpcc's summary verdict: a test whose result failed its own check (a residual, a transpose)
            return Parsed("failed", "unknown", f"hpcc's summary says Success={verdict[-1]}: a test failed its "
                                               "verification (see the FAILED lines of hpccoutf.txt)", parsed.foms)
        return parsed

    def generated_inputs(self, parameters: Mapping[str, Any], options: Options) -> dict[str, str]:
        p, q = int(parameters.get("p", 0)), int(parameters.get("q", 0))
        if not p or not q:
            p, q = grid(options.tasks)
        return {INPUT: hpccinf(int(parameters.get("n", 1000)), int(parameters.get("nb", 80)), p, q)}

    def value_error(self, name: str, value: Any) -> str | None:
        if name in PARAMETERS and (not isinstance(value, int | float) or isinstance(value, bool)
                                   or not float(value).is_integer() or value < PARAMETERS[name]):
            return f"{name} is a whole number of at least {PARAMETERS[name]} (hpccinf.txt); got {value!r}"
        return None

    def parameter_error(self, parameters: Mapping[str, Any], options: Options) -> str | None:
        p, q = int(parameters.get("p", 0)), int(parameters.get("q", 0))
        if (p or q) and p * q != options.tasks:
            # HPL skips a grid larger than the ranks, and a smaller one leaves ranks idle in HPL and PTRANS
            return f"HPL's grid p x q = {p} x {q} is not the {options.tasks} tasks (p = q = 0 chooses it)"
        return None


DEFINITION = Hpcc(
    "hpcc", "hpcc", success="End of HPC Challenge tests.", foms_declared=FOMS, failures=FAILURES,
    error_line=r"HPL ERROR from process.*|>>> .* <<<", output_file=OUTPUT, default_metric="hpl_gflops",
    description="HPC Challenge: HPL, DGEMM, STREAM, PTRANS, RandomAccess, FFT, latency and bandwidth")
