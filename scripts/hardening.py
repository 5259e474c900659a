"""Before/after figures of the outside tests' findings, against the release binaries on
loopback.

- default (issue 9): 60 creations of 10 MB, 2000 watchers that never read, an analysis whose
  client gives up, SIGTERM during an analysis, and writes without watchers as the baseline;
- `connections [SECONDS]` (issue 26): each attack on connection slots — HTTP/2 preface and
  SETTINGS with pings answered, the same with pings ignored, an HTTP/1.1 slowloris, TLS
  handshakes never finished, watch streams from one address — with 1,200 connections
  reopened as the server closes them, for SECONDS (default 120) each, while a client opens a
  new connection and calls GetSeries every 200 ms: the share of calls answered within 1 s
  (target 99 %) and 2 s, and when and why the server closed the attacking connections (its
  log line and its tradepact_connections_closed_total counter).

- `memory BUDGET_MIB...` (issue 26): the negotiation service at `--negotiation-memory-mib`
  BUDGET: 20,000 small negotiations with 3 offers each, then 200 of 64 issues × 449 options
  (~0.5 MB requests), then an analysis of one of those (over its bound: refused): resident
  memory after each phase, its peak (sampled every 0.2 s), and at the end.

- `soak [MINUTES]` (issue 26; 20 minutes by default, not in CI): the data service under a
  mixed load — 2,000 points a second into 10^5 series (10 reporters × 10 partners × 1,000 HS6
  products), 40 watchers reading everything, 10 watchers that read nothing on connections with
  a small receive window (no BDP probing: 64 kB per stream), GetSeries of random series — with
  its resident memory every 30 s, when the silent watchers were dropped, and the write latency.

Usage: cargo build --release --bins && python3 scripts/hardening.py [connections [SECONDS] | memory BUDGET_MIB... | soak [MINUTES]]
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

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])

async def _hold(kind, reader, writer):
    """Holds one attacking connection the attack's way until the server closes it."""
    import asyncio
    if kind == "tls-never-finished":
        writer.write(bytes([0x16, 0x03, 0x01, 0x02, 0x00]))
    elif kind == "slowloris":
        writer.write(b"POST /tradepact.data.v1.TradeDataService/GetSeries HTTP/1.1\r\nhost: x\r\n")
    else:
        writer.write(H2_PREFACE)
    if kind == "watches-one-address":
        msg = dpb.WatchSeriesRequest(filter=dpb.SeriesFilter(partner="KOR")).SerializeToString()
        # HEADERS (literal, not indexed) for stream 1, then the message with END_STREAM.
        def lit(name, value):
            return bytes([0, len(name)]) + name + bytes([len(value)]) + value
        block = (bytes([0x83, 0x86]) + lit(b":path", b"/tradepact.data.v1.TradeDataService/WatchSeries")
                 + lit(b":authority", b"x") + lit(b"content-type", b"application/grpc") + lit(b"te", b"trailers"))
        writer.write(len(block).to_bytes(3, "big") + bytes([1, 4]) + (1).to_bytes(4, "big") + block)
        body = bytes([0]) + len(msg).to_bytes(4, "big") + msg
        writer.write(len(body).to_bytes(3, "big") + bytes([0, 1]) + (1).to_bytes(4, "big") + body)
    last = asyncio.get_running_loop().time()
    buf = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 1.0)
        except asyncio.TimeoutError:
            chunk = None
        except OSError:
            return
        if chunk == b"":
            return
        if kind == "slowloris" and asyncio.get_running_loop().time() - last >= 1.0:
            writer.write(b"x-slow: 1\r\n"); last = asyncio.get_running_loop().time()
        if chunk and kind in ("h2-answers-pings", "watches-one-address"):
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags, payload = buf[3], buf[4], buf[9:9 + n]
                if ftype == 4 and not flags & 1:
                    writer.write(bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]))
                if ftype == 6 and not flags & 1:
                    writer.write(bytes([0, 0, 8, 6, 1, 0, 0, 0, 0]) + payload)
                buf = buf[9 + n:]
        try:
            await writer.drain()
        except OSError:
            return

def connections(seconds=120, n=1200):
    """Each attack on connection slots while a client probes; see the module doc."""
    import asyncio, ssl
    kinds = ["h2-answers-pings", "h2-ignores-pings", "slowloris", "tls-never-finished", "watches-one-address"]
    for kind in kinds:
        d = tempfile.mkdtemp()
        args = ["--data-dir", d, "--metrics-listen", "127.0.0.1:0"]
        creds = None
        if kind == "tls-never-finished":
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem"],
                           check=True, capture_output=True)
            args += ["--tls-cert", f"{d}/c.pem", "--tls-key", f"{d}/k.pem"]
            creds = grpc.ssl_channel_credentials(open(f"{d}/c.pem", "rb").read())
        if kind == "watches-one-address":
            args += ["--max-connections-per-address", "100"]
        log = []
        p = subprocess.Popen([str(BIN / "tradepact-data"), "--listen", "127.0.0.1:0", *args], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "RUST_LOG": "warn,tradepact_rpc::conn=info,tradepact_rpc::server=info,tradepact_rpc::metrics=info"})
        addr = metrics = None
        for line in p.stderr:
            log.append((time.time(), line))
            metrics = metrics or (re.search(r"metrics on (127\.0\.0\.1:\d+)", line) or [None, None])[1]
            m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
            if m:
                addr = m.group(1); break
        threading.Thread(target=lambda: [log.append((time.time(), l)) for l in p.stderr], daemon=True).start()
        chan = lambda: grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", "localhost")]) if creds else grpc.insecure_channel(addr)
        key = dpb.SeriesKey(reporter="USA", partner="KOR", flow=dpb.FLOW_IMPORT, kind=dpb.TRADE_KIND_GOODS, product="TOTAL", frequency=dpb.FREQUENCY_ANNUAL)
        drpc.TradeDataServiceStub(chan()).WritePoints(dpb.WritePointsRequest(series=[dpb.SeriesPoints(key=key, points=[dpb.Point(period="2016", value_usd=1.0)])]), timeout=10)
        host, port = addr.split(":")
        stop = threading.Event()
        opened = [0]

        async def attacker(i):
            src = "127.0.0.2" if kind == "watches-one-address" else f"127.0.0.{2 + i % 4}"
            while not stop.is_set():
                try:
                    r, w = await asyncio.open_connection(host, int(port), local_addr=(src, 0))
                except OSError:
                    await asyncio.sleep(0.1); continue
                opened[0] += 1
                t = asyncio.get_running_loop().time()
                await _hold(kind, r, w)
                w.close()
                if asyncio.get_running_loop().time() - t < 0.05:
                    await asyncio.sleep(0.05)

        async def attack():
            tasks = [asyncio.create_task(attacker(i)) for i in range(n)]
            while not stop.is_set():
                await asyncio.sleep(0.2)
            for t in tasks: t.cancel()

        th = threading.Thread(target=lambda: asyncio.run(attack()), daemon=True); th.start()
        while opened[0] < n:
            time.sleep(0.05)
        began = time.time()
        lat, errors = [], {}
        while time.time() - began < seconds:
            t = time.time()
            try:
                ch = chan()
                drpc.TradeDataServiceStub(ch).GetSeries(dpb.GetSeriesRequest(key=key), timeout=2)
                lat.append(time.time() - t); ch.close()
            except grpc.RpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1
            time.sleep(max(0.0, 0.2 - (time.time() - t)))
        stop.set(); th.join(5)
        total = len(lat) + sum(errors.values())
        closed = [l for (at, l) in log if "closed connections since start" in l and at >= began]
        first = next((at for (at, l) in log if "closed connections since start" in l and at >= began - 30), None)
        import urllib.request
        body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
        counters = " ".join(l.split("{")[1].replace("} ", "=").replace('reason="', "").replace('"', "") for l in body.splitlines()
                            if l.startswith("tradepact_connections_closed_total{"))
        refused = next((l.split()[-1] for l in body.splitlines() if l.startswith("tradepact_connections_refused_total")), "0")
        print(f"{kind}: {total} probes in {seconds} s, {sum(x <= 1 for x in lat) / total:.1%} within 1 s, {len(lat) / total:.1%} within 2 s "
              f"(p50 {sorted(lat)[len(lat)//2]*1000 if lat else 0:.0f} ms, errors {errors}); attackers opened {opened[0]}; "
              f"server closed: {counters or 'none'}, refused {refused}; first close logged "
              f"{(first - began) if first else float('nan'):+.1f} s from the probes' start, {len(closed)} close lines during them")
        p.terminate(); p.wait()

class Peak:
    """The peak resident memory of `p`, sampled every 0.2 s from start to stop."""
    def __init__(self, p):
        self.p, self.peak, self.done = p, 0.0, False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.done:
            self.peak = max(self.peak, rss_mb(self.p)); time.sleep(0.2)

    def take(self):
        peak, self.peak = max(self.peak, rss_mb(self.p)), 0.0
        return peak

def held():
    """What the registry says its loaded negotiations hold (its gauge)."""
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:19464/metrics", timeout=5).read().decode()
    m = re.search(r"^tradepact_negotiations_memory_bytes (\S+)", text, re.M)
    return f"the registry counts {float(m.group(1)) / 2**20:.0f} MiB loaded" if m else "no gauge"

def memory(budget_mib):
    from concurrent.futures import ThreadPoolExecutor
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-negotiation", "--data-dir", d, "--negotiation-memory-mib", str(budget_mib),
                    "--metrics-listen", "127.0.0.1:19464")
    ch = grpc.insecure_channel(addr, options=[("grpc.max_send_message_length", 64 << 20),
                                              ("grpc.max_receive_message_length", 64 << 20)])
    stub = nrpc.NegotiationServiceStub(ch)
    peak = Peak(p)
    print(f"budget {budget_mib} MiB: RSS at start {rss_mb(p):.0f} MB")
    small = npb.CreateNegotiationRequest(title="small", agreement="t", parties=["US", "KOR"], deadline_rounds=10,
        issues=[npb.Issue(id=f"i{i}", label=f"issue {i}", options=[npb.IssueOption(id=f"o{o}", label=f"option {o}") for o in range(3)]) for i in range(3)])
    def package(k):
        return npb.Package(choices=[npb.Choice(issue_id=f"i{i}", option_id=f"o{(k + i) % 3}") for i in range(3)])
    def one_small(_):
        n = stub.CreateNegotiation(small, timeout=30).negotiation.id
        parties = ["US", "KOR"]
        for k in range(3):
            offer = stub.SubmitOffer(npb.SubmitOfferRequest(negotiation_id=n, party=parties[k % 2], package=package(k)), timeout=30).offer
            if k < 2:
                stub.RespondToOffer(npb.RespondToOfferRequest(negotiation_id=n, party=parties[(k + 1) % 2], offer_id=offer.id, accept=False), timeout=30)
    t = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one_small, range(20_000)))
    print(f"  20,000 small negotiations, 3 offers each ({time.time() - t:.0f} s): RSS {rss_mb(p):.0f} MB, peak {peak.take():.0f} MB; {held()}")
    big = npb.CreateNegotiationRequest(title="big", agreement="t", parties=["US", "KOR"], deadline_rounds=10,
        issues=[npb.Issue(id=f"i{i}", label=f"issue {i}", options=[npb.IssueOption(id=f"o{o}", label=f"opt {o:03d}") for o in range(449)]) for i in range(64)])
    print(f"  a large creation: {big.ByteSize() / 1e3:.0f} kB")
    t, ids = time.time(), []
    for _ in range(200):
        ids.append(stub.CreateNegotiation(big, timeout=60).negotiation.id)
    print(f"  200 of 64 x 449 ({time.time() - t:.0f} s): RSS {rss_mb(p):.0f} MB, peak {peak.take():.0f} MB; {held()}")
    # Opposed positions (what one gains on an option the other loses): the frontier explodes.
    for party, value in (("US", lambda o: o / 448), ("KOR", lambda o: 1 - o / 448)):
        position = npb.Position(
            weights={f"i{i}": 1.0 for i in range(64)},
            values={f"i{i}": npb.OptionValues(values={f"o{o}": value(o) for o in range(449)}) for i in range(64)},
            reservation_value=0.1)
        stub.SetPosition(npb.SetPositionRequest(negotiation_id=ids[0], party=party, position=position), timeout=60)
    peak.take()
    t = time.time()
    try:
        stub.AnalyzeNegotiation(npb.AnalyzeNegotiationRequest(id=ids[0]), timeout=60)
        outcome = "OK"
    except grpc.RpcError as e:
        outcome = e.code().name
    print(f"  an analysis of one ({time.time() - t:.1f} s): {outcome}; RSS {rss_mb(p):.0f} MB, peak {peak.take():.0f} MB")
    time.sleep(5)
    print(f"  5 s later: RSS {rss_mb(p):.0f} MB")
    peak.done = True
    p.terminate(); p.wait()

def soak(minutes=20):
    import random
    d = tempfile.mkdtemp()
    p, addr = start("tradepact-data", "--data-dir", d, "--metrics-listen", "127.0.0.1:19465")
    reporters = ["USA", "KOR", "JPN", "CHN", "DEU", "FRA", "GBR", "MEX", "CAN", "BRA"]
    partners = ["IND", "ITA", "ESP", "NLD", "AUS", "VNM", "THA", "IDN", "TUR", "POL"]
    def key(i):
        return dpb.SeriesKey(reporter=reporters[i % 10], partner=partners[i // 10 % 10], flow=dpb.FLOW_IMPORT,
                             kind=dpb.TRADE_KIND_GOODS, product=f"HS:{100000 + i // 100:06d}", frequency=dpb.FREQUENCY_ANNUAL)
    stop = threading.Event()
    dropped, received, lat = [0], [0], []
    def reader(i):
        stub = drpc.TradeDataServiceStub(grpc.insecure_channel(addr))
        try:
            for _ in stub.WatchSeries(dpb.WatchSeriesRequest(filter=dpb.SeriesFilter(reporter=reporters[i % 10]))):
                received[0] += 1
                if stop.is_set():
                    return
        except grpc.RpcError:
            pass
    # Silent watchers: raw HTTP/2 connections whose receive window is 4 kB (SETTINGS) on a
    # 4 kB socket buffer, that call WatchSeries and never read again (no client library
    # buffering for them).
    import socket
    silent = []
    host, port = addr.split(":")
    msg = dpb.WatchSeriesRequest().SerializeToString()
    def lit(name, value):
        return bytes([0, len(name)]) + name + bytes([len(value)]) + value
    block = (bytes([0x83, 0x86]) + lit(b":path", b"/tradepact.data.v1.TradeDataService/WatchSeries")
             + lit(b":authority", b"x") + lit(b"content-type", b"application/grpc") + lit(b"te", b"trailers"))
    body = bytes([0]) + len(msg).to_bytes(4, "big") + msg
    for _ in range(10):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        settings = (4).to_bytes(2, "big") + (4096).to_bytes(4, "big")  # INITIAL_WINDOW_SIZE
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + len(settings).to_bytes(3, "big") + bytes([4, 0]) + bytes(4) + settings
                     + len(block).to_bytes(3, "big") + bytes([1, 4]) + (1).to_bytes(4, "big") + block
                     + len(body).to_bytes(3, "big") + bytes([0, 1]) + (1).to_bytes(4, "big") + body)
        silent.append(sock)
    def silent_ended():
        import urllib.request
        text = urllib.request.urlopen("http://127.0.0.1:19465/metrics", timeout=5).read().decode()
        m = re.search(r"^tradepact_watchers_dropped_total (\S+)", text, re.M)
        return int(float(m.group(1))) if m else 0
    for i in range(40):
        threading.Thread(target=reader, args=(i,), daemon=True).start()
    def writer():
        stub = drpc.TradeDataServiceStub(grpc.insecure_channel(addr))
        rng, n = random.Random(7), 0
        next_at = time.time()
        while not stop.is_set():
            series = {}
            for _ in range(200):
                i = rng.randrange(100_000)
                series.setdefault(i, {})[str(rng.randrange(2000, 2024))] = rng.random() * 1e6
            series = {i: [dpb.Point(period=y, value_usd=v) for y, v in years.items()] for i, years in series.items()}
            t = time.time()
            stub.WritePoints(dpb.WritePointsRequest(series=[dpb.SeriesPoints(key=key(i), source="soak", points=pts)
                                                            for i, pts in series.items()]), timeout=30)
            lat.append(time.time() - t)
            n += 1
            next_at += 0.1  # 200 points every 0.1 s
            time.sleep(max(0.0, next_at - time.time()))
    def reads():
        stub = drpc.TradeDataServiceStub(grpc.insecure_channel(addr))
        rng = random.Random(8)
        while not stop.is_set():
            try:
                stub.GetSeries(dpb.GetSeriesRequest(key=key(rng.randrange(100_000)), start_period="2000", end_period="2023"), timeout=10)
            except grpc.RpcError:
                pass
            time.sleep(0.01)
    threading.Thread(target=writer, daemon=True).start()
    threading.Thread(target=reads, daemon=True).start()
    print(f"soak of {minutes} min: 2,000 points/s into 10^5 series, 40 watchers reading, 10 silent, reads")
    print("minute  RSS MB  watchers dropped  updates received  writes p99 ms")
    start_t, series_rss = time.time(), []
    while time.time() - start_t < minutes * 60:
        time.sleep(30)
        rss = rss_mb(p); series_rss.append(rss)
        recent = sorted(lat[-300:]) or [0]
        print(f"{(time.time() - start_t) / 60:6.1f}  {rss:6.0f}  {silent_ended():16d}  {received[0]:16d}  {recent[int(len(recent) * 0.99) - 1] * 1000:13.1f}", flush=True)
    stop.set()
    half = series_rss[len(series_rss) // 2:]
    print(f"RSS: max {max(series_rss):.0f} MB; second half {min(half):.0f}-{max(half):.0f} MB")
    p.terminate(); p.wait()

if __name__ == "__main__" and sys.argv[1:2] == ["soak"]:
    soak(float(sys.argv[2]) if len(sys.argv) > 2 else 20)
    raise SystemExit(0)

if __name__ == "__main__" and sys.argv[1:2] == ["memory"]:
    for budget in sys.argv[2:] or ["64", "256"]:
        memory(int(budget))
    raise SystemExit(0)

if __name__ == "__main__" and sys.argv[1:2] == ["connections"]:
    connections(int(sys.argv[2]) if len(sys.argv) > 2 else 120)
elif __name__ == "__main__":
    memory_creates()
    watchers()
    heavy()
    write_baseline()
