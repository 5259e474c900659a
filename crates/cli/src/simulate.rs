//! `tradepact simulate ID`: a simulation between strategies (`SimulateNegotiation`), turn by
//! turn, and its outcome; with `--record`, recorded as a branch (a new negotiation under the
//! stacked turn rule), whose id is printed.

use tradepact_proto::negotiation_v1 as pb;

use crate::chart::{failed, strategy, HEAVY_DEADLINE};
use crate::connect::ClientArgs;

/// What a simulation runs: the flags `tradepact simulate` and `tradepact chart simulation`
/// share.
#[derive(Clone, Debug, clap::Args)]
pub struct Run {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// One strategy per party, in the negotiation's party order, comma-separated: boulware,
    /// linear, conceder, a time-based exponent (0.2), tit-for-tat or zeuthen; one applies to
    /// every party.
    #[arg(long, default_value = "boulware,conceder")]
    pub strategies: String,
    /// Rounds before the deadline (0: the negotiation's own).
    #[arg(long, default_value_t = 0)]
    pub rounds: u32,
    /// Seed of the strategies' tie-breaking.
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

impl Run {
    /// The request for a negotiation of `parties` parties.
    pub fn request(
        &self,
        parties: usize,
        record: bool,
    ) -> anyhow::Result<pb::SimulateNegotiationRequest> {
        let mut strategies = (self.strategies.split(','))
            .map(strategy)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if strategies.len() == 1 {
            strategies = vec![strategies[0]; parties];
        }
        Ok(pb::SimulateNegotiationRequest {
            id: self.id.clone(),
            strategies,
            deadline_rounds: self.rounds,
            seed: self.seed,
            record_as_branch: record,
        })
    }
}

/// Flags of `tradepact simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub run: Run,
    /// Record the run as a branch of the negotiation (needs negotiation:write).
    #[arg(long)]
    pub record: bool,
}

fn package(p: &pb::Package) -> String {
    (p.choices.iter())
        .map(|c| format!("{}={}", c.issue_id, c.option_id))
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the simulation: a line per turn on standard output, then the outcome.
pub async fn run(c: &ClientArgs, args: SimulateArgs) -> anyhow::Result<()> {
    let mut client = c.negotiation(&args.run.negotiation_service).await?;
    let n = crate::chart::fetch_negotiation(c, &mut client, &args.run.id, false).await?;
    let request = args.run.request(n.parties.len(), args.record)?;
    let mut stream = (client.simulate_negotiation(c.request(request, Some(HEAVY_DEADLINE))))
        .await
        .map_err(failed)?
        .into_inner();
    let mut outcome = None;
    while let Some(message) = stream.message().await.map_err(failed)? {
        match message.event {
            Some(pb::simulate_negotiation_response::Event::Step(s)) => {
                let what = match &s.offer {
                    Some(p) => format!("offers {}", package(p)),
                    None => "accepts".to_owned(),
                };
                let utilities: Vec<String> =
                    s.utilities.iter().map(|u| format!("{u:.3}")).collect();
                println!(
                    "turn {:>3}  round {:>3}  {:<12} {what}  [{}]{}",
                    s.turn,
                    s.round,
                    s.party,
                    utilities.join(", "),
                    if s.agreed { "  agreed" } else { "" }
                );
            }
            Some(pb::simulate_negotiation_response::Event::Outcome(o)) => outcome = Some(o),
            None => {}
        }
    }
    let o = outcome.ok_or_else(|| anyhow::anyhow!("the simulation ended without an outcome"))?;
    match &o.agreement {
        Some(p) if o.agreed => println!(
            "agreed: {} after {} turns ({})",
            package(p),
            o.turns,
            o.reason
        ),
        _ => println!("no agreement after {} turns: {}", o.turns, o.reason),
    }
    let utilities: Vec<String> = (n.parties.iter().zip(&o.utilities))
        .map(|(p, u)| format!("{p} {u:.3}"))
        .collect();
    println!("utilities: {}", utilities.join(", "));
    if !o.branch_id.is_empty() {
        println!("recorded as {}", o.branch_id);
    }
    Ok(())
}
