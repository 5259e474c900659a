//! Cluster mode's snapshots: a data node's store, as of a stream sequence, kept in the
//! JetStream object store (bucket `TRADEPACT_DATA_SNAPSHOTS`, object `store`, replicated like
//! the stream), so that a new node starts from it and applies only the messages after it —
//! not the whole stream from its first message.
//!
//! - **Taking one.** A node that has applied `--snapshot-every-mib` of messages since the
//!   newest snapshot (anyone's) takes the next one: it leases the job in the key-value bucket
//!   `TRADEPACT_DATA_SNAPSHOT_LEASE` (one node at a time; a lease lapses after
//!   [`LEASE`]), writes its store to a local file under the store's write lock (applying
//!   waits, reads go on: [`tradepact_store::Store::snapshot`]), then uploads the file (the
//!   lock released) with the snapshot's sequence and the stream's creation time as metadata.
//!   The object store checks a SHA-256 digest of the whole object on reading, the snapshot a
//!   CRC32C of its own.
//! - **Starting from one.** A node started in cluster mode on an empty (or missing) data
//!   directory restores the newest snapshot of this stream (one taken from another stream of
//!   the same name — deleted and made again — is ignored) into the directory before it opens
//!   its store, then follows the stream from the message after the snapshot. A restore cut
//!   short leaves no store behind and starts over.
//! - **Cutting the stream** (`--cut-stream`, on by default). Once a new snapshot reads back
//!   whole (digest and checksum), the node that took it removes from the stream the messages
//!   up to the snapshot *before* it: the stream keeps about two snapshots' worth of messages,
//!   so a node less than one snapshot interval behind goes on applying.
//! - **A node behind the cut.** A node whose store ends before the stream's first message
//!   cannot catch up by applying: at start it renames its directory `DIR.behind-N` (kept,
//!   for the operator to delete) and restores the newest snapshot in its place; running, it
//!   stops applying and says to restart it (its reads say how far it is).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use tradepact_rpc::nats::{until_ready, NatsConfig};
use tradepact_store::{SnapshotInfo, Store, StoreOptions};

use super::cluster::STREAM;

/// The object store's bucket.
pub const BUCKET: &str = "TRADEPACT_DATA_SNAPSHOTS";
/// The one object in it: the newest snapshot.
pub const OBJECT: &str = "store";
/// The key-value bucket of the lease to take a snapshot.
const LEASES: &str = "TRADEPACT_DATA_SNAPSHOT_LEASE";
const LEASE_KEY: &str = "taking";
/// How long a lease lasts when its holder does not give it back (a node killed while taking).
pub const LEASE: Duration = Duration::from_secs(600);
/// How often a node looks whether a snapshot is due.
const CHECK: Duration = Duration::from_secs(2);
/// The longest pause after failed attempts.
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Bytes of each object-store message.
const CHUNK: usize = 1 << 20;
/// Attempts at reading a snapshot (another node may be replacing it meanwhile).
const ATTEMPTS: usize = 3;

/// Metadata keys of the object.
const SEQUENCE: &str = "sequence";
const STREAM_CREATED: &str = "stream-created";

/// Opens the store just restored in `dir`: sled's threads may hold the directory's lock for
/// a moment after the restore let go of it, so a lock error is tried again for a while.
async fn open_restored(dir: &Path, args: &crate::StoreArgs) -> anyhow::Result<Arc<Store>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match crate::open_store_with(dir, args) {
            Err(e) if e.to_string().contains("lock") && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            opened => return opened,
        }
    }
}

/// The snapshot side of a data node in cluster mode.
pub struct Snapshots {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    bucket: object_store::ObjectStore,
    /// Whether a new snapshot cuts the stream (see [`Snapshots::keep_taking`]).
    cut: bool,
    /// When the data stream was created: a snapshot of another stream is not restored.
    stream_created: String,
    replicas: usize,
    max_payload: usize,
}

/// The newest snapshot: its stream sequence and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Newest {
    /// The last message it holds.
    pub sequence: u64,
    /// Its size.
    pub bytes: u64,
}

impl Snapshots {
    /// Connects and opens (or creates) the bucket, and the data stream (for messages up to
    /// `max_message_bytes`) if there is none yet.
    pub async fn open(
        config: &NatsConfig,
        max_message_bytes: usize,
        cut: bool,
    ) -> anyhow::Result<Snapshots> {
        let client = tradepact_rpc::nats::connect(config, "tradepact-data-snapshots").await?;
        let max_payload = client.server_info().max_payload;
        let mut js = jetstream::new(client);
        js.set_timeout(tradepact_rpc::nats::REQUEST_TIMEOUT);
        let stream_config = super::cluster::stream_config(config, max_message_bytes, max_payload);
        let (mut stream, _) = tradepact_rpc::nats::open_stream(&js, stream_config).await?;
        let stream_created = stream.info().await?.created.to_string();
        let replicas = config.replicas.max(1);
        let bucket = until_ready("the snapshot bucket", || async {
            match js.get_object_store(BUCKET).await {
                Ok(bucket) => Ok(bucket),
                Err(_) => Ok(js
                    .create_object_store(object_store::Config {
                        bucket: BUCKET.to_owned(),
                        description: Some(format!(
                            "snapshots of data nodes' stores, by sequence of {STREAM}"
                        )),
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await?),
            }
        })
        .await?;
        Ok(Snapshots {
            js,
            stream,
            bucket,
            cut,
            stream_created,
            replicas,
            max_payload,
        })
    }

    /// The newest snapshot of this stream, if any.
    pub async fn newest(&self) -> anyhow::Result<Option<Newest>> {
        let info = match self.bucket.info(OBJECT).await {
            Ok(info) => info,
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(self.of_this_stream(&info.metadata).map(|sequence| Newest {
            sequence,
            bytes: info.size as u64,
        }))
    }

    /// The sequence in `metadata` if it is a snapshot of this stream.
    fn of_this_stream(&self, metadata: &HashMap<String, String>) -> Option<u64> {
        if metadata.get(STREAM_CREATED) != Some(&self.stream_created) {
            return None;
        }
        metadata.get(SEQUENCE)?.parse().ok()
    }

    /// Restores the newest snapshot into `dir` when `dir` holds no store; what it restored.
    pub async fn restore_if_new(
        &self,
        dir: &Path,
        options: StoreOptions,
    ) -> anyhow::Result<Option<SnapshotInfo>> {
        if !tradepact_store::snapshot::is_blank(dir)? {
            return Ok(None);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let object = match self.bucket.get(OBJECT).await {
                Ok(object) => object,
                Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let Some(sequence) = self.of_this_stream(&object.info().metadata) else {
                tracing::warn!(
                    "the snapshot in {BUCKET} is of another {STREAM} stream: not restored"
                );
                return Ok(None);
            };
            tracing::info!(
                sequence,
                bytes = object.info().size,
                "restoring the newest snapshot"
            );
            let (into, handle) = (dir.to_owned(), tokio::runtime::Handle::current());
            let restored = tokio::task::spawn_blocking(move || {
                let reader = tokio_util::io::SyncIoBridge::new_with_handle(object, handle);
                tradepact_store::snapshot::restore(&into, options, reader)
            })
            .await?;
            match restored {
                Ok(info) => return Ok(Some(info)),
                // Replaced while read (its old chunks removed), or damaged: read it again.
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(error = %e, "restoring the snapshot failed; trying again")
                }
                Err(e) => anyhow::bail!("cannot restore the snapshot into {}: {e}", dir.display()),
            }
        }
    }

    /// Takes a snapshot of `store` through the file `scratch` and uploads it (unless another
    /// node holds the lease, or the newest snapshot is as recent as this store: `None`).
    pub async fn take(
        &self,
        store: Arc<Store>,
        scratch: &Path,
    ) -> anyhow::Result<Option<SnapshotInfo>> {
        let leases = self.leases().await?;
        let holder = tradepact_rpc::nats::instance_id().to_string();
        if leases.create(LEASE_KEY, holder.into()).await.is_err() {
            return Ok(None);
        }
        // Snapshots only move forward: one older than the newest (a node still catching up)
        // would leave a gap before a stream cut after the newest.
        let newer = match self.newest().await {
            Ok(newest) => Ok(newest.is_none_or(|n| n.sequence < store.sequence())),
            Err(e) => Err(e),
        };
        let taken = match newer {
            Ok(true) => self.take_leased(store, scratch).await.map(Some),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(scratch);
        if let Err(e) = leases.delete(LEASE_KEY).await {
            tracing::warn!(error = %e, "giving back the snapshot lease (it lapses by itself)");
        }
        taken
    }

    async fn take_leased(&self, store: Arc<Store>, scratch: &Path) -> anyhow::Result<SnapshotInfo> {
        let file = scratch.to_owned();
        let info = tokio::task::spawn_blocking(move || -> anyhow::Result<SnapshotInfo> {
            let out = std::fs::File::create(&file)?;
            let info = store.snapshot(&out)?;
            out.sync_all()?;
            Ok(info)
        })
        .await??;
        let mut file = tokio::fs::File::open(scratch).await?;
        let meta = object_store::ObjectMetadata {
            name: OBJECT.to_owned(),
            description: Some(format!(
                "a data node's store as of message {} of {STREAM}",
                info.sequence
            )),
            chunk_size: Some(CHUNK.min(self.max_payload)),
            metadata: HashMap::from([
                (SEQUENCE.to_owned(), info.sequence.to_string()),
                (STREAM_CREATED.to_owned(), self.stream_created.clone()),
            ]),
            headers: None,
        };
        self.bucket.put(meta, &mut file).await?;
        Ok(info)
    }

    /// The stream's first message now (0 or 1 when nothing was ever removed).
    pub async fn stream_first(&self) -> anyhow::Result<u64> {
        let mut stream = self.stream.clone();
        Ok(stream.info().await?.state.first_sequence)
    }

    /// Removes the stream's messages up to `upto` (a snapshot's sequence before the newest)
    /// once the newest snapshot reads back whole: a node at `upto` or later goes on applying,
    /// a node behind it starts from the newest snapshot.
    async fn cut_up_to(&self, upto: u64) -> anyhow::Result<()> {
        let object = self.bucket.get(OBJECT).await?;
        let sequence = self.of_this_stream(&object.info().metadata);
        let handle = tokio::runtime::Handle::current();
        let checked = tokio::task::spawn_blocking(move || {
            let reader = tokio_util::io::SyncIoBridge::new_with_handle(object, handle);
            tradepact_store::snapshot::check(reader)
        })
        .await??;
        anyhow::ensure!(
            sequence == Some(checked.sequence) && checked.sequence >= upto,
            "the newest snapshot is not the one expected"
        );
        let purged = self.stream.purge().sequence(upto + 1).await?;
        tracing::info!(
            removed = purged.purged,
            first = upto + 1,
            "cut the stream: the messages before the snapshot before the newest are removed"
        );
        Ok(())
    }

    /// Opens the store in `dir` as this cluster's node: restores the newest snapshot into an
    /// empty directory, and sets aside (renamed `DIR.behind-N`) a store that ends before the
    /// stream's first message, restoring the snapshot in its place.
    pub async fn open_store(
        &self,
        dir: &Path,
        args: &crate::StoreArgs,
    ) -> anyhow::Result<Arc<Store>> {
        let store = self.restore_and_open(dir, args).await?;
        let (applied, first) = (store.sequence(), self.stream_first().await?);
        if applied + 1 >= first {
            return Ok(store);
        }
        // The directory is renamed with the store still open (sled's threads let go of it
        // in their own time); the store restored is in a new directory of the old name.
        drop(store);
        let mut aside = dir.as_os_str().to_owned();
        aside.push(format!(".behind-{applied}"));
        let aside = PathBuf::from(aside);
        anyhow::ensure!(
            !aside.exists(),
            "{} exists already: remove it or start this node on an empty directory",
            aside.display()
        );
        std::fs::rename(dir, &aside)?;
        tracing::warn!(
            applied,
            first,
            aside = %aside.display(),
            "the store ends before the stream's first message (removed after a snapshot): set aside (delete it when satisfied), restoring the newest snapshot"
        );
        self.restore_and_open(dir, args).await
    }

    /// [`Snapshots::restore_if_new`], logged, then the store in `dir` opened.
    async fn restore_and_open(
        &self,
        dir: &Path,
        args: &crate::StoreArgs,
    ) -> anyhow::Result<Arc<Store>> {
        let Some(info) = self.restore_if_new(dir, args.options()).await? else {
            return crate::open_store_with(dir, args);
        };
        tracing::info!(
            sequence = info.sequence,
            entries = info.entries,
            bytes = info.bytes,
            "restored the newest snapshot into the empty data directory"
        );
        open_restored(dir, args).await
    }

    async fn leases(&self) -> anyhow::Result<kv::Store> {
        match self.js.get_key_value(LEASES).await {
            Ok(store) => Ok(store),
            Err(_) => Ok(self
                .js
                .create_key_value(kv::Config {
                    bucket: LEASES.to_owned(),
                    max_age: LEASE,
                    num_replicas: self.replicas,
                    ..Default::default()
                })
                .await?),
        }
    }

    /// Takes a snapshot whenever `every` bytes of messages have been applied here (counted by
    /// `applied_bytes`) since the newest one, for ever.
    pub async fn keep_taking(
        self,
        store: Arc<Store>,
        applied_bytes: Arc<AtomicU64>,
        every: u64,
        scratch: PathBuf,
    ) {
        // Bytes applied when the newest snapshot was (as far as this node knows) taken.
        let mut since = 0u64;
        let mut newest = 0u64;
        // After a failure (the bucket full, say), the next attempt waits longer each time.
        let mut pause = CHECK;
        loop {
            tokio::time::sleep(pause).await;
            let applied = applied_bytes.load(Ordering::Relaxed);
            if applied.saturating_sub(since) < every {
                continue;
            }
            let previous = match self.newest().await {
                // Another node took one since: count from now.
                Ok(Some(n)) if n.sequence > newest => {
                    (since, newest) = (applied, n.sequence);
                    continue;
                }
                Ok(previous) => previous,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the newest snapshot");
                    continue;
                }
            };
            let started = std::time::Instant::now();
            match self.take(store.clone(), &scratch).await {
                Ok(Some(info)) => {
                    pause = CHECK;
                    tracing::info!(
                        sequence = info.sequence,
                        entries = info.entries,
                        bytes = info.bytes,
                        seconds = started.elapsed().as_secs_f64(),
                        "snapshot taken"
                    );
                    (since, newest) = (applied, info.sequence);
                    if let Some(previous) = previous.filter(|_| self.cut) {
                        if let Err(e) = self.cut_up_to(previous.sequence).await {
                            tracing::warn!(error = %e, "the stream was not cut");
                        }
                    }
                }
                // Another node is taking one, or has a newer one: count from now.
                Ok(None) => since = applied,
                Err(e) => {
                    pause = (pause * 2).min(MAX_PAUSE);
                    tracing::warn!(error = %e, retry_in = ?pause, "taking a snapshot failed");
                }
            }
        }
    }
}
