//! `tradepact seat ID PARTY`: takes a party's seat (`TakeSeat`) from the terminal. Every turn
//! is printed as it is played; on the seat's turns one line of standard input is its move:
//! `offer ISSUE=OPTION,…`, `accept`, `reject` or `break-off REASON`. End of input leaves the
//! seat (a break-off).

use std::collections::HashMap;

use tokio::io::AsyncBufReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// Flags of `tradepact seat`.
#[derive(Clone, Debug, clap::Args)]
pub struct SeatArgs {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// The party whose seat is taken (the token must act for it).
    pub party: String,
    /// Another party's strategy, PARTY=boulware|linear|conceder|EXPONENT (repeatable;
    /// unnamed parties play Boulware).
    #[arg(long = "against", value_parser = against)]
    pub against: Vec<(String, f64)>,
    /// Rounds (0: the negotiation's deadline).
    #[arg(long, default_value_t = 0)]
    pub rounds: u32,
    /// Seconds for each of the seat's turns.
    #[arg(long, default_value_t = 60)]
    pub turn_seconds: u32,
    /// What a turn not answered in time is: reject or break-off.
    #[arg(long, default_value = "reject")]
    pub on_timeout: String,
    /// Seed of the strategies' tie-breaking.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The negotiation service.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub negotiation_service: String,
}

fn against(text: &str) -> Result<(String, f64), String> {
    let (party, strategy) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give PARTY=STRATEGY"))?;
    let exponent = match strategy {
        "boulware" => 0.2,
        "linear" => 1.0,
        "conceder" => 5.0,
        e => e
            .parse()
            .map_err(|_| format!("{strategy:?}: boulware, linear, conceder or an exponent"))?,
    };
    Ok((party.to_owned(), exponent))
}

fn package_text(p: &Option<pb::Package>) -> String {
    (p.iter().flat_map(|p| &p.choices))
        .map(|c| format!("{}={}", c.issue_id, c.option_id))
        .collect::<Vec<_>>()
        .join(",")
}

/// A line of input as a move (`Err`: why it does not read).
fn move_of(line: &str) -> Result<pb::seat_move::Move, String> {
    use pb::seat_move::Move;
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "accept" => Ok(Move::Accept(true)),
        "reject" => Ok(Move::Reject(true)),
        "break-off" => Ok(Move::BreakOff(rest.trim().to_owned())),
        "offer" => {
            let choices = (rest.split(',').filter(|c| !c.trim().is_empty()))
                .map(|c| {
                    let (issue, option) = c
                        .split_once('=')
                        .ok_or_else(|| format!("{c:?}: give ISSUE=OPTION"))?;
                    Ok(pb::Choice {
                        issue_id: issue.trim().to_owned(),
                        option_id: option.trim().to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Move::Offer(pb::Package { choices }))
        }
        _ => Err("offer ISSUE=OPTION,…, accept, reject or break-off REASON".to_owned()),
    }
}

/// Takes the seat and plays it from standard input.
pub async fn run(c: &ClientArgs, args: SeatArgs) -> anyhow::Result<()> {
    use pb::take_seat_response::Message as M;
    let on_timeout = match args.on_timeout.as_str() {
        "reject" => pb::SeatTimeout::Reject,
        "break-off" => pb::SeatTimeout::BreakOff,
        other => anyhow::bail!("--on-timeout {other:?}: reject or break-off"),
    };
    let mut client = c.negotiation(&args.negotiation_service).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let join = pb::JoinSeat {
        id: args.id.clone(),
        party: args.party.clone(),
        exponents: args.against.iter().cloned().collect::<HashMap<_, _>>(),
        deadline_rounds: args.rounds,
        turn_seconds: args.turn_seconds,
        on_timeout: on_timeout.into(),
        seed: args.seed,
    };
    tx.send(pb::TakeSeatRequest {
        message: Some(pb::take_seat_request::Message::Join(join)),
    })
    .await?;
    let mut stream = client
        .take_seat(c.request(ReceiverStream::new(rx), None))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut tx = Some(tx);
    while let Some(message) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
    {
        match message.message {
            Some(M::Taken(t)) => println!(
                "seat of {} taken; parties {}; {} rounds, {} s a turn",
                t.party,
                t.parties.join(", "),
                t.deadline_rounds,
                t.turn_seconds
            ),
            Some(M::Turn(t)) => {
                let what = match (&t.offer, t.accepted, t.rejected) {
                    (Some(_), _, _) => format!("offers {}", package_text(&t.offer)),
                    (_, true, _) => "accepts".to_owned(),
                    (_, _, true) => "rejects".to_owned(),
                    _ => format!("breaks off: {}", t.broke_off),
                };
                let utility = t.seat_utility.map_or(String::new(), |u| {
                    format!(" (worth {u:.3} to {})", args.party)
                });
                let late = if t.timed_out { " [time ran out]" } else { "" };
                println!(
                    "round {} turn {}: {} {what}{utility}{late}",
                    t.round, t.turn, t.party
                );
            }
            Some(M::YourTurn(y)) => {
                if !y.refused.is_empty() {
                    println!("refused: {}", y.refused);
                }
                let standing = match &y.standing_offer {
                    Some(_) => format!(
                        "standing offer {} (accepted by {}){}",
                        package_text(&y.standing_offer),
                        y.accepted_by.join(", "),
                        y.seat_utility
                            .map_or(String::new(), |u| format!(", worth {u:.3} to you"))
                    ),
                    None => "no offer stands".to_owned(),
                };
                println!(
                    "your turn {} (round {}): {standing}; offer ISSUE=OPTION,… | accept | reject | break-off REASON",
                    y.turn, y.round
                );
                let Some(sender) = &tx else { continue };
                // End of input leaves the seat.
                let Some(line) = lines.next_line().await? else {
                    tx = None;
                    continue;
                };
                let mv = match move_of(&line) {
                    Ok(mv) => Some(mv),
                    Err(why) => {
                        println!("not a move: {why}");
                        // Sent empty, so the service asks the turn again with its reason.
                        None
                    }
                };
                let request = pb::TakeSeatRequest {
                    message: Some(pb::take_seat_request::Message::Move(pb::SeatMove {
                        turn: y.turn,
                        r#move: mv,
                    })),
                };
                sender.send(request).await?;
            }
            Some(M::Ended(e)) => {
                match e.agreed {
                    true => println!(
                        "agreed on {} after {} turns{}",
                        package_text(&e.agreement),
                        e.turns,
                        e.seat_utility
                            .map_or(String::new(), |u| format!(", worth {u:.3} to you"))
                    ),
                    false => println!("ended without agreement: {}", e.reason),
                }
                return Ok(());
            }
            None => {}
        }
    }
    Ok(())
}
