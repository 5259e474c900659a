//! Shared pieces of the benchmark binaries.

pub mod matrix;
pub mod postgres;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server binary started for a benchmark, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://ADDR` from its `listening on ADDR` line.
    pub url: String,
}

impl Server {
    /// Starts `bin` with `args` and waits (up to 30 s) for its readiness line.
    pub fn start(bin: &Path, args: &[&str]) -> anyhow::Result<Server> {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "warn,tradepact_rpc::server=info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = tradepact_client::readiness_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30))?;
        Ok(Server {
            child,
            url: format!("http://{addr}"),
        })
    }

    /// Starts a binary that sits next to the running one.
    pub fn start_sibling(name: &str, args: &[&str]) -> anyhow::Result<Server> {
        Self::start(&std::env::current_exe()?.with_file_name(name), args)
    }

    /// Peak and current resident memory, from /proc (MB).
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median of `times` (the upper one of an even count).
pub fn median(mut times: Vec<std::time::Duration>) -> std::time::Duration {
    times.sort();
    times[times.len() / 2]
}
