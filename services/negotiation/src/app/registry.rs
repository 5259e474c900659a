//! The negotiations a service knows, kept in memory only while in use.
//!
//! Every negotiation has a small summary in memory (what `ListNegotiations` shows: no issues,
//! offers or positions); its state and events are loaded from the event log when a call needs
//! them and evicted, least recently used first, once the loaded ones take more than the
//! budget (counted as the heap bytes they hold, measured: [`Entry::memory`]; their kept
//! analyses included). A negotiation a call still
//! holds is never evicted, so there is at most one copy of each in memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Mutex, RwLock};
use tradepact_model::{Failure, Outcome};
use tradepact_proto::negotiation_v1 as pb;

use super::log::{public_id, EventStore};
use super::Entry;

struct Slot {
    summary: pb::Negotiation,
    loaded: Option<Arc<Mutex<Entry>>>,
    bytes: usize,
    used: AtomicU64,
}

/// Negotiations held (in the log; a gauge).
const NEGOTIATIONS: &str = "tradepact_negotiations";
/// Heap bytes the negotiations loaded in memory hold (measured; a gauge), against the budget.
const MEMORY: &str = "tradepact_negotiations_memory_bytes";

/// The negotiations, by numeric id.
pub struct Registry {
    log: Arc<dyn EventStore>,
    slots: RwLock<BTreeMap<u64, Slot>>,
    resident: AtomicUsize,
    budget: usize,
    tick: AtomicU64,
    summary: fn(&Entry) -> pb::Negotiation,
}

impl Registry {
    /// Reads every negotiation's summary from `log` (replaying each once, one at a time).
    pub fn load(
        log: Arc<dyn EventStore>,
        budget: usize,
        summary: fn(&Entry) -> pb::Negotiation,
    ) -> anyhow::Result<Registry> {
        let mut slots = BTreeMap::new();
        let mut replayed = |id, meta, events, bytes| {
            let entry = Entry::unmeasured(meta, events, bytes).map_err(|e| {
                super::log::LogError::Corrupt(format!("replaying {}: {e}", public_id(id)))
            })?;
            slots.insert(
                id,
                Slot {
                    summary: summary(&entry),
                    loaded: None,
                    bytes: 0, // counted when loaded
                    used: AtomicU64::new(0),
                },
            );
            Ok(())
        };
        log.for_each(&mut replayed)
            .map_err(|e| anyhow::anyhow!("replaying the event log: {e}"))?;
        tracing::info!(negotiations = slots.len(), "event log replayed");
        metrics::gauge!(NEGOTIATIONS).set(slots.len() as f64);
        Ok(Registry {
            log,
            slots: RwLock::new(slots),
            resident: AtomicUsize::new(0),
            budget,
            tick: AtomicU64::new(1),
            summary,
        })
    }

    /// The negotiation `id`, loaded from the log if it is not in memory.
    pub async fn get(&self, id: u64, public: &str) -> Outcome<Arc<Mutex<Entry>>> {
        {
            let slots = self.slots.read().await;
            let Some(slot) = slots.get(&id) else {
                drop(slots);
                // Created by another replica, perhaps, and not followed here yet.
                return self.read_through(id, public).await;
            };
            if let Some(entry) = &slot.loaded {
                slot.used
                    .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
                return Ok(entry.clone());
            }
        }
        let log = self.log.clone();
        let entry = tokio::task::spawn_blocking(move || read(log.as_ref(), id))
            .await
            .map_err(|e| Failure::internal("event log task", &e))??;
        let mut slots = self.slots.write().await;
        let slot = slots.get_mut(&id).ok_or_else(|| not_found(public))?;
        slot.used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        if let Some(entry) = &slot.loaded {
            return Ok(entry.clone()); // loaded meanwhile by another call
        }
        slot.bytes = entry.memory();
        let entry = Arc::new(Mutex::new(entry));
        slot.loaded = Some(entry.clone());
        self.resident.fetch_add(slot.bytes, Ordering::AcqRel);
        self.evict(&mut slots, id);
        Ok(entry)
    }

    /// Reads a negotiation this registry does not know from the log, and keeps it.
    async fn read_through(&self, id: u64, public: &str) -> Outcome<Arc<Mutex<Entry>>> {
        let log = self.log.clone();
        let read = tokio::task::spawn_blocking(move || log.load_one(id))
            .await
            .map_err(|e| Failure::internal("event log task", &e))?;
        let (meta, events, bytes) = match read {
            Ok(found) => found,
            Err(super::log::LogError::Missing(_)) => return Err(not_found(public)),
            Err(e) => return Err(super::log_failure(e)),
        };
        let entry = Entry::new(meta, events, bytes)
            .map_err(|e| Failure::internal(format!("replaying {public}"), &e))?;
        if let Some(slot) = self.slots.read().await.get(&id) {
            if let Some(entry) = &slot.loaded {
                return Ok(entry.clone()); // read meanwhile by another call
            }
        }
        Ok(self.insert(entry).await)
    }

    /// Replaces `entry` with the negotiation as the log holds it now.
    pub async fn reread(&self, entry: &mut Entry) -> Outcome<()> {
        let (log, id) = (self.log.clone(), entry.meta.id);
        let fresh = tokio::task::spawn_blocking(move || read(log.as_ref(), id))
            .await
            .map_err(|e| Failure::internal("event log task", &e))??;
        *entry = fresh; // the old analysis's charge is given back as it drops
        Ok(())
    }

    /// Adds a new negotiation, loaded.
    pub async fn insert(&self, entry: Entry) -> Arc<Mutex<Entry>> {
        let id = entry.meta.id;
        let loaded = Arc::new(Mutex::new(entry));
        let slot = {
            let entry = loaded.lock().await;
            Slot {
                summary: (self.summary)(&entry),
                bytes: entry.memory(),
                loaded: Some(loaded.clone()),
                used: AtomicU64::new(self.tick.fetch_add(1, Ordering::Relaxed)),
            }
        };
        self.resident.fetch_add(slot.bytes, Ordering::AcqRel);
        let mut slots = self.slots.write().await;
        if slots.insert(id, slot).is_none() {
            metrics::gauge!(NEGOTIATIONS).increment(1.0);
        }
        self.evict(&mut slots, id);
        loaded
    }

    /// The negotiations in memory now.
    pub async fn loaded(&self) -> Vec<Arc<Mutex<Entry>>> {
        let slots = self.slots.read().await;
        slots.values().filter_map(|s| s.loaded.clone()).collect()
    }

    /// Records what changed in `entry` (after events were appended to it, or an analysis
    /// kept or forgotten): its summary and the memory it holds, evicting others if the
    /// loaded ones now take more than the budget.
    pub async fn changed(&self, entry: &Entry) {
        let mut slots = self.slots.write().await;
        let id = entry.meta.id;
        if let Some(slot) = slots.get_mut(&id) {
            slot.summary = (self.summary)(entry);
            let now = entry.memory();
            if slot.loaded.is_some() {
                match now >= slot.bytes {
                    true => self.resident.fetch_add(now - slot.bytes, Ordering::AcqRel),
                    false => self.resident.fetch_sub(slot.bytes - now, Ordering::AcqRel),
                };
            }
            slot.bytes = now;
            self.evict(&mut slots, id);
        }
    }

    /// Summaries of the negotiations with ids below `before`, newest first, while `keep`
    /// says so (it is given each summary and says whether to go on).
    pub async fn summaries(
        &self,
        before: u64,
        mut keep: impl FnMut(u64, &pb::Negotiation) -> bool,
    ) {
        let slots = self.slots.read().await;
        for (id, slot) in slots.range(..before).rev() {
            if !keep(*id, &slot.summary) {
                return;
            }
        }
    }

    /// Once the loaded negotiations take more than the budget, evicts those nobody holds,
    /// least recently used first (never `keep`), down to seven eighths of it: the look at
    /// every slot is paid once per eighth of the budget loaded, not at every load past it
    /// (at 10^5 negotiations and an 8 MiB budget, evicting to the budget itself at each load
    /// took creations from 1,700 to 1,000 a second).
    fn evict(&self, slots: &mut BTreeMap<u64, Slot>, keep: u64) {
        if self.resident.load(Ordering::Acquire) <= self.budget {
            metrics::gauge!(MEMORY).set(self.resident.load(Ordering::Acquire) as f64);
            return;
        }
        let target = self.budget - self.budget / 8;
        let mut candidates: Vec<(u64, u64)> = slots
            .iter()
            .filter(|(id, s)| {
                **id != keep && s.loaded.as_ref().is_some_and(|e| Arc::strong_count(e) == 1)
            })
            .map(|(id, s)| (s.used.load(Ordering::Relaxed), *id))
            .collect();
        candidates.sort_unstable();
        for (_, id) in candidates {
            if self.resident.load(Ordering::Acquire) <= target {
                break;
            }
            if let Some(slot) = slots.get_mut(&id) {
                slot.loaded = None;
                self.resident.fetch_sub(slot.bytes, Ordering::AcqRel);
                tracing::debug!(id = %public_id(id), "negotiation evicted from memory");
            }
        }
        metrics::gauge!(MEMORY).set(self.resident.load(Ordering::Acquire) as f64);
    }
}

fn not_found(public: &str) -> Failure {
    // `public` parsed as an id: short.
    Failure::NotFound(format!("no negotiation {public}"))
}

/// Reads negotiation `id` from `log` and replays it.
fn read(log: &dyn EventStore, id: u64) -> Outcome<Entry> {
    let (meta, events, bytes) = log
        .load_one(id)
        .map_err(|e| Failure::internal("reading a negotiation", &e))?;
    Entry::new(meta, events, bytes)
        .map_err(|e| Failure::internal(format!("replaying {}", public_id(id)), &e))
}
