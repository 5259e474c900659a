"""Before/after figures of the outside test's findings (issue 9), against the release
binaries on loopback: 60 creations of 10 MB, 2000 watchers that never read, an analysis
whose client gives up, SIGTERM during an analysis, and writes without watchers as the
baseline.

Usage: cargo build --release --bins && python3 scripts/hardening.py
(needs `pip install -r tests/python/requirements.txt`)
"""
import os, pathlib, re, subprocess, sys, tempfile, threading, time

import grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release"
_out = tempfile.mkdtemp(prefix="tradepact-py-")
if protoc.main(["grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                f"-I{pathlib.Path(protoc.__file__).parent / '_proto'}",
                f"--python_out={_out}", f"--grpc_python_out={_out}",
                "tradepact/data/v1/data_service.proto",
                "tradepact/negotiation/v1/negotiation_service.proto"]) != 0:
    raise SystemExit("protoc failed")
sys.path.insert(0, _out)
from tradepact.data.v1 import data_service_pb2 as dpb, data_service_pb2_grpc as drpc  # noqa: E402
from tradepact.negotiation.v1 import negotiation_service_pb2 as npb, negotiation_service_pb2_grpc as nrpc  # noqa: E402

def start(binary, *args):
    p = subprocess.Popen([str(BIN / binary), "--listen", "127.0.0.1:0", *args],
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn,tradepact_rpc::server=info"})
    for line in p.stderr:
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, m.group(1)
    raise RuntimeError("no readiness line")

def rss_mb(p):
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

def memory_creates():
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-negotiation", "--data-dir", d)
    ch = grpc.insecure_channel(addr, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = nrpc.NegotiationServiceStub(ch)
    before = rss_mb(p)
    label = "L" * 150
    req = npb.CreateNegotiationRequest(title="big", agreement="t", parties=["US", "KOR"], deadline_rounds=10,
        issues=[npb.Issue(id=f"i{i}", label=label, options=[npb.IssueOption(id=f"o{o}", label=label) for o in range(1000)]) for i in range(64)])
    print(f"creation message: {req.ByteSize()/1e6:.1f} MB")
    codes = {}
    for _ in range(60):
        try:
            stub.CreateNegotiation(req, timeout=30); codes["OK"] = codes.get("OK", 0) + 1
        except grpc.RpcError as e:
            codes[e.code().name] = codes.get(e.code().name, 0) + 1
    after = rss_mb(p)
    t = time.time(); stub.ListNegotiations(npb.ListNegotiationsRequest(page_size=500), timeout=30); lt = time.time() - t
    print(f"60 CreateNegotiation of ~10 MB: {codes}; RSS {before:.0f} -> {after:.0f} MB; ListNegotiations {lt*1000:.1f} ms")
    p.terminate(); p.wait()

def watchers(n=2000, writes=72):
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-data", "--data-dir", d)
    before = rss_mb(p)
    chans, streams = [], []
    for i in range(n // 10):
        ch = grpc.insecure_channel(addr, options=[("grpc.http2.lookahead_bytes", 16384)])
        chans.append(ch)
        stub = drpc.TradeDataServiceStub(ch)
        for _ in range(10):
            streams.append(stub.WatchSeries(dpb.WatchSeriesRequest()))  # never read
    time.sleep(2)
    stub = drpc.TradeDataServiceStub(grpc.insecure_channel(addr))
    key = dpb.SeriesKey(reporter="USA", partner="KOR", flow=dpb.FLOW_EXPORT, kind=dpb.TRADE_KIND_GOODS, product="HS:87", frequency=dpb.FREQUENCY_ANNUAL)
    lat = []
    for i in range(writes):
        t = time.time()
        stub.WritePoints(dpb.WritePointsRequest(series=[dpb.SeriesPoints(key=key, source="s" * 1000,
            points=[dpb.Point(period=str(1000 + i), value_usd=1.0)])]), timeout=30)
        lat.append((time.time() - t) * 1000)
    time.sleep(1)
    lat.sort()
    print(f"{n} watchers that never read, {writes} writes of 1.1 kB: RSS {before:.0f} -> {rss_mb(p):.0f} MB; write latency p50 {lat[len(lat)//2]:.1f} ms, max {lat[-1]:.1f} ms")
    for ch in chans: ch.close()
    p.terminate(); p.wait()


def heavy():
    import random
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-negotiation", "--data-dir", d, "--max-heavy-calls", "1")
    stub = nrpc.NegotiationServiceStub(grpc.insecure_channel(addr))
    rnd = random.Random(7)
    issues = [npb.Issue(id=f"i{i}", options=[npb.IssueOption(id=f"o{o}") for o in range(100)]) for i in range(10)]
    n = stub.CreateNegotiation(npb.CreateNegotiationRequest(title="h", agreement="t", parties=["A", "B", "C"], issues=issues, deadline_rounds=10)).negotiation
    for party in ["A", "B", "C"]:
        stub.SetPosition(npb.SetPositionRequest(negotiation_id=n.id, party=party, position=npb.Position(
            weights={f"i{i}": 1.0 for i in range(10)},
            values={f"i{i}": npb.OptionValues(values={f"o{o}": rnd.random() for o in range(100)}) for i in range(10)})))
    try:
        stub.AnalyzeNegotiation(npb.AnalyzeNegotiationRequest(id=n.id), timeout=1)
    except grpc.RpcError as e:
        print("analysis with a 1 s deadline:", e.code().name)
    t = time.time()
    stub.ListNegotiations(npb.ListNegotiationsRequest(), timeout=5)
    print(f"ListNegotiations right after: {(time.time()-t)*1000:.1f} ms")
    # The next analysis gets the one slot at once (the first stopped), and runs until its own 2 s deadline.
    t = time.time()
    try:
        stub.AnalyzeNegotiation(npb.AnalyzeNegotiationRequest(id=n.id), timeout=2)
    except grpc.RpcError as e:
        print(f"next analysis: {e.code().name} after {time.time()-t:.2f} s (RESOURCE_EXHAUSTED after 0.5 s if the first still ran)")
    _running = stub.AnalyzeNegotiation.future(npb.AnalyzeNegotiationRequest(id=n.id), timeout=60)
    time.sleep(0.5)
    t = time.time(); p.terminate(); p.wait()
    print(f"SIGTERM during an analysis: exited in {(time.time()-t)*1000:.0f} ms")

def write_baseline(writes=72):
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-data", "--data-dir", d)
    stub = drpc.TradeDataServiceStub(grpc.insecure_channel(addr))
    key = dpb.SeriesKey(reporter="USA", partner="KOR", flow=dpb.FLOW_EXPORT, kind=dpb.TRADE_KIND_GOODS, product="HS:87", frequency=dpb.FREQUENCY_ANNUAL)
    lat = []
    for i in range(writes):
        t = time.time()
        stub.WritePoints(dpb.WritePointsRequest(series=[dpb.SeriesPoints(key=key, source="s" * 1000, points=[dpb.Point(period=str(1000 + i), value_usd=1.0)])]), timeout=30)
        lat.append((time.time() - t) * 1000)
    lat.sort()
    print(f"no watchers, {writes} writes: p50 {lat[len(lat)//2]:.1f} ms, max {lat[-1]:.1f} ms")
    p.terminate(); p.wait()

if __name__ == "__main__":
    memory_creates()
    watchers()
    heavy()
    write_baseline()
