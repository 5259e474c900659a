"""A second-language client: the `tradepact` Python package (clients/python, its stubs
generated from proto/ when it is installed).

Usage: python3 data_client.py HOST:PORT

Writes one quarterly series, reads it back (raw and aggregated to annual, page by page and as
streamed columns) as DataFrames,
checks the field violations of bad input, bounded echoes and malformed bytes through the
package's stub, and exits non-zero on any mismatch.
"""

import sys

import grpc

import tradepact
from tradepact import data_pb as pb


def main(addr: str) -> None:
    with tradepact.connect_data(addr, timeout=10) as client:
        stub = client.stub
        written = client.write("KOR", "USA", {f"2017-Q{q}": 1e6 * q for q in range(1, 5)},
                               product="HS:8704", frequency="quarterly", source="python")
        assert written["inserted"] == 4 and written["updated"] == 0, written
        key = pb.SeriesKey(
            reporter="KOR",
            partner="USA",
            flow=pb.FLOW_EXPORT,
            kind=pb.TRADE_KIND_GOODS,
            product="HS:8704",
            frequency=pb.FREQUENCY_QUARTERLY,
        )

        raw = client.series("KOR", "USA", product="HS:8704", frequency="quarterly")
        got = list(raw[["period", "value_usd", "source"]].itertuples(index=False, name=None))
        want = [(f"2017-Q{q}", 1e6 * q, "python") for q in range(1, 5)]
        assert got == want, got

        # The same series streamed as columns: the periods decoded from their ordinals.
        columns = client.columns("KOR", "USA", product="HS:8704", frequency="quarterly")
        got = list(columns[["period", "value_usd", "source"]].itertuples(index=False, name=None))
        assert got == want, got
        columns = client.columns("KOR", "USA", product="HS:8704", frequency="quarterly",
                                 aggregate_to="annual")
        got = list(columns[["period", "value_usd", "input_count"]].itertuples(index=False, name=None))
        assert got == [("2017", 1e7, 4)], got

        annual = client.series("KOR", "USA", product="HS:8704", frequency="quarterly",
                               aggregate_to="annual")
        got = list(annual[["period", "value_usd", "input_count"]].itertuples(index=False, name=None))
        assert got == [("2017", 1e7, 4)], got

        try:
            client.write("KOR", "USA", {"2017": 1}, product="HS:8704", frequency="quarterly")
        except tradepact.Error as e:
            assert e.code == grpc.StatusCode.INVALID_ARGUMENT, e.code
            assert [f for f, _ in e.violations] == ["series[0].points[0].period"], e.violations
        else:
            raise AssertionError("an annual period in a quarterly series was accepted")

        # Echoed input is bounded: a 70 kB reporter, and 60 bad 70 kB periods, come back as
        # INVALID_ARGUMENT in a small error (grpcio refuses more than 8 KiB of metadata and
        # would say RESOURCE_EXHAUSTED).
        long = "X" * 70_000
        try:
            stub.GetSeries(pb.GetSeriesRequest(key=pb.SeriesKey(
                reporter=long, partner="USA", flow=pb.FLOW_EXPORT, kind=pb.TRADE_KIND_GOODS,
                product="TOTAL", frequency=pb.FREQUENCY_ANNUAL)), timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details()[:200])
            assert "key.reporter" in e.details() and len(e.details()) < 1100, len(e.details())
            assert "70000 bytes" in e.details(), e.details()
        else:
            raise AssertionError("a 70 kB reporter was accepted")
        try:
            bad = [pb.Point(period=long + str(i), value_usd=1) for i in range(60)]
            stub.WritePoints(
                pb.WritePointsRequest(series=[pb.SeriesPoints(key=key, points=bad, source="x")]),
                timeout=10,
            )
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details()[:200])
            assert len(e.details()) < 1100, len(e.details())
        else:
            raise AssertionError("60 bad periods were accepted")

        # Bytes that are not the method's message: INVALID_ARGUMENT, not INTERNAL.
        channel = grpc.insecure_channel(addr)
        raw_call = channel.unary_unary(
            "/tradepact.data.v1.TradeDataService/GetSeries",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            raw_call(b"\xff\xff\xff\xff", timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
            assert "not a valid protobuf message" in e.details(), e.details()
        else:
            raise AssertionError("malformed protobuf was accepted")
        finally:
            channel.close()
    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
