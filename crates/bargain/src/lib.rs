//! The negotiation domain of tradepact, with no gRPC and no I/O.
//!
//! # Model
//! - An [`OutcomeSpace`] is a list of issues, each with discrete options; a [`Package`]
//!   chooses one option of every issue.
//! - A [`Position`] is a party's private evaluation: non-negative issue weights normalised to
//!   sum 1, a value in [0, 1] for each option, and a reservation value (BATNA) in [0, 1].
//!   Utility is linear-additive: u(package) = Σ weight_issue · value(option chosen).
//!   Utilities are held in fixed point (1e-9 units), so a sum does not depend on the order of
//!   its terms.
//!
//! # Analysis (the definitions NegMAS and GENIUS use)
//! - **Rational outcomes / ZOPA**: every u_i ≥ reservation_i. Counted exactly for spaces up to
//!   [`analysis::EXACT_ZOPA_LIMIT`] packages, estimated from a seeded sample beyond.
//! - **Pareto frontier** over the rational outcomes: `y` dominates `x` when `y_i ≥ x_i − T`
//!   for every party and `y_j > x_j + T` for one, with a tolerance `T` of 1e-9 per issue.
//!   Outcomes whose utilities differ by less (an exact tie broken by float rounding) are both
//!   kept; outcomes with identical utilities are one point listing all their packages.
//!   Computed without enumerating the space ([`frontier`]): issue by issue, merging per-issue
//!   contributions and pruning what is dominated or can never be rational.
//! - **Nash**: argmax Π (u_i − d_i), d = reservation values. **Kalai–Smorodinsky**: with each
//!   party's ideal = its best utility over the whole space, the frontier point whose gains
//!   (u_i − d_i) / (ideal_i − d_i) are most equal. **Egalitarian**: argmax min_i (u_i − d_i).
//!   **Max welfare**: argmax Σ u_i. All are taken over the frontier; ties are all returned.
//!
//! # Negotiation and simulation
//! [`negotiation`] is the event-sourced state machine of a negotiation (offers, responses,
//! agreement, deadline); [`simulate`] runs automated alternating offers between concession
//! strategies (time-based Boulware/linear/Conceder, tit-for-tat, Zeuthen), reproducibly for a seed;
//! [`seat`] plays one party from outside against time-based strategies that know only their
//! own positions.
//! [`visibility`] says what a caller who may see only some parties' positions may see of an
//! offer's evaluation.

pub mod analysis;
pub mod cancel;
pub mod frontier;
pub mod genius;
pub mod mediate;
pub mod negmas;
pub mod negotiation;
pub mod position;
pub mod rng;
pub mod robust;
pub mod sample;
pub mod scenario;
pub mod seat;
pub mod simulate;
pub mod space;
pub mod visibility;

pub use analysis::{analyze, solve, Analysis, Solution, Zopa};
pub use frontier::{pareto_frontier, FrontierPoint, ParetoFrontier};
pub use negotiation::{Command, Event, Negotiation, Status, TurnRule};
pub use position::{Position, PositionSpec};
pub use simulate::{Simulation, Step, Strategy};
pub use space::{Issue, OptionDef, OutcomeSpace, Package};
pub use visibility::{SeenEvaluation, Visibility};

/// What can go wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An input is invalid.
    #[error("{field}: {description}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        description: String,
    },
    /// The move is not allowed in the current state.
    #[error("{0}")]
    Illegal(String),
    /// The computation would exceed a documented limit.
    #[error("{0}")]
    TooLarge(String),
    /// The computation was stopped before it finished (see [`cancel`]).
    #[error("the computation was stopped: {0:?}")]
    Cancelled(cancel::Reason),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, description: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            description: description.into(),
        }
    }

    pub(crate) fn illegal(why: impl Into<String>) -> Error {
        Error::Illegal(why.into())
    }
}

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
