//! Bargaining benchmark with peak heap memory: frontier + every solution for 10^4 … 10^12
//! outcomes (2 parties, 10 options per issue, random linear-additive utilities, reservation
//! values 0), and a 100-round Boulware-versus-Conceder simulation on 10^6 outcomes, each the
//! median of several runs; prints a markdown table beside NegMAS 0.16's published figures for
//! the same workloads on this class of machine.
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

fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("### Bargaining benchmark\n");
    println!(
        "Machine: {cores} cores. Command: `target/release/bargain-bench`. Two parties, 10 options per issue, random weights and values (seed 1), reservation values 0; each figure the median of the runs shown; peak heap counted by a global allocator wrapper (extra bytes live at once during the run).\n"
    );
    println!("| workload | outcomes | runs | median | min | max | peak heap | frontier points | NegMAS 0.16 | speed-up |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let negmas: HashMap<usize, f64> = HashMap::from([(4, 0.054), (5, 1.12), (6, 11.5)]);
    for (issues, runs) in [(4usize, 21usize), (5, 21), (6, 11), (9, 5), (12, 5)] {
        let (space, a, b) = scenario(issues, 1);
        let (med, min, max, heap, analysis) =
            measure(runs, || solve(&space, &[&a, &b], 1).expect("within limits"));
        let reference = negmas
            .get(&issues)
            .map_or("cannot".to_owned(), |s| format!("{s} s"));
        let speedup = negmas.get(&issues).map_or("–".to_owned(), |s| {
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
    println!(
        "| 100-round Boulware vs Conceder simulation ({} turns, {}) | 10^6 | 11 | {:.3} ms | {:.3} ms | {:.3} ms | {heap:.0} kB | – | 11.9 s | {:.0}× |",
        steps.len(),
        outcome.reason,
        med.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        11.9 / med.as_secs_f64()
    );
}
