//! Who calls, and what an answer may show them of the parties' positions.

use std::sync::Arc;

use tonic::{Request, Status};
use tradepact_bargain::Visibility;

/// Who calls, for what the answer may reveal of the parties' positions.
#[derive(Clone)]
pub(crate) struct Caller(Option<Arc<tradepact_rpc::auth::Principal>>);

impl Caller {
    pub fn of<T>(request: &Request<T>) -> Caller {
        Caller(tradepact_rpc::auth::principal(request).cloned())
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
    pub fn require_every_party(&self, parties: &[String], what: &str) -> Result<(), Status> {
        let visibility = self.visibility(parties);
        if visibility.sees_all() {
            return Ok(());
        }
        let hidden: Vec<String> = visibility
            .hidden()
            .map(|i| tradepact_rpc::auth::position_scope(&parties[i]))
            .collect();
        Err(Status::permission_denied(format!(
            "{what} depends on every party's position: it needs the scope {:?} or the position scopes of every party (missing: {})",
            tradepact_rpc::auth::ALL_PARTIES,
            tradepact_rpc::status::truncated(&hidden.join(", "))
        )))
    }
}
