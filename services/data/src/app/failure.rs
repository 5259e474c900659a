//! Store errors as the application's failures (mapped to statuses by
//! `tradepact_rpc::status::of`).

use tradepact_model::Failure;
use tradepact_store::Error;

/// The one mapping of store errors to failures.
pub fn failure(e: Error) -> Failure {
    match e {
        Error::Invalid(violations) => Failure::Invalid(violations),
        Error::NotFound(what) => Failure::NotFound(what),
        Error::OutOfRange(what) => Failure::OutOfRange(what),
        Error::Storage(sled::Error::Io(io)) => {
            tracing::error!(error = %io, "storage I/O error");
            metrics::counter!("tradepact_store_io_errors_total").increment(1);
            Failure::Unavailable("storage is unavailable (I/O error logged on the server); nothing was written by this call".to_owned())
        }
        Error::Storage(e) => Failure::internal("storage error", &e),
        Error::Corrupt(e) => Failure::DataLoss(format!("corrupt store: {e}")),
        Error::Format(e) => Failure::internal("store format", &e),
        Error::Unavailable(why) => Failure::Unavailable(why),
    }
}

/// A task that did not finish (panicked or was cancelled at shutdown).
pub fn join_failure(e: tokio::task::JoinError) -> Failure {
    Failure::internal("storage task failed", &e)
}
