//! An outside seat (`TakeSeat`): a Python grpcio agent plays Korea against the service's
//! Boulware strategy for the US; only Korea's token takes Korea's seat; a seat that does not
//! answer in time is rejected or broken off as it joined; what the seat is told carries no
//! other party's utility; nothing is recorded on the negotiation.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Streaming};
use tradepact_client::{authorized, DEFAULT_DEADLINE};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::workspace;

use crate::privacy::{start, texts};
use crate::security::create_with_positions;

/// The US's utility of (autos, steel) in the privacy negotiation (weights 0.7131 / 0.2869,
/// values a 0.9173, b 0.4411, c 0).
fn us_utilities() -> Vec<f64> {
    let value = [0.9173, 0.4411, 0.0];
    let mut out = Vec::new();
    for a in value {
        for s in value {
            out.push(0.7131 * a + 0.2869 * s);
        }
    }
    out
}

fn join(id: &str, party: &str) -> pb::JoinSeat {
    pb::JoinSeat {
        id: id.into(),
        party: party.into(),
        ..Default::default()
    }
}

fn message(m: pb::take_seat_request::Message) -> pb::TakeSeatRequest {
    pb::TakeSeatRequest { message: Some(m) }
}

/// Takes a seat with `token`; the sender stays open (the seat present) while it is held.
async fn take(
    n: &mut tradepact_client::negotiation::NegotiationClient,
    token: &str,
    join: pb::JoinSeat,
) -> Result<
    (
        mpsc::Sender<pb::TakeSeatRequest>,
        Streaming<pb::TakeSeatResponse>,
    ),
    tonic::Status,
> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(message(pb::take_seat_request::Message::Join(join)))
        .await
        .unwrap();
    let mut request = Request::new(ReceiverStream::new(rx));
    tradepact_client::add_token(&mut request, Some(token));
    let stream = n.take_seat(request).await?.into_inner();
    Ok((tx, stream))
}

/// Every message until the stream ends.
async fn all(mut stream: Streaming<pb::TakeSeatResponse>) -> Vec<pb::take_seat_response::Message> {
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the seat's stream moves on")
        .unwrap()
    {
        out.push(m.message.unwrap());
    }
    out
}

#[test]
fn a_python_agent_plays_korea_against_a_boulware_us() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut n = rt.block_on(async {
        tradepact_client::negotiation::connect(&server.url())
            .await
            .unwrap()
    });
    let id = rt.block_on(create_with_positions(&mut n, "admin"));
    let events = |n: &mut tradepact_client::negotiation::NegotiationClient| {
        rt.block_on(async {
            let req = pb::GetNegotiationRequest {
                id: id.clone(),
                include_positions: false,
            };
            (n.get_negotiation(authorized(req, DEFAULT_DEADLINE, Some("admin")))
                .await)
                .unwrap()
                .into_inner()
                .negotiation
                .unwrap()
                .event_count
        })
    };
    let before = events(&mut n);

    let script = workspace().join("tests/python/seat_agent.py");
    let out = std::process::Command::new("python3")
        .args([script.to_str().unwrap(), &server.addr, &id, "kor"])
        .output()
        .expect("python3 on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let played: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let turns = played["turns"].as_array().unwrap();
    let ending = &played["ending"];
    let asked = played["asked"].as_array().unwrap();

    // The US opens with its best package, (a, a), and the parties alternate.
    assert_eq!(turns[0]["party"], "US");
    let first: Vec<(&str, &str)> = (turns[0]["offer"]["choices"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["issue_id"].as_str().unwrap(),
                c["option_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(first, vec![("autos", "a"), ("steel", "a")]);
    for (i, t) in turns.iter().enumerate() {
        assert_eq!(t["turn"], i as u64, "{t}");
        assert_eq!(t["party"], ["US", "KOR"][i % 2], "{t}");
    }
    // The agent's first move (a package outside the space) was refused, and the same turn
    // asked again with the reason.
    assert_eq!(asked[0]["turn"], asked[1]["turn"]);
    assert!(
        asked[1]["refused"].as_str().unwrap().contains("\"z\""),
        "{}",
        asked[1]
    );
    assert_eq!(asked[0]["refused"], "");
    // A Boulware US against an agent conceding to 0.45: agreed, late, on a package the agent
    // values at its aspiration or more.
    assert_eq!(ending["agreed"], true, "{ending}");
    assert_eq!(ending["turns"], turns.len() as u64);
    let last = turns.last().unwrap();
    assert!(last["agreed"].as_bool().unwrap(), "{last}");
    assert!(
        ending["seat_utility"].as_f64().unwrap() >= 0.45 - 1e-9,
        "{ending}"
    );
    assert!(
        last["round"].as_u64().unwrap() >= 5,
        "Boulware concedes late: {last}"
    );
    // Korea's own utilities are there; the US's are not, anywhere.
    assert!(stdout.contains("seat_utility"), "{stdout}");
    for text in texts(us_utilities()) {
        assert!(
            !stdout.contains(&text),
            "the seat saw a US utility {text}: {stdout}"
        );
    }
    // Nothing was recorded on the negotiation.
    assert_eq!(events(&mut n), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_party_takes_a_seat_and_a_silent_seat_is_rejected_or_broken_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut n = tradepact_client::negotiation::connect(&server.url())
        .await
        .unwrap();
    let id = create_with_positions(&mut n, "admin").await;

    // Acting for Korea needs Korea's position scope: the US, an analyst who sees every
    // position and a reader are refused.
    for token in ["us", "analyst", "reader"] {
        let refused = take(&mut n, token, join(&id, "KOR")).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{token}: {refused:?}"
        );
    }
    let unknown = take(
        &mut n,
        "kor",
        pb::JoinSeat {
            exponents: [("CHN".to_owned(), 1.0)].into(),
            ..join(&id, "KOR")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
    assert!(unknown.message().contains("CHN"), "{unknown:?}");

    // A silent seat that joined with on_timeout = REJECT: each of its turns is a rejection,
    // after its 1 s, until the deadline of 2 rounds.
    let started = Instant::now();
    let (_present, stream) = take(
        &mut n,
        "kor",
        pb::JoinSeat {
            deadline_rounds: 2,
            turn_seconds: 1,
            on_timeout: pb::SeatTimeout::Reject.into(),
            ..join(&id, "KOR")
        },
    )
    .await
    .unwrap();
    use pb::take_seat_response::Message as M;
    let got = all(stream).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(&got[0], M::Taken(t) if t.deadline_rounds == 2 && t.turn_seconds == 1 && t.parties == ["US", "KOR"])
    );
    let seat_turns: Vec<&pb::SeatTurn> = (got.iter())
        .filter_map(|m| match m {
            M::Turn(t) if t.party == "KOR" => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(seat_turns.len(), 2, "{got:?}");
    assert!(
        seat_turns.iter().all(|t| t.timed_out && t.rejected),
        "{got:?}"
    );
    let M::YourTurn(asked) = &got[2] else {
        panic!("{got:?}")
    };
    assert!(
        asked.standing_offer.is_some() && asked.accepted_by == ["US"],
        "{asked:?}"
    );
    assert!(
        asked.seat_utility.is_some(),
        "Korea has a position: {asked:?}"
    );
    let M::Ended(end) = got.last().unwrap() else {
        panic!("{got:?}")
    };
    assert!(
        !end.agreed && end.reason.contains("deadline of 2 rounds"),
        "{end:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );

    // With on_timeout = BREAK_OFF the first silent turn ends it.
    let (_present, stream) = take(
        &mut n,
        "kor",
        pb::JoinSeat {
            turn_seconds: 1,
            on_timeout: pb::SeatTimeout::BreakOff.into(),
            ..join(&id, "KOR")
        },
    )
    .await
    .unwrap();
    let got = all(stream).await;
    let M::Ended(end) = got.last().unwrap() else {
        panic!("{got:?}")
    };
    assert!(!end.agreed && end.reason.contains("ran out"), "{end:?}");

    // A seat that leaves (closes its side) breaks off.
    let (present, stream) = take(&mut n, "kor", join(&id, "KOR")).await.unwrap();
    drop(present);
    let got = all(stream).await;
    let M::Ended(end) = got.last().unwrap() else {
        panic!("{got:?}")
    };
    assert!(end.reason.contains("the seat left"), "{end:?}");
}

/// `tradepact seat` from a terminal: a refused line is said and asked again, a move is played,
/// the end is printed.
#[test]
fn the_cli_takes_a_seat_from_standard_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let mut n = tradepact_client::negotiation::connect(&server.url())
            .await
            .unwrap();
        create_with_positions(&mut n, "admin").await
    });
    let mut child = std::process::Command::new(tradepact_tests::binary("tradepact"))
        .args([
            "seat",
            &id,
            "KOR",
            "--against",
            "US=conceder",
            "--rounds",
            "5",
        ])
        .args(["--negotiation-service", &server.url()])
        .env("TRADEPACT_TOKEN", "kor")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"offer autos=z,steel=a\noffer autos=c,steel=c\naccept\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("seat of KOR taken; parties US, KOR; 5 rounds"),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: invalid request: package: issue \"autos\" has no option \"z\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("KOR offers autos=c,steel=c (worth 0.961 to KOR)"),
        "{stdout}"
    );
    // The Conceder US gives way at once: (b, c), which Korea accepts.
    assert!(
        stdout.contains("agreed on autos=b,steel=c after 4 turns, worth 0.824 to you"),
        "{stdout}"
    );
}

/// One token holds at most 8 seats at once (`--max-seats-per-token`), and a seat that keeps
/// sending refused moves has its turn played as it joined after 16 of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_holds_eight_seats_and_a_turn_takes_sixteen_refused_moves() {
    use pb::take_seat_request::Message as In;
    use pb::take_seat_response::Message as M;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let mut n = tradepact_client::negotiation::connect(&server.url())
        .await
        .unwrap();
    let id = create_with_positions(&mut n, "admin").await;

    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(take(&mut n, "kor", join(&id, "KOR")).await.unwrap());
    }
    let refused = take(&mut n, "kor", join(&id, "KOR")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("\"kor\"") && refused.message().contains("8 seats"),
        "{refused:?}"
    );
    // Another token is not held back by it.
    let (_us, _) = take(&mut n, "us", join(&id, "US")).await.unwrap();
    // A seat left is a place again, once its game has ended.
    let (present, stream) = held.pop().unwrap();
    drop(present);
    all(stream).await;
    let (tx, mut stream) = take(&mut n, "kor", join(&id, "KOR")).await.unwrap();
    drop(held);

    // Moves for another turn, sent until the service stops asking: sixteen are refused, then
    // the turn is played as joined (a rejection of the standing offer, the default).
    let mut asked = 0;
    let mut played = None;
    while let Some(m) = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("the seat's stream moves on")
        .unwrap()
    {
        match m.message.unwrap() {
            M::YourTurn(t) => {
                asked += 1;
                assert!(asked <= 16, "asked again after 16 refusals");
                if asked > 1 {
                    assert!(t.refused.contains("turn 999"), "{t:?}");
                }
                tx.send(message(In::Move(pb::SeatMove {
                    turn: 999,
                    r#move: Some(pb::seat_move::Move::Reject(true)),
                })))
                .await
                .unwrap();
            }
            M::Turn(t) if t.party == "KOR" => {
                played = Some(t);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(asked, 16);
    let played = played.expect("the turn was played for the seat");
    assert!(played.rejected && played.timed_out, "{played:?}");
}
