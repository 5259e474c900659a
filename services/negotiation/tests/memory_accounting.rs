//! The registry's budget counts what a negotiation really holds: with the counting allocator
//! installed (as in the service's binary), an entry's `memory()` is what building it left
//! allocated, within a few percent, for a small negotiation and for a large one (64 issues of
//! 449 options, the outside test's), and its analysis is counted once kept.

use tradepact_bargain::{Event, Issue, OptionDef};
use tradepact_negotiation::app::log::Meta;
use tradepact_negotiation::app::Entry;

#[global_allocator]
static ALLOC: tradepact_rpc::alloc::Counting = tradepact_rpc::alloc::Counting;

fn created(issues: usize, options: usize) -> (Event, Meta) {
    let issue = |i: usize| Issue {
        id: format!("i{i}"),
        label: format!("issue {i}"),
        options: (0..options)
            .map(|o| OptionDef {
                id: format!("o{o}"),
                label: format!("opt {o:03}"),
            })
            .collect(),
    };
    let event = Event::Created {
        title: "measured".into(),
        agreement: "a test".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: (0..issues).map(issue).collect(),
        deadline_rounds: 5,
        turn_rule: Default::default(),
    };
    let meta = Meta::new(vec![vec![Vec::new(); options]; issues]);
    (event, meta)
}

/// An allocation counts what it takes from the allocator (glibc: at least a 32-byte chunk), not
/// what was asked for: a negotiation of many short labels is mostly such chunks.
#[test]
fn a_short_string_counts_its_chunk() {
    let short = "abcde".to_owned();
    assert_eq!(tradepact_rpc::alloc::heap_bytes_of(&short), Some(32));
    let long = "x".repeat(1000);
    let counted = tradepact_rpc::alloc::heap_bytes_of(&long).unwrap();
    assert!((1008..=1032).contains(&counted), "{counted}");
}

#[test]
fn an_entry_counts_the_heap_bytes_it_holds() {
    assert!(tradepact_rpc::alloc::counting());
    for (issues, options) in [(3, 3), (64, 449)] {
        let (event, meta) = created(issues, options);
        let bytes =
            tradepact_negotiation::app::log::stored_size(Some(&meta), std::slice::from_ref(&event));
        // What building the entry leaves allocated, the event and metadata passed in included.
        let (entry, held) = tradepact_rpc::alloc::measure(|| {
            let (event, meta) = (event.clone(), meta.clone());
            Entry::new(meta, vec![event], bytes).unwrap()
        });
        let held = held.unwrap() as f64 + std::mem::size_of::<Entry>() as f64;
        let counted = entry.memory() as f64;
        eprintln!("{issues} x {options}: {bytes} bytes in the log, {held} held, {counted} counted");
        assert!(
            (counted - held).abs() <= held * 0.05,
            "{issues} x {options}: counted {counted}, held {held}"
        );
        // The log's bytes are no measure of it: a large one holds several times as much.
        if issues == 64 {
            assert!(held > 3.0 * bytes as f64, "{held} vs {bytes}");
        }
    }
}
