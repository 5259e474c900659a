"""An outside agent in Python (grpcio, through the `tradepact` package) takes Korea's seat in
the privacy tests' two-issue negotiation against the service's Boulware strategy for the US.

Usage: python3 seat_agent.py HOST:PORT NEGOTIATION_ID TOKEN

The agent knows only its own position (Korea's, as the test set it): it concedes linearly in
its own utility from its best to 0.45 over the rounds, accepts a standing offer worth its current
aspiration, and otherwise offers the package closest above it. Its first move is a package
outside the space, to see it refused and the turn asked again. Prints one JSON line: the turns
played, the ending, and every turn it was asked (what it saw).
"""

import itertools
import json
import sys

import tradepact

OPTIONS = ["a", "b", "c"]
WEIGHTS = {"autos": 0.3217, "steel": 0.6783}
VALUES = {"a": 0.0, "b": 0.5347, "c": 0.9613}
ROUNDS = 10


def utility(package):
    total = sum(WEIGHTS.values())
    return sum(WEIGHTS[i] / total * VALUES[o] for i, o in package.items())


def main(addr: str, id: str, token: str) -> None:
    packages = [dict(zip(WEIGHTS, p)) for p in itertools.product(OPTIONS, repeat=2)]
    best = max(utility(p) for p in packages)
    asked = []

    def agent(turn):
        asked.append(turn)
        if len(asked) == 1:
            return {"offer": {"autos": "z", "steel": "a"}}
        aspiration = best - (best - 0.45) * (turn["round"] - 1) / (ROUNDS - 1)
        if turn["standing_offer"] and utility(turn["standing_offer"]) >= aspiration - 1e-9:
            return {"accept": True}
        fitting = [p for p in packages if utility(p) >= aspiration - 1e-9]
        return {"offer": min(fitting, key=utility)}

    with tradepact.connect_negotiation(addr, token=token, timeout=30) as talks:
        played = talks.take_seat(id, "KOR", agent, others={"US": "boulware"}, rounds=ROUNDS, turn_seconds=20, seed=3)
    print(json.dumps({"turns": played["turns"], "ending": played["ending"], "asked": asked}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
