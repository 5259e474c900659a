//! Negotiations, events and simulation steps as answers: what each caller may see.

use tradepact_bargain::simulate::Action;
use tradepact_bargain::{Event, PositionSpec, Visibility};
use tradepact_proto::negotiation_v1 as pb;

use crate::convert;
use crate::log::public_id;
use crate::service::Entry;

/// What `ListNegotiations` shows of a negotiation: no issues, offers or positions.
pub(crate) fn summary_of(entry: &Entry) -> pb::Negotiation {
    let mut n = negotiation_out(entry, &Visibility::new(Vec::new()), false);
    n.offers.clear();
    n.issues.clear();
    n
}

/// The latest position spec of each party, from the events.
pub(crate) fn position_specs(entry: &Entry) -> Vec<Option<PositionSpec>> {
    let mut specs = vec![None; entry.negotiation.parties.len()];
    for e in &entry.events {
        if let Event::PositionSet { party, position } = e {
            if let Some(i) = entry.negotiation.parties.iter().position(|p| p == party) {
                specs[i] = Some(position.clone());
            }
        }
    }
    specs
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
            .zip(position_specs(entry))
            .enumerate()
            .filter(|(i, _)| include_positions && visibility.sees(*i))
            .map(|(_, (party, spec))| pb::PartyPosition {
                party: party.clone(),
                position: spec.as_ref().map(convert::position_out),
            })
            .collect(),
    }
}

/// The events of `entry` up to the end of `round` (creation and positions for round 0).
pub(crate) fn events_until_round(entry: &Entry, round: u32) -> Vec<Event> {
    let parties = entry.negotiation.parties.len();
    let mut offers = 0usize;
    let mut out = Vec::new();
    for e in &entry.events {
        if let Event::OfferMade { .. } = e {
            if offers / parties + 1 > round as usize {
                break;
            }
            offers += 1;
        }
        out.push(e.clone());
    }
    out
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
