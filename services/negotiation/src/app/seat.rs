//! `TakeSeat`'s work: an outside agent holds one party's seat, the service's time-based
//! strategies the others, each from its own position only ([`tradepact_bargain::seat`]).
//!
//! Bounds: at most [`MAX_SEATS`] seats at once, and at most `--max-seats-per-token` (default
//! [`DEFAULT_SEATS_PER_TOKEN`]) held by one token (`RESOURCE_EXHAUSTED` past them); at most
//! [`MAX_REFUSED_MOVES`] refused moves a turn (then the turn is played as the join chose); the
//! strategies' set-up (valuing every package) is a heavy call; their turns run on the
//! blocking pool; every turn of the seat waits at most its turn time, so a game lasts at most
//! the deadline's rounds of turns. It ends when the seat leaves (its stream closes: a
//! break-off), when its reader goes away, and at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};
use tradepact_bargain::seat::{Ending, Move, SeatGame, Turn};
use tradepact_bargain::{OutcomeSpace, Package, Position};
use tradepact_model::{Failure, Outcome};

use super::{failure, Negotiations, Published};

/// Most seats taken at once, across negotiations.
pub const MAX_SEATS: usize = 64;
/// Most seats one token holds at once, unless configured.
pub const DEFAULT_SEATS_PER_TOKEN: usize = 8;
/// Moves of the seat refused in one turn before the turn is played as the join chose.
pub const MAX_REFUSED_MOVES: u32 = 16;

/// Seats held, by token name.
type ByToken = Arc<Mutex<HashMap<String, usize>>>;

/// The seats taken, in all and by token.
pub struct Seats {
    all: Arc<tokio::sync::Semaphore>,
    by_token: ByToken,
    per_token: usize,
}

impl Seats {
    /// [`MAX_SEATS`] seats, `per_token` of them (at least one) for one token.
    pub fn new(per_token: usize) -> Seats {
        Seats {
            all: Arc::new(tokio::sync::Semaphore::new(MAX_SEATS)),
            by_token: Arc::default(),
            per_token: per_token.max(1),
        }
    }

    /// A seat for `token` (`None`: authentication off, no per-token count).
    fn take(&self, token: Option<&str>) -> Outcome<SeatPlace> {
        let permit = self.all.clone().try_acquire_owned().map_err(|_| {
            Failure::ResourceExhausted(format!(
                "{MAX_SEATS} seats are taken already; try again later"
            ))
        })?;
        let Some(token) = token else {
            return Ok(SeatPlace {
                _permit: permit,
                token: None,
            });
        };
        let mut held = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(token.to_owned()).or_default();
        if *count >= self.per_token {
            return Err(Failure::ResourceExhausted(format!(
                "token {:?} holds {} seats already, its most at once (--max-seats-per-token); leave one first",
                tradepact_rpc::status::truncated(token),
                self.per_token
            )));
        }
        *count += 1;
        Ok(SeatPlace {
            _permit: permit,
            token: Some((token.to_owned(), self.by_token.clone())),
        })
    }
}

/// A seat's place among the seats taken, given back when the game ends.
struct SeatPlace {
    _permit: OwnedSemaphorePermit,
    token: Option<(String, ByToken)>,
}

impl Drop for SeatPlace {
    fn drop(&mut self) {
        if let Some((token, by_token)) = &self.token {
            let mut held = by_token.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = held.get_mut(token) {
                *count -= 1;
                if *count == 0 {
                    held.remove(token);
                }
            }
        }
    }
}
/// A turn's time when the seat does not say.
pub const DEFAULT_TURN: Duration = Duration::from_secs(60);
/// The longest turn time a seat may ask for.
pub const MAX_TURN: Duration = Duration::from_secs(3600);
/// The exponent of a strategy the seat does not name (Boulware).
pub const DEFAULT_EXPONENT: f64 = 0.2;

/// What a turn not answered in time becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// A rejection of the standing offer (a pass when none stands).
    Reject,
    /// A break-off.
    BreakOff,
}

/// How a seat is taken.
pub struct SeatRequest {
    /// The seat's party.
    pub party: String,
    /// Each other party's exponent, by name (missing: [`DEFAULT_EXPONENT`]).
    pub exponents: HashMap<String, f64>,
    /// Rounds (0: the negotiation's deadline).
    pub deadline_rounds: u32,
    /// Time of each of the seat's turns.
    pub turn: Duration,
    /// What a turn not answered in time becomes.
    pub on_timeout: OnTimeout,
    /// Seed of the strategies' tie-breaking.
    pub seed: u64,
    /// The name of the token taking the seat (`None` with authentication off).
    pub token: Option<String>,
}

/// What the seat is told, in order.
pub enum SeatEvent {
    /// The seat is taken.
    Taken {
        /// Rounds until the deadline.
        deadline_rounds: u32,
    },
    /// A turn was played (`true`: the service played it for the seat, its time having passed).
    Played(Turn, bool),
    /// The seat's turn: what stands, who accepted it, until when, and why the previous move
    /// for this turn was refused (if it was).
    YourTurn {
        /// Turn number.
        turn: u32,
        /// Round.
        round: u32,
        /// The standing offer and its acceptors (proposer first).
        standing: Option<(Package, Vec<usize>)>,
        /// When the turn's time runs out.
        deadline: SystemTime,
        /// Why the previous move for this turn was refused.
        refused: Option<String>,
    },
    /// The end.
    Ended(Ending),
}

/// A seat being played: the space and parties (to describe moves) and the seat's own position
/// (if it has one).
pub struct Seat {
    /// The outcome space.
    pub space: OutcomeSpace,
    /// The parties, in turn order.
    pub parties: Vec<String>,
    /// The seat's party's index.
    pub seat: usize,
    /// The seat's own position, to report its utilities.
    pub own: Option<Position>,
}

/// What the seat is told, in order; a failure ends it.
pub type SeatEvents = mpsc::Receiver<Outcome<SeatEvent>>;

/// A move of the seat: the turn it answers and the move, or why it does not read.
pub type SeatInput = (u32, Result<Move, String>);

impl Negotiations {
    /// Takes `req.party`'s seat in negotiation `id` (the caller's right to act for it is
    /// checked by the handler); `moves` are the seat's moves, closed when it leaves.
    pub async fn take_seat(
        self: &Arc<Self>,
        id: &str,
        req: SeatRequest,
        moves: mpsc::Receiver<Outcome<SeatInput>>,
    ) -> Outcome<(Seat, SeatEvents)> {
        let place = self.seats.take(req.token.as_deref())?;
        let (_, entry) = self.entry(id).await?;
        let entry = entry.lock().await;
        let n = &entry.negotiation;
        let seat = n
            .parties
            .iter()
            .position(|p| *p == req.party)
            .ok_or_else(|| Failure::invalid("join.party", "is not a party to this negotiation"))?;
        for name in req.exponents.keys() {
            if !n.parties.contains(name) || *name == req.party {
                return Err(Failure::invalid(
                    format!("join.exponents.{}", tradepact_rpc::status::truncated(name)),
                    "names no other party of this negotiation",
                ));
            }
        }
        let missing: Vec<&str> = (n.parties.iter().enumerate())
            .filter(|&(i, _)| i != seat && n.positions[i].is_none())
            .map(|(_, p)| p.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Failure::FailedPrecondition(format!(
                "every other party needs a position for its strategy to play; missing: {}",
                tradepact_rpc::status::truncated(&missing.join(", "))
            )));
        }
        let deadline = match req.deadline_rounds {
            0 => n.deadline_rounds,
            d => d,
        };
        let exponents: Vec<Option<f64>> = (n.parties.iter().enumerate())
            .map(|(i, p)| {
                (i != seat).then(|| req.exponents.get(p).copied().unwrap_or(DEFAULT_EXPONENT))
            })
            .collect();
        let positions: Vec<Option<Position>> = (n.positions.iter().enumerate())
            .map(|(i, p)| if i == seat { None } else { p.clone() })
            .collect();
        let (space, parties) = (n.space.clone(), n.parties.clone());
        let own = n.positions[seat].clone();
        drop(entry);
        let (game_space, names, seed) = (space.clone(), parties.clone(), req.seed);
        let game = self
            .heavy
            .run("a seat's strategies", move || {
                let refs: Vec<Option<&Position>> = positions.iter().map(Option::as_ref).collect();
                SeatGame::new(game_space, names, seat, &refs, &exponents, deadline, seed)
            })
            .await?;
        let (tx, events) = mpsc::channel(16);
        let table = Table {
            game: Arc::new(Mutex::new(game)),
            seat,
            turn: req.turn,
            on_timeout: req.on_timeout,
            moves,
            tx,
            shutdown: self.published.subscribe(),
            _place: place,
        };
        tokio::spawn(table.play());
        let seat = Seat {
            space,
            parties,
            seat,
            own,
        };
        Ok((seat, events))
    }
}

/// The game and the seat's channels, played in a task of its own.
struct Table {
    /// Locked briefly, between awaits; the strategies' turns lock it on the blocking pool.
    game: Arc<Mutex<SeatGame>>,
    seat: usize,
    turn: Duration,
    on_timeout: OnTimeout,
    moves: mpsc::Receiver<Outcome<SeatInput>>,
    tx: mpsc::Sender<Outcome<SeatEvent>>,
    shutdown: broadcast::Receiver<Published>,
    _place: SeatPlace,
}

/// Why the table stopped before the game's end: nothing more is sent.
struct Gone;

impl Table {
    async fn play(mut self) {
        let _ = self.run().await;
    }

    async fn send(&self, event: Outcome<SeatEvent>) -> Result<(), Gone> {
        self.tx.send(event).await.map_err(|_| Gone)
    }

    async fn run(&mut self) -> Result<(), Gone> {
        let deadline_rounds = self.game().deadline_rounds();
        self.send(Ok(SeatEvent::Taken { deadline_rounds })).await?;
        loop {
            self.strategies_play().await?;
            let to_move = self.game().to_move();
            let Some((party, round)) = to_move else {
                break;
            };
            debug_assert_eq!(party, self.seat);
            let (turn, timed_out) = match self.seat_turn(round).await? {
                Answer::Played(turn) => (Ok(turn), false),
                answer @ (Answer::TimedOut | Answer::Refused) => {
                    let why = match answer {
                        Answer::Refused => {
                            format!("{MAX_REFUSED_MOVES} moves of the seat were refused this turn")
                        }
                        _ => "the seat's time for its turn ran out".to_owned(),
                    };
                    let standing = self.game().standing().is_some();
                    let mv = match (self.on_timeout, standing) {
                        (OnTimeout::Reject, true) => Move::Reject,
                        // Nothing stands: a pass is an offer of nothing, which the protocol
                        // has not; the turn ends the game only if the seat asked for that.
                        (OnTimeout::Reject, false) => {
                            Move::BreakOff(format!("{why}, with no offer standing"))
                        }
                        (OnTimeout::BreakOff, _) => Move::BreakOff(why),
                    };
                    (self.game().play_seat(mv), true)
                }
                Answer::Left => {
                    let left = Move::BreakOff("the seat left the negotiation".into());
                    (self.game().play_seat(left), false)
                }
            };
            match turn {
                Ok(t) => self.send(Ok(SeatEvent::Played(t, timed_out))).await?,
                Err(e) => return self.send(Err(failure(e))).await,
            }
        }
        let ending = self.game().ending().cloned();
        if let Some(ending) = ending {
            self.send(Ok(SeatEvent::Ended(ending))).await?;
        }
        Ok(())
    }

    /// The game, between awaits.
    fn game(&self) -> std::sync::MutexGuard<'_, SeatGame> {
        self.game.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The strategies play until the seat's turn or the end, off the async workers.
    async fn strategies_play(&mut self) -> Result<(), Gone> {
        let game = self.game.clone();
        let played = tokio::task::spawn_blocking(move || {
            let mut game = game.lock().unwrap_or_else(|e| e.into_inner());
            std::iter::from_fn(|| game.play_strategy()).collect::<Vec<Turn>>()
        })
        .await;
        let Ok(turns) = played else {
            let _ = self
                .send(Err(Failure::internal("a seat's strategies", &"panicked")))
                .await;
            return Err(Gone);
        };
        for t in turns {
            self.send(Ok(SeatEvent::Played(t, false))).await?;
        }
        Ok(())
    }

    /// Tells the seat it is its turn and plays its move (a refused move is said, and the same
    /// turn asked again, within the same time).
    async fn seat_turn(&mut self, round: u32) -> Result<Answer, Gone> {
        let started = tokio::time::Instant::now();
        let deadline = SystemTime::now() + self.turn;
        let expected = self.turn_number();
        let mut refused = None;
        let mut refusals = 0;
        loop {
            if refused.is_some() {
                refusals += 1;
                if refusals >= MAX_REFUSED_MOVES {
                    return Ok(Answer::Refused);
                }
            }
            let standing = (self.game().standing()).map(|(p, a)| (p.clone(), a.to_vec()));
            let ask = SeatEvent::YourTurn {
                turn: expected,
                round,
                standing,
                deadline,
                refused: refused.take(),
            };
            self.send(Ok(ask)).await?;
            let input = tokio::select! {
                input = self.moves.recv() => input,
                _ = tokio::time::sleep_until(started + self.turn) => return Ok(Answer::TimedOut),
                _ = self.tx.closed() => return Err(Gone),
                _ = shut_down(&mut self.shutdown) => {
                    let _ = self.send(Err(Failure::Unavailable(
                        "the server is shutting down".to_owned(),
                    ))).await;
                    return Err(Gone);
                }
            };
            match input {
                None => return Ok(Answer::Left),
                Some(Err(f)) => {
                    let _ = self.send(Err(f)).await;
                    return Err(Gone);
                }
                Some(Ok((turn, _))) if turn != expected => {
                    refused = Some(format!(
                        "the move answers turn {turn}; this is turn {expected}"
                    ));
                }
                Some(Ok((_, Err(why)))) => refused = Some(why),
                // The game refuses a move it cannot take, and plays nothing.
                Some(Ok((_, Ok(mv)))) => match self.game().play_seat(mv) {
                    Ok(turn) => return Ok(Answer::Played(turn)),
                    Err(e) => refused = Some(e.to_string()),
                },
            }
        }
    }

    fn turn_number(&self) -> u32 {
        self.game().turns_played()
    }
}

/// What the seat did with its turn.
enum Answer {
    Played(Turn),
    TimedOut,
    /// [`MAX_REFUSED_MOVES`] moves were refused.
    Refused,
    Left,
}

/// Resolves when the server begins to shut down.
async fn shut_down(rx: &mut broadcast::Receiver<Published>) {
    loop {
        match rx.recv().await {
            Ok(Published::Shutdown) | Err(broadcast::error::RecvError::Closed) => return,
            _ => {}
        }
    }
}
