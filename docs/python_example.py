"""The KORUS questions from Python, with the `tradepact` package (`pip install ./clients/python`).

Run against `tradepact up` (the KORUS sample loaded) after `tradepact scenario load korus-2018`:

    python3 docs/python_example.py 127.0.0.1:50051 127.0.0.1:50052

Each step prints what an analyst would look at; the `check` lines make the test suite fail if
the figures move (the e2e test `python_client` runs this script).
"""

import sys

import tradepact


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"check failed: {what}")


def main(data_addr: str, negotiation_addr: str) -> None:
    with tradepact.connect_data(data_addr) as data:
        # How did the bilateral goods deficit move, and what does it look like with services?
        balance = data.balance("USA", "KOR", start="2011", end="2017")
        print(balance[["period", "goods_balance_usd", "services_balance_usd", "total_balance_usd"]])
        goods = balance.set_index("period")["goods_balance_usd"]
        check(goods["2016"] < goods["2011"] < 0, "the goods deficit deepened from 2011 to 2016")

        # The same figures as each source published them.
        releases = data.releases()
        print(releases[["label", "date"]])
        for label in releases["label"]:
            row = data.balance("USA", "KOR", start="2016", end="2016", as_of_release=label)
            if not row.empty:
                print(label, row.loc[0, "goods_balance_usd"], row.loc[0, "goods_reported_balance_usd"])
        revisions = data.revisions("USA", "KOR", from_date="2017-12-31", to_date="2018-12-31")
        print(revisions[["period", "flow", "kind", "old_value", "new_value", "percent", "release"]])

        # Imports of goods by partner, one year, top 5 (a question across the matrix).
        top = data.query(reporters=["USA"], flows=["import"], kinds=["goods"], start="2016",
                         end="2016", group_by=["partner"], order="descending", limit=5)
        print(top)
        check(len(top) >= 1 and "KOR" in set(top["partner"]), "Korea among the US import partners")

        # One series, and what a bad request says.
        imports = data.series("USA", "KOR", flow="import", start="2011", end="2017")
        print(imports[["period", "value_usd", "source"]])
        by_year = imports.set_index("period")["value_usd"]
        check(by_year["2016"] == 69.9e9, "US goods imports from Korea in 2016: 69.9 bn USD")
        check("2012" not in by_year, "a year the sample does not hold is absent, not zero")
        try:
            data.series("USA", "KOR", flow="import", start="2011-Q1")
        except tradepact.Error as e:
            print("refused:", e)
            fields = [f for f, _ in e.violations]
            check(e.code.name == "INVALID_ARGUMENT" and fields == ["start_period"], "a bad period is refused")

    with tradepact.connect_negotiation(negotiation_addr) as talks:
        negotiations = talks.negotiations()
        for n in negotiations:
            print(n["id"], n["title"], n["status"])
        check(len(negotiations) >= 1, "the KORUS scenario is loaded")
        analysis = talks.analyze(negotiations[0]["id"])
        print(sorted(analysis))
        check(bool(analysis), "an analysis")
    print("python example: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
