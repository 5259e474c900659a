//! Bargaining benchmark with peak heap memory: frontier + every solution for 10^4 … 10^12
//! outcomes (2 parties, 10 options per issue, random linear-additive utilities, reservation
//! values 0), and a 100-round Boulware-versus-Conceder simulation on 10^6 outcomes, each the
//! median of several runs; prints a markdown table beside NegMAS 0.16 timed in the same run on
//! the same spaces (written as NegMAS files, timed by `scripts/negmas_bench.py`) when
//! `python3 -c "import negmas"` works (`scripts/bench.sh` installs it), else beside its figures
//! measured earlier on this class of machine, said so.
//!
//! ```sh
//! cargo build --release -p tradepact-bench && target/release/bargain-bench
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tradepact_bargain::analysis::zopa;
use tradepact_bargain::{solve, OutcomeSpace, Position, PositionSpec, Simulation, Strategy};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn scenario(issues: usize, seed: u64) -> (OutcomeSpace, Position, Position) {
    tradepact_bargain::sample::random_bilateral(issues, 10, seed)
}

/// Median time and peak extra heap of `runs` runs of `f`, plus what `f` reports.
fn measure<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, Duration, f64, T) {
    let mut times = Vec::new();
    let mut peak = 0usize;
    let mut last = None;
    for _ in 0..runs {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        let out = f();
        times.push(start.elapsed());
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
        last = Some(out);
    }
    times.sort();
    (
        times[runs / 2],
        times[0],
        times[runs - 1],
        peak as f64 / 1e3,
        last.expect("runs > 0"),
    )
}

/// NegMAS's figures for one space: analysis, and the simulation when asked for (median
/// seconds), and its peak resident memory (MB).
struct Negmas {
    analysis: f64,
    frontier: u64,
    simulation: Option<f64>,
    peak_mb: f64,
}

/// Figures measured earlier (NegMAS 0.16, this class of machine), for a machine without NegMAS.
const NEGMAS_EARLIER: [(usize, f64); 3] = [(4, 0.054), (5, 1.12), (6, 11.5)];
const NEGMAS_EARLIER_SIMULATION: f64 = 11.9;

fn negmas_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import negmas"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Times NegMAS on the space of `issues` issues (seed 1), written as NegMAS files.
fn negmas(issues: usize, runs: usize, simulate: bool) -> anyhow::Result<Negmas> {
    let (space, a, b) = scenario(issues, 1);
    let spec = |p: &Position| PositionSpec {
        weights: (space.issues().iter().zip(p.weights()))
            .map(|(i, w)| (i.id.clone(), *w))
            .collect(),
        values: (space.issues().iter().zip(p.values()))
            .map(|(i, v)| {
                let values = i.options.iter().zip(v).map(|(o, v)| (o.id.clone(), *v));
                (i.id.clone(), values.collect())
            })
            .collect(),
        reservation: p.reservation(),
    };
    let (domain, profiles) =
        tradepact_bargain::negmas::write("random", space.issues(), &[&spec(&a), &spec(&b)]);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("domain.yml"), domain)?;
    for (party, text) in ["a", "b"].iter().zip(profiles) {
        std::fs::write(dir.path().join(format!("{party}.yml")), text)?;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/negmas_bench.py");
    let mut command = std::process::Command::new("python3");
    command.arg(script).arg(dir.path()).arg(runs.to_string());
    if simulate {
        command.arg("--simulate");
    }
    let out = command.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let median = |k: &str| v[k]["median"].as_f64();
    Ok(Negmas {
        analysis: median("analysis").ok_or_else(|| anyhow::anyhow!("no analysis time"))?,
        frontier: v["analysis"]["out"].as_u64().unwrap_or(0),
        simulation: median("simulation"),
        peak_mb: v["peak_mb"].as_f64().unwrap_or(0.0),
    })
}

fn main() {
    let measured = negmas_installed();
    let mut negmas_figures: HashMap<usize, Negmas> = HashMap::new();
    if measured {
        for (issues, runs) in [(4usize, 5usize), (5, 3), (6, 1)] {
            match negmas(issues, runs, issues == 6) {
                Ok(n) => {
                    negmas_figures.insert(issues, n);
                }
                Err(e) => eprintln!("NegMAS on 10^{issues}: {e}"),
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("### Bargaining benchmark\n");
    println!(
        "Machine: {cores} cores. Command: `target/release/bargain-bench`. Two parties, 10 options per issue, random weights and values (seed 1), reservation values 0; each figure the median of the runs shown; peak heap counted by a global allocator wrapper (extra bytes live at once during the run).\n"
    );
    match negmas_figures.is_empty() {
        false => println!(
            "NegMAS 0.16 measured in this run on the same spaces (written as NegMAS files; `scripts/negmas_bench.py`: enumerate, `pareto_frontier`, `nash_points`, `kalai_points`, `max_welfare_points`, `max_relative_welfare_points`; the simulation an `SAOMechanism` of two `AspirationNegotiator`s, 100 steps), median of 5, 3 and 1 runs at 10^4, 10^5 and 10^6; its frontier's points and its peak resident memory beside each time.\n"
        ),
        true => println!(
            "NegMAS not installed (`pip install negmas==0.16.0`): its column gives figures measured earlier on this class of machine, not in this run.\n"
        ),
    }
    println!("| workload | outcomes | runs | median | min | max | peak heap | frontier points | NegMAS 0.16 | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let negmas: HashMap<usize, String> = match negmas_figures.is_empty() {
        false => (negmas_figures.iter())
            .map(|(k, n)| {
                let figure = format!("{:.3} s, {} points", n.analysis, n.frontier);
                (*k, format!("{figure} ({:.0} MB)", n.peak_mb))
            })
            .collect(),
        true => (NEGMAS_EARLIER.iter())
            .map(|(k, s)| (*k, format!("{s} s (earlier)")))
            .collect(),
    };
    let negmas_seconds: HashMap<usize, f64> = match negmas_figures.is_empty() {
        false => (negmas_figures.iter())
            .map(|(k, n)| (*k, n.analysis))
            .collect(),
        true => NEGMAS_EARLIER.into_iter().collect(),
    };
    for (issues, runs) in [(4usize, 21usize), (5, 21), (6, 11), (9, 5), (12, 5)] {
        let (space, a, b) = scenario(issues, 1);
        let (med, min, max, heap, analysis) =
            measure(runs, || solve(&space, &[&a, &b], 1).expect("within limits"));
        let reference = negmas.get(&issues).cloned().unwrap_or(match issues {
            4..=6 => "failed (see stderr)".to_owned(),
            _ => "cannot".to_owned(),
        });
        let speedup = negmas_seconds.get(&issues).map_or("–".to_owned(), |s| {
            format!("{:.0}×", s / med.as_secs_f64())
        });
        println!(
            "| Pareto frontier + Nash, KS, egalitarian, welfare points | 10^{issues} | {runs} | {:.3} ms | {:.3} ms | {:.3} ms | {heap:.0} kB | {} | {reference} | {speedup} |",
            med.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            analysis.frontier.points.len(),
        );
        let (med, min, max, heap, z) = measure(runs, || zopa(&space, &[&a, &b], 1));
        println!(
            "| ZOPA size ({}) | 10^{issues} | {runs} | {:.3} ms | {:.3} ms | {:.3} ms | {heap:.0} kB | – | – | – |",
            if z.exact { "counted exactly" } else { "sampled" },
            med.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
        );
    }
    // Worst case: B's values are 1 − A's with equal weights, so every outcome is optimal.
    let (space, a, _) = scenario(6, 1);
    let opposed = {
        let mut spec = PositionSpec {
            reservation: 0.0,
            ..Default::default()
        };
        for (i, issue) in space.issues().iter().enumerate() {
            spec.weights.insert(issue.id.clone(), a.weights()[i]);
            spec.values.insert(
                issue.id.clone(),
                issue
                    .options
                    .iter()
                    .enumerate()
                    .map(|(o, opt)| (opt.id.clone(), 1.0 - a.values()[i][o]))
                    .collect(),
            );
        }
        Position::new(&space, &spec).expect("valid position")
    };
    let (med, min, max, heap, analysis) = measure(3, || {
        solve(&space, &[&a, &opposed], 1).expect("within limits")
    });
    println!(
        "| worst case: opposed utilities, every outcome on the frontier | 10^6 | 3 | {:.3} ms | {:.3} ms | {:.3} ms | {heap:.0} kB | {} | – | – |",
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        analysis.frontier.points.len(),
    );

    let (space, a, b) = scenario(6, 1);
    let (med, min, max, heap, (steps, outcome)) = measure(11, || {
        Simulation::new(
            &space,
            vec![&a, &b],
            vec![Strategy::BOULWARE, Strategy::CONCEDER],
            100,
            1,
        )
        .expect("valid simulation")
        .run()
    });
    let simulation = match negmas_figures.get(&6).and_then(|n| n.simulation) {
        Some(s) => (s, format!("{s:.3} s")),
        None => (
            NEGMAS_EARLIER_SIMULATION,
            format!("{NEGMAS_EARLIER_SIMULATION} s (earlier)"),
        ),
    };
    println!(
        "| 100-round Boulware vs Conceder simulation ({} turns, {}) | 10^6 | 11 | {:.3} ms | {:.3} ms | {:.3} ms | {heap:.0} kB | – | {} | {:.0}× |",
        steps.len(),
        outcome.reason,
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        simulation.1,
        simulation.0 / med.as_secs_f64()
    );
}
