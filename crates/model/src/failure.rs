//! Why an application call failed, in terms any transport can answer: the application layers
//! of both services return it, and `tradepact_rpc::status::of` maps it to a gRPC status (the
//! one place that knows the codes).

use std::fmt;

use crate::Violation;

/// Why a call failed. The variants follow what the caller can do about it.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The request is invalid: fix these fields.
    Invalid(Vec<Violation>),
    /// What the request names does not exist.
    NotFound(String),
    /// A period or position outside what exists.
    OutOfRange(String),
    /// The request is valid but not now (an illegal move, a missing position).
    FailedPrecondition(String),
    /// The caller may not do or see this.
    PermissionDenied(String),
    /// A concurrent change won; read again and retry.
    Aborted(String),
    /// A limit was reached (size, concurrency); the message names it.
    ResourceExhausted(String),
    /// The server's own bound on the work passed.
    DeadlineExceeded(String),
    /// The caller went away or the work was stopped.
    Cancelled(String),
    /// Storage or the server is unavailable (I/O error, shutdown); retry later.
    Unavailable(String),
    /// Stored data does not verify: the message names what (the series and periods of a
    /// corrupt chunk), so that the caller and the operator know what to restore.
    DataLoss(String),
    /// A bug or a corrupt store: `context` is answered, `detail` only logged.
    Internal {
        /// What was being done, answered to the caller.
        context: String,
        /// The cause, logged on the server, never answered.
        detail: String,
    },
}

/// The result of an application call.
pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Failure {
        Failure::Invalid(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// A bug or a corrupt store while doing `context`; `detail` is logged, not answered.
    pub fn internal(context: impl Into<String>, detail: &dyn fmt::Display) -> Failure {
        Failure::Internal {
            context: context.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Failure::*;
        match self {
            Invalid(v) => {
                write!(f, "invalid request: ")?;
                for (i, x) in v.iter().enumerate() {
                    write!(
                        f,
                        "{}{}: {}",
                        if i > 0 { "; " } else { "" },
                        x.field,
                        x.description
                    )?;
                }
                Ok(())
            }
            NotFound(m)
            | OutOfRange(m)
            | FailedPrecondition(m)
            | PermissionDenied(m)
            | Aborted(m)
            | ResourceExhausted(m)
            | DeadlineExceeded(m)
            | Cancelled(m)
            | Unavailable(m)
            | DataLoss(m) => f.write_str(m),
            Internal { context, .. } => write!(f, "{context}: internal error"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<crate::Violations> for Failure {
    fn from(v: crate::Violations) -> Failure {
        Failure::Invalid(v.0)
    }
}
