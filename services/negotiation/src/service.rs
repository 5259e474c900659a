//! `tradepact.negotiation.v1.NegotiationService`: each handler converts its request
//! ([`convert`]), calls the application ([`crate::app`]) and converts the answer
//! ([`present`]); failures become statuses in one place (`tradepact_rpc::status::of`).

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};
use tradepact_bargain::Command;
use tradepact_model::Failure;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_proto::negotiation_v1::negotiation_service_server::NegotiationService;
use tradepact_rpc::outbox::OutStream;
use tradepact_rpc::paging::{self, Fingerprint};
use tradepact_rpc::status::of;

use crate::app::caller::Caller;
use crate::app::impact::ImpactRequest;
use crate::app::log::Meta;
use crate::app::simulate::SimulationRequest;
use crate::app::Negotiations;
use crate::convert;
use crate::data_source::BaselinePeriod;
use crate::present::{self, negotiation_out, NegotiationFeed};

/// Default and largest `ListNegotiations` page.
pub const LIST_PAGE: (usize, usize) = (50, 500);
/// Most bytes of one `ListNegotiations` page (at least one negotiation is listed).
pub const LIST_PAGE_BYTES: usize = 1 << 20;
/// How long `TakeSeat` waits for its join message.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Default and largest page of the frontier in `AnalyzeNegotiation`.
pub const FRONTIER_PAGE: (usize, usize) = (100, 10_000);

/// The negotiation service: the handlers over the application.
#[derive(Clone)]
pub struct NegotiationSvc {
    app: Arc<Negotiations>,
}

impl NegotiationSvc {
    /// The handlers of `app`.
    pub fn new(app: Arc<Negotiations>) -> NegotiationSvc {
        NegotiationSvc { app }
    }
}

fn caller<T>(request: &Request<T>) -> Caller {
    Caller::new(tradepact_rpc::auth::principal(request).cloned())
}

/// `INVALID_ARGUMENT` for one field.
fn invalid(field: &str, description: impl Into<String>) -> Status {
    of(Failure::invalid(field, description))
}

/// A W3C `traceparent` for calls this request makes when spans are not exported: the
/// caller's, or a new one (with spans exported, each call sends its own span's).
fn traceparent<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map_or_else(tradepact_rpc::telemetry::new_traceparent, str::to_owned)
}

fn check_year(y: &str, field: &str) -> Result<(), Status> {
    tradepact_model::Period::parse(y, tradepact_model::Frequency::Annual)
        .map(|_| ())
        .map_err(|e| invalid(field, e))
}

/// The baseline period of an `EstimateImpact` request.
fn baseline_in(baseline: Option<pb::Baseline>) -> Result<BaselinePeriod, Status> {
    Ok(match baseline.and_then(|b| b.period) {
        None => BaselinePeriod::Latest,
        Some(pb::baseline::Period::Year(y)) => {
            check_year(&y, "baseline.year")?;
            BaselinePeriod::Year(y)
        }
        Some(pb::baseline::Period::Average(w)) => {
            check_year(&w.start_year, "baseline.average.start_year")?;
            check_year(&w.end_year, "baseline.average.end_year")?;
            if w.start_year > w.end_year {
                return Err(invalid(
                    "baseline.average.end_year",
                    "must not be before start_year",
                ));
            }
            BaselinePeriod::Average(w.start_year, w.end_year)
        }
    })
}

#[tonic::async_trait]
impl NegotiationService for NegotiationSvc {
    async fn create_negotiation(
        &self,
        request: Request<pb::CreateNegotiationRequest>,
    ) -> Result<Response<pb::CreateNegotiationResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let (issues, effects) = convert::issues_in(&req.issues).map_err(of)?;
        let (title, agreement, rounds) = (&req.title, &req.agreement, req.deadline_rounds);
        let rule = convert::turn_rule_in(req.turn_rule).map_err(of)?;
        let created = tradepact_bargain::Negotiation::create(
            title,
            agreement,
            req.parties,
            issues,
            rounds,
            rule,
        )
        .map_err(|e| of(crate::app::failure(e)))?;
        let meta = Meta::new(effects);
        let entry = self.app.create(created, meta).await.map_err(of)?;
        let visibility = caller.visibility(&entry.negotiation.parties);
        let negotiation = negotiation_out(&entry, &visibility, false);
        tracing::info!(id = %negotiation.id, "negotiation created");
        Ok(Response::new(pb::CreateNegotiationResponse {
            negotiation: Some(negotiation),
        }))
    }

    async fn import_scenario(
        &self,
        request: Request<pb::ImportScenarioRequest>,
    ) -> Result<Response<pb::ImportScenarioResponse>, Status> {
        // Setting the positions acts for every party: each one's scope, before anything is read.
        let parties = convert::scenario_parties(request.get_ref()).map_err(of)?;
        for party in &parties {
            tradepact_rpc::auth::require_party(&request, party)?;
        }
        let caller = caller(&request);
        let import = convert::scenario_import_in(parties, request.into_inner()).map_err(of)?;
        let (last, notes) = self.app.import_scenario(import).await.map_err(of)?;
        let visibility = caller.visibility(&last.negotiation.parties);
        let negotiation = negotiation_out(&last, &visibility, false);
        tracing::info!(id = %negotiation.id, "negotiation imported");
        Ok(Response::new(pb::ImportScenarioResponse {
            negotiation: Some(negotiation),
            notes,
        }))
    }

    async fn export_scenario(
        &self,
        request: Request<pb::ExportScenarioRequest>,
    ) -> Result<Response<pb::ExportScenarioResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let format = convert::scenario_format(req.format).map_err(of)?;
        let export = (self.app.export_scenario(&req.id, &caller, format).await).map_err(of)?;
        Ok(Response::new(present::scenario_export_out(export)))
    }

    async fn get_negotiation(
        &self,
        request: Request<pb::GetNegotiationRequest>,
    ) -> Result<Response<pb::GetNegotiationResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let entry = self.app.get(&req.id).await.map_err(of)?;
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
        let status = pb::NegotiationStatus::try_from(req.status)
            .map_err(|_| invalid("status", "unknown status value"))?;
        let size = paging::size(req.page_size, LIST_PAGE).map_err(|e| invalid("page_size", e))?;
        let fingerprint = Fingerprint::of(&[&req.status.to_be_bytes()]);
        let before = paging::decode_number(&req.page_token, fingerprint)
            .map_err(|e| invalid("page_token", e))?;
        let any = status == pb::NegotiationStatus::Unspecified;
        let matches = |n: &pb::Negotiation| any || n.status() == status;
        let (negotiations, next) = self
            .app
            .list(before.unwrap_or(u64::MAX), size, LIST_PAGE_BYTES, matches)
            .await;
        Ok(Response::new(pb::ListNegotiationsResponse {
            negotiations,
            next_page_token: next
                .map(|n| paging::encode_number(fingerprint, n))
                .unwrap_or_default(),
        }))
    }

    async fn set_position(
        &self,
        request: Request<pb::SetPositionRequest>,
    ) -> Result<Response<pb::SetPositionResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let req = request.into_inner();
        let position = convert::position_in(req.position.as_ref()).map_err(of)?;
        let party = req.party;
        let command = Command::SetPosition { party, position };
        let entry = self.app.command(&req.negotiation_id, command).await;
        Ok(Response::new(pb::SetPositionResponse {
            event_count: entry.map_err(of)?.events.len() as u64,
        }))
    }

    async fn submit_offer(
        &self,
        request: Request<pb::SubmitOfferRequest>,
    ) -> Result<Response<pb::SubmitOfferResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let caller = caller(&request);
        let req = request.into_inner();
        let package = |space: &_| convert::package_in(space, req.package.as_ref());
        let entry = self
            .app
            .offer(&req.negotiation_id, req.party.clone(), package);
        let entry = entry.await.map_err(of)?;
        let n = &entry.negotiation;
        let visibility = caller.visibility(&n.parties);
        let offer = n.offers.last();
        Ok(Response::new(pb::SubmitOfferResponse {
            offer: offer.map(|o| convert::offer_out(n, o, &visibility)),
        }))
    }

    async fn respond_to_offer(
        &self,
        request: Request<pb::RespondToOfferRequest>,
    ) -> Result<Response<pb::RespondToOfferResponse>, Status> {
        tradepact_rpc::auth::require_party(&request, &request.get_ref().party)?;
        let req = request.into_inner();
        let command = Command::Respond {
            party: req.party,
            offer: req.offer_id,
            accept: req.accept,
        };
        let entry = self.app.command(&req.negotiation_id, command).await;
        let n = &entry.map_err(of)?.negotiation;
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
        let (party, reason) = (req.party, req.reason);
        let command = Command::BreakOff { party, reason };
        let entry = self.app.command(&req.negotiation_id, command).await;
        Ok(Response::new(pb::BreakOffResponse {
            status: convert::status_out(entry.map_err(of)?.negotiation.status).into(),
        }))
    }

    async fn analyze_negotiation(
        &self,
        request: Request<pb::AnalyzeNegotiationRequest>,
    ) -> Result<Response<pb::AnalyzeNegotiationResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let size =
            paging::size(req.page_size, FRONTIER_PAGE).map_err(|e| invalid("page_size", e))?;
        let min_ratio = match req.logrolling_min_ratio {
            0.0 => 1.5,
            r if r.is_finite() && r >= 1.0 => r,
            _ => {
                let why = "must be at least 1 (or 0 for the default 1.5)";
                return Err(invalid("logrolling_min_ratio", why));
            }
        };
        let analyzed = self.app.analyze(&req.id, &caller, min_ratio).await;
        let analyzed = analyzed.map_err(of)?;
        let fingerprint = Fingerprint::of(&[req.id.as_bytes(), &analyzed.version.to_be_bytes()]);
        let offset = paging::decode_number(&req.page_token, fingerprint).map_err(|e| {
            invalid(
                "page_token",
                format!("{e} (or the negotiation changed since)"),
            )
        })?;
        let offset = offset.unwrap_or(0) as usize;
        let total = analyzed.analysis.frontier.points.len();
        let next = (offset + size < total)
            .then(|| paging::encode_number(fingerprint, (offset + size) as u64));
        let page = offset..(offset + size).min(total).max(offset);
        let response = present::analysis_out(&analyzed, page, next.unwrap_or_default());
        Ok(Response::new(response))
    }

    async fn analyze_robustness(
        &self,
        request: Request<pb::AnalyzeRobustnessRequest>,
    ) -> Result<Response<pb::AnalyzeRobustnessResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let robust = convert::robust_in(&req).map_err(of)?;
        let compare = |space: &_| match req.compare.as_ref() {
            Some(p) if !p.choices.is_empty() => convert::package_in(space, Some(p)).map(Some),
            _ => Ok(None),
        };
        let answer = self.app.robustness(&req.id, &caller, robust, compare).await;
        Ok(Response::new(present::robustness_out(&answer.map_err(of)?)))
    }

    async fn simulate_mediation(
        &self,
        request: Request<pb::SimulateMediationRequest>,
    ) -> Result<Response<pb::SimulateMediationResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let voters = convert::voters_in(&req.voters).map_err(of)?;
        let rounds = match req.rounds {
            0 => convert::DEFAULT_MEDIATION_ROUNDS,
            n => n,
        };
        let mediated = self
            .app
            .mediate(&req.id, &caller, voters, rounds, req.seed)
            .await;
        Ok(Response::new(present::mediation_out(
            &mediated.map_err(of)?,
        )))
    }

    type SimulateNegotiationStream = OutStream<pb::SimulateNegotiationResponse>;

    async fn simulate_negotiation(
        &self,
        request: Request<pb::SimulateNegotiationRequest>,
    ) -> Result<Response<Self::SimulateNegotiationStream>, Status> {
        if request.get_ref().record_as_branch {
            tradepact_rpc::auth::require(&request, "negotiation:write")?;
        }
        let caller = caller(&request);
        let req = request.into_inner();
        let strategies = (req.strategies.iter().enumerate())
            .map(|(i, s)| convert::strategy_in(s, &format!("strategies[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(of)?;
        let sim = SimulationRequest {
            strategies,
            deadline_rounds: req.deadline_rounds,
            seed: req.seed,
            record_as_branch: req.record_as_branch,
        };
        let run = self.app.simulate(&req.id, caller, sim).await.map_err(of)?;
        let (space, parties) = (run.space, run.parties);
        let reports = ReceiverStream::new(run.reports).map(move |report| {
            report
                .map(|r| present::report_out(&space, &parties, r))
                .map_err(of)
        });
        Ok(Response::new(Box::pin(reports)))
    }

    type TakeSeatStream = OutStream<pb::TakeSeatResponse>;

    async fn take_seat(
        &self,
        request: Request<tonic::Streaming<pb::TakeSeatRequest>>,
    ) -> Result<Response<Self::TakeSeatStream>, Status> {
        use pb::take_seat_request::Message;
        let principal = tradepact_rpc::auth::principal(&request).cloned();
        let mut input = request.into_inner();
        let first = tokio::time::timeout(JOIN_WAIT, input.message()).await;
        let join = match first {
            Ok(Ok(Some(pb::TakeSeatRequest {
                message: Some(Message::Join(join)),
            }))) => join,
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(invalid("join", "the first message must come within 10 s")),
            Ok(Ok(_)) => return Err(invalid("join", "the first message must be a join")),
        };
        // Acting for the seat's party needs its position scope (an all-parties token may see,
        // not act).
        let scope = tradepact_rpc::auth::position_scope(&join.party);
        if !principal.as_ref().is_some_and(|p| p.has(&scope)) {
            return Err(Status::permission_denied(format!(
                "taking {:?}'s seat needs the scope {scope:?}",
                tradepact_rpc::status::truncated(&join.party)
            )));
        }
        let mut req = convert::seat_in(&join).map_err(of)?;
        req.token = principal.filter(|p| p.is_token()).map(|p| p.name.clone());
        let turn_seconds = req.turn.as_secs() as u32;
        // Moves are read in a task of their own and read against the negotiation's space.
        let (moves_tx, moves) = tokio::sync::mpsc::channel(4);
        let (seat, events) = self.app.take_seat(&join.id, req, moves).await.map_err(of)?;
        let space = seat.space.clone();
        tokio::spawn(async move {
            loop {
                let next = match input.message().await {
                    Ok(Some(pb::TakeSeatRequest {
                        message: Some(Message::Move(m)),
                    })) => Ok(convert::seat_move_in(&space, m)),
                    Ok(Some(_)) => Err(Failure::invalid("move", "after the join, only moves")),
                    Ok(None) => return,
                    Err(status) => Err(Failure::Cancelled(status.message().to_owned())),
                };
                let failed = next.is_err();
                if moves_tx.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        let seat = Arc::new(seat);
        let out = ReceiverStream::new(events).map(move |e| {
            e.map(|e| present::seat_event_out(&seat, e, turn_seconds))
                .map_err(of)
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn fork_negotiation(
        &self,
        request: Request<pb::ForkNegotiationRequest>,
    ) -> Result<Response<pb::ForkNegotiationResponse>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let entry = self.app.fork(&req.id, req.after_round, &req.title).await;
        let entry = entry.map_err(of)?;
        let visibility = caller.visibility(&entry.negotiation.parties);
        Ok(Response::new(pb::ForkNegotiationResponse {
            negotiation: Some(negotiation_out(&entry, &visibility, false)),
        }))
    }

    type WatchNegotiationStream = OutStream<pb::WatchNegotiationResponse>;

    async fn watch_negotiation(
        &self,
        request: Request<pb::WatchNegotiationRequest>,
    ) -> Result<Response<Self::WatchNegotiationStream>, Status> {
        let caller = caller(&request);
        let req = request.into_inner();
        let watch = self.app.watch(&req.id, req.from_event).await.map_err(of)?;
        let visibility = caller.visibility(&watch.parties);
        let feed = NegotiationFeed::new(&watch, visibility, req.include_positions);
        let past = watch
            .past
            .iter()
            .map(|(n, e)| feed.message(*n, e))
            .collect();
        let stream = tradepact_rpc::watch::watch(past, watch.live, feed);
        Ok(Response::new(stream))
    }

    async fn estimate_impact(
        &self,
        request: Request<pb::EstimateImpactRequest>,
    ) -> Result<Response<pb::EstimateImpactResponse>, Status> {
        let traceparent = traceparent(&request);
        let req = request.into_inner();
        let period = baseline_in(req.baseline)?;
        let package = |space: &_| match req.package.as_ref() {
            Some(p) if !p.choices.is_empty() => convert::package_in(space, Some(p)).map(Some),
            _ => Ok(None),
        };
        let estimate = ImpactRequest {
            period,
            skip_missing_baselines: req.skip_missing_baselines,
            traceparent: &traceparent,
        };
        let out = self.app.estimate_impact(&req.id, package, estimate).await;
        Ok(Response::new(out.map_err(of)?))
    }
}
