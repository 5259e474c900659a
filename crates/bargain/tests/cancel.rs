//! Long computations stop soon after their cancellation flag is set.

use std::time::{Duration, Instant};

use tradepact_bargain::cancel::{Cancel, Reason};
use tradepact_bargain::rng::SplitMix64;
use tradepact_bargain::{analyze, Error, Position};

mod common;

/// Three parties, 10 issues of 100 options, random utilities: the frontier merge (O(n²) per
/// stage for more than two parties) runs for minutes, as an outside test found.
fn heavy_space() -> (tradepact_bargain::OutcomeSpace, Vec<Position>) {
    let space = common::space(&[100; 10]);
    let mut rng = SplitMix64::new(7);
    let positions = (0..3)
        .map(|_| {
            let values: Vec<Vec<f64>> = (0..10)
                .map(|_| (0..100).map(|_| rng.unit()).collect())
                .collect();
            common::position(&space, &[0.1; 10], &values, 0.0)
        })
        .collect();
    (space, positions)
}

#[test]
fn a_cancelled_analysis_stops_within_a_fraction_of_a_second() {
    let (space, positions) = heavy_space();
    let flag = Cancel::new();
    let inner = flag.clone();
    let run = std::thread::spawn(move || {
        let refs: Vec<&Position> = positions.iter().collect();
        inner.scope(|| analyze(&space, &refs, 16, 1).map(|a| a.frontier.points.len()))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !run.is_finished(),
        "the workload must still be running to test anything"
    );
    let cancelled_at = Instant::now();
    flag.cancel(Reason::Deadline);
    while !run.is_finished() {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "still running 1 s after the cancellation"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(run.join().unwrap(), Err(Error::Cancelled(Reason::Deadline)));
}

#[test]
fn without_a_cancellation_the_same_code_answers() {
    let space = common::space(&[5, 5, 5]);
    let (a, b, c) = (
        common::position(
            &space,
            &[1.0, 1.0, 1.0],
            &vec![vec![0.1, 0.3, 0.5, 0.7, 0.9]; 3],
            0.0,
        ),
        common::position(
            &space,
            &[1.0, 0.0, 1.0],
            &vec![vec![0.9, 0.7, 0.5, 0.3, 0.1]; 3],
            0.0,
        ),
        common::position(
            &space,
            &[0.0, 1.0, 1.0],
            &vec![vec![0.5, 0.9, 0.1, 0.3, 0.7]; 3],
            0.0,
        ),
    );
    let flag = Cancel::new();
    let analysis = flag.scope(|| analyze(&space, &[&a, &b, &c], 4, 1)).unwrap();
    assert!(!analysis.frontier.points.is_empty());
    assert!(analysis.zopa.is_some());
}
