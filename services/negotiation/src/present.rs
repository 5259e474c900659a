//! Negotiations, events and simulation steps as answers: what each caller may see.

use std::ops::Range;

use tradepact_bargain::position::SCALE;
use tradepact_bargain::simulate::Action;
use tradepact_bargain::{Event, OutcomeSpace, Visibility};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_rpc::watch::{Feed, Step};

use crate::app::analyze::Analyzed;
use crate::app::log::public_id;
use crate::app::simulate::Report;
use crate::app::watch::Watch;
use crate::app::{Entry, Published};
use crate::convert;

/// What `ListNegotiations` shows of a negotiation: no issues, offers or positions.
pub(crate) fn summary_of(entry: &Entry) -> pb::Negotiation {
    let mut n = negotiation_out(entry, &Visibility::new(Vec::new()), false);
    n.offers.clear();
    n.issues.clear();
    n
}

/// A negotiation as a caller with `visibility` may see it; positions only when asked for.
pub(crate) fn negotiation_out(
    entry: &Entry,
    visibility: &Visibility,
    include_positions: bool,
) -> pb::Negotiation {
    let n = &entry.negotiation;
    let space = &n.space;
    let issues = space
        .issues()
        .iter()
        .enumerate()
        .map(|(i, issue)| pb::Issue {
            id: issue.id.clone(),
            label: issue.label.clone(),
            options: issue
                .options
                .iter()
                .enumerate()
                .map(|(j, o)| pb::IssueOption {
                    id: o.id.clone(),
                    label: o.label.clone(),
                    trade_effects: entry.meta.effects[i][j]
                        .iter()
                        .map(convert::effect_out)
                        .collect(),
                })
                .collect(),
        })
        .collect();
    pb::Negotiation {
        id: public_id(entry.meta.id),
        title: n.title.clone(),
        agreement: n.agreement.clone(),
        parties: n.parties.clone(),
        issues,
        deadline_rounds: n.deadline_rounds,
        status: convert::status_out(n.status).into(),
        offers: n
            .offers
            .iter()
            .map(|o| convert::offer_out(n, o, visibility))
            .collect(),
        agreed_offer: n.agreed,
        ended_because: n.ended_because.clone().unwrap_or_default(),
        event_count: entry.events.len() as u64,
        forked_from: entry.meta.forked_from.clone().unwrap_or_default(),
        forked_after_round: entry.meta.forked_after_round,
        next_proposer: if n.status == tradepact_bargain::Status::Open {
            n.parties[n.next_proposer()].clone()
        } else {
            String::new()
        },
        positions: n
            .parties
            .iter()
            .zip(entry.position_specs())
            .enumerate()
            .filter(|(i, _)| include_positions && visibility.sees(*i))
            .map(|(_, (party, spec))| pb::PartyPosition {
                party: party.clone(),
                position: spec.as_ref().map(convert::position_out),
            })
            .collect(),
        turn_rule: convert::turn_rule_out(n.turn_rule).into(),
    }
}

/// An export's files.
pub(crate) fn scenario_export_out(
    e: crate::app::scenario::ScenarioExport,
) -> pb::ExportScenarioResponse {
    let file = |(name, content)| pb::ScenarioFile { name, content };
    pb::ExportScenarioResponse {
        domain: Some(file(e.domain)),
        profiles: e.profiles.into_iter().map(file).collect(),
        left_out: e.left_out,
    }
}

pub(crate) fn event_type(e: &Event) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// An event as JSON, without what would reveal a position the caller may not see: a
/// position's content (shown only when asked for and visible), and an offer's evaluation
/// beyond what [`Visibility`] allows.
pub(crate) fn event_json(
    e: &Event,
    parties: &[String],
    visibility: &Visibility,
    include_positions: bool,
) -> String {
    let index = |party: &str| parties.iter().position(|p| p == party);
    match e {
        Event::PositionSet { party, .. }
            if !(include_positions && index(party).is_some_and(|i| visibility.sees(i))) =>
        {
            serde_json::json!({ "type": "position_set", "party": party, "position": "(private: watch with include_positions and the party's position scope)" })
                .to_string()
        }
        Event::OfferMade {
            party,
            package,
            evaluation: Some(evaluation),
        } if !visibility.sees_all() => {
            let proposer = index(party).unwrap_or(usize::MAX);
            let seen = evaluation.seen_by(proposer, visibility);
            let party_utilities: serde_json::Map<String, serde_json::Value> = seen
                .party_utilities
                .iter()
                .map(|&(i, u)| (parties[i].clone(), u.into()))
                .collect();
            let mut shown = serde_json::json!({
                "utilities": [],
                "party_utilities": party_utilities,
            });
            if let Some(c) = seen.concession {
                shown["concession"] = c.into();
            }
            serde_json::json!({ "type": "offer_made", "party": party, "package": package, "evaluation": shown })
                .to_string()
        }
        _ => serde_json::to_string(e).unwrap_or_default(),
    }
}

pub(crate) fn step_out(
    space: &tradepact_bargain::OutcomeSpace,
    parties: &[String],
    s: &tradepact_bargain::Step,
) -> pb::SimulationStep {
    pb::SimulationStep {
        turn: s.turn,
        round: s.round,
        party: parties[s.party].clone(),
        offer: match &s.action {
            Action::Offer(p) => Some(convert::package_out(space, p)),
            Action::Accept => None,
        },
        accepted: matches!(s.action, Action::Accept),
        utilities: s.utilities.clone(),
        concession: s.concession,
        agreed: s.agreed,
    }
}

/// A simulation's report as a stream message.
pub(crate) fn report_out(
    space: &OutcomeSpace,
    parties: &[String],
    report: Report,
) -> pb::SimulateNegotiationResponse {
    use pb::simulate_negotiation_response::Event as Sim;
    let event = match report {
        Report::Turn(step) => Sim::Step(step_out(space, parties, &step)),
        Report::End(o, branch_id) => Sim::Outcome(pb::SimulationOutcome {
            agreed: o.agreement.is_some(),
            agreement: o.agreement.as_ref().map(|p| convert::package_out(space, p)),
            utilities: o.utilities.clone(),
            turns: o.turns,
            reason: o.reason.clone(),
            branch_id,
        }),
    };
    pb::SimulateNegotiationResponse { event: Some(event) }
}

/// An analysis as `AnalyzeNegotiation` answers it, with the frontier points in `page`.
pub(crate) fn analysis_out(
    a: &Analyzed,
    page: Range<usize>,
    next_page_token: String,
) -> pb::AnalyzeNegotiationResponse {
    let (space, solved) = (&a.space, &a.analysis);
    let zopa = solved.zopa.as_ref();
    let units = |u: &[i64]| u.iter().map(|&x| x as f64 / SCALE).collect();
    let offers = (a.standings.iter())
        .map(|s| pb::OfferStanding {
            offer_id: s.offer_id,
            utilities: units(&s.utilities),
            rational: s.rational,
            pareto_optimal: s.pareto_optimal,
            distance_to_nash: s.distance_to_nash,
        })
        .collect();
    let hints = (a.hints.iter())
        .map(|h| pb::LogrollHint {
            party: a.parties[h.party].clone(),
            counterpart: a.parties[h.counterpart].clone(),
            gives_issue: space.issues()[h.gives].id.clone(),
            gets_issue: space.issues()[h.gets].id.clone(),
            ratio: h.ratio,
        })
        .collect();
    pb::AnalyzeNegotiationResponse {
        outcome_count: space.size(),
        zopa_size: zopa.map_or(0.0, |z| z.size),
        zopa_exact: zopa.is_some_and(|z| z.exact),
        frontier_size: solved.frontier.points.len() as u64,
        frontier: solved.frontier.points[page]
            .iter()
            .map(|p| convert::point_out(space, p))
            .collect(),
        next_page_token,
        nash: Some(convert::solution_out(space, &solved.nash)),
        kalai_smorodinsky: Some(convert::solution_out(space, &solved.kalai_smorodinsky)),
        egalitarian: Some(convert::solution_out(space, &solved.egalitarian)),
        max_welfare: Some(convert::solution_out(space, &solved.max_welfare)),
        ideal: units(&solved.ideal),
        logrolling_hints: hints,
        offers,
    }
}

/// One `WatchNegotiation` watcher: the events of its negotiation, as it may see them.
pub(crate) struct NegotiationFeed {
    id: u64,
    parties: Vec<String>,
    visibility: Visibility,
    include_positions: bool,
    /// The number of the next event it is to be sent.
    next: u64,
    /// The number after the last event of the step being sent.
    sending: u64,
}

impl NegotiationFeed {
    /// A watcher of `watch`, after its past events.
    pub fn new(watch: &Watch, visibility: Visibility, include_positions: bool) -> Self {
        let next = watch.next;
        NegotiationFeed {
            id: watch.id,
            parties: watch.parties.clone(),
            visibility,
            include_positions,
            next,
            sending: next,
        }
    }

    /// Event `number` as this watcher may see it.
    pub fn message(&self, number: u64, e: &Event) -> pb::WatchNegotiationResponse {
        pb::WatchNegotiationResponse {
            event_number: number,
            r#type: event_type(e),
            json: event_json(e, &self.parties, &self.visibility, self.include_positions),
        }
    }
}

impl Feed for NegotiationFeed {
    type Update = Published;
    type Message = pb::WatchNegotiationResponse;

    fn step(&mut self, update: Published) -> Step<Self::Message> {
        match update {
            Published::Event { id, number, event } if id == self.id && number >= self.next => {
                self.sending = number + 1;
                Step::Send(vec![self.message(number, &event)])
            }
            Published::Event { .. } => Step::Skip,
            Published::Shutdown => Step::End,
        }
    }

    fn sent(&mut self) {
        self.next = self.sending;
    }

    fn resume_from(&self) -> String {
        format!("from_event = {}", self.next)
    }
}

/// `AnalyzeRobustness`'s answer.
pub(crate) fn robustness_out(
    a: &crate::app::robust::RobustAnswer,
) -> pb::AnalyzeRobustnessResponse {
    use crate::app::robust::Kind;
    let r = &a.robustness;
    let parameter = |u: &crate::app::robust::NamedUncertain| pb::UncertainParameter {
        party: u.party.clone(),
        kind: match u.kind {
            Kind::Weight => pb::ParameterKind::Weight,
            Kind::Value => pb::ParameterKind::Value,
            Kind::Reservation => pb::ParameterKind::Reservation,
        }
        .into(),
        issue_id: u.issue.clone(),
        option_id: u.option.clone(),
        low: u.low,
        high: u.high,
    };
    pb::AnalyzeRobustnessResponse {
        samples: r.samples as u32,
        stated_nash: r
            .stated_nash
            .as_ref()
            .map(|p| convert::package_out(&a.space, p)),
        issues: (a.space.issues().iter().enumerate())
            .map(|(i, issue)| pb::IssueShares {
                issue_id: issue.id.clone(),
                options: (issue.options.iter().enumerate())
                    .map(|(k, o)| pb::OptionShare {
                        option_id: o.id.clone(),
                        nash_share: r.nash_option_share[i][k],
                        kalai_smorodinsky_share: r.ks_option_share[i][k],
                    })
                    .collect(),
            })
            .collect(),
        zopa_empty_share: r.zopa_empty_share,
        same_nash_share: r.same_nash_share,
        nash_utility: (a.parties.iter().zip(&r.nash_utility))
            .map(|(party, s)| pb::UtilitySpread {
                party: party.clone(),
                mean: s.mean,
                p5: s.p5,
                p50: s.p50,
                p95: s.p95,
            })
            .collect(),
        sensitivity: (a.named.iter().zip(&r.sensitivity))
            .map(|(u, s)| pb::ParameterSensitivity {
                parameter: Some(parameter(u)),
                stated: s.stated,
                stays_from: s.stays_from,
                stays_to: s.stays_to,
                robust: s.robust(),
                nash_below: s.below.as_ref().map(|p| convert::package_out(&a.space, p)),
                nash_above: s.above.as_ref().map(|p| convert::package_out(&a.space, p)),
            })
            .collect(),
        compare_at_least: a.compare_at_least.clone(),
    }
}

/// `SimulateMediation`'s answer.
pub(crate) fn mediation_out(m: &crate::app::mediate::Mediated) -> pb::SimulateMediationResponse {
    let o = &m.outcome;
    pb::SimulateMediationResponse {
        text: Some(convert::package_out(&m.space, &o.text)),
        utilities: o.utilities.clone(),
        agreed: o.agreed,
        rounds: o.rounds,
        adopted: o.adopted,
        start: Some(convert::package_out(&m.space, &o.start)),
        pareto_optimal: m.pareto_optimal,
        distance_to_nash: m.distance_to_nash,
        nash: m
            .nash
            .as_ref()
            .map(|(p, _)| convert::package_out(&m.space, p)),
        nash_utilities: m.nash.as_ref().map(|(_, u)| u.clone()).unwrap_or_default(),
    }
}

/// What `TakeSeat` tells the seat: packages, and only the seat's own utilities.
pub(crate) fn seat_event_out(
    seat: &crate::app::seat::Seat,
    event: crate::app::seat::SeatEvent,
    turn_seconds: u32,
) -> pb::TakeSeatResponse {
    use crate::app::seat::SeatEvent;
    use pb::take_seat_response::Message;
    use tradepact_bargain::seat::Move;
    let (space, parties) = (&seat.space, &seat.parties);
    let own = |p: &tradepact_bargain::Package| seat.own.as_ref().map(|pos| pos.utility(p));
    let message = match event {
        SeatEvent::Taken { deadline_rounds } => Message::Taken(pb::SeatTaken {
            parties: parties.clone(),
            party: parties[seat.seat].clone(),
            deadline_rounds,
            turn_seconds,
        }),
        SeatEvent::Played(t, timed_out) => {
            let mut out = pb::SeatTurn {
                turn: t.turn,
                round: t.round,
                party: parties[t.party].clone(),
                timed_out,
                agreed: t.agreed,
                ..Default::default()
            };
            match t.action {
                Move::Offer(p) => {
                    out.seat_utility = own(&p);
                    out.offer = Some(convert::package_out(space, &p));
                }
                Move::Accept => out.accepted = true,
                Move::Reject => out.rejected = true,
                Move::BreakOff(reason) => out.broke_off = reason,
            }
            Message::Turn(out)
        }
        SeatEvent::YourTurn {
            turn,
            round,
            standing,
            deadline,
            refused,
        } => Message::YourTurn(pb::YourTurn {
            turn,
            round,
            seat_utility: standing.as_ref().and_then(|(p, _)| own(p)),
            standing_offer: standing
                .as_ref()
                .map(|(p, _)| convert::package_out(space, p)),
            accepted_by: (standing.iter())
                .flat_map(|(_, a)| a.iter().map(|&i| parties[i].clone()))
                .collect(),
            deadline_unix_millis: deadline
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            refused: refused.unwrap_or_default(),
        }),
        SeatEvent::Ended(e) => Message::Ended(pb::SeatEnding {
            agreed: e.agreement.is_some(),
            seat_utility: e.agreement.as_ref().and_then(own),
            agreement: e.agreement.as_ref().map(|p| convert::package_out(space, p)),
            turns: e.turns,
            reason: e.reason,
        }),
    };
    pb::TakeSeatResponse {
        message: Some(message),
    }
}
