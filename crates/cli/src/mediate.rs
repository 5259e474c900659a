//! `tradepact mediate ID`: a mediated negotiation (`SimulateMediation`), its final text beside
//! the Nash package.

use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// Flags of `tradepact mediate`.
#[derive(Clone, Debug, clap::Args)]
pub struct MediateArgs {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// One voter per party, in party order: `hill` (a hill climber) or `anneal:T` (an
    /// annealer starting at temperature T); one value applies to every party.
    #[arg(long, default_value = "hill", value_delimiter = ',')]
    pub voters: Vec<String>,
    /// Rounds (proposals) to run.
    #[arg(long, default_value_t = 2000)]
    pub rounds: u32,
    /// Seed of the starting text and of the mediator's proposals.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The negotiation service.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub negotiation_service: String,
}

fn voter(text: &str) -> anyhow::Result<pb::Voter> {
    use pb::voter::Kind;
    let kind = match text.trim().split_once(':') {
        None if text.trim() == "hill" => Kind::HillClimber(true),
        Some(("anneal", t)) => Kind::AnnealerTemperature(
            t.parse()
                .map_err(|_| anyhow::anyhow!("voter {text:?}: anneal:T needs a number T"))?,
        ),
        _ => anyhow::bail!("voter {text:?}: give hill or anneal:T"),
    };
    Ok(pb::Voter { kind: Some(kind) })
}

/// Runs the mediation and prints where it ended.
pub async fn run(c: &ClientArgs, args: MediateArgs) -> anyhow::Result<()> {
    let mut client = c.negotiation(&args.negotiation_service).await?;
    let n = crate::chart::fetch_negotiation(c, &mut client, &args.id, false).await?;
    let mut voters = args
        .voters
        .iter()
        .map(|v| voter(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if voters.len() == 1 {
        voters = vec![voters[0]; n.parties.len()];
    }
    let r = client
        .simulate_mediation(c.request(
            pb::SimulateMediationRequest {
                id: args.id.clone(),
                voters,
                rounds: args.rounds,
                seed: args.seed,
            },
            Some(std::time::Duration::from_secs(120)),
        ))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let option = |p: &Option<pb::Package>, issue: &str| {
        (p.iter().flat_map(|p| &p.choices))
            .find(|c| c.issue_id == issue)
            .map_or("-".to_owned(), |c| c.option_id.clone())
    };
    println!("{:<24} {:>6} {:>6} {:>6}", "issue", "start", "text", "Nash");
    let mut same = 0;
    for issue in &n.issues {
        let (text, nash) = (option(&r.text, &issue.id), option(&r.nash, &issue.id));
        same += usize::from(text == nash);
        println!(
            "{:<24} {:>6} {:>6} {:>6}",
            issue.id,
            option(&r.start, &issue.id),
            text,
            nash
        );
    }
    let utilities = |u: &[f64]| {
        (n.parties.iter().zip(u))
            .map(|(p, u)| format!("{p} {u:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\n{} rounds, {} changes adopted; the text: {} ({}{}); the Nash package: {}",
        r.rounds,
        r.adopted,
        utilities(&r.utilities),
        if r.agreed {
            "agreed"
        } else {
            "no agreement: below a reservation value"
        },
        if r.pareto_optimal {
            ", Pareto-optimal"
        } else {
            ", not Pareto-optimal"
        },
        utilities(&r.nash_utilities),
    );
    println!(
        "the text matches the Nash package on {same} of {} issues; distance to it in utility space {}",
        n.issues.len(),
        r.distance_to_nash.map_or("-".to_owned(), |d| format!("{d:.3}"))
    );
    Ok(())
}
