//! What a caller may learn of the parties' private positions.
//!
//! A party's utilities reveal its position: a few offers' utilities give its weights, the
//! Pareto frontier and the Nash point depend on every position. So what a caller sees of an
//! offer's evaluation depends on the parties whose positions it may see ([`Visibility`]):
//!
//! - a caller that sees every party gets the evaluation whole;
//! - any other caller gets the utilities of the parties it sees, by party, the proposer's
//!   concession only if it sees the proposer, and neither Pareto-optimality nor the distance
//!   to the Nash point (both depend on every position).

use crate::negotiation::OfferEvaluation;

/// The parties (by index) whose positions a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    sees: Vec<bool>,
}

impl Visibility {
    /// From one flag per party, in party order.
    pub fn new(sees: Vec<bool>) -> Visibility {
        Visibility { sees }
    }

    /// Whether the caller sees party `i`.
    pub fn sees(&self, i: usize) -> bool {
        self.sees.get(i).copied().unwrap_or(false)
    }

    /// Whether the caller sees every party.
    pub fn sees_all(&self) -> bool {
        self.sees.iter().all(|&s| s)
    }

    /// The parties the caller does not see.
    pub fn hidden(&self) -> impl Iterator<Item = usize> + '_ {
        self.sees
            .iter()
            .enumerate()
            .filter(|(_, &s)| !s)
            .map(|(i, _)| i)
    }
}

/// What a caller may see of an offer's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenEvaluation {
    /// Every party's utility in party order, when the caller sees every party; else empty.
    pub utilities: Vec<f64>,
    /// `(party index, utility)` of each party the caller sees.
    pub party_utilities: Vec<(usize, f64)>,
    /// The proposer's concession, when the caller sees the proposer.
    pub concession: Option<f64>,
    /// Pareto-optimality, when the caller sees every party.
    pub pareto_optimal: Option<bool>,
    /// Distance to the Nash point, when the caller sees every party.
    pub distance_to_nash: Option<f64>,
}

impl OfferEvaluation {
    /// What a caller with `visibility` may see of this evaluation of an offer by `proposer`.
    pub fn seen_by(&self, proposer: usize, visibility: &Visibility) -> SeenEvaluation {
        let all = visibility.sees_all();
        SeenEvaluation {
            utilities: if all {
                self.utilities.clone()
            } else {
                Vec::new()
            },
            party_utilities: self
                .utilities
                .iter()
                .enumerate()
                .filter(|(i, _)| visibility.sees(*i))
                .map(|(i, &u)| (i, u))
                .collect(),
            concession: self.concession.filter(|_| visibility.sees(proposer)),
            pareto_optimal: all.then_some(self.pareto_optimal),
            distance_to_nash: self.distance_to_nash.filter(|_| all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation() -> OfferEvaluation {
        OfferEvaluation {
            utilities: vec![0.7, 0.4, 0.9],
            concession: Some(0.05),
            pareto_optimal: true,
            distance_to_nash: Some(0.12),
        }
    }

    #[test]
    fn a_caller_who_sees_everyone_gets_it_whole() {
        let seen = evaluation().seen_by(1, &Visibility::new(vec![true; 3]));
        assert_eq!(seen.utilities, vec![0.7, 0.4, 0.9]);
        assert_eq!(seen.party_utilities, vec![(0, 0.7), (1, 0.4), (2, 0.9)]);
        assert_eq!(seen.concession, Some(0.05));
        assert_eq!(seen.pareto_optimal, Some(true));
        assert_eq!(seen.distance_to_nash, Some(0.12));
    }

    #[test]
    fn a_party_sees_only_itself_and_nothing_that_depends_on_the_others() {
        let only_first = Visibility::new(vec![true, false, false]);
        // The proposer is another party: its concession is its utility drop, so hidden.
        let seen = evaluation().seen_by(1, &only_first);
        assert!(seen.utilities.is_empty());
        assert_eq!(seen.party_utilities, vec![(0, 0.7)]);
        assert_eq!(seen.concession, None);
        assert_eq!(seen.pareto_optimal, None);
        assert_eq!(seen.distance_to_nash, None);
        // Its own offer: its own concession is its own business.
        assert_eq!(evaluation().seen_by(0, &only_first).concession, Some(0.05));
        assert_eq!(only_first.hidden().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_caller_who_sees_nobody_gets_nothing() {
        let seen = evaluation().seen_by(0, &Visibility::new(vec![false; 3]));
        assert!(seen.utilities.is_empty() && seen.party_utilities.is_empty());
        assert_eq!(
            (seen.concession, seen.pareto_optimal, seen.distance_to_nash),
            (None, None, None)
        );
    }
}
