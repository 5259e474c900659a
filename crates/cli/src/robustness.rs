//! `tradepact robustness ID`: how robust a negotiation's bargaining solutions are to its
//! assumed positions (`AnalyzeRobustness`), printed as tables.

use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// Flags of `tradepact robustness`.
#[derive(Clone, Debug, clap::Args)]
pub struct RobustnessArgs {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// Vary every issue weight of every party by this share of its stated value (0.5: from
    /// half to one and a half times it).
    #[arg(long, default_value_t = 0.5)]
    pub weights: f64,
    /// Vary every reservation value by this much either way.
    #[arg(long, default_value_t = 0.0)]
    pub reservations: f64,
    /// Samples to draw.
    #[arg(long, default_value_t = 1000)]
    pub samples: u32,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Compare each sample's Nash package with this scenario's actual outcome (e.g. korus-2018).
    #[arg(long)]
    pub compare: Option<String>,
    /// The negotiation service.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub negotiation_service: String,
}

/// Runs the analysis and prints it.
pub async fn run(c: &ClientArgs, args: RobustnessArgs) -> anyhow::Result<()> {
    let mut client = c.negotiation(&args.negotiation_service).await?;
    let compare = match &args.compare {
        Some(scenario) => Some(pb::Package {
            choices: (crate::scenario::actual_outcome(scenario)?.into_iter())
                .map(|(issue_id, option_id)| pb::Choice {
                    issue_id,
                    option_id,
                })
                .collect(),
        }),
        None => None,
    };
    let r = client
        .analyze_robustness(c.request(
            pb::AnalyzeRobustnessRequest {
                id: args.id.clone(),
                weight_spread: args.weights,
                reservation_spread: args.reservations,
                samples: args.samples,
                seed: args.seed,
                compare: compare.clone(),
                ..Default::default()
            },
            Some(std::time::Duration::from_secs(120)),
        ))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let pct = |v: f64| format!("{:.1} %", v * 100.0);
    println!(
        "{} samples (seed {}): weights ±{}, reservations ±{}; the stated Nash package is kept in {}, the ZOPA is empty in {}",
        r.samples,
        args.seed,
        pct(args.weights),
        args.reservations,
        pct(r.same_nash_share),
        pct(r.zopa_empty_share)
    );
    let stated = |issue: &str| {
        (r.stated_nash.iter().flat_map(|p| &p.choices))
            .find(|c| c.issue_id == issue)
            .map_or("-", |c| c.option_id.as_str())
            .to_owned()
    };
    println!(
        "\n{:<24} {:>6}  options: share of samples in the Nash package (Kalai-Smorodinsky)",
        "issue", "stated"
    );
    for issue in &r.issues {
        let options: Vec<String> = (issue.options.iter())
            .map(|o| {
                format!(
                    "{} {} ({})",
                    o.option_id,
                    pct(o.nash_share),
                    pct(o.kalai_smorodinsky_share)
                )
            })
            .collect();
        println!(
            "{:<24} {:>6}  {}",
            issue.issue_id,
            stated(&issue.issue_id),
            options.join(", ")
        );
    }
    println!("\nutility at the Nash point: mean, 5th / 50th / 95th percentile");
    for u in &r.nash_utility {
        println!(
            "{:<6} {:.3}  {:.3} / {:.3} / {:.3}",
            u.party, u.mean, u.p5, u.p50, u.p95
        );
    }
    println!(
        "\nsensitivity: each parameter alone over its range; the stated Nash package holds over"
    );
    let mut fragile: Vec<&pb::ParameterSensitivity> =
        r.sensitivity.iter().filter(|s| !s.robust).collect();
    fragile.sort_by(|a, b| {
        let width = |s: &pb::ParameterSensitivity| {
            let p = s
                .parameter
                .as_ref()
                .map_or(1.0, |p| (p.high - p.low).max(1e-12));
            (s.stays_to - s.stays_from) / p
        };
        width(a).total_cmp(&width(b))
    });
    for s in &fragile {
        let p = s.parameter.clone().unwrap_or_default();
        let what = match pb::ParameterKind::try_from(p.kind) {
            Ok(pb::ParameterKind::Weight) => format!("{} weight of {}", p.party, p.issue_id),
            Ok(pb::ParameterKind::Value) => {
                format!("{} value of {}={}", p.party, p.issue_id, p.option_id)
            }
            _ => format!("{} reservation", p.party),
        };
        println!(
            "  {what:<40} stated {:.3}: holds over [{:.3}, {:.3}] of [{:.3}, {:.3}]",
            s.stated, s.stays_from, s.stays_to, p.low, p.high
        );
    }
    println!(
        "  {} of {} parameters keep the package over their whole range",
        r.sensitivity.len() - fragile.len(),
        r.sensitivity.len()
    );
    if let (Some(scenario), Some(compare)) = (&args.compare, &compare) {
        let n = compare.choices.len();
        let shares: Vec<String> = (0..=n)
            .rev()
            .take(4)
            .filter_map(|k| {
                r.compare_at_least
                    .get(k)
                    .map(|s| format!("≥ {k}: {}", pct(*s)))
            })
            .collect();
        println!(
            "\nthe sampled Nash package matches the {scenario} outcome on {}",
            shares.join(", ")
        );
    }
    Ok(())
}
