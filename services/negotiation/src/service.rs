//! `tradepact.negotiation.v1.NegotiationService`: validate, run the domain, record events.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, Mutex};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tradepact_bargain::analysis;
use tradepact_bargain::frontier;
use tradepact_bargain::simulate::Action;
use tradepact_bargain::{Command, Event, Negotiation, Simulation};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_proto::negotiation_v1::negotiation_service_server::NegotiationService;
use tradepact_rpc::paging::{self as cursor, Fingerprint};

use crate::cache::AnalysisCache;
use crate::caller::Caller;
use crate::convert::{self, to_status};
use crate::heavy::{evaluation_job, joined, send_checking, AbortOnDrop, Heavy, HeavyShutdown};
use crate::impact::{BaselinePeriod, DataSource};
use crate::log::{parse_id, public_id, EventLog, LogError, Meta};
use crate::present::{
    event_json, event_type, events_until_round, negotiation_out, step_out, summary_of,
};
use crate::registry::Registry;

/// Default and largest `ListNegotiations` page.
pub const LIST_PAGE: (usize, usize) = (50, 500);
/// Most bytes of one `ListNegotiations` page (at least one negotiation is listed).
pub const LIST_PAGE_BYTES: usize = 1 << 20;
/// Most bytes a negotiation's creation may take (issues, options, labels, trade effects).
pub const MAX_CREATION_BYTES: usize = 1 << 20;
/// Most bytes a negotiation's log may grow to (its creation, positions, offers, responses).
pub const MAX_NEGOTIATION_BYTES: usize = 16 << 20;
/// Default and largest page of the frontier in `AnalyzeNegotiation`.
pub const FRONTIER_PAGE: (usize, usize) = (100, 10_000);
/// Events a `WatchNegotiation` subscriber may fall behind before it is dropped.
pub const WATCH_BUFFER: usize = 1024;
/// Trade effects of one `EstimateImpact` whose baselines are read at once (two data-service
/// calls each).
pub const IMPACT_CONCURRENCY: usize = 8;

/// One negotiation: its state, its events and what the log keeps besides.
pub(crate) struct Entry {
    pub negotiation: Negotiation,
    pub events: Vec<Event>,
    pub meta: Meta,
    /// Bytes its metadata and events take (bounded by [`MAX_NEGOTIATION_BYTES`]).
    pub bytes: usize,
    /// The last analysis: repeated analyses (and the pages of one) of an unchanged
    /// negotiation reuse it.
    pub analysis: Option<crate::cache::Cached>,
}

/// Seed of the ZOPA estimate's sample (fixed, so that repeated analyses agree).
const ZOPA_SEED: u64 = 0x7ade;

#[derive(Clone, Debug)]
enum Published {
    Event {
        id: u64,
        number: u64,
        event: Arc<Event>,
    },
    Shutdown,
}

/// The negotiation service.
#[derive(Clone)]
pub struct NegotiationSvc {
    log: Arc<EventLog>,
    registry: Arc<Registry>,
    published: broadcast::Sender<Published>,
    data: DataSource,
    /// The analyses kept for reuse, within their budget.
    cache: AnalysisCache,
    /// Runs the frontier, ZOPA and simulation computations, bounded.
    heavy: Heavy,
}

/// Ends the `WatchNegotiation` streams and stops the heavy computations at shutdown.
#[derive(Clone)]
pub struct WatchCloser(broadcast::Sender<Published>, Arc<HeavyShutdown>);

impl WatchCloser {
    /// Tells every watcher the server is going away; stops every heavy computation.
    pub fn close(&self) {
        let _ = self.0.send(Published::Shutdown);
        self.1.shut_down();
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn log_error(e: LogError) -> Status {
    match e {
        LogError::Storage(sled::Error::Io(io)) => {
            tracing::error!(error = %io, "event log I/O error");
            Status::unavailable("the event log is unavailable (I/O error logged on the server); nothing was recorded")
        }
        other => tradepact_rpc::status::internal("event log", &other),
    }
}

/// A W3C `traceparent` for calls this request makes: the caller's, or a new one.
fn traceparent<T>(request: &Request<T>) -> String {
    if let Some(tp) = request
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        return tp.to_owned();
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut rng = tradepact_bargain::rng::SplitMix64::new(nanos as u64 ^ std::process::id() as u64);
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64()
    )
}

impl NegotiationSvc {
    /// Loads every negotiation from `log` by replaying its events.
    pub(crate) fn load(
        log: Arc<EventLog>,
        data: DataSource,
        heavy: (Heavy, HeavyShutdown),
        memory_budget: usize,
    ) -> anyhow::Result<(NegotiationSvc, WatchCloser)> {
        let registry = Registry::load(log.clone(), memory_budget, summary_of)?;
        let (published, _) = broadcast::channel(WATCH_BUFFER);
        Ok((
            NegotiationSvc {
                log,
                registry: Arc::new(registry),
                published: published.clone(),
                data,
                cache: AnalysisCache::default(),
                heavy: heavy.0,
            },
            WatchCloser(published, Arc::new(heavy.1)),
        ))
    }

    async fn entry(&self, id: &str) -> Result<(u64, Arc<Mutex<Entry>>), Status> {
        let n = parse_id(id).ok_or_else(|| {
            tradepact_rpc::status::invalid_argument([(
                "id",
                "is not a negotiation id (neg-NNNNNN)",
            )])
        })?;
        Ok((n, self.registry.get(n, id).await?))
    }

    /// Locks `entry` with the analysis that offers are evaluated against in place. The
    /// frontier behind it can take long on a large space: it is computed as a heavy call on a
    /// snapshot, without the lock, then installed if no position changed meanwhile.
    async fn with_evaluation<'a>(
        &self,
        entry: &'a Mutex<Entry>,
    ) -> Result<tokio::sync::MutexGuard<'a, Entry>, Status> {
        for _ in 0..3 {
            let (version, space, positions) = {
                let locked = entry.lock().await;
                let n = &locked.negotiation;
                if !n.needs_analysis() {
                    return Ok(locked);
                }
                let positions: Vec<tradepact_bargain::Position> =
                    n.all_positions().into_iter().flatten().cloned().collect();
                (n.version, n.space.clone(), positions)
            };
            let solved = self
                .heavy
                .run("an offer's evaluation", evaluation_job(space, positions))
                .await?;
            let mut locked = entry.lock().await;
            if locked.negotiation.install_analysis(version, solved) {
                return Ok(locked);
            }
        }
        Err(Status::aborted(
            "the positions kept changing while the offer was being evaluated; retry",
        ))
    }

    /// Decides `command`, records its events durably, applies them, tells watchers.
    async fn execute(&self, entry: &mut Entry, command: Command) -> Result<Vec<Event>, Status> {
        let events = entry.negotiation.decide(&command).map_err(to_status)?;
        // Encoded once: what they cost is what the log stores.
        let encoded = EventLog::encode(&events);
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        if entry.bytes + bytes > MAX_NEGOTIATION_BYTES {
            return Err(Status::resource_exhausted(format!(
                "the negotiation has reached its size limit of {} MiB; fork it from an earlier round or start a new one",
                MAX_NEGOTIATION_BYTES >> 20
            )));
        }
        let first = entry.events.len() as u64;
        let (log, id) = (self.log.clone(), entry.meta.id);
        tokio::task::spawn_blocking(move || log.append(id, first, encoded))
            .await
            .map_err(|e| tradepact_rpc::status::internal("event log task", &e))?
            .map_err(log_error)?;
        entry.bytes += bytes;
        let applied = self.apply_recorded(entry, first, &events);
        self.registry.changed(entry).await;
        applied?;
        Ok(events)
    }

    /// Applies events just recorded to `entry` and tells watchers.
    fn apply_recorded(
        &self,
        entry: &mut Entry,
        first: u64,
        events: &[Event],
    ) -> Result<(), Status> {
        let id = entry.meta.id;
        for (i, e) in events.iter().enumerate() {
            entry.negotiation.apply(e).map_err(to_status)?;
            entry.events.push(e.clone());
            let _ = self.published.send(Published::Event {
                id,
                number: first + i as u64,
                event: Arc::new(e.clone()),
            });
        }
        Ok(())
    }

    /// Records a new negotiation from its first events.
    async fn create_entry(
        &self,
        events: Vec<Event>,
        mut meta: Meta,
        caller: &Caller,
    ) -> Result<pb::Negotiation, Status> {
        let negotiation = Negotiation::replay(&events).map_err(to_status)?;
        let bytes = crate::log::stored_size(Some(&meta), &events);
        let log = self.log.clone();
        meta.id = log.next_id().map_err(log_error)?;
        let (stored_meta, stored_events) = (meta.clone(), events.clone());
        tokio::task::spawn_blocking(move || log.create(&stored_meta, &stored_events))
            .await
            .map_err(|e| tradepact_rpc::status::internal("event log task", &e))?
            .map_err(log_error)?;
        let entry = Entry {
            negotiation,
            events,
            meta,
            bytes,
            analysis: None,
        };
        let visibility = caller.visibility(&entry.negotiation.parties);
        let out = negotiation_out(&entry, &visibility, false);
        self.registry.insert(entry).await;
        Ok(out)
    }
}

#[tonic::async_trait]
impl NegotiationService for NegotiationSvc {
    async fn create_negotiation(
        &self,
        request: Request<pb::CreateNegotiationRequest>,
    ) -> Result<Response<pb::CreateNegotiationResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (issues, effects) = convert::issues_in(&req.issues)?;
        let created = Negotiation::create(
            &req.title,
            &req.agreement,
            req.parties,
            issues,
            req.deadline_rounds,
        )
        .map_err(to_status)?;
        let meta = Meta {
            id: 0,
            effects,
            forked_from: None,
            forked_after_round: 0,
        };
        let size = crate::log::stored_size(Some(&meta), std::slice::from_ref(&created));
        if size > MAX_CREATION_BYTES {
            return Err(tradepact_rpc::status::invalid_argument([(
                "issues",
                format!(
                    "the negotiation would take {size} bytes; at most {} MiB (titles, issues, options, labels and trade effects)",
                    MAX_CREATION_BYTES >> 20
                )
                .as_str(),
            )]));
        }
        let negotiation = self.create_entry(vec![created], meta, &caller).await?;
        tracing::info!(id = %negotiation.id, "negotiation created");
        Ok(Response::new(pb::CreateNegotiationResponse {
            negotiation: Some(negotiation),
        }))
    }

    async fn get_negotiation(
        &self,
        request: Request<pb::GetNegotiationRequest>,
    ) -> Result<Response<pb::GetNegotiationResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (_, entry) = self.entry(&req.id).await?;
        let entry = entry.lock().await;
        let visibility = caller.visibility(&entry.negotiation.parties);
        Ok(Response::new(pb::GetNegotiationResponse {
            negotiation: Some(negotiation_out(&entry, &visibility, req.include_positions)),
        }))
    }

    async fn list_negotiations(
        &self,
        request: Request<pb::ListNegotiationsRequest>,
    ) -> Result<Response<pb::ListNegotiationsResponse>, Status> {
        let req = request.into_inner();
        let status = pb::NegotiationStatus::try_from(req.status).map_err(|_| {
            tradepact_rpc::status::invalid_argument([("status", "unknown status value")])
        })?;
        let size = match req.page_size {
            0 => LIST_PAGE.0,
            n if n < 0 => {
                return Err(tradepact_rpc::status::invalid_argument([(
                    "page_size",
                    "must not be negative",
                )]))
            }
            n => (n as usize).min(LIST_PAGE.1),
        };
        let fingerprint = Fingerprint::of(&[&req.status.to_be_bytes()]);
        let before = if req.page_token.is_empty() {
            u64::MAX
        } else {
            let pos = cursor::decode(&req.page_token, fingerprint).map_err(|e| {
                tradepact_rpc::status::invalid_argument([("page_token", e.as_str())])
            })?;
            let bytes: [u8; 8] = pos.try_into().map_err(|_| {
                tradepact_rpc::status::invalid_argument([(
                    "page_token",
                    "is not a ListNegotiations token",
                )])
            })?;
            u64::from_be_bytes(bytes)
        };
        let mut out = Vec::new();
        let mut next = String::new();
        let mut page_bytes = 0usize;
        self.registry
            .summaries(before, |id, summary| {
                if status != pb::NegotiationStatus::Unspecified && summary.status() != status {
                    return true;
                }
                if out.len() == size || (page_bytes >= LIST_PAGE_BYTES && !out.is_empty()) {
                    next = cursor::encode(fingerprint, &(id + 1).to_be_bytes());
                    return false;
                }
                page_bytes += prost::Message::encoded_len(summary);
                out.push(summary.clone());
                true
            })
            .await;
        Ok(Response::new(pb::ListNegotiationsResponse {
            negotiations: out,
            next_page_token: next,
        }))
    }

    async fn set_position(
        &self,
        request: Request<pb::SetPositionRequest>,
    ) -> Result<Response<pb::SetPositionResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let req = request.into_inner();
        let position = convert::position_in(req.position.as_ref())?;
        let (_, entry) = self.entry(&req.negotiation_id).await?;
        let mut entry = entry.lock().await;
        self.execute(
            &mut entry,
            Command::SetPosition {
                party: req.party,
                position,
            },
        )
        .await?;
        Ok(Response::new(pb::SetPositionResponse {
            event_count: entry.events.len() as u64,
        }))
    }

    async fn submit_offer(
        &self,
        request: Request<pb::SubmitOfferRequest>,
    ) -> Result<Response<pb::SubmitOfferResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (_, entry) = self.entry(&req.negotiation_id).await?;
        let mut entry = self.with_evaluation(&entry).await?;
        let package = convert::package_in(&entry.negotiation.space, req.package.as_ref())?;
        self.execute(
            &mut entry,
            Command::Offer {
                party: req.party,
                package,
            },
        )
        .await?;
        let n = &entry.negotiation;
        let visibility = caller.visibility(&n.parties);
        let offer = n
            .offers
            .last()
            .map(|o| convert::offer_out(n, o, &visibility));
        Ok(Response::new(pb::SubmitOfferResponse { offer }))
    }

    async fn respond_to_offer(
        &self,
        request: Request<pb::RespondToOfferRequest>,
    ) -> Result<Response<pb::RespondToOfferResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let req = request.into_inner();
        let (_, entry) = self.entry(&req.negotiation_id).await?;
        let mut entry = entry.lock().await;
        let command = Command::Respond {
            party: req.party,
            offer: req.offer_id,
            accept: req.accept,
        };
        self.execute(&mut entry, command).await?;
        let n = &entry.negotiation;
        Ok(Response::new(pb::RespondToOfferResponse {
            status: convert::status_out(n.status).into(),
            agreed_offer: n.agreed,
        }))
    }

    async fn break_off(
        &self,
        request: Request<pb::BreakOffRequest>,
    ) -> Result<Response<pb::BreakOffResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let req = request.into_inner();
        let (_, entry) = self.entry(&req.negotiation_id).await?;
        let mut entry = entry.lock().await;
        self.execute(
            &mut entry,
            Command::BreakOff {
                party: req.party,
                reason: req.reason,
            },
        )
        .await?;
        Ok(Response::new(pb::BreakOffResponse {
            status: convert::status_out(entry.negotiation.status).into(),
        }))
    }

    async fn analyze_negotiation(
        &self,
        request: Request<pb::AnalyzeNegotiationRequest>,
    ) -> Result<Response<pb::AnalyzeNegotiationResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let size = match req.page_size {
            0 => FRONTIER_PAGE.0,
            n if n < 0 => {
                return Err(tradepact_rpc::status::invalid_argument([(
                    "page_size",
                    "must not be negative",
                )]))
            }
            n => (n as usize).min(FRONTIER_PAGE.1),
        };
        let min_ratio = match req.logrolling_min_ratio {
            0.0 => 1.5,
            r if r.is_finite() && r >= 1.0 => r,
            _ => {
                return Err(tradepact_rpc::status::invalid_argument([(
                    "logrolling_min_ratio",
                    "must be at least 1 (or 0 for the default 1.5)",
                )]))
            }
        };
        let (_, entry_lock) = self.entry(&req.id).await?;
        // A snapshot, so that the computation holds no lock other calls need.
        let (version, space, positions, parties, offers, cached) = {
            let mut entry = entry_lock.lock().await;
            let n = &entry.negotiation;
            caller.require_every_party(&n.parties, "an analysis")?;
            let Some(positions) = n.all_positions() else {
                let missing: Vec<&str> = n
                    .parties
                    .iter()
                    .zip(&n.positions)
                    .filter(|(_, p)| p.is_none())
                    .map(|(name, _)| name.as_str())
                    .collect();
                return Err(Status::failed_precondition(format!(
                    "every party needs a position before analysis; missing: {}",
                    missing.join(", ")
                )));
            };
            let positions: Vec<tradepact_bargain::Position> =
                positions.into_iter().cloned().collect();
            let version = entry.events.len() as u64;
            let cached = match &entry.analysis {
                Some(cached) if cached.version == version => Some(cached.analysis.clone()),
                _ => {
                    // A stale analysis gives its points back before a new one is computed.
                    entry.analysis = None;
                    None
                }
            };
            let n = &entry.negotiation;
            let snapshot = (n.space.clone(), n.parties.clone(), n.offers.clone());
            (
                version, snapshot.0, positions, snapshot.1, snapshot.2, cached,
            )
        };
        let fingerprint = Fingerprint::of(&[req.id.as_bytes(), &version.to_be_bytes()]);
        let offset = if req.page_token.is_empty() {
            0
        } else {
            let pos = cursor::decode(&req.page_token, fingerprint).map_err(|e| {
                tradepact_rpc::status::invalid_argument([(
                    "page_token",
                    format!("{e} (or the negotiation changed since)").as_str(),
                )])
            })?;
            let bytes: [u8; 8] = pos.try_into().map_err(|_| {
                tradepact_rpc::status::invalid_argument([(
                    "page_token",
                    "is not an AnalyzeNegotiation token",
                )])
            })?;
            u64::from_be_bytes(bytes) as usize
        };
        let solved = match cached {
            Some(solved) => solved,
            None => {
                let (run_space, run_positions) = (space.clone(), positions.clone());
                let solved = Arc::new(
                    self.heavy
                        .run("an analysis", move || {
                            let refs: Vec<&tradepact_bargain::Position> =
                                run_positions.iter().collect();
                            analysis::analyze(&run_space, &refs, 16, ZOPA_SEED)
                        })
                        .await?,
                );
                let mut entry = entry_lock.lock().await;
                if entry.events.len() as u64 == version {
                    self.cache.keep(&mut entry, version, &solved);
                }
                solved
            }
        };
        let positions: Vec<&tradepact_bargain::Position> = positions.iter().collect();
        let zopa = solved.zopa.clone().unwrap_or(analysis::Zopa {
            size: 0.0,
            share: 0.0,
            exact: false,
        });
        let space = &space;
        let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
        let offers = offers
            .iter()
            .map(|o| {
                let u = frontier::utilities_of(&positions, &o.package);
                pb::OfferStanding {
                    offer_id: o.id,
                    utilities: u
                        .iter()
                        .map(|&x| x as f64 / tradepact_bargain::position::SCALE)
                        .collect(),
                    rational: u
                        .iter()
                        .zip(&reservations)
                        .all(|(a, r)| *a >= r - solved.frontier.tolerance),
                    pareto_optimal: frontier::is_pareto_optimal(
                        &solved.frontier,
                        &positions,
                        &o.package,
                    ),
                    distance_to_nash: analysis::distance_to(&solved.nash, &positions, &o.package),
                }
            })
            .collect();
        let total = solved.frontier.points.len();
        let page: Vec<pb::OutcomePoint> = solved
            .frontier
            .points
            .iter()
            .skip(offset)
            .take(size)
            .map(|p| convert::point_out(space, p))
            .collect();
        let next_page_token = if offset + size < total {
            cursor::encode(fingerprint, &((offset + size) as u64).to_be_bytes())
        } else {
            String::new()
        };
        let hints = analysis::logrolling_hints(&positions, min_ratio)
            .into_iter()
            .map(|h| pb::LogrollHint {
                party: parties[h.party].clone(),
                counterpart: parties[h.counterpart].clone(),
                gives_issue: space.issues()[h.gives].id.clone(),
                gets_issue: space.issues()[h.gets].id.clone(),
                ratio: h.ratio,
            })
            .collect();
        let response = pb::AnalyzeNegotiationResponse {
            outcome_count: space.size(),
            zopa_size: zopa.size,
            zopa_exact: zopa.exact,
            frontier_size: total as u64,
            frontier: page,
            next_page_token,
            nash: Some(convert::solution_out(space, &solved.nash)),
            kalai_smorodinsky: Some(convert::solution_out(space, &solved.kalai_smorodinsky)),
            egalitarian: Some(convert::solution_out(space, &solved.egalitarian)),
            max_welfare: Some(convert::solution_out(space, &solved.max_welfare)),
            ideal: solved
                .ideal
                .iter()
                .map(|&u| u as f64 / tradepact_bargain::position::SCALE)
                .collect(),
            logrolling_hints: hints,
            offers,
        };
        Ok(Response::new(response))
    }

    type SimulateNegotiationStream = BoxStream<pb::SimulateNegotiationResponse>;

    async fn simulate_negotiation(
        &self,
        request: Request<pb::SimulateNegotiationRequest>,
    ) -> Result<Response<Self::SimulateNegotiationStream>, Status> {
        if request.get_ref().record_as_branch {
            tradepact_rpc::auth::require(&request, "negotiation:write")?;
        }
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let strategies = req
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| convert::strategy_in(s, &format!("strategies[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let (_, entry_lock) = self.entry(&req.id).await?;
        let entry = entry_lock.lock().await;
        let n = &entry.negotiation;
        caller.require_every_party(&n.parties, "a simulation")?;
        if n.all_positions().is_none() {
            return Err(Status::failed_precondition(
                "every party needs a position before a simulation",
            ));
        }
        let deadline = if req.deadline_rounds == 0 {
            n.deadline_rounds
        } else {
            req.deadline_rounds
        };
        if req.record_as_branch && (n.parties.len() != 2 || deadline > n.deadline_rounds) {
            return Err(Status::failed_precondition(
                "a simulation is recorded as a branch for bilateral negotiations, within the negotiation's deadline",
            ));
        }
        let space = n.space.clone();
        let positions: Vec<tradepact_bargain::Position> = n
            .positions
            .iter()
            .map(|p| p.clone().expect("checked above"))
            .collect();
        let parties = n.parties.clone();
        let base_events = events_until_round(&entry, 0);
        let meta = entry.meta.clone();
        drop(entry);
        // The whole run is a heavy call (the frontier first, then the turns); set-up errors
        // (a strategy that does not fit, a frontier past its bound) are answered before the
        // stream starts. Turns come through a bounded channel: a client that stops reading
        // or goes away stops the run.
        let (steps_tx, mut steps_rx) = mpsc::channel::<
            Result<tradepact_bargain::Step, tradepact_bargain::simulate::Outcome>,
        >(64);
        let (run_space, heavy) = (space.clone(), self.heavy.clone());
        let (seed, record) = (req.seed, req.record_as_branch);
        // Its own task, so that its bounds hold while the stream waits for a slow reader;
        // aborted (which stops the computation) when the stream or this call is dropped.
        let mut run = AbortOnDrop(tokio::spawn(async move {
            heavy
                .run("a simulation", move || {
                    let refs: Vec<&tradepact_bargain::Position> = positions.iter().collect();
                    let mut sim = Simulation::new(&run_space, refs, strategies, deadline, seed)?;
                    for step in sim.by_ref() {
                        send_checking(&steps_tx, Ok(step))?;
                    }
                    tradepact_bargain::cancel::check()?;
                    if let Some(o) = sim.outcome() {
                        send_checking(&steps_tx, Err(o.clone()))?;
                    }
                    Ok(())
                })
                .await
        }));
        let mut run_done = false;
        let mut first = tokio::select! {
            first = steps_rx.recv() => first,
            done = &mut run.0 => {
                run_done = true;
                joined(done)?;
                steps_rx.recv().await
            }
        };
        if first.is_none() && !run_done {
            // The channel closed before any turn: the run ended without one (refused, or
            // stopped during set-up); its answer is the call's.
            joined((&mut run.0).await)?;
            run_done = true;
        }
        let (tx, rx) = mpsc::channel(64);
        let svc = self.clone();
        tokio::spawn(async move {
            let mut branch_events = base_events.clone();
            let mut branch = if record {
                Negotiation::replay(&base_events).ok()
            } else {
                None
            };
            // The branch evaluates its offers like any negotiation: its frontier is a heavy
            // call too, not work for this task.
            if let Some(b) = branch.as_mut() {
                let positions = b.positions.iter().flatten().cloned().collect();
                let job = evaluation_job(b.space.clone(), positions);
                let solved = svc.heavy.run("a simulation's branch", job).await;
                match solved {
                    Ok(solved) => {
                        let version = b.version;
                        b.install_analysis(version, solved);
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
            let mut outcome = None;
            loop {
                let item = match first.take() {
                    Some(item) => item,
                    None => tokio::select! {
                        item = steps_rx.recv() => match item {
                            Some(item) => item,
                            None => break,
                        },
                        done = &mut run.0, if !run_done => {
                            run_done = true;
                            if let Err(status) = joined(done) {
                                let _ = tx.send(Err(status)).await;
                                return;
                            }
                            continue;
                        }
                    },
                };
                match item {
                    Ok(step) => {
                        if let Some(b) = branch.as_mut() {
                            let command = match &step.action {
                                Action::Offer(p) => Command::Offer {
                                    party: parties[step.party].clone(),
                                    package: p.clone(),
                                },
                                Action::Accept => Command::Respond {
                                    party: parties[step.party].clone(),
                                    offer: b.offers.len().saturating_sub(1) as u32,
                                    accept: true,
                                },
                            };
                            match b.execute(&command) {
                                Ok(events) => branch_events.extend(events),
                                Err(e) => {
                                    tracing::warn!(error = %e, "simulation step does not replay as a negotiation; branch not recorded");
                                    branch = None;
                                }
                            }
                        }
                        let msg = pb::SimulateNegotiationResponse {
                            event: Some(pb::simulate_negotiation_response::Event::Step(step_out(
                                &space, &parties, &step,
                            ))),
                        };
                        if tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                    }
                    Err(o) => outcome = Some(o),
                }
            }
            if !run_done {
                if let Err(status) = joined((&mut run.0).await) {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            let Some(o) = outcome else { return };
            let mut branch_id = String::new();
            if branch.is_some() {
                if let Some(Event::Created { title, .. }) = branch_events.first_mut() {
                    *title = format!("{title} (simulated, seed {seed})");
                }
                let branch_meta = Meta {
                    id: 0,
                    effects: meta.effects.clone(),
                    forked_from: Some(public_id(meta.id)),
                    forked_after_round: 0,
                };
                match svc.create_entry(branch_events, branch_meta, &caller).await {
                    Ok(n) => branch_id = n.id,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            let outcome = pb::SimulationOutcome {
                agreed: o.agreement.is_some(),
                agreement: o
                    .agreement
                    .as_ref()
                    .map(|p| convert::package_out(&space, p)),
                utilities: o.utilities.clone(),
                turns: o.turns,
                reason: o.reason.clone(),
                branch_id,
            };
            let _ = tx
                .send(Ok(pb::SimulateNegotiationResponse {
                    event: Some(pb::simulate_negotiation_response::Event::Outcome(outcome)),
                }))
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn fork_negotiation(
        &self,
        request: Request<pb::ForkNegotiationRequest>,
    ) -> Result<Response<pb::ForkNegotiationResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (id, entry) = self.entry(&req.id).await?;
        let entry = entry.lock().await;
        let mut events = events_until_round(&entry, req.after_round);
        if let Some(Event::Created { title, .. }) = events.first_mut() {
            *title = if req.title.is_empty() {
                format!("{title} (what-if)")
            } else {
                req.title.clone()
            };
        }
        let meta = Meta {
            id: 0,
            effects: entry.meta.effects.clone(),
            forked_from: Some(public_id(id)),
            forked_after_round: req.after_round,
        };
        drop(entry);
        let negotiation = self.create_entry(events, meta, &caller).await?;
        Ok(Response::new(pb::ForkNegotiationResponse {
            negotiation: Some(negotiation),
        }))
    }

    type WatchNegotiationStream = BoxStream<pb::WatchNegotiationResponse>;

    async fn watch_negotiation(
        &self,
        request: Request<pb::WatchNegotiationRequest>,
    ) -> Result<Response<Self::WatchNegotiationStream>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (id, entry) = self.entry(&req.id).await?;
        // Subscribe before reading the past, so that nothing falls between the two.
        let mut live = self.published.subscribe();
        let (past, parties) = {
            let entry = entry.lock().await;
            if req.from_event > entry.events.len() as u64 {
                return Err(tradepact_rpc::status::invalid_argument([(
                    "from_event",
                    format!("the negotiation has {} events", entry.events.len()).as_str(),
                )]));
            }
            let past: Vec<(u64, Event)> = entry
                .events
                .iter()
                .enumerate()
                .skip(req.from_event as usize)
                .map(|(i, e)| (i as u64, e.clone()))
                .collect();
            (past, entry.negotiation.parties.clone())
        };
        let visibility = caller.visibility(&parties);
        let include_positions = req.include_positions;
        // A bounded queue: a watcher that falls behind is dropped (it resumes from its
        // event number); nobody waits for it.
        let (out, stream) = tradepact_rpc::outbox::outbox(
            tradepact_rpc::outbox::MAX_MESSAGES,
            tradepact_rpc::outbox::MAX_BYTES,
        );
        tokio::spawn(async move {
            let mut next = req.from_event;
            let message = |number: u64, e: &Event| pb::WatchNegotiationResponse {
                event_number: number,
                r#type: event_type(e),
                json: event_json(e, &parties, &visibility, include_positions),
            };
            // The past may wait for room: it delays only this watch.
            for (number, e) in past {
                if out.send(message(number, &e)).await.is_err() {
                    return;
                }
                next = number + 1;
            }
            let behind = |next: u64, why: &str| {
                Status::resource_exhausted(format!(
                    "watcher {why} and was dropped; resume with from_event = {next}"
                ))
            };
            loop {
                let msg = tokio::select! {
                    msg = live.recv() => msg,
                    () = out.closed() => return,
                };
                match msg {
                    Ok(Published::Event {
                        id: of,
                        number,
                        event,
                    }) if of == id && number >= next => match out.try_send(message(number, &event))
                    {
                        Ok(()) => next = number + 1,
                        Err(tradepact_rpc::outbox::Refused::Closed) => return,
                        Err(tradepact_rpc::outbox::Refused::Full) => {
                            out.fail(behind(
                                next,
                                "fell behind (its queue is full: it did not read its stream)",
                            ));
                            return;
                        }
                    },
                    Ok(Published::Event { .. }) => {}
                    Ok(Published::Shutdown) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        out.fail(behind(next, "fell behind"));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn estimate_impact(
        &self,
        request: Request<pb::EstimateImpactRequest>,
    ) -> Result<Response<pb::EstimateImpactResponse>, Status> {
        let traceparent = traceparent(&request);
        let req = request.into_inner();
        let period = match req.baseline.and_then(|b| b.period) {
            None => BaselinePeriod::Latest,
            Some(pb::baseline::Period::Year(y)) => {
                check_year(&y, "baseline.year")?;
                BaselinePeriod::Year(y)
            }
            Some(pb::baseline::Period::Average(w)) => {
                check_year(&w.start_year, "baseline.average.start_year")?;
                check_year(&w.end_year, "baseline.average.end_year")?;
                if w.start_year > w.end_year {
                    return Err(tradepact_rpc::status::invalid_argument([(
                        "baseline.average.end_year",
                        "must not be before start_year",
                    )]));
                }
                BaselinePeriod::Average(w.start_year, w.end_year)
            }
        };
        let (_, entry) = self.entry(&req.id).await?;
        let (space, package, effects) = {
            let entry = entry.lock().await;
            let n = &entry.negotiation;
            let package = if req.package.as_ref().is_none_or(|p| p.choices.is_empty()) {
                let agreed = n.agreed.ok_or_else(|| {
                    Status::failed_precondition(
                        "the negotiation has no agreed package; give one in `package`",
                    )
                })?;
                n.offers[agreed as usize].package.clone()
            } else {
                convert::package_in(&n.space, req.package.as_ref())?
            };
            (n.space.clone(), package, entry.meta.effects.clone())
        };
        tracing::info!(traceparent = %traceparent, "estimating impact from the data service");
        let mut out = pb::EstimateImpactResponse {
            assumptions: vec![
                "SMART-style partial equilibrium (WITS/SMART, Laird and Yeats 1986), goods, annual series".to_owned(),
                format!(
                    "defaults: import-demand elasticity {}, substitution elasticity {} (overridable per effect)",
                    tradepact_impact::DEFAULT_IMPORT_DEMAND_ELASTICITY,
                    tradepact_impact::DEFAULT_SUBSTITUTION_ELASTICITY
                ),
                "effects of different options are added; interactions between them are ignored".to_owned(),
            ],
            ..Default::default()
        };
        // The effects' baselines are read concurrently (at most IMPACT_CONCURRENCY effects at
        // once) and used in package order, so the first error reported is the same.
        let mut jobs = Vec::new();
        for (i, &o) in package.0.iter().enumerate() {
            let issue = &space.issues()[i];
            let option = &issue.options[usize::from(o)];
            for e in &effects[i][usize::from(o)] {
                jobs.push(
                    self.data
                        .effect(&issue.id, &option.id, e, &period, &traceparent),
                );
            }
        }
        let results: Vec<_> = futures_util::StreamExt::collect(futures_util::StreamExt::buffered(
            futures_util::stream::iter(jobs),
            IMPACT_CONCURRENCY,
        ))
        .await;
        for result in results {
            let impact = match result {
                Ok(impact) => impact,
                Err(s)
                    if req.skip_missing_baselines
                        && s.code() == tonic::Code::FailedPrecondition =>
                {
                    out.skipped_effects.push(s.message().to_owned());
                    continue;
                }
                Err(s) => return Err(s),
            };
            out.exports_change_usd += impact.exports_change_usd;
            out.imports_change_usd += impact.imports_change_usd;
            out.bilateral_balance_change_usd += impact.bilateral_balance_change_usd;
            out.overall_balance_change_usd += impact.overall_balance_change_usd;
            out.effects.push(impact);
        }
        if out.effects.is_empty() && out.skipped_effects.is_empty() {
            out.assumptions
                .push("no option of this package carries a trade effect".to_owned());
        }
        Ok(Response::new(out))
    }
}

fn check_year(y: &str, field: &str) -> Result<(), Status> {
    tradepact_model::Period::parse(y, tradepact_model::Frequency::Annual)
        .map(|_| ())
        .map_err(|e| tradepact_rpc::status::invalid_argument([(field, e.as_str())]))
}
