//! The negotiation as an event-sourced state machine.
//!
//! Commands are checked against the current state and turned into [`Event`]s
//! ([`Negotiation::decide`]); the state is a fold of events ([`Negotiation::apply`],
//! [`Negotiation::replay`]). Events are serde-serialisable, so a service can append them to
//! a log and rebuild the state by replaying it.
//!
//! Rules, whichever [`TurnRule`] the negotiation was created with:
//! - an offer stays open until every other party accepts it (then the negotiation is
//!   `Agreed`), one rejects it, or the next offer supersedes it;
//! - a party cannot respond to its own offer, nor twice to one offer;
//! - any party may break off while the negotiation is open.
//!
//! Under [`TurnRule::OffersInOrder`] (the default, and the rule of every log written before
//! there was a choice), offers go round in party order: offer `k` is made by party `k mod n`
//! in round `k / n + 1`; responses come in any order; when the last offer the deadline allows
//! is rejected, the deadline is reached and the negotiation is `BrokenOff`.
//!
//! Under [`TurnRule::Stacked`] (stacked alternating offers, the protocol of the simulations and
//! of GENIUS), turns go round in party order, turn `t` being party `t mod n`'s in round
//! `t / n + 1`: on its turn a party accepts the open offer, rejects it, or makes its own (which
//! supersedes it); nobody acts out of turn (except to break off). An offer is agreed when the
//! other parties have accepted it on their turns, one after the other. When the deadline
//! round's last turn passes without agreement, the deadline is reached.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::{self, Analysis};
use crate::position::{Position, PositionSpec};
use crate::space::{Issue, OutcomeSpace, Package};
use crate::{Error, Result};

/// Most parties in one negotiation.
pub const MAX_PARTIES: usize = 16;
/// Most rounds a deadline may set.
pub const MAX_ROUNDS: u32 = 10_000;
/// Most bytes of a title or an agreement's name.
pub const MAX_TITLE_BYTES: usize = 256;
/// Most bytes of a party's name.
pub const MAX_PARTY_BYTES: usize = 64;

/// Where a negotiation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Offers may be made.
    Open,
    /// Every party accepted an offer.
    Agreed,
    /// A party broke off, or the deadline passed.
    BrokenOff,
}

/// Who may act when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnRule {
    /// Offers go round in party order; responses come in any order.
    #[default]
    OffersInOrder,
    /// Stacked alternating offers: turns go round in party order; on its turn a party
    /// accepts, rejects or counter-offers.
    Stacked,
}

/// How an offer looked when it was made, for parties whose positions were all known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferEvaluation {
    /// Utility of every party, in party order.
    pub utilities: Vec<f64>,
    /// Drop in the proposer's utility from its previous offer (`None` for its first).
    pub concession: Option<f64>,
    /// Whether the package is on the Pareto frontier of rational outcomes.
    pub pareto_optimal: bool,
    /// Distance in utility space to the nearest Nash point (`None` when there is none).
    pub distance_to_nash: Option<f64>,
}

/// Something that happened to a negotiation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The negotiation was created.
    Created {
        /// Short title.
        title: String,
        /// The agreement negotiated (e.g. "KORUS FTA").
        agreement: String,
        /// Party names, in turn order.
        parties: Vec<String>,
        /// Issues and options.
        issues: Vec<Issue>,
        /// Rounds allowed.
        deadline_rounds: u32,
        /// Who may act when (logs written before there was a choice: offers in order).
        #[serde(default)]
        turn_rule: TurnRule,
    },
    /// A party's position was set (or replaced).
    PositionSet {
        /// The party.
        party: String,
        /// Its position.
        position: PositionSpec,
    },
    /// A party proposed a package.
    OfferMade {
        /// The proposer.
        party: String,
        /// The package.
        package: Package,
        /// Its evaluation when every position was known.
        evaluation: Option<OfferEvaluation>,
    },
    /// A party accepted the open offer.
    OfferAccepted {
        /// The party.
        party: String,
        /// Index of the offer.
        offer: u32,
    },
    /// A party rejected the open offer.
    OfferRejected {
        /// The party.
        party: String,
        /// Index of the offer.
        offer: u32,
    },
    /// Every party accepted `offer`.
    Agreed {
        /// Index of the agreed offer.
        offer: u32,
    },
    /// A party broke off.
    BrokenOff {
        /// The party.
        party: String,
        /// Why, in its words.
        reason: String,
    },
    /// The last offer the deadline allowed was rejected.
    DeadlineReached,
}

/// An offer as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// Index in the negotiation (0-based).
    pub id: u32,
    /// Round it was made in (1-based).
    pub round: u32,
    /// Index of the proposer.
    pub proposer: usize,
    /// The package.
    pub package: Package,
    /// Its evaluation, if every position was known.
    pub evaluation: Option<OfferEvaluation>,
    /// Parties that accepted it.
    pub accepted_by: Vec<usize>,
    /// Party that rejected it, if one did.
    pub rejected_by: Option<usize>,
}

/// A command: what a party wants to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Set a party's position.
    SetPosition {
        /// The party.
        party: String,
        /// The position.
        position: PositionSpec,
    },
    /// Propose a package.
    Offer {
        /// The proposer.
        party: String,
        /// The package.
        package: Package,
    },
    /// Accept or reject the open offer.
    Respond {
        /// The responding party.
        party: String,
        /// The offer responded to (must be the open one).
        offer: u32,
        /// Accept (true) or reject.
        accept: bool,
    },
    /// Leave the negotiation.
    BreakOff {
        /// The party.
        party: String,
        /// Why.
        reason: String,
    },
}

/// The state of a negotiation: a fold over its events.
#[derive(Clone, Debug)]
pub struct Negotiation {
    /// Title.
    pub title: String,
    /// The agreement negotiated.
    pub agreement: String,
    /// Party names in turn order.
    pub parties: Vec<String>,
    /// The outcome space.
    pub space: OutcomeSpace,
    /// Rounds allowed.
    pub deadline_rounds: u32,
    /// Who may act when.
    pub turn_rule: TurnRule,
    /// Turns taken (offers and responses; counted under [`TurnRule::Stacked`] only).
    pub turns: u32,
    /// Where it stands.
    pub status: Status,
    /// Validated positions, by party index.
    pub positions: Vec<Option<Position>>,
    /// Offers in order.
    pub offers: Vec<Offer>,
    /// The agreed offer, once agreed.
    pub agreed: Option<u32>,
    /// Why it ended, once broken off.
    pub ended_because: Option<String>,
    /// Events applied so far.
    pub version: u64,
    /// The analysis of the current positions: `Some(None)` when it is beyond the limits.
    analysis: Option<Option<Arc<Analysis>>>,
}

impl Negotiation {
    /// Checks a creation and returns its event.
    pub fn create(
        title: &str,
        agreement: &str,
        parties: Vec<String>,
        issues: Vec<Issue>,
        deadline_rounds: u32,
        turn_rule: TurnRule,
    ) -> Result<Event> {
        if parties.len() < 2 || parties.len() > MAX_PARTIES {
            return Err(Error::invalid(
                "parties",
                format!(
                    "a negotiation has 2 to {MAX_PARTIES} parties, got {}",
                    parties.len()
                ),
            ));
        }
        for (field, text) in [("title", title), ("agreement", agreement)] {
            if text.len() > MAX_TITLE_BYTES {
                return Err(Error::invalid(
                    field,
                    format!("at most {MAX_TITLE_BYTES} bytes, got {}", text.len()),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in parties.iter().enumerate() {
            if p.len() > MAX_PARTY_BYTES {
                return Err(Error::invalid(
                    format!("parties[{i}]"),
                    format!("at most {MAX_PARTY_BYTES} bytes, got {}", p.len()),
                ));
            }
            if p.trim().is_empty() || !seen.insert(p.as_str()) {
                return Err(Error::invalid(
                    format!("parties[{i}]"),
                    "party names must be non-empty and distinct",
                ));
            }
        }
        if deadline_rounds == 0 || deadline_rounds > MAX_ROUNDS {
            return Err(Error::invalid(
                "deadline_rounds",
                format!("must be between 1 and {MAX_ROUNDS}, got {deadline_rounds}"),
            ));
        }
        OutcomeSpace::new(issues.clone())?;
        Ok(Event::Created {
            title: title.to_owned(),
            agreement: agreement.to_owned(),
            parties,
            issues,
            deadline_rounds,
            turn_rule,
        })
    }

    /// Rebuilds a negotiation from its events, checking each.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Negotiation> {
        let mut events = events.into_iter();
        let mut n = match events.next() {
            Some(Event::Created {
                title,
                agreement,
                parties,
                issues,
                deadline_rounds,
                turn_rule,
            }) => Negotiation {
                title: title.clone(),
                agreement: agreement.clone(),
                positions: vec![None; parties.len()],
                parties: parties.clone(),
                space: OutcomeSpace::new(issues.clone())?,
                deadline_rounds: *deadline_rounds,
                turn_rule: *turn_rule,
                turns: 0,
                status: Status::Open,
                offers: Vec::new(),
                agreed: None,
                ended_because: None,
                version: 1,
                analysis: None,
            },
            _ => {
                return Err(Error::illegal(
                    "a negotiation's log starts with its creation",
                ))
            }
        };
        for e in events {
            n.apply(e)?;
        }
        Ok(n)
    }

    fn party(&self, name: &str) -> Result<usize> {
        self.parties.iter().position(|p| p == name).ok_or_else(|| {
            Error::invalid(
                "party",
                format!("{name:?} is not a party to this negotiation"),
            )
        })
    }

    fn require_open(&self) -> Result<()> {
        match self.status {
            Status::Open => Ok(()),
            Status::Agreed => Err(Error::illegal("the negotiation is already agreed")),
            Status::BrokenOff => Err(Error::illegal("the negotiation was broken off")),
        }
    }

    /// The party whose turn it is: to offer (offers in order), or to accept, reject or
    /// counter-offer (stacked).
    pub fn next_proposer(&self) -> usize {
        self.moves() % self.parties.len()
    }

    /// Round of the next offer (offers in order) or turn (stacked).
    pub fn next_round(&self) -> u32 {
        (self.moves() / self.parties.len()) as u32 + 1
    }

    /// What the turn order counts: offers (offers in order) or turns (stacked).
    fn moves(&self) -> usize {
        match self.turn_rule {
            TurnRule::OffersInOrder => self.offers.len(),
            TurnRule::Stacked => self.turns as usize,
        }
    }

    /// Under the stacked rule, refuses a response by a party whose turn it is not.
    fn require_turn(&self, p: usize) -> Result<()> {
        let turn = self.next_proposer();
        if self.turn_rule == TurnRule::Stacked && p != turn {
            return Err(Error::illegal(format!(
                "it is {}'s turn, not {}'s",
                self.parties[turn], self.parties[p]
            )));
        }
        Ok(())
    }

    /// Whether the move being decided takes the deadline's last turn (stacked): if it does
    /// not agree, the deadline is reached with it.
    fn last_turn(&self) -> bool {
        self.turn_rule == TurnRule::Stacked
            && self.turns as usize + 1 >= self.deadline_rounds as usize * self.parties.len()
    }

    /// The open offer (the latest, if nobody rejected it and it is not agreed).
    pub fn open_offer(&self) -> Option<&Offer> {
        match (self.status, self.offers.last()) {
            (Status::Open, Some(o)) if o.rejected_by.is_none() => Some(o),
            _ => None,
        }
    }

    /// The positions, if every party has one.
    pub fn all_positions(&self) -> Option<Vec<&Position>> {
        self.positions.iter().map(Option::as_ref).collect()
    }

    /// The frontier and solutions for the current positions, cached (`None` until every
    /// party has a position, or when the frontier is beyond the limits).
    pub fn analysis(&mut self) -> Option<Arc<Analysis>> {
        if self.analysis.is_none() {
            let positions = self.all_positions()?;
            let a = Self::solve_for_offers(&self.space, &positions);
            if matches!(a, Err(Error::Cancelled(_))) {
                return None;
            }
            self.analysis = Some(a.ok().map(Arc::new));
        }
        self.analysis.clone().flatten()
    }

    /// Whether [`Negotiation::analysis`] would compute (every party has a position and no
    /// analysis of them is kept).
    pub fn needs_analysis(&self) -> bool {
        self.analysis.is_none() && self.all_positions().is_some()
    }

    /// What offers are evaluated against: the frontier and solutions
    /// ([`analysis::PACKAGES_PER_POINT`] packages a point). A service computes it on a
    /// snapshot, off its locks, and gives it back with [`Negotiation::install_analysis`];
    /// `Err(TooLarge)` is kept as "no evaluation".
    pub fn solve_for_offers(space: &OutcomeSpace, positions: &[&Position]) -> Result<Analysis> {
        analysis::solve(space, positions, analysis::PACKAGES_PER_POINT)
    }

    /// The whole analysis (frontier, solutions and ZOPA) of a snapshot, as
    /// `AnalyzeNegotiation` answers it; installed, it also serves the offers' evaluations.
    pub fn analyze_snapshot(space: &OutcomeSpace, positions: &[&Position]) -> Result<Analysis> {
        analysis::analyze(
            space,
            positions,
            analysis::PACKAGES_PER_POINT,
            analysis::ZOPA_SEED,
        )
    }

    /// The analysis kept for the current positions, if one is (the one copy a service holds:
    /// it counts it against its budget and may [`forget`](Negotiation::forget_analysis) it).
    pub fn kept_analysis(&self) -> Option<&Arc<Analysis>> {
        self.analysis.as_ref().and_then(Option::as_ref)
    }

    /// Drops the kept analysis (it is computed again when needed).
    pub fn forget_analysis(&mut self) {
        self.analysis = None;
    }

    /// Keeps `analysis` (from [`Negotiation::solve_for_offers`] or
    /// [`Negotiation::analyze_snapshot`] on this negotiation at `version`) for evaluating
    /// offers; ignored when the negotiation has changed since.
    pub fn install_analysis(&mut self, version: u64, analysis: Result<Arc<Analysis>>) -> bool {
        let fresh = version == self.version && !matches!(analysis, Err(Error::Cancelled(_)));
        if fresh {
            self.analysis = Some(analysis.ok());
        }
        fresh
    }

    /// Checks `command` and returns the events it causes (not yet applied).
    pub fn decide(&mut self, command: &Command) -> Result<Vec<Event>> {
        match command {
            Command::SetPosition { party, position } => {
                self.party(party)?;
                Position::new(&self.space, position)?;
                Ok(vec![Event::PositionSet {
                    party: party.clone(),
                    position: position.clone(),
                }])
            }
            Command::Offer { party, package } => {
                self.require_open()?;
                let p = self.party(party)?;
                self.space.check(package)?;
                if self.next_round() > self.deadline_rounds {
                    return Err(Error::illegal("the deadline has passed: no more offers"));
                }
                let turn = self.next_proposer();
                if p != turn {
                    return Err(Error::illegal(format!(
                        "it is {}'s turn to offer, not {party}'s",
                        self.parties[turn]
                    )));
                }
                let evaluation = self.evaluate(p, package);
                let mut events = vec![Event::OfferMade {
                    party: party.clone(),
                    package: package.clone(),
                    evaluation,
                }];
                if self.last_turn() {
                    events.push(Event::DeadlineReached);
                }
                Ok(events)
            }
            Command::Respond {
                party,
                offer,
                accept,
            } => {
                self.require_open()?;
                let p = self.party(party)?;
                let open = self
                    .open_offer()
                    .ok_or_else(|| Error::illegal("there is no open offer to respond to"))?;
                if open.id != *offer {
                    return Err(Error::illegal(format!(
                        "offer {offer} is not the open offer (offer {} is)",
                        open.id
                    )));
                }
                if open.proposer == p {
                    return Err(Error::illegal("a party cannot respond to its own offer"));
                }
                self.require_turn(p)?;
                if open.accepted_by.contains(&p) {
                    return Err(Error::illegal(format!(
                        "{party} has already accepted offer {offer}"
                    )));
                }
                if *accept {
                    let mut events = vec![Event::OfferAccepted {
                        party: party.clone(),
                        offer: *offer,
                    }];
                    if open.accepted_by.len() + 2 == self.parties.len() {
                        events.push(Event::Agreed { offer: *offer });
                    } else if self.last_turn() {
                        events.push(Event::DeadlineReached);
                    }
                    Ok(events)
                } else {
                    let mut events = vec![Event::OfferRejected {
                        party: party.clone(),
                        offer: *offer,
                    }];
                    let offers_allowed = self.deadline_rounds as usize * self.parties.len();
                    let last = match self.turn_rule {
                        TurnRule::OffersInOrder => self.offers.len() >= offers_allowed,
                        TurnRule::Stacked => self.last_turn(),
                    };
                    if last {
                        events.push(Event::DeadlineReached);
                    }
                    Ok(events)
                }
            }
            Command::BreakOff { party, reason } => {
                self.require_open()?;
                self.party(party)?;
                Ok(vec![Event::BrokenOff {
                    party: party.clone(),
                    reason: reason.clone(),
                }])
            }
        }
    }

    fn evaluate(&mut self, proposer: usize, package: &Package) -> Option<OfferEvaluation> {
        let analysis = self.analysis()?;
        let positions = self.all_positions()?;
        let utilities: Vec<f64> = positions.iter().map(|p| p.utility(package)).collect();
        let previous = self.offers.iter().rev().find(|o| o.proposer == proposer);
        let concession =
            previous.map(|o| positions[proposer].utility(&o.package) - utilities[proposer]);
        let standing = analysis::standing(&analysis, &positions, 0, package);
        Some(OfferEvaluation {
            pareto_optimal: standing.pareto_optimal,
            distance_to_nash: standing.distance_to_nash,
            utilities,
            concession,
        })
    }

    /// Applies one event, checking that it fits the state.
    pub fn apply(&mut self, event: &Event) -> Result<()> {
        match event {
            Event::Created { .. } => return Err(Error::illegal("the negotiation exists already")),
            Event::PositionSet { party, position } => {
                let p = self.party(party)?;
                self.positions[p] = Some(Position::new(&self.space, position)?);
                self.analysis = None;
            }
            Event::OfferMade {
                party,
                package,
                evaluation,
            } => {
                self.require_open()?;
                let p = self.party(party)?;
                self.space.check(package)?;
                if p != self.next_proposer() || self.next_round() > self.deadline_rounds {
                    return Err(Error::illegal("offer out of turn in the log"));
                }
                self.offers.push(Offer {
                    id: self.offers.len() as u32,
                    round: self.next_round(),
                    proposer: p,
                    package: package.clone(),
                    evaluation: evaluation.clone(),
                    accepted_by: Vec::new(),
                    rejected_by: None,
                });
                self.take_turn();
            }
            Event::OfferAccepted { party, offer } => {
                let p = self.party(party)?;
                self.require_turn(p)
                    .map_err(|_| Error::illegal("response out of turn in the log"))?;
                let o = self.offer_mut(*offer)?;
                o.accepted_by.push(p);
                self.take_turn();
            }
            Event::OfferRejected { party, offer } => {
                let p = self.party(party)?;
                self.require_turn(p)
                    .map_err(|_| Error::illegal("response out of turn in the log"))?;
                let o = self.offer_mut(*offer)?;
                o.rejected_by = Some(p);
                self.take_turn();
            }
            Event::Agreed { offer } => {
                self.require_open()?;
                self.offer_mut(*offer)?;
                self.status = Status::Agreed;
                self.agreed = Some(*offer);
            }
            Event::BrokenOff { party, reason } => {
                self.require_open()?;
                self.status = Status::BrokenOff;
                self.ended_because = Some(format!("{party} broke off: {reason}"));
            }
            Event::DeadlineReached => {
                self.require_open()?;
                if self.turn_rule == TurnRule::Stacked
                    && (self.turns as usize) < self.deadline_rounds as usize * self.parties.len()
                {
                    return Err(Error::illegal("deadline reached early in the log"));
                }
                self.status = Status::BrokenOff;
                self.ended_because = Some(format!(
                    "the deadline of {} rounds passed without agreement",
                    self.deadline_rounds
                ));
            }
        }
        self.version += 1;
        Ok(())
    }

    fn take_turn(&mut self) {
        if self.turn_rule == TurnRule::Stacked {
            self.turns += 1;
        }
    }

    fn offer_mut(&mut self, id: u32) -> Result<&mut Offer> {
        self.offers
            .get_mut(id as usize)
            .ok_or_else(|| Error::illegal(format!("no offer {id}")))
    }

    /// Decides and applies `command`; returns the events to persist.
    pub fn execute(&mut self, command: &Command) -> Result<Vec<Event>> {
        let events = self.decide(command)?;
        for e in &events {
            self.apply(e)?;
        }
        Ok(events)
    }
}
