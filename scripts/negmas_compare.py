"""NegMAS on GENIUS scenarios, beside an exact rational computation over the same files.

Usage: python3 scripts/negmas_compare.py DIR...   (pip install negmas==0.16.0 first)

For each scenario directory (a GENIUS domain file and one utility-space file per party):
the Pareto set, the Nash and the Kalai-Smorodinsky packages computed exactly (Python
fractions, GENIUS semantics: an option's value is its evaluation over the issue's largest;
weights normalised; the frontier over the rational outcomes, as tradepact defines it) and as
NegMAS 0.16 computes them (its `pareto_frontier`, `nash_points` and `kalai_points` over every
outcome). tradepact's engine equals the exact computation on these files (the test
`crates/bargain/tests/genius.rs`); this prints where NegMAS differs, as a Markdown table.
"""

import sys
import xml.etree.ElementTree as ET
from fractions import Fraction
from itertools import product
from pathlib import Path


def dec(text):
    return Fraction(text.strip())


def load(folder):
    files = sorted(Path(folder).glob("*.xml"))
    domain = next(f for f in files if "<negotiation_template" in f.read_text())
    profiles = [f for f in files if f != domain]
    issues = []
    for issue in ET.parse(domain).iter("issue"):
        if issue.get("lowerbound") is not None:
            low, high = int(issue.get("lowerbound")), int(issue.get("upperbound"))
            issues.append((issue.get("name"), [str(x) for x in range(low, high + 1)]))
        else:
            issues.append((issue.get("name"), [i.get("value") for i in issue.iter("item")]))
    parties = []
    for f in profiles:
        root = ET.parse(f).getroot()
        weights = {w.get("index"): dec(w.get("value")) for w in root.iter("weight")}
        total = sum(weights.values())
        rows = []
        for name, options in issues:
            node = next(n for n in root.iter("issue") if n.get("name") == name)
            w = weights[node.get("index")] / total
            if node.get("lowerbound") is None:
                ev = {i.get("value"): dec(i.get("evaluation")) for i in node.iter("item")}
                evals = [ev[o] for o in options]
            else:
                low, high = int(node.get("lowerbound")), int(node.get("upperbound"))
                evaluator = node.find("evaluator")
                if evaluator is not None and evaluator.get("slope") is not None:
                    slope, offset = dec(evaluator.get("slope")), dec(evaluator.get("offset") or "0")
                    evals = [offset + slope * x for x in range(low, high + 1)]
                else:
                    lo, hi = dec(node.get("utilityLowestValue")), dec(node.get("utilityHighestValue"))
                    evals = [lo + (hi - lo) * Fraction(x - low, high - low) for x in range(low, high + 1)]
            top = max(evals)
            rows.append([w * e / top for e in evals])
        reservation = dec(root.find("reservation").get("value")) if root.find("reservation") is not None else Fraction(0)
        parties.append((f.stem, rows, reservation))
    return issues, parties


def exact(issues, parties):
    packages = list(product(*[range(len(o)) for _, o in issues]))
    u = [tuple(sum(rows[i][o] for i, o in enumerate(p)) for _, rows, _ in parties) for p in packages]
    d = [r for _, _, r in parties]

    def dominates(y, x):
        return all(a >= b for a, b in zip(y, x)) and any(a > b for a, b in zip(y, x))

    def frontier(candidates):
        return [x for x in candidates if not any(dominates(u[y], u[x]) for y in candidates)]

    everything = frontier(range(len(packages)))
    rational = [i for i in range(len(packages)) if all(a >= b for a, b in zip(u[i], d))]
    pareto = frontier(rational)
    nash_score = {i: prod_(max(a - b, 0) for a, b in zip(u[i], d)) for i in pareto}
    best = max(nash_score.values())
    nash = {packages[i] for i in pareto if nash_score[i] == best}
    ideal = [max(x[k] for x in u) for k in range(len(d))]

    def gains(i):
        return [(a - b) / (top - b) if top > b else Fraction(1) for a, b, top in zip(u[i], d, ideal)]

    spread = {i: max(gains(i)) - min(gains(i)) for i in pareto}
    least = min(spread.values())
    equal = [i for i in pareto if spread[i] == least]
    top = max(min(gains(i)) for i in equal)
    ks = {packages[i] for i in equal if min(gains(i)) == top}
    return packages, everything, pareto, nash, ks


def prod_(values):
    out = Fraction(1)
    for v in values:
        out *= v
    return out


def with_negmas(folder, issues):
    from negmas.inout import load_genius_domain_from_folder
    from negmas.preferences.ops import kalai_points, nash_points, pareto_frontier

    scenario = load_genius_domain_from_folder(str(folder), ignore_discount=True)
    ufuns = scenario.ufuns
    outcomes = list(scenario.outcome_space.enumerate_or_sample())
    utilities, indices = pareto_frontier(ufuns, outcomes)
    index_of = {
        name: {str(v): k for k, v in enumerate(opts)} for name, opts in issues
    }

    def package(outcome):
        return tuple(index_of[name][str(v)] for (name, _), v in zip(issues, outcome))

    front = [package(outcomes[i]) for i in indices]
    nash = {package(outcomes[indices[k]]) for _, k in nash_points(ufuns, utilities, outcomes=outcomes)}
    ks = {package(outcomes[indices[k]]) for _, k in kalai_points(ufuns, utilities, outcomes=outcomes)}
    reserved = [u.reserved_value for u in ufuns]
    return front, nash, ks, reserved


def with_negmas_algorithms(issues, parties):
    """NegMAS's algorithms on utility functions built with GENIUS's semantics (the values
    above, as floats): where they differ from the exact answer, floating point and NegMAS's
    definitions are the cause, not the reading of the files."""
    from negmas.outcomes import make_issue, make_os
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences.ops import kalai_points, nash_points, pareto_frontier

    space = make_os([make_issue(list(options), name) for name, options in issues])
    ufuns = []
    for _, rows, reservation in parties:
        total = sum(max(r) for r in rows) or 1
        weights = {name: float(max(rows[i])) for i, (name, _) in enumerate(issues)}
        values = {
            name: {o: (float(rows[i][k] / max(rows[i])) if max(rows[i]) else 0.0) for k, o in enumerate(options)}
            for i, (name, options) in enumerate(issues)
        }
        ufuns.append(
            LinearAdditiveUtilityFunction(
                values=values, weights=weights, outcome_space=space, reserved_value=float(reservation)
            )
        )
    outcomes = list(space.enumerate())
    utilities, indices = pareto_frontier(ufuns, outcomes)
    position = {name: {o: k for k, o in enumerate(options)} for name, options in issues}

    def package(outcome):
        return tuple(position[name][v] for (name, _), v in zip(issues, outcome))

    front = [package(outcomes[i]) for i in indices]
    nash = {package(outcomes[indices[k]]) for _, k in nash_points(ufuns, utilities, outcomes=outcomes)}
    ks = {package(outcomes[indices[k]]) for _, k in kalai_points(ufuns, utilities, outcomes=outcomes)}
    return front, nash, ks


def main(folders):
    same = lambda a, b: "yes" if a == b else f"no: {sorted(b)} (exact {sorted(a)})"
    rows = []
    for folder in folders:
        issues, parties = load(folder)
        packages, everything, pareto, nash, ks = exact(issues, parties)
        try:
            loaded = with_negmas(folder, issues)
        except Exception as e:  # NegMAS refuses some real files; say so in the table
            loaded = str(e).splitlines()[-1][:120]
        built = with_negmas_algorithms(issues, parties)
        rows.append((Path(folder).name, len(parties), len(packages), len(everything), len(pareto), nash, ks, loaded, built))
    print("NegMAS 0.16 loading the files itself (load_genius_domain_from_folder, discount ignored):\n")
    print("| scenario | outcomes | exact Pareto (all / rational) | NegMAS Pareto | Nash as exact | KS as exact | NegMAS's reservation values |")
    print("|---|---:|---:|---:|---|---|---|")
    for name, n, size, everything, pareto, nash, ks, loaded, _ in rows:
        if isinstance(loaded, str):
            print(f"| {name} ({n} parties) | {size} | {everything} / {pareto} | refused: {loaded} | | | |")
            continue
        front, n_nash, n_ks, reserved = loaded
        reserved = [round(r, 6) for r in reserved]
        print(f"| {name} ({n} parties) | {size} | {everything} / {pareto} | {len(front)} | {same(nash, n_nash)} | {same(ks, n_ks)} | {reserved} |")
    print("\nNegMAS 0.16's algorithms (pareto_frontier, nash_points, kalai_points) on utility functions built with GENIUS's semantics:\n")
    print("| scenario | exact Pareto (all outcomes) | NegMAS Pareto | Nash as exact | KS as exact |")
    print("|---|---:|---:|---|---|")
    for name, n, size, everything, pareto, nash, ks, _, (front, b_nash, b_ks) in rows:
        print(f"| {name} | {everything} | {len(front)} | {same(nash, b_nash)} | {same(ks, b_ks)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
