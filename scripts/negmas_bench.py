"""NegMAS 0.16 timed on the bargaining benchmark's own random spaces, for bargain-bench.

Usage: python3 scripts/negmas_bench.py DIR RUNS [--simulate]

DIR holds a scenario as NegMAS files (bargain-bench writes tradepact's random space with
`tradepact_bargain::negmas::write`). Loads it with NegMAS (`Scenario.load`, not timed), then
times RUNS times the benchmark's analysis workload the NegMAS way: enumerate the outcomes, the
Pareto frontier (`pareto_frontier`) and on it the Nash, Kalai (NegMAS's), max-welfare and
max-relative-welfare points (given the outcome space, NegMAS's fast path for the utilities'
ranges: given the outcomes, it evaluates every one again, about ten times slower); with --simulate, a 100-step Boulware-versus-Conceder run
(`SAOMechanism` with two `AspirationNegotiator`s, aspiration exponents 1/0.2 and 1/5, as
tradepact's time-based exponents 0.2 and 5). Prints one JSON object: the median, min and max
seconds of each, and the process's peak resident memory (MB).
"""

import json
import resource
import statistics
import sys
import time
import warnings

from negmas.inout import Scenario
from negmas.preferences.ops import (
    kalai_points,
    max_relative_welfare_points,
    max_welfare_points,
    nash_points,
    pareto_frontier,
)
from negmas.sao import SAOMechanism
from negmas.sao.negotiators import AspirationNegotiator


def analysis(scenario):
    ufuns, space = scenario.ufuns, scenario.outcome_space
    outcomes = list(space.enumerate_or_sample())
    frontier, _ = pareto_frontier(ufuns, outcomes)
    # The outcome space, not the outcomes: NegMAS's fast path for the utilities' ranges.
    nash_points(ufuns, frontier, outcome_space=space)
    kalai_points(ufuns, frontier, outcome_space=space)
    max_welfare_points(ufuns, frontier, outcome_space=space)
    max_relative_welfare_points(ufuns, frontier, outcome_space=space)
    return len(frontier)


def simulation(scenario):
    m = SAOMechanism(outcome_space=scenario.outcome_space, n_steps=100)
    for exponent, ufun in zip((0.2, 5.0), scenario.ufuns):
        m.add(AspirationNegotiator(aspiration_type=1.0 / exponent), ufun=ufun)
    m.run()
    return m.state.step


def timed(runs, f, *args):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = f(*args)
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": runs, "out": out}


def main(folder, runs, simulate):
    warnings.simplefilter("ignore")
    scenario = Scenario.load(folder, load_stats=False, load_info=False)
    result = {"analysis": timed(runs, analysis, scenario)}
    if simulate:
        result["simulation"] = timed(runs, simulation, scenario)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), "--simulate" in sys.argv[3:])
