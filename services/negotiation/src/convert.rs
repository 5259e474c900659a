//! Proto ⇄ domain conversions: requests in (field violations collected as a [`Failure`]),
//! answers out.

use tradepact_bargain::analysis::Solution;
use tradepact_bargain::frontier::FrontierPoint;
use tradepact_bargain::negotiation::Offer;
use tradepact_bargain::scenario::ScenarioFormat;
use tradepact_bargain::{
    Issue, Negotiation, OptionDef, OutcomeSpace, Package, PositionSpec, SeenEvaluation,
    Status as NegStatus, Strategy, TurnRule, Visibility,
};
use tradepact_model::{Country, Failure, Outcome, Product, Violations};
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;

use crate::app::failure;
use crate::app::log::EffectSpec;

fn effect_in(e: &pb::TradeEffect, field: &str, v: &mut Violations) -> Option<EffectSpec> {
    let reporter = v.check(format!("{field}.reporter"), Country::parse(&e.reporter));
    let partner = v.check(format!("{field}.partner"), Country::parse(&e.partner));
    let product = v.check(format!("{field}.product"), Product::parse(&e.product));
    let side = match data_pb::Flow::try_from(e.flow) {
        Ok(data_pb::Flow::Import) => Some(tradepact_impact::Side::Import),
        Ok(data_pb::Flow::Export) => Some(tradepact_impact::Side::Export),
        _ => {
            v.add(
                format!("{field}.flow"),
                "must be FLOW_IMPORT or FLOW_EXPORT",
            );
            None
        }
    };
    let spec = EffectSpec {
        reporter: reporter?.to_string(),
        partner: partner?.to_string(),
        side: side?,
        product: product?.to_string(),
        base_tariff_percent: e.base_tariff_percent,
        tariff_change_points: e.tariff_change_points,
        import_demand_elasticity: e.import_demand_elasticity,
        substitution_elasticity: e.substitution_elasticity,
        note: e.note.clone(),
        lines: e.lines.clone(),
        new_tariff_percent: e.new_tariff_percent,
        tariff_change_percent_of_base: e.tariff_change_percent_of_base,
        export_supply_elasticity: e.export_supply_elasticity,
        applies_to_all: e.applies_to_all,
    };
    if !lines_in(e, field, v) {
        return None;
    }
    if let Err(err) = tradepact_impact::validate(&model_effect(&spec)) {
        v.add(format!("{field}.{}", err.field), err.description);
        return None;
    }
    Some(spec)
}

/// Most tariff lines one effect may name.
pub(crate) const MAX_LINES: usize = 100;

/// Checks an effect's lines and how it sets their new tariff; false when it added violations.
fn lines_in(e: &pb::TradeEffect, field: &str, v: &mut Violations) -> bool {
    let before = v.len();
    if e.lines.len() > MAX_LINES {
        v.add(
            format!("{field}.lines"),
            format!("at most {MAX_LINES} lines, got {}", e.lines.len()),
        );
    }
    for (i, line) in e.lines.iter().enumerate().take(MAX_LINES) {
        let hs6 = line
            .strip_prefix("HS:")
            .is_some_and(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
        if !hs6 {
            v.add(
                format!("{field}.lines[{i}]"),
                format!(
                    "must be an HS6 subheading such as \"HS:870421\", got {}",
                    tradepact_model::echo(line)
                ),
            );
        }
    }
    let unit = |x: f64| x.is_finite() && x >= 0.0;
    if let Some(p) = e.new_tariff_percent {
        if !unit(p) {
            v.add(
                format!("{field}.new_tariff_percent"),
                format!("must be a finite, non-negative rate, got {p}"),
            );
        }
    }
    if let Some(p) = e.tariff_change_percent_of_base {
        if !(p.is_finite() && p >= -100.0) {
            v.add(
                format!("{field}.tariff_change_percent_of_base"),
                format!("must be finite and at least -100 (remove the tariff), got {p}"),
            );
        }
    }
    let setters = [
        e.new_tariff_percent.is_some(),
        e.tariff_change_percent_of_base.is_some(),
    ];
    if setters.iter().filter(|s| **s).count() > 1 {
        v.add(
            format!("{field}.new_tariff_percent"),
            "give at most one of new_tariff_percent and tariff_change_percent_of_base",
        );
    }
    if e.lines.is_empty() && setters.iter().any(|s| *s) {
        v.add(
            format!("{field}.lines"),
            "new_tariff_percent and tariff_change_percent_of_base apply to lines: name at least one",
        );
    }
    v.len() == before
}

/// The impact model's view of a stored effect (defaults filled in).
pub(crate) fn model_effect(e: &EffectSpec) -> tradepact_impact::Effect {
    tradepact_impact::Effect {
        side: e.side,
        base_tariff: e.base_tariff_percent / 100.0,
        tariff_change: e.tariff_change_points / 100.0,
        import_demand_elasticity: e
            .import_demand_elasticity
            .unwrap_or(tradepact_impact::DEFAULT_IMPORT_DEMAND_ELASTICITY),
        substitution_elasticity: e
            .substitution_elasticity
            .unwrap_or(tradepact_impact::DEFAULT_SUBSTITUTION_ELASTICITY),
        export_supply_elasticity: e.export_supply_elasticity,
        rest_of_world_base_tariff: None,
        rest_of_world_tariff_change: match e.applies_to_all {
            true => e.tariff_change_points / 100.0,
            false => 0.0,
        },
    }
}

/// Issues and their trade effects, validated.
pub(crate) type IssuesAndEffects = (Vec<Issue>, Vec<Vec<Vec<EffectSpec>>>);

pub(crate) fn issues_in(issues: &[pb::Issue]) -> Outcome<IssuesAndEffects> {
    let mut v = Violations::default();
    let mut domain = Vec::with_capacity(issues.len());
    let mut effects = Vec::with_capacity(issues.len());
    for (i, issue) in issues.iter().enumerate() {
        let mut options = Vec::with_capacity(issue.options.len());
        let mut issue_effects = Vec::with_capacity(issue.options.len());
        for (j, o) in issue.options.iter().enumerate() {
            options.push(OptionDef {
                id: o.id.clone(),
                label: o.label.clone(),
            });
            let list = o
                .trade_effects
                .iter()
                .enumerate()
                .filter_map(|(k, e)| {
                    effect_in(
                        e,
                        &format!("issues[{i}].options[{j}].trade_effects[{k}]"),
                        &mut v,
                    )
                })
                .collect();
            issue_effects.push(list);
        }
        domain.push(Issue {
            id: issue.id.clone(),
            label: issue.label.clone(),
            options,
        });
        effects.push(issue_effects);
    }
    if v.is_empty() {
        Ok((domain, effects))
    } else {
        Err(Failure::from(v))
    }
}

pub(crate) fn effect_out(e: &EffectSpec) -> pb::TradeEffect {
    pb::TradeEffect {
        reporter: e.reporter.clone(),
        partner: e.partner.clone(),
        flow: match e.side {
            tradepact_impact::Side::Import => data_pb::Flow::Import,
            tradepact_impact::Side::Export => data_pb::Flow::Export,
        }
        .into(),
        product: e.product.clone(),
        base_tariff_percent: e.base_tariff_percent,
        tariff_change_points: e.tariff_change_points,
        import_demand_elasticity: e.import_demand_elasticity,
        substitution_elasticity: e.substitution_elasticity,
        note: e.note.clone(),
        lines: e.lines.clone(),
        new_tariff_percent: e.new_tariff_percent,
        tariff_change_percent_of_base: e.tariff_change_percent_of_base,
        export_supply_elasticity: e.export_supply_elasticity,
        applies_to_all: e.applies_to_all,
    }
}

pub(crate) fn position_in(p: Option<&pb::Position>) -> Outcome<PositionSpec> {
    let p = p.ok_or_else(|| Failure::invalid("position", "is required"))?;
    Ok(PositionSpec {
        weights: p.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        values: p
            .values
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.values.iter().map(|(o, x)| (o.clone(), *x)).collect(),
                )
            })
            .collect(),
        reservation: p.reservation_value,
    })
}

pub(crate) fn position_out(p: &PositionSpec) -> pb::Position {
    pb::Position {
        weights: p.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        values: p
            .values
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    pb::OptionValues {
                        values: v.iter().map(|(o, x)| (o.clone(), *x)).collect(),
                    },
                )
            })
            .collect(),
        reservation_value: p.reservation,
    }
}

pub(crate) fn package_in(space: &OutcomeSpace, p: Option<&pb::Package>) -> Outcome<Package> {
    let p = p.ok_or_else(|| Failure::invalid("package", "is required"))?;
    space
        .package(
            p.choices
                .iter()
                .map(|c| (c.issue_id.as_str(), c.option_id.as_str())),
        )
        .map_err(failure)
}

pub(crate) fn package_out(space: &OutcomeSpace, p: &Package) -> pb::Package {
    pb::Package {
        choices: space
            .describe(p)
            .into_iter()
            .map(|(issue_id, option_id)| pb::Choice {
                issue_id,
                option_id,
            })
            .collect(),
    }
}

pub(crate) fn status_out(s: NegStatus) -> pb::NegotiationStatus {
    match s {
        NegStatus::Open => pb::NegotiationStatus::Open,
        NegStatus::Agreed => pb::NegotiationStatus::Agreed,
        NegStatus::BrokenOff => pb::NegotiationStatus::BrokenOff,
    }
}

/// A turn rule as asked for (unspecified: offers in order).
pub(crate) fn turn_rule_in(rule: i32) -> Result<TurnRule, Failure> {
    match pb::TurnRule::try_from(rule) {
        Ok(pb::TurnRule::Unspecified | pb::TurnRule::OffersInOrder) => Ok(TurnRule::OffersInOrder),
        Ok(pb::TurnRule::Stacked) => Ok(TurnRule::Stacked),
        Err(_) => Err(Failure::invalid(
            "turn_rule",
            format!("unknown value {rule}"),
        )),
    }
}

pub(crate) fn turn_rule_out(rule: TurnRule) -> pb::TurnRule {
    match rule {
        TurnRule::OffersInOrder => pb::TurnRule::OffersInOrder,
        TurnRule::Stacked => pb::TurnRule::Stacked,
    }
}

/// An offer as a caller with `visibility` may see it (see [`evaluation_out`]).
pub(crate) fn offer_out(n: &Negotiation, o: &Offer, visibility: &Visibility) -> pb::Offer {
    pb::Offer {
        id: o.id,
        round: o.round,
        proposer: n.parties[o.proposer].clone(),
        package: Some(package_out(&n.space, &o.package)),
        evaluation: o
            .evaluation
            .as_ref()
            .map(|e| evaluation_out(&n.parties, e.seen_by(o.proposer, visibility))),
        accepted_by: o
            .accepted_by
            .iter()
            .map(|&p| n.parties[p].clone())
            .collect(),
        rejected_by: o
            .rejected_by
            .map(|p| n.parties[p].clone())
            .unwrap_or_default(),
    }
}

/// What a caller may see of an offer's evaluation, with party names.
pub(crate) fn evaluation_out(parties: &[String], seen: SeenEvaluation) -> pb::OfferEvaluation {
    pb::OfferEvaluation {
        utilities: seen.utilities,
        concession: seen.concession,
        pareto_optimal: seen.pareto_optimal,
        distance_to_nash: seen.distance_to_nash,
        party_utilities: seen
            .party_utilities
            .into_iter()
            .map(|(i, u)| (parties[i].clone(), u))
            .collect(),
    }
}

pub(crate) fn point_out(space: &OutcomeSpace, p: &FrontierPoint) -> pb::OutcomePoint {
    pb::OutcomePoint {
        utilities: p.utilities_f64(),
        packages: p.packages.iter().map(|k| package_out(space, k)).collect(),
        package_count: p.package_count,
    }
}

pub(crate) fn solution_out(space: &OutcomeSpace, s: &Solution) -> pb::Solution {
    pb::Solution {
        points: s.points.iter().map(|p| point_out(space, p)).collect(),
        value: if s.value.is_finite() { s.value } else { 0.0 },
    }
}

pub(crate) fn strategy_in(s: &pb::Strategy, field: &str) -> Outcome<Strategy> {
    use pb::strategy::Kind;
    match &s.kind {
        Some(Kind::TimeBasedExponent(e)) => Ok(Strategy::TimeBased { exponent: *e }),
        Some(Kind::TitForTat(_)) => Ok(Strategy::TitForTat),
        Some(Kind::Zeuthen(_)) => Ok(Strategy::Zeuthen),
        None => Err(Failure::invalid(
            field,
            "set one of time_based_exponent, tit_for_tat or zeuthen",
        )),
    }
}

/// Samples a robustness analysis draws when the request says 0.
pub(crate) const DEFAULT_ROBUSTNESS_SAMPLES: usize = 1000;

/// An `AnalyzeRobustness` request, checked field by field.
pub(crate) fn robust_in(
    r: &pb::AnalyzeRobustnessRequest,
) -> Outcome<crate::app::robust::RobustRequest> {
    use crate::app::robust::{Kind, NamedUncertain, RobustRequest};
    let mut v = Violations::default();
    let uncertain = (r.uncertain.iter().enumerate())
        .filter_map(|(i, u)| {
            let kind = match pb::ParameterKind::try_from(u.kind) {
                Ok(pb::ParameterKind::Weight) => Kind::Weight,
                Ok(pb::ParameterKind::Value) => Kind::Value,
                Ok(pb::ParameterKind::Reservation) => Kind::Reservation,
                _ => {
                    v.add(
                        format!("uncertain[{i}].kind"),
                        "must be PARAMETER_KIND_WEIGHT, _VALUE or _RESERVATION",
                    );
                    return None;
                }
            };
            Some(NamedUncertain {
                party: u.party.clone(),
                kind,
                issue: u.issue_id.clone(),
                option: u.option_id.clone(),
                low: u.low,
                high: u.high,
            })
        })
        .collect();
    let samples = match r.samples {
        0 => DEFAULT_ROBUSTNESS_SAMPLES,
        n if n as usize <= tradepact_bargain::robust::MAX_SAMPLES => n as usize,
        n => {
            v.add(
                "samples",
                format!(
                    "at most {}, got {n}",
                    tradepact_bargain::robust::MAX_SAMPLES
                ),
            );
            0
        }
    };
    if r.uncertain.is_empty() && r.weight_spread == 0.0 && r.reservation_spread == 0.0 {
        v.add(
            "uncertain",
            "name at least one uncertain parameter, or give weight_spread or reservation_spread",
        );
    }
    v.into_result(|| RobustRequest {
        uncertain,
        weight_spread: r.weight_spread,
        reservation_spread: r.reservation_spread,
        samples,
        seed: r.seed,
    })
    .map_err(Failure::Invalid)
}

/// Rounds a mediation runs when the request says 0.
pub(crate) const DEFAULT_MEDIATION_ROUNDS: u32 = 2000;

/// A mediation's voters, checked.
pub(crate) fn voters_in(voters: &[pb::Voter]) -> Outcome<Vec<tradepact_bargain::mediate::Voter>> {
    use pb::voter::Kind;
    use tradepact_bargain::mediate::Voter;
    let mut v = Violations::default();
    let out = (voters.iter().enumerate())
        .filter_map(|(i, voter)| match voter.kind {
            Some(Kind::HillClimber(true)) => Some(Voter::HillClimber),
            Some(Kind::AnnealerTemperature(t)) if t.is_finite() && t > 0.0 => {
                Some(Voter::Annealer {
                    initial_temperature: t,
                })
            }
            Some(Kind::AnnealerTemperature(t)) => {
                v.add(
                    format!("voters[{i}].annealer_temperature"),
                    format!("must be a positive number, got {t}"),
                );
                None
            }
            _ => {
                v.add(
                    format!("voters[{i}]"),
                    "must set hill_climber: true or annealer_temperature",
                );
                None
            }
        })
        .collect();
    v.into_result(|| out).map_err(Failure::Invalid)
}

/// The parties of an imported scenario (its profiles' file names without the extension),
/// after checking the format and the files are there.
pub(crate) fn scenario_parties(r: &pb::ImportScenarioRequest) -> Outcome<Vec<String>> {
    let extensions = scenario_format(r.format)?.extensions();
    if r.domain.as_ref().is_none_or(|d| d.content.is_empty()) {
        return Err(Failure::invalid("domain", "the domain file is required"));
    }
    if r.profiles.len() < 2 {
        return Err(Failure::invalid(
            "profiles",
            format!(
                "a negotiation needs two or more parties' files, got {}",
                r.profiles.len()
            ),
        ));
    }
    let mut v = Violations::default();
    let parties: Vec<String> = (r.profiles.iter().enumerate())
        .map(|(i, f)| {
            let stem = f.name.rsplit('/').next().unwrap_or_default();
            let party = (extensions.iter())
                .find_map(|e| stem.strip_suffix(e))
                .unwrap_or(stem)
                .to_owned();
            if party.is_empty() {
                v.add(
                    format!("profiles[{i}].name"),
                    format!("must name the party (e.g. alice{})", extensions[0]),
                );
            }
            party
        })
        .collect();
    v.into_result(|| parties).map_err(Failure::Invalid)
}

/// An import as the application takes it: the files, with each profile's party (from
/// [`scenario_parties`]).
pub(crate) fn scenario_import_in(
    parties: Vec<String>,
    r: pb::ImportScenarioRequest,
) -> Outcome<crate::app::scenario::ScenarioImport> {
    let domain = r.domain.unwrap_or_default();
    Ok(crate::app::scenario::ScenarioImport {
        format: scenario_format(r.format)?,
        domain: (domain.name, domain.content),
        profiles: (parties.into_iter().zip(r.profiles))
            .map(|(party, f)| (party, f.name, f.content))
            .collect(),
        deadline_rounds: r.deadline_rounds,
        title: r.title,
        turn_rule: turn_rule_in(r.turn_rule)?,
    })
}

/// A scenario file format as asked for.
pub(crate) fn scenario_format(format: i32) -> Outcome<ScenarioFormat> {
    match pb::ScenarioFormat::try_from(format) {
        Ok(pb::ScenarioFormat::Genius) => Ok(ScenarioFormat::Genius),
        Ok(pb::ScenarioFormat::Negmas) => Ok(ScenarioFormat::Negmas),
        _ => Err(Failure::invalid(
            "format",
            "must be SCENARIO_FORMAT_GENIUS or SCENARIO_FORMAT_NEGMAS",
        )),
    }
}

/// `TakeSeat`'s join message as the application takes it.
pub(crate) fn seat_in(j: &pb::JoinSeat) -> Outcome<crate::app::seat::SeatRequest> {
    use crate::app::seat::{OnTimeout, SeatRequest, DEFAULT_TURN, MAX_TURN};
    for (party, e) in &j.exponents {
        if !(e.is_finite() && *e > 0.0) {
            return Err(Failure::invalid(
                format!("join.exponents.{}", tradepact_rpc::status::truncated(party)),
                format!("must be a positive number, got {e}"),
            ));
        }
    }
    let turn = match u64::from(j.turn_seconds) {
        0 => DEFAULT_TURN,
        s if s > MAX_TURN.as_secs() => {
            return Err(Failure::invalid(
                "join.turn_seconds",
                format!("at most {}, got {s}", MAX_TURN.as_secs()),
            ))
        }
        s => std::time::Duration::from_secs(s),
    };
    let on_timeout = match pb::SeatTimeout::try_from(j.on_timeout) {
        Ok(pb::SeatTimeout::Unspecified | pb::SeatTimeout::Reject) => OnTimeout::Reject,
        Ok(pb::SeatTimeout::BreakOff) => OnTimeout::BreakOff,
        Err(_) => {
            return Err(Failure::invalid(
                "join.on_timeout",
                format!("unknown value {}", j.on_timeout),
            ))
        }
    };
    Ok(SeatRequest {
        party: j.party.clone(),
        exponents: j.exponents.clone().into_iter().collect(),
        deadline_rounds: j.deadline_rounds,
        turn,
        on_timeout,
        seed: j.seed,
        token: None,
    })
}

/// A seat's move as the game takes it, with the turn it answers; a move that does not read
/// (a package outside the space, no move at all) is the reason it is refused.
pub(crate) fn seat_move_in(space: &OutcomeSpace, m: pb::SeatMove) -> crate::app::seat::SeatInput {
    (m.turn, seat_move(space, m.r#move))
}

fn seat_move(
    space: &OutcomeSpace,
    m: Option<pb::seat_move::Move>,
) -> Result<tradepact_bargain::seat::Move, String> {
    use pb::seat_move::Move as M;
    use tradepact_bargain::seat::Move;
    match m {
        Some(M::Offer(p)) => Ok(Move::Offer(
            package_in(space, Some(&p)).map_err(|f| f.to_string())?,
        )),
        Some(M::Accept(true)) => Ok(Move::Accept),
        Some(M::Reject(true)) => Ok(Move::Reject),
        Some(M::BreakOff(reason)) => Ok(Move::BreakOff(tradepact_rpc::status::truncated(&reason))),
        _ => Err("a move is an offer, accept: true, reject: true or a break_off reason".into()),
    }
}

#[cfg(test)]
mod fuzz {
    //! Arbitrary negotiation inputs through validation and the domain: errors, never panics.
    use super::*;
    use proptest::prelude::{any, prop_oneof, proptest, Just, ProptestConfig};
    use proptest::strategy::Strategy as _;
    use std::collections::HashMap;

    fn id() -> impl proptest::strategy::Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-c]{0,2}", Just(String::new())]
    }

    fn number() -> impl proptest::strategy::Strategy<Value = f64> {
        prop_oneof![any::<f64>(), Just(f64::NAN), -1.0f64..2.0, Just(0.0)]
    }

    fn issues() -> impl proptest::strategy::Strategy<Value = Vec<pb::Issue>> {
        proptest::collection::vec(
            (
                id(),
                proptest::collection::vec(
                    (
                        id(),
                        proptest::collection::vec(
                            (
                                id(),
                                id(),
                                any::<i32>(),
                                id(),
                                number(),
                                number(),
                                proptest::option::of(number()),
                            ),
                            0..2,
                        ),
                    ),
                    0..4,
                ),
            ),
            0..4,
        )
        .prop_map(|issues| {
            issues
                .into_iter()
                .map(|(iid, options)| pb::Issue {
                    id: iid,
                    label: String::new(),
                    options: options
                        .into_iter()
                        .map(|(oid, effects)| pb::IssueOption {
                            id: oid,
                            label: String::new(),
                            trade_effects: effects
                                .into_iter()
                                .map(|(r, p, flow, product, base, change, eps)| pb::TradeEffect {
                                    reporter: r,
                                    partner: p,
                                    flow,
                                    product,
                                    base_tariff_percent: base,
                                    tariff_change_points: change,
                                    import_demand_elasticity: eps,
                                    substitution_elasticity: None,
                                    note: String::new(),
                                    ..Default::default()
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn negotiations_positions_and_packages_never_panic(
            issues in issues(),
            parties in proptest::collection::vec(id(), 0..4),
            deadline in any::<u32>(),
            weights in proptest::collection::vec((id(), number()), 0..4),
            values in proptest::collection::vec((id(), id(), number()), 0..6),
            reservation in number(),
            choices in proptest::collection::vec((id(), id()), 0..4),
        ) {
            let Ok((domain, _effects)) = issues_in(&issues) else { return Ok(()) };
            let Ok(created) = Negotiation::create("t", "a", parties.clone(), domain, deadline, TurnRule::default()) else { return Ok(()) };
            let mut n = Negotiation::replay([&created]).unwrap();
            let mut value_map: HashMap<String, pb::OptionValues> = HashMap::new();
            for (issue, option, v) in values {
                value_map.entry(issue).or_default().values.insert(option, v);
            }
            let position = pb::Position { weights: weights.into_iter().collect(), values: value_map, reservation_value: reservation };
            if let Ok(spec) = position_in(Some(&position)) {
                let _ = n.execute(&tradepact_bargain::Command::SetPosition { party: parties[0].clone(), position: spec });
            }
            let package = pb::Package { choices: choices.into_iter().map(|(issue_id, option_id)| pb::Choice { issue_id, option_id }).collect() };
            if let Ok(p) = package_in(&n.space, Some(&package)) {
                let _ = n.execute(&tradepact_bargain::Command::Offer { party: parties[0].clone(), package: p });
            }
        }
    }
}
