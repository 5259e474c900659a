//! A negotiation with an outside seat: one party is played from outside (a person, another
//! program), the others by time-based strategies that know **only their own position**.
//!
//! Protocol: stacked alternating offers, as in [`crate::simulate`] — parties take turns in
//! order; on its turn a party accepts the standing offer, makes its own (which replaces it),
//! or, for the outside seat only, rejects it without a counter-offer (the standing offer is
//! withdrawn and the next party proposes afresh) or breaks off. An offer is agreed once every
//! other party has accepted it in turn; a round is one turn of every party; after the deadline
//! round the negotiation ends without agreement.
//!
//! The strategies cannot use the frontier (it needs the outside party's position, which they do
//! not have). A strategy with exponent `e` aims at `target(t) = best − (best − reservation) ·
//! t^(1/e)` of its own utility, `t` the normalised time, like the simulation's; it offers, among
//! the packages worth between its target and its target plus 2% of its range (or, where none
//! lies there, the least it values at or above its target), the one that shares the most
//! options with the outside seat's latest offer (the only thing it knows of the other side),
//! ties broken by a seeded generator. It accepts a standing offer worth at least what it would
//! offer next. Every package is valued once, at the start, so the space is bounded by
//! [`MAX_SEAT_OUTCOMES`].

use crate::position::Position;
use crate::rng::SplitMix64;
use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// Most outcomes a negotiation with an outside seat may have (each strategy holds every
/// package's utility: 12 bytes a package).
pub const MAX_SEAT_OUTCOMES: u64 = 1_000_000;

/// A move on a turn.
#[derive(Clone, Debug, PartialEq)]
pub enum Move {
    /// Proposes a package (replacing the standing offer).
    Offer(Package),
    /// Accepts the standing offer.
    Accept,
    /// Rejects the standing offer without proposing one (the outside seat only).
    Reject,
    /// Ends the negotiation without agreement, with a reason.
    BreakOff(String),
}

/// One turn played.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    /// Turn number (0-based).
    pub turn: u32,
    /// Round (1-based).
    pub round: u32,
    /// The acting party.
    pub party: usize,
    /// What it did.
    pub action: Move,
    /// Whether this turn completed an agreement.
    pub agreed: bool,
}

/// How the negotiation ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Ending {
    /// The agreed package, if any.
    pub agreement: Option<Package>,
    /// Turns played.
    pub turns: u32,
    /// Why it ended.
    pub reason: String,
}

/// A strategy playing one party from its own position.
struct OwnStrategy {
    position: Position,
    exponent: f64,
    reservation: i64,
    best: i64,
    /// Every package's utility to this party, ascending (utility, package number).
    sorted: Vec<(i64, u32)>,
}

/// A negotiation between an outside seat and strategies; drive it with [`SeatGame::to_move`],
/// [`SeatGame::play_strategy`] and [`SeatGame::play_seat`].
pub struct SeatGame {
    space: OutcomeSpace,
    /// The parties' names, for the ending's reason.
    names: Vec<String>,
    seat: usize,
    /// One per party; `None` for the seat.
    strategies: Vec<Option<OwnStrategy>>,
    deadline_rounds: u32,
    rng: SplitMix64,
    turn: u32,
    /// Standing offer: package, acceptors (its proposer first).
    standing: Option<(Package, Vec<usize>)>,
    seat_last_offer: Option<Package>,
    ending: Option<Ending>,
}

impl SeatGame {
    /// Sets up a game between `names`: `positions[i]` and `exponents[i]` for every party but
    /// `seat` (theirs are ignored). Fails on a space past [`MAX_SEAT_OUTCOMES`], a missing position, a
    /// non-positive exponent or a zero deadline.
    pub fn new(
        space: OutcomeSpace,
        names: Vec<String>,
        seat: usize,
        positions: &[Option<&Position>],
        exponents: &[Option<f64>],
        deadline_rounds: u32,
        seed: u64,
    ) -> Result<SeatGame> {
        let n = positions.len();
        if n < 2 || exponents.len() != n || names.len() != n || seat >= n {
            return Err(Error::invalid(
                "strategies",
                format!(
                    "one strategy for each of the {} other parties",
                    n.max(2) - 1
                ),
            ));
        }
        if deadline_rounds == 0 {
            return Err(Error::invalid("deadline_rounds", "must be at least 1"));
        }
        let size = space.size_exact().filter(|&s| s <= MAX_SEAT_OUTCOMES);
        if size.is_none() {
            return Err(Error::TooLarge(format!(
                "a negotiation with an outside seat values every package: at most {MAX_SEAT_OUTCOMES} outcomes, this one has {}",
                space.size()
            )));
        }
        let mut strategies = Vec::with_capacity(n);
        for party in 0..n {
            if party == seat {
                strategies.push(None);
                continue;
            }
            let exponent = exponents[party].unwrap_or(f64::NAN);
            if !(exponent.is_finite() && exponent > 0.0) {
                return Err(Error::invalid(
                    format!("strategies[{party}].exponent"),
                    format!("must be a positive number, got {exponent}"),
                ));
            }
            let position = positions[party].ok_or_else(|| {
                Error::illegal(format!(
                    "party {party} has no position for its strategy to play"
                ))
            })?;
            let mut sorted: Vec<(i64, u32)> = Vec::new();
            for (i, package) in space.packages().enumerate() {
                if i % 4096 == 0 {
                    crate::cancel::check()?;
                }
                sorted.push((position.utility_units(&package), i as u32));
            }
            sorted.sort_unstable();
            strategies.push(Some(OwnStrategy {
                position: position.clone(),
                exponent,
                reservation: position.reservation_units(),
                best: position.best_units(),
                sorted,
            }));
        }
        Ok(SeatGame {
            space,
            names,
            seat,
            strategies,
            deadline_rounds,
            rng: SplitMix64::new(seed),
            turn: 0,
            standing: None,
            seat_last_offer: None,
            ending: None,
        })
    }

    /// Whose turn it is and in which round; `None` once the game has ended (the deadline
    /// passing ends it here).
    pub fn to_move(&mut self) -> Option<(usize, u32)> {
        if self.ending.is_some() {
            return None;
        }
        let n = self.strategies.len() as u32;
        let round = self.turn / n + 1;
        if round > self.deadline_rounds {
            self.ending = Some(Ending {
                agreement: None,
                turns: self.turn,
                reason: format!(
                    "no agreement within the deadline of {} rounds",
                    self.deadline_rounds
                ),
            });
            return None;
        }
        Some(((self.turn % n) as usize, round))
    }

    /// The standing offer and who has accepted it (its proposer first).
    pub fn standing(&self) -> Option<(&Package, &[usize])> {
        self.standing.as_ref().map(|(p, a)| (p, a.as_slice()))
    }

    /// How it ended, once it has.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }

    /// The deadline in rounds.
    pub fn deadline_rounds(&self) -> u32 {
        self.deadline_rounds
    }

    /// Turns played so far (the number of the next turn).
    pub fn turns_played(&self) -> u32 {
        self.turn
    }

    /// The outcome space.
    pub fn space(&self) -> &OutcomeSpace {
        &self.space
    }

    /// Plays the turn of the strategy whose turn it is; `None` if it is the seat's turn or the
    /// game has ended.
    pub fn play_strategy(&mut self) -> Option<Turn> {
        let (party, round) = self.to_move()?;
        if party == self.seat {
            return None;
        }
        let t = if self.deadline_rounds <= 1 {
            1.0
        } else {
            f64::from(round - 1) / f64::from(self.deadline_rounds - 1)
        };
        let proposal = self.proposal(party, t);
        let s = self.strategies[party].as_ref().expect("a strategy's party");
        let standing_worth = self
            .standing
            .as_ref()
            .filter(|(_, acceptors)| !acceptors.contains(&party))
            .map(|(p, _)| s.position.utility_units(p));
        let would_offer = s.position.utility_units(&proposal);
        let action = match standing_worth {
            Some(u) if u >= would_offer && u >= s.reservation => Move::Accept,
            _ => Move::Offer(proposal),
        };
        Some(self.apply(party, round, action))
    }

    /// Plays the seat's move; fails (and plays nothing) if it is not the seat's turn, the
    /// package is not in the space, or there is nothing to accept.
    pub fn play_seat(&mut self, action: Move) -> Result<Turn> {
        let Some((party, round)) = self.to_move() else {
            return Err(Error::illegal("the negotiation has ended"));
        };
        if party != self.seat {
            return Err(Error::illegal("it is not the outside seat's turn"));
        }
        match &action {
            Move::Offer(p) => {
                self.space.check(p)?;
                self.seat_last_offer = Some(p.clone());
            }
            Move::Accept | Move::Reject if self.standing.is_none() => {
                return Err(Error::illegal(
                    "there is no standing offer: make one, or break off",
                ))
            }
            _ => {}
        }
        Ok(self.apply(party, round, action))
    }

    fn apply(&mut self, party: usize, round: u32, action: Move) -> Turn {
        let turn = self.turn;
        self.turn += 1;
        let mut agreed = false;
        match &action {
            Move::Offer(p) => self.standing = Some((p.clone(), vec![party])),
            Move::Accept => {
                let (package, acceptors) = self.standing.as_mut().expect("checked");
                acceptors.push(party);
                if acceptors.len() == self.strategies.len() {
                    agreed = true;
                    self.ending = Some(Ending {
                        agreement: Some(package.clone()),
                        turns: self.turn,
                        reason: format!("agreed in round {round}"),
                    });
                }
            }
            Move::Reject => self.standing = None,
            Move::BreakOff(reason) => {
                self.ending = Some(Ending {
                    agreement: None,
                    turns: self.turn,
                    reason: format!("{} broke off: {reason}", self.names[party]),
                })
            }
        }
        Turn {
            turn,
            round,
            party,
            action,
            agreed,
        }
    }

    /// What `party`'s strategy would offer at normalised time `t`.
    fn proposal(&mut self, party: usize, t: f64) -> Package {
        let s = self.strategies[party].as_ref().expect("a strategy's party");
        let span = (s.best - s.reservation).max(0);
        let target = (s.best - (span as f64 * t.powf(1.0 / s.exponent)).round() as i64)
            .max(s.reservation)
            .min(s.best);
        // The least utility at or above the target, then the band above it.
        let from = s.sorted.partition_point(|&(u, _)| u < target);
        let low = s.sorted[from].0;
        let band = (span / 50).max(1);
        let to = s.sorted.partition_point(|&(u, _)| u <= low + band);
        let window = &s.sorted[from..to];
        let similarity = |number: u32| match &self.seat_last_offer {
            Some(theirs) => {
                let ours = self.space.package_at(u64::from(number));
                (ours.0.iter().zip(&theirs.0))
                    .filter(|(a, b)| a == b)
                    .count()
            }
            None => 0,
        };
        let most = window
            .iter()
            .map(|&(_, i)| similarity(i))
            .max()
            .unwrap_or(0);
        let tied: Vec<u32> = (window.iter())
            .map(|&(_, i)| i)
            .filter(|&i| similarity(i) == most)
            .collect();
        let pick = tied[self.rng.below(tied.len() as u64) as usize];
        self.space.package_at(u64::from(pick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::PositionSpec;
    use crate::space::{Issue, OptionDef};

    fn space() -> OutcomeSpace {
        let issue = |id: &str| Issue {
            id: id.into(),
            label: id.into(),
            options: (0..4)
                .map(|k| OptionDef {
                    id: format!("o{k}"),
                    label: format!("o{k}"),
                })
                .collect(),
        };
        OutcomeSpace::new(vec![issue("a"), issue("b")]).unwrap()
    }

    fn names() -> Vec<String> {
        vec!["us".into(), "them".into()]
    }

    fn position(space: &OutcomeSpace, rising: bool, reservation: f64) -> Position {
        let values = |_: &str| {
            (0..4)
                .map(|k| {
                    let v = if rising {
                        k as f64 / 3.0
                    } else {
                        1.0 - k as f64 / 3.0
                    };
                    (format!("o{k}"), v)
                })
                .collect()
        };
        let spec = PositionSpec {
            weights: [("a".into(), 0.5), ("b".into(), 0.5)].into(),
            values: [("a".into(), values("a")), ("b".into(), values("b"))].into(),
            reservation,
        };
        Position::new(space, &spec).unwrap()
    }

    #[test]
    fn a_strategy_opens_with_its_best_and_accepts_what_it_would_offer() {
        let space = space();
        let us = position(&space, true, 0.2);
        let mut game = SeatGame::new(
            space.clone(),
            names(),
            1,
            &[Some(&us), None],
            &[Some(1.0), None],
            4,
            7,
        )
        .unwrap();
        // Round 1: its best package (o3, o3).
        let first = game.play_strategy().unwrap();
        assert_eq!(first.action, Move::Offer(Package(vec![3, 3])));
        assert_eq!(game.play_strategy(), None, "the seat's turn");
        // The seat counters with the strategy's worst; it concedes linearly and does not accept.
        game.play_seat(Move::Offer(Package(vec![0, 0]))).unwrap();
        let second = game.play_strategy().unwrap();
        let Move::Offer(p) = &second.action else {
            panic!("{second:?}")
        };
        let u = us.utility(p);
        assert!((1.0 - (0.8 / 3.0) - 1e-9..1.0).contains(&u), "{u}");
        // An offer worth more to it than its next target is accepted.
        game.play_seat(Move::Offer(Package(vec![3, 2]))).unwrap();
        let third = game.play_strategy().unwrap();
        assert_eq!(third.action, Move::Accept);
        assert!(third.agreed);
        assert_eq!(game.ending().unwrap().agreement, Some(Package(vec![3, 2])));
    }

    #[test]
    fn offers_lean_towards_the_seats_last_offer_and_never_below_the_reservation() {
        let space = space();
        let us = position(&space, true, 0.5);
        let mut game = SeatGame::new(
            space.clone(),
            names(),
            1,
            &[Some(&us), None],
            &[Some(5.0), None],
            3,
            1,
        )
        .unwrap();
        game.play_strategy().unwrap();
        game.play_seat(Move::Offer(Package(vec![0, 3]))).unwrap();
        // Conceder at t = 0.5: target near its reservation; among the packages in its band it
        // keeps the seat's option on issue b where it can.
        let Move::Offer(p) = game.play_strategy().unwrap().action else {
            panic!()
        };
        assert!(us.utility(&p) >= 0.5 - 1e-9, "{p:?}");
        assert_eq!(p.0[1], 3, "{p:?}");
        // The seat rejects without a counter-offer, then the strategy proposes afresh; at the
        // deadline nothing is agreed.
        game.play_seat(Move::Reject).unwrap();
        assert!(game.standing().is_none());
        while let Some(turn) = game.play_strategy() {
            assert!(matches!(turn.action, Move::Offer(_)), "{turn:?}");
            if game.to_move().is_some() {
                game.play_seat(Move::Reject).unwrap();
            }
        }
        let end = game.ending().unwrap();
        assert_eq!(end.agreement, None);
        assert!(
            end.reason.contains("deadline of 3 rounds"),
            "{}",
            end.reason
        );
    }

    #[test]
    fn the_seat_cannot_play_out_of_turn_accept_nothing_or_offer_outside_the_space() {
        let space = space();
        let us = position(&space, true, 0.0);
        let mut game = SeatGame::new(
            space.clone(),
            names(),
            0,
            &[None, Some(&us)],
            &[None, Some(1.0)],
            2,
            1,
        )
        .unwrap();
        assert!(game.play_strategy().is_none(), "the seat opens");
        assert!(game.play_seat(Move::Accept).is_err());
        assert!(game.play_seat(Move::Offer(Package(vec![9, 0]))).is_err());
        game.play_seat(Move::BreakOff("no mandate".into())).unwrap();
        assert_eq!(game.ending().unwrap().reason, "us broke off: no mandate");
        assert!(game.play_seat(Move::Accept).is_err());
        let unplayable = SeatGame::new(
            space.clone(),
            names(),
            0,
            &[None, None],
            &[None, Some(1.0)],
            2,
            1,
        );
        assert!(unplayable.is_err(), "a strategy needs its position");
    }
}
