//! `WatchNegotiation`'s work: a negotiation's events from a number on, then the live ones.

use tokio::sync::broadcast;
use tradepact_bargain::Event;
use tradepact_model::{Failure, Outcome};

use super::{Negotiations, Published};

/// A watch of one negotiation: its past events and the live ones.
pub struct Watch {
    /// Numeric id of the negotiation (live events of others are skipped).
    pub id: u64,
    /// Its parties, in order (what a watcher sees depends on them).
    pub parties: Vec<String>,
    /// The events from the number asked for, with their numbers.
    pub past: Vec<(u64, Event)>,
    /// The number of the first event after them.
    pub next: u64,
    /// Every event recorded from now on, of every negotiation.
    pub live: broadcast::Receiver<Published>,
}

impl Negotiations {
    /// Watches negotiation `id` from event `from_event`.
    pub async fn watch(&self, id: &str, from_event: u64) -> Outcome<Watch> {
        let (number, entry) = self.entry(id).await?;
        // Subscribe before reading the past, so that nothing falls between the two.
        let live = self.published.subscribe();
        let entry = entry.lock().await;
        let count = entry.events.len() as u64;
        if from_event > count {
            return Err(Failure::invalid(
                "from_event",
                format!("the negotiation has {count} events"),
            ));
        }
        let past = (from_event..)
            .zip(entry.events.iter().skip(from_event as usize).cloned())
            .collect();
        Ok(Watch {
            id: number,
            parties: entry.negotiation.parties.clone(),
            past,
            next: count,
            live,
        })
    }
}
