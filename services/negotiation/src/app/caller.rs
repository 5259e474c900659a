//! Who calls, and what an answer may show them of the parties' positions.

use std::sync::Arc;

use tradepact_bargain::Visibility;
use tradepact_model::{Failure, Outcome};
use tradepact_rpc::auth::Principal;

/// Who calls, for what the answer may reveal of the parties' positions.
#[derive(Clone)]
pub struct Caller(Option<Arc<Principal>>);

impl Caller {
    /// The caller a request's token names (`None`: no token, as when auth is off).
    pub fn new(principal: Option<Arc<Principal>>) -> Caller {
        Caller(principal)
    }

    /// The parties (of `parties`) whose positions and utilities the caller may see.
    pub fn visibility(&self, parties: &[String]) -> Visibility {
        Visibility::new(
            parties
                .iter()
                .map(|p| self.0.as_ref().is_some_and(|c| c.may_see(p)))
                .collect(),
        )
    }

    /// `PERMISSION_DENIED` unless the caller may see every party's position: what an
    /// analysis or a simulation shows depends on all of them.
    pub fn require_every_party(&self, parties: &[String], what: &str) -> Outcome<()> {
        let visibility = self.visibility(parties);
        if visibility.sees_all() {
            return Ok(());
        }
        let hidden: Vec<String> = visibility
            .hidden()
            .map(|i| tradepact_rpc::auth::position_scope(&parties[i]))
            .collect();
        Err(Failure::PermissionDenied(format!(
            "{what} depends on every party's position: it needs the scope {:?} or the position scopes of every party (missing: {})",
            tradepact_rpc::auth::ALL_PARTIES,
            tradepact_rpc::status::truncated(&hidden.join(", "))
        )))
    }
}
