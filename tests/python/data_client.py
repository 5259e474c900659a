"""A second-language client: Python grpcio stubs generated from proto/ at run time.

Usage: python3 data_client.py HOST:PORT

Writes one quarterly series through TradeDataService/WritePoints, reads it back with
GetSeries (raw and aggregated to annual), checks a field violation on bad input, and exits
non-zero on any mismatch.
"""

import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"


def generate(out: pathlib.Path) -> None:
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        "tradepact/data/v1/data_service.proto",
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main(addr: str) -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="tradepact-py-"))
    generate(out)
    sys.path.insert(0, str(out))
    from tradepact.data.v1 import data_service_pb2 as pb
    from tradepact.data.v1 import data_service_pb2_grpc as rpc

    with grpc.insecure_channel(addr) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = rpc.TradeDataServiceStub(channel)
        key = pb.SeriesKey(
            reporter="KOR",
            partner="USA",
            flow=pb.FLOW_EXPORT,
            kind=pb.TRADE_KIND_GOODS,
            product="HS:8704",
            frequency=pb.FREQUENCY_QUARTERLY,
        )
        points = [pb.Point(period=f"2017-Q{q}", value_usd=1e6 * q) for q in range(1, 5)]
        written = stub.WritePoints(
            pb.WritePointsRequest(series=[pb.SeriesPoints(key=key, points=points, source="python")]),
            timeout=10,
        )
        assert written.inserted == 4 and written.updated == 0, written

        raw = stub.GetSeries(pb.GetSeriesRequest(key=key), timeout=10)
        got = [(v.period, v.value_usd, v.source) for v in raw.values]
        want = [(f"2017-Q{q}", 1e6 * q, "python") for q in range(1, 5)]
        assert got == want, got

        annual = stub.GetSeries(
            pb.GetSeriesRequest(key=key, aggregate_to=pb.FREQUENCY_ANNUAL), timeout=10
        )
        assert [(v.period, v.value_usd, v.input_count) for v in annual.values] == [("2017", 1e7, 4)], annual

        try:
            stub.WritePoints(
                pb.WritePointsRequest(
                    series=[pb.SeriesPoints(key=key, points=[pb.Point(period="2017", value_usd=1)])]
                ),
                timeout=10,
            )
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.code()
            assert "series[0].points[0].period" in e.details(), e.details()
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
    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
