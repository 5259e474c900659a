//! The one mapping of store errors to gRPC statuses.

use tonic::Status;
use tradepact_store::Error;

pub(crate) fn to_status(e: Error) -> Status {
    match e {
        Error::Invalid(violations) => tradepact_rpc::status::invalid_argument(
            violations
                .iter()
                .map(|v| (v.field.as_str(), v.description.as_str())),
        ),
        Error::NotFound(what) => Status::not_found(what),
        Error::OutOfRange(what) => Status::out_of_range(what),
        Error::Storage(sled::Error::Io(io)) => {
            tracing::error!(error = %io, "storage I/O error");
            Status::unavailable("storage is unavailable (I/O error logged on the server); nothing was written by this call")
        }
        Error::Storage(e) => tradepact_rpc::status::internal("storage error", &e),
        Error::Corrupt(e) => tradepact_rpc::status::internal("corrupt store", &e),
    }
}

/// A task that did not finish (panicked or was cancelled at shutdown).
pub(crate) fn join_error(e: tokio::task::JoinError) -> Status {
    tradepact_rpc::status::internal("storage task failed", &e)
}
