//! Mapping of validation failures to gRPC statuses.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Violations listed one by one in an `INVALID_ARGUMENT`; the rest are counted in one more.
pub const MAX_VIOLATIONS: usize = 50;
/// Bytes of violation text (field paths and descriptions) listed in one `INVALID_ARGUMENT`;
/// with the message, an error stays well under the 8 KiB of metadata that gRPC clients
/// accept by default (Python's grpcio refuses more).
pub const MAX_VIOLATION_BYTES: usize = 3072;
/// Bytes of an error's message.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Characters of a field path or description kept in an error; longer ones are cut, with
/// their length said (an echoed 70 kB value must not make a 70 kB error).
pub const MAX_ERROR_TEXT: usize = 256;
/// Characters of an echoed input value kept by [`truncated`].
pub const MAX_ECHO: usize = 64;

/// `value` for an error message: whole when short, else its first [`MAX_ECHO`] characters
/// and its length in bytes.
pub fn truncated(value: &str) -> String {
    clip(value, MAX_ECHO)
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

/// `INVALID_ARGUMENT` carrying the violations as `google.rpc.BadRequest` field violations;
/// the message lists them too, for clients that do not decode details. Bounded: each text is
/// cut at [`MAX_ERROR_TEXT`] characters, at most [`MAX_VIOLATIONS`] violations and
/// [`MAX_VIOLATION_BYTES`] of their text are listed (one more violation counts the rest), and
/// the message at [`MAX_MESSAGE_BYTES`].
pub fn invalid_argument<'a>(violations: impl IntoIterator<Item = (&'a str, &'a str)>) -> Status {
    let mut listed: Vec<FieldViolation> = Vec::new();
    let (mut bytes, mut more) = (0usize, 0usize);
    for (field, description) in violations {
        let (field, description) = (
            clip(field, MAX_ERROR_TEXT),
            clip(description, MAX_ERROR_TEXT),
        );
        let size = field.len() + description.len();
        if more == 0 && listed.len() < MAX_VIOLATIONS && bytes + size <= MAX_VIOLATION_BYTES {
            bytes += size;
            listed.push(FieldViolation::new(field, description));
        } else {
            more += 1;
        }
    }
    let total = listed.len() + more;
    if more > 0 {
        listed.push(FieldViolation::new(
            "",
            format!("and {more} more violations, not listed"),
        ));
    }
    let mut message = String::from("invalid request: ");
    for (i, v) in listed.iter().enumerate() {
        let item = format!(
            "{}{}: {}",
            if i > 0 { "; " } else { "" },
            v.field,
            v.description
        );
        if message.len() + item.len() > MAX_MESSAGE_BYTES {
            message.push_str(&format!("; … {total} violations in all (see the details)"));
            break;
        }
        message.push_str(&item);
    }
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(listed),
    )
}

/// The message prost's decoder gives (tonic answers it as `INTERNAL`).
const DECODE_ERROR: &str = "failed to decode Protobuf message";

/// A status for a request message that failed to decode: `INVALID_ARGUMENT` (the caller sent
/// bytes that are not this method's message), where tonic says `INTERNAL`. Other statuses
/// pass unchanged. For the messages of a request stream, which reach the handler.
pub fn request_decode(status: Status) -> Status {
    if status.code() == Code::Internal && status.message().starts_with(DECODE_ERROR) {
        malformed(status.message())
    } else {
        status
    }
}

fn malformed(detail: &str) -> Status {
    bounded(
        Code::InvalidArgument,
        &format!("the request is not a valid protobuf message for this method ({detail})"),
    )
}

/// Rewrites a trailers-only response in which tonic answered a request that failed to decode
/// with `INTERNAL`: `INVALID_ARGUMENT` instead (tonic decodes a unary request before the
/// handler runs, so only the response shows it).
pub fn map_decode_error(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers();
    let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| {
            percent_encoding::percent_decode_str(m)
                .decode_utf8_lossy()
                .into_owned()
        });
    if let (true, Some(message)) = (internal, message) {
        if message.starts_with(DECODE_ERROR) {
            let status = malformed(&message);
            let headers = response.headers_mut();
            headers.remove("grpc-message");
            headers.remove("grpc-status");
            let _ = status.add_header(headers);
        }
    }
    response
}

/// A status with `message` cut at [`MAX_ERROR_TEXT`] characters.
pub fn bounded(code: Code, message: &str) -> Status {
    Status::new(code, clip(message, MAX_ERROR_TEXT))
}

/// A status with `text` cut at [`MAX_MESSAGE_BYTES`] characters (the server's own messages;
/// the parts that echo input are cut shorter where they are written).
fn message(code: Code, text: &str) -> Status {
    Status::new(code, clip(text, MAX_MESSAGE_BYTES))
}

/// `INTERNAL` with a generic message; the cause is logged here, never sent to the caller.
pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "{context}");
    Status::internal(format!("{context}: internal error (logged on the server)"))
}

/// The status that answers an application failure: the one mapping of
/// [`tradepact_model::Failure`] to gRPC codes (messages bounded, violations as details,
/// internal causes logged and never answered).
pub fn of(failure: tradepact_model::Failure) -> Status {
    use tradepact_model::Failure::*;
    match failure {
        Invalid(v) => {
            invalid_argument(v.iter().map(|x| (x.field.as_str(), x.description.as_str())))
        }
        NotFound(m) => message(Code::NotFound, &m),
        OutOfRange(m) => message(Code::OutOfRange, &m),
        FailedPrecondition(m) => message(Code::FailedPrecondition, &m),
        PermissionDenied(m) => message(Code::PermissionDenied, &m),
        Aborted(m) => message(Code::Aborted, &m),
        ResourceExhausted(m) => message(Code::ResourceExhausted, &m),
        DeadlineExceeded(m) => message(Code::DeadlineExceeded, &m),
        Cancelled(m) => message(Code::Cancelled, &m),
        Unavailable(m) => message(Code::Unavailable, &m),
        DataLoss(m) => {
            tracing::error!(error = %m, "corrupt data in the store (run `tradepact verify-store`)");
            message(Code::DataLoss, &m)
        }
        Internal { context, detail } => internal(&context, &detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = invalid_argument([("key.reporter", "bad code"), ("page_size", "negative")]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status
            .get_details_bad_request()
            .expect("bad request details");
        assert_eq!(details.field_violations.len(), 2);
        assert_eq!(details.field_violations[0].field, "key.reporter");
        assert!(status.message().contains("page_size: negative"));
    }

    #[test]
    fn decode_errors_are_invalid_argument() {
        let decode = Status::internal("failed to decode Protobuf message: invalid wire type");
        assert_eq!(request_decode(decode.clone()).code(), Code::InvalidArgument);
        assert_eq!(
            request_decode(Status::internal("disk")).code(),
            Code::Internal
        );
        let response = map_decode_error(decode.into_http());
        assert_eq!(response.headers()["grpc-status"], "3");
        let other = map_decode_error(Status::internal("store").into_http());
        assert_eq!(other.headers()["grpc-status"], "13");
    }

    #[test]
    fn errors_are_bounded_whatever_the_input() {
        let long = "X".repeat(70_000);
        assert_eq!(truncated("USA"), "USA");
        let cut = truncated(&long);
        assert!(cut.starts_with(&"X".repeat(MAX_ECHO)) && cut.ends_with("(70000 bytes in all)"));
        assert_eq!(
            truncated(&"é".repeat(100))
                .chars()
                .filter(|c| *c == 'é')
                .count(),
            MAX_ECHO
        );
        let description = format!("got {long:?}");
        let status = invalid_argument((0..1000).map(|_| (long.as_str(), description.as_str())));
        let details = status.get_details_bad_request().unwrap();
        let listed = details.field_violations.len() - 1;
        assert!((1..=MAX_VIOLATIONS).contains(&listed));
        assert!(details.field_violations[listed]
            .description
            .contains(&format!("{} more", 1000 - listed)));
        // Short violations: the count bound applies.
        let many = invalid_argument((0..1000).map(|_| ("f", "bad")));
        let details = many.get_details_bad_request().unwrap();
        assert_eq!(details.field_violations.len(), MAX_VIOLATIONS + 1);
        assert!(details.field_violations[MAX_VIOLATIONS]
            .description
            .contains("950 more"));
        assert!(status.message().len() < MAX_MESSAGE_BYTES + 100);
        assert!(status.details().len() < MAX_VIOLATION_BYTES + 500);
    }
}
