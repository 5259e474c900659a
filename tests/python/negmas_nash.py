"""NegMAS's Nash packages of a scenario folder, as JSON: a list of {issue: option}.

Usage: python3 tests/python/negmas_nash.py DIR

NegMAS 0.16 loads the folder itself (`Scenario.load`: its YAML files, or GENIUS XML) and
computes the Pareto frontier over every outcome and the Nash points on it (its
`pareto_frontier` and `nash_points`), discounting ignored. Options are printed as NegMAS reads
them (`str` of the value). The end-to-end test `genius::a_negmas_scenario_…` compares them with
the service's Nash packages of the same scenario.
"""

import json
import sys

from negmas.inout import Scenario
from negmas.preferences.ops import nash_points, pareto_frontier


def main(folder):
    scenario = Scenario.load(folder, ignore_discount=True, load_stats=False, load_info=False)
    ufuns = scenario.ufuns
    names = [i.name for i in scenario.outcome_space.issues]
    outcomes = list(scenario.outcome_space.enumerate_or_sample())
    utilities, indices = pareto_frontier(ufuns, outcomes)
    nash = nash_points(ufuns, utilities, outcomes=outcomes)
    packages = [dict(zip(names, map(str, outcomes[indices[k]]))) for _, k in nash]
    print(json.dumps(sorted(packages, key=lambda p: sorted(p.items()))))


if __name__ == "__main__":
    main(sys.argv[1])
