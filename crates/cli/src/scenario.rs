//! Scenarios the project ships (`scenarios/*.json`), and commands to look at a negotiation.

use std::collections::HashMap;

use serde::Deserialize;
use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// The scenarios built into the binary, by id.
pub const SCENARIOS: &[(&str, &str)] = &[(
    "korus-2018",
    include_str!("../../../scenarios/korus-2018.json"),
)];

#[derive(Deserialize)]
struct Scenario {
    title: String,
    agreement: String,
    parties: Vec<String>,
    deadline_rounds: u32,
    issues: Vec<ScenarioIssue>,
    positions: HashMap<String, ScenarioPosition>,
}

#[derive(Deserialize)]
struct ScenarioIssue {
    id: String,
    label: String,
    options: Vec<ScenarioOption>,
    #[serde(default)]
    actual: String,
}

#[derive(Deserialize)]
struct ScenarioOption {
    id: String,
    label: String,
    #[serde(default)]
    trade_effects: Vec<ScenarioEffect>,
}

#[derive(Deserialize)]
struct ScenarioEffect {
    reporter: String,
    partner: String,
    flow: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    base_tariff_percent: f64,
    #[serde(default)]
    tariff_change_points: f64,
    import_demand_elasticity: Option<f64>,
    substitution_elasticity: Option<f64>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    lines: Vec<String>,
    new_tariff_percent: Option<f64>,
    tariff_change_percent_of_base: Option<f64>,
    export_supply_elasticity: Option<f64>,
    #[serde(default)]
    applies_to_all: bool,
}

#[derive(Deserialize)]
struct ScenarioPosition {
    weights: HashMap<String, f64>,
    values: HashMap<String, HashMap<String, f64>>,
    reservation_value: f64,
}

fn parse(id: &str) -> anyhow::Result<Scenario> {
    let text = SCENARIOS
        .iter()
        .find(|(name, _)| *name == id)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            let known: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
            anyhow::anyhow!("no scenario {id:?}; known: {}", known.join(", "))
        })?;
    Ok(serde_json::from_str(text)?)
}

fn create_request(s: &Scenario) -> anyhow::Result<pb::CreateNegotiationRequest> {
    let issues = s
        .issues
        .iter()
        .map(|i| {
            let options = i
                .options
                .iter()
                .map(|o| {
                    let trade_effects = o
                        .trade_effects
                        .iter()
                        .map(|e| {
                            let flow = match e.flow.as_str() {
                                "IMPORT" => data_pb::Flow::Import,
                                "EXPORT" => data_pb::Flow::Export,
                                other => anyhow::bail!("flow {other:?} is not IMPORT or EXPORT"),
                            };
                            Ok(pb::TradeEffect {
                                reporter: e.reporter.clone(),
                                partner: e.partner.clone(),
                                flow: flow.into(),
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
                            })
                        })
                        .collect::<anyhow::Result<_>>()?;
                    Ok(pb::IssueOption {
                        id: o.id.clone(),
                        label: o.label.clone(),
                        trade_effects,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(pb::Issue {
                id: i.id.clone(),
                label: i.label.clone(),
                options,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(pb::CreateNegotiationRequest {
        title: s.title.clone(),
        agreement: s.agreement.clone(),
        parties: s.parties.clone(),
        issues,
        deadline_rounds: s.deadline_rounds,
        ..Default::default()
    })
}

/// `tradepact scenario load ID`: creates the negotiation and sets every position; prints its id.
pub async fn load(c: &ClientArgs, id: &str, url: &str) -> anyhow::Result<()> {
    let scenario = parse(id)?;
    let mut client = c.negotiation(url).await?;
    let created = client
        .create_negotiation(c.request(create_request(&scenario)?, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .negotiation
        .ok_or_else(|| anyhow::anyhow!("the service returned no negotiation"))?;
    for party in &scenario.parties {
        let p = scenario
            .positions
            .get(party)
            .ok_or_else(|| anyhow::anyhow!("the scenario has no position for {party}"))?;
        let position = pb::Position {
            weights: p.weights.clone(),
            values: p
                .values
                .iter()
                .map(|(k, v)| (k.clone(), pb::OptionValues { values: v.clone() }))
                .collect(),
            reservation_value: p.reservation_value,
        };
        set_position(c, &mut client, &created.id, party, position).await?;
    }
    println!("{}", created.id);
    eprintln!(
        "created {} ({} issues, positions of {} set); try: tradepact analyze {}",
        created.id,
        scenario.issues.len(),
        scenario.parties.join(" and "),
        created.id
    );
    Ok(())
}

/// A negotiation's issues as the bargaining model has them.
pub(crate) fn issues_of(n: &pb::Negotiation) -> Vec<tradepact_bargain::Issue> {
    (n.issues.iter())
        .map(|i| tradepact_bargain::Issue {
            id: i.id.clone(),
            label: i.label.clone(),
            options: (i.options.iter())
                .map(|o| tradepact_bargain::OptionDef {
                    id: o.id.clone(),
                    label: o.label.clone(),
                })
                .collect(),
        })
        .collect()
}

/// A position as the bargaining model states it.
pub(crate) fn spec_of(p: &pb::Position) -> tradepact_bargain::PositionSpec {
    tradepact_bargain::PositionSpec {
        weights: p.weights.clone().into_iter().collect(),
        values: (p.values.iter())
            .map(|(issue, v)| (issue.clone(), v.values.clone().into_iter().collect()))
            .collect(),
        reservation: p.reservation_value,
    }
}

/// Sets `party`'s position in negotiation `id`.
pub(crate) async fn set_position(
    c: &ClientArgs,
    client: &mut tradepact_client::negotiation::NegotiationClient,
    id: &str,
    party: &str,
    position: pb::Position,
) -> anyhow::Result<()> {
    let request = pb::SetPositionRequest {
        negotiation_id: id.to_owned(),
        party: party.to_owned(),
        position: Some(position),
    };
    client
        .set_position(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("position of {party}: {}", s.message()))?;
    Ok(())
}

/// The actual outcome recorded in a scenario, as (issue id, option id).
pub fn actual_outcome(id: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(parse(id)?
        .issues
        .into_iter()
        .map(|i| (i.id, i.actual))
        .collect())
}

fn describe(p: &pb::OutcomePoint) -> String {
    let u: Vec<String> = p.utilities.iter().map(|u| format!("{u:.3}")).collect();
    let package = p
        .packages
        .first()
        .map(|k| {
            k.choices
                .iter()
                .map(|c| format!("{}={}", c.issue_id, c.option_id))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    format!("utilities ({})  {package}", u.join(", "))
}

/// `tradepact analyze ID`: ZOPA, frontier size and the bargaining solutions, compared with the
/// scenario's actual outcome when `compare` names one.
pub async fn analyze(
    c: &ClientArgs,
    id: &str,
    url: &str,
    compare: Option<&str>,
) -> anyhow::Result<()> {
    let mut client = c.negotiation(url).await?;
    let a = client
        .analyze_negotiation(c.request(
            pb::AnalyzeNegotiationRequest {
                id: id.to_owned(),
                page_size: 1,
                ..Default::default()
            },
            Some(std::time::Duration::from_secs(60)),
        ))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    println!(
        "outcomes {:.0}, ZOPA {:.0} ({}), Pareto frontier {} points",
        a.outcome_count,
        a.zopa_size,
        if a.zopa_exact { "exact" } else { "estimated" },
        a.frontier_size
    );
    for (name, s) in [
        ("Nash", &a.nash),
        ("Kalai-Smorodinsky", &a.kalai_smorodinsky),
        ("egalitarian", &a.egalitarian),
        ("max welfare", &a.max_welfare),
    ] {
        if let Some(s) = s {
            for p in &s.points {
                println!("{name:<18} {}", describe(p));
            }
        }
    }
    let shown = a.logrolling_hints.len().min(5);
    if shown < a.logrolling_hints.len() {
        println!(
            "strongest {shown} of {} logrolling hints:",
            a.logrolling_hints.len()
        );
    }
    for h in &a.logrolling_hints[..shown] {
        println!(
            "logroll: {} gives on {} to win {}, {} the reverse (relative weights differ {:.1}x)",
            h.party, h.gives_issue, h.gets_issue, h.counterpart, h.ratio
        );
    }
    if let (Some(scenario), Some(nash)) = (compare, a.nash.as_ref().and_then(|s| s.points.first()))
    {
        let actual = actual_outcome(scenario)?;
        let chosen: HashMap<&str, &str> = nash.packages[0]
            .choices
            .iter()
            .map(|c| (c.issue_id.as_str(), c.option_id.as_str()))
            .collect();
        let mut same = 0;
        println!("\n{:<24} {:>6} {:>7}", "issue", "Nash", "actual");
        for (issue, option) in &actual {
            let nash_option = chosen.get(issue.as_str()).copied().unwrap_or("?");
            same += usize::from(nash_option == option);
            println!("{issue:<24} {nash_option:>6} {option:>7}");
        }
        println!(
            "the Nash point matches the 2018 outcome on {same} of {} issues",
            actual.len()
        );
    }
    Ok(())
}

/// `tradepact impact ID`: the impact of the agreed package (or `--package issue=option,…`).
pub async fn impact(
    c: &ClientArgs,
    id: &str,
    url: &str,
    package: Option<&str>,
    year: Option<&str>,
) -> anyhow::Result<()> {
    let mut client = c.negotiation(url).await?;
    let package = package.map(|p| pb::Package {
        choices: p
            .split(',')
            .filter_map(|c| c.split_once('='))
            .map(|(i, o)| pb::Choice {
                issue_id: i.trim().to_owned(),
                option_id: o.trim().to_owned(),
            })
            .collect(),
    });
    let r = client
        .estimate_impact(c.request(
            pb::EstimateImpactRequest {
                id: id.to_owned(),
                package,
                baseline: year.map(|y| pb::Baseline {
                    period: Some(pb::baseline::Period::Year(y.to_owned())),
                }),
                skip_missing_baselines: true,
            },
            Some(std::time::Duration::from_secs(30)),
        ))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let m = |v: f64| format!("{:+.1} M USD", v / 1e6);
    for e in &r.effects {
        let effect = e.effect.clone().unwrap_or_default();
        let what = match effect.lines.is_empty() {
            true => effect.product.clone(),
            false => format!("{} lines", effect.lines.len()),
        };
        println!(
            "{}={}: {} {}->{} {what} baseline {:.1} bn ({}): creation {}, diversion {}, price effect {}; the importer's tariff revenue {}, consumer surplus {}, welfare {}; balance: bilateral {}, overall {}",
            e.issue_id,
            e.option_id,
            if effect.flow == data_pb::Flow::Import as i32 { "imports" } else { "exports" },
            effect.reporter,
            effect.partner,
            e.baseline_usd / 1e9,
            e.baseline_period,
            m(e.trade_creation_usd),
            m(e.trade_diversion_usd),
            m(e.price_effect_usd),
            m(e.tariff_revenue_change_usd),
            m(e.consumer_surplus_change_usd),
            m(e.welfare_change_usd),
            m(e.bilateral_balance_change_usd),
            m(e.overall_balance_change_usd),
        );
        if !e.lines.is_empty() {
            println!(
                "  {:<12} {:>7} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "line",
                "tariff",
                "→",
                "baseline",
                "creation",
                "diversion",
                "revenue",
                "welfare",
                "bilateral",
                "overall"
            );
        }
        for l in &e.lines {
            let mm = |v: f64| format!("{:+.1}", v / 1e6);
            println!(
                "  {:<12} {:>6}% {:>6}% {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  ({}{})",
                l.line,
                l.base_tariff_percent,
                l.new_tariff_percent,
                format!("{:.1}", l.baseline_usd / 1e6),
                mm(l.trade_creation_usd),
                mm(l.trade_diversion_usd),
                mm(l.tariff_revenue_change_usd),
                mm(l.welfare_change_usd),
                mm(l.bilateral_balance_change_usd),
                mm(l.overall_balance_change_usd),
                l.base_tariff_source,
                match l.lines.as_slice() {
                    [one] if *one == l.line => String::new(),
                    lines => format!("; stands for {}", lines.join(", ")),
                } + if l.baseline_usd == 0.0 {
                    "; no trade before the change: SMART creates none from nothing"
                } else {
                    ""
                }
            );
        }
        if !e.lines.is_empty() {
            for note in &e.assumptions {
                println!("  note: {note}");
            }
        }
    }
    for s in &r.skipped_effects {
        println!("skipped: {s}");
    }
    println!(
        "total: creation {}, diversion {}, price effect {}, total trade effect {}; importers' tariff revenue {}, consumer surplus {}, welfare {}",
        m(r.trade_creation_usd),
        m(r.trade_diversion_usd),
        m(r.price_effect_usd),
        m(r.total_trade_effect_usd),
        m(r.tariff_revenue_change_usd),
        m(r.consumer_surplus_change_usd),
        m(r.welfare_change_usd),
    );
    println!(
        "balance: exports {}, imports {}; bilateral {} beside overall {} (diversion moves trade between suppliers, so the overall balance moves only by the creation)",
        m(r.exports_change_usd),
        m(r.imports_change_usd),
        m(r.bilateral_balance_change_usd),
        m(r.overall_balance_change_usd)
    );
    for a in &r.assumptions {
        println!("assumption: {a}");
    }
    Ok(())
}
