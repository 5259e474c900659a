"""Time-based strategies side by side: tradepact's simulation and NegMAS's SAO mechanism on
the same GENIUS scenarios, the same pairs of strategies and the same deadline.

Usage: python3 scripts/negmas_strategies.py NEGOTIATION_TARGET DIR...
  (with `tradepact up` running, e.g. 127.0.0.1:50052; pip install negmas==0.16.0 and
  ./clients/python first)

Each two-party scenario is imported into tradepact (ImportScenario) and simulated with
Boulware (exponent 0.2), linear (1) and Conceder (5) against each other, 100 rounds, seed 1;
NegMAS runs its AspirationNegotiator with the matching aspiration exponents (1/e: 5, 1, 0.2,
since tradepact's target falls as t^(1/e) and NegMAS's as t^e) on utility functions built with
GENIUS's semantics, 100 steps. Prints a Markdown table: agreement round and utilities.
"""

import sys
from pathlib import Path

import tradepact
from tradepact import negotiation_pb as npb

sys.path.insert(0, str(Path(__file__).parent))
import negmas_compare  # noqa: E402  (the GENIUS reader with exact semantics)

EXPONENTS = {"boulware": 0.2, "linear": 1.0, "conceder": 5.0}
PAIRS = [("boulware", "conceder"), ("conceder", "boulware"), ("linear", "linear"), ("boulware", "boulware")]


def negmas_run(issues, parties, first, second):
    from negmas.outcomes import make_issue, make_os
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.sao import SAOMechanism
    from negmas.sao.negotiators import AspirationNegotiator

    space = make_os([make_issue(list(options), name) for name, options in issues])
    ufuns = []
    for _, rows, reservation in parties:
        weights = {name: float(max(rows[i])) for i, (name, _) in enumerate(issues)}
        values = {
            name: {o: (float(rows[i][k] / max(rows[i])) if max(rows[i]) else 0.0) for k, o in enumerate(options)}
            for i, (name, options) in enumerate(issues)
        }
        ufuns.append(LinearAdditiveUtilityFunction(values=values, weights=weights, outcome_space=space,
                                                   reserved_value=float(reservation)))
    m = SAOMechanism(outcome_space=space, n_steps=100)
    for strategy, ufun in zip((first, second), ufuns):
        m.add(AspirationNegotiator(aspiration_type=1.0 / EXPONENTS[strategy]), ufun=ufun)
    m.run()
    if m.agreement is None:
        return "no agreement", None
    return f"step {m.state.step}", [round(float(u(m.agreement)), 3) for u in ufuns]


def main(target, folders):
    print("| scenario | strategies | tradepact: agreed | utilities | NegMAS: agreed | utilities |")
    print("|---|---|---|---|---|---|")
    with tradepact.connect_negotiation(target, timeout=60) as talks:
        for folder in folders:
            files = sorted(Path(folder).glob("*.xml"))
            domain = next(f for f in files if "<negotiation_template" in f.read_text())
            profiles = [f for f in files if f != domain]
            if len(profiles) != 2:
                continue
            file = lambda f: npb.ScenarioFile(name=f.name, content=f.read_text())
            created = talks.stub.ImportScenario(
                npb.ImportScenarioRequest(format=npb.SCENARIO_FORMAT_GENIUS, domain=file(domain),
                                          profiles=[file(p) for p in profiles], deadline_rounds=100),
                timeout=60,
            ).negotiation
            issues, parties = negmas_compare.load(folder)
            for first, second in PAIRS:
                steps, outcome = talks.simulate(created.id, [first, second], rounds=100, seed=1)
                if outcome.get("agreed"):
                    ours = f"round {int(steps['round'].iloc[-1])}"
                    ours_u = [round(u, 3) for u in outcome["utilities"]]
                else:
                    ours, ours_u = "no agreement", None
                theirs, theirs_u = negmas_run(issues, parties, first, second)
                print(f"| {Path(folder).name} | {first} vs {second} | {ours} | {ours_u} | {theirs} | {theirs_u} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
