"""The negotiation calls of the `tradepact` Python package against a real negotiation service.

Usage: python3 negotiation_client.py HOST:PORT

Creates a two-issue negotiation, sets both private positions, makes and accepts an offer,
analyses, simulates and estimates the impact, checking the answers worked by hand; a party
that is not in the negotiation gets INVALID_ARGUMENT with its field. Exits non-zero on any
mismatch.
"""

import pathlib
import sys
import tempfile

import grpc

import tradepact


def main(addr: str) -> None:
    with tradepact.connect_negotiation(addr, timeout=10) as talks:
        created = talks.create({
            "title": "autos and steel",
            "agreement": "test",
            "parties": ["US", "KOR"],
            "issues": [
                {"id": "autos", "label": "car tariff", "options": [
                    {"id": "keep", "label": "keep 25 %"}, {"id": "cut", "label": "cut to 0"}]},
                {"id": "steel", "label": "steel", "options": [
                    {"id": "tariff", "label": "tariff"}, {"id": "quota", "label": "quota"}]},
            ],
            "deadline_rounds": 4,
        })
        id = created["id"]
        assert created["parties"] == ["US", "KOR"], created
        # The US cares for autos (0.7), Korea for steel (0.8): each gives way on the other.
        talks.set_position(id, "US", {
            "weights": {"autos": 0.7, "steel": 0.3},
            "values": {"autos": {"keep": 1.0, "cut": 0.0}, "steel": {"tariff": 1.0, "quota": 0.0}},
            "reservation_value": 0.5,
        })
        talks.set_position(id, "KOR", {
            "weights": {"autos": 0.2, "steel": 0.8},
            "values": {"autos": {"keep": 0.0, "cut": 1.0}, "steel": {"tariff": 0.0, "quota": 1.0}},
            "reservation_value": 0.5,
        })

        analysis = talks.analyze(id)
        assert analysis["outcome_count"] == 4, analysis
        nash = analysis["nash"]["points"][0]
        # keep/quota: US 0.7, KOR 0.8, the only package both prefer to their reservation.
        assert nash["utilities"] == [0.7, 0.8], nash
        assert {c["issue_id"]: c["option_id"] for c in nash["packages"][0]["choices"]} == {
            "autos": "keep", "steel": "quota"}, nash

        offer = talks.offer(id, "US", {"autos": "keep", "steel": "quota"})
        assert offer["evaluation"]["utilities"] == [0.7, 0.8], offer
        answer = talks.respond(id, "KOR", offer["id"], accept=True)
        assert answer["status"] == "NEGOTIATION_STATUS_AGREED", answer
        assert answer["agreed_offer"] == offer["id"], answer
        assert talks.negotiation(id)["agreed_offer"] == offer["id"]

        steps, outcome = talks.simulate(id, ["boulware", "conceder"], seed=7)
        assert len(steps) >= 1 and list(steps.columns[:3]) == ["turn", "round", "party"], steps
        assert outcome["agreed"] and outcome["utilities"] == [0.7, 0.8], outcome

        # Robustness: Korea's raw weight w on steel alone from 0 to 1 (autos stays 0.2). Korea gets
        # w / (0.2 + w) of (keep, quota), the only package both value at 0.5 or more: below
        # w = 0.2 there is no rational outcome at all, so the package holds over [0.2, 1] only.
        robust = talks.robustness(id, uncertain=[{"party": "KOR", "kind": "weight", "issue_id": "steel",
                                                  "low": 0.0, "high": 1.0}], samples=50, seed=3,
                                  compare={"autos": "keep", "steel": "quota"})
        assert robust["samples"] == 50, robust
        s = robust["sensitivity"][0]
        assert s["stated"] == 0.8 and s["stays_to"] == 1.0 and not s["robust"], s
        assert abs(s["stays_from"] - 0.2) < 1e-3 and "nash_below" not in s, s
        # Samples without a rational outcome have no Nash package: they match on nothing.
        assert len(robust["compare_at_least"]) == 3, robust
        assert abs(robust["compare_at_least"][0] - (1 - robust["zopa_empty_share"])) < 1e-12, robust
        mediated = talks.mediate(id, ["hill", "hill"], rounds=200, seed=5)
        assert mediated["rounds"] == 200 and len(mediated["utilities"]) == 2, mediated

        impact = talks.impact(id)
        assert "no option of this package carries a trade effect" in impact["assumptions"], impact

        try:
            talks.offer(id, "JPN", {"autos": "cut", "steel": "tariff"})
        except tradepact.Error as e:
            assert e.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), e
            if e.code == grpc.StatusCode.INVALID_ARGUMENT:
                assert [f for f, _ in e.violations] == ["party"], e.violations
        else:
            raise AssertionError("an offer by a party not in the negotiation was accepted")
        # A GENIUS scenario from the repository's test fixtures.
        holiday = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "genius" / "holiday"
        imported = talks.import_genius(holiday, rounds=20)
        assert imported["negotiation"]["parties"] == ["alice", "bob"], imported
        assert any("discount factor 0.9" in n for n in imported["notes"]), imported
        analysis = talks.analyze(imported["negotiation"]["id"])
        assert analysis["outcome_count"] == 36, analysis
        # The same negotiation as NegMAS files, and back: the same Nash package.
        with tempfile.TemporaryDirectory() as folder:
            left_out = talks.export_scenario(imported["negotiation"]["id"], folder, format="negmas")
            assert left_out == [], left_out
            assert sorted(p.name for p in pathlib.Path(folder).iterdir()) == ["alice.yml", "bob.yml", "domain.yml"]
            again = talks.import_negmas(folder)
            assert again["negotiation"]["parties"] == ["alice", "bob"], again
            assert talks.analyze(again["negotiation"]["id"])["nash"] == analysis["nash"]
    print("python negotiation client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
