//! Typed clients for tradepact's gRPC services, for other backends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tradepact_client::{data, with_deadline, DEFAULT_DEADLINE};
//! use tradepact_client::proto::data_v1::GetTradeBalanceRequest;
//!
//! let mut client = data::connect("http://127.0.0.1:50051").await?;
//! let request = GetTradeBalanceRequest {
//!     reporter: "USA".into(),
//!     partner: "KOR".into(),
//!     ..Default::default()
//! };
//! let rows = client.get_trade_balance(with_deadline(request, DEFAULT_DEADLINE)).await?.into_inner().rows;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use tradepact_proto as proto;

/// Deadline suggested for unary calls.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// How long to wait for a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong when connecting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a valid `http://host:port` URI.
    #[error("invalid service URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        source: tonic::transport::Error,
    },
    /// No connection could be made.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

fn endpoint(url: &str) -> Result<Endpoint, Error> {
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(|source| Error::InvalidUrl {
            url: url.to_owned(),
            source,
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

/// TLS for a client: the CA that signed the server's certificate, and optionally a client
/// certificate and key (mutual TLS), all PEM.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// CA certificate to trust.
    pub ca: Vec<u8>,
    /// Client certificate and key, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Name to expect in the server's certificate; default: the URL's host.
    pub domain: Option<String>,
}

fn tls_endpoint(url: &str, tls: Option<&TlsFiles>) -> Result<Endpoint, Error> {
    let endpoint = endpoint(url)?;
    let Some(tls) = tls else { return Ok(endpoint) };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca));
    if let Some((cert, key)) = &tls.identity {
        config = config.identity(Identity::from_pem(cert, key));
    }
    if let Some(domain) = &tls.domain {
        config = config.domain_name(domain.clone());
    }
    endpoint
        .tls_config(config)
        .map_err(|source| Error::InvalidUrl {
            url: url.to_owned(),
            source,
        })
}

/// Like [`channel`], over TLS when `tls` is given (the URL then starts with `https://`).
pub async fn channel_with(url: &str, tls: Option<&TlsFiles>) -> Result<Channel, Error> {
    tls_endpoint(url, tls)?
        .connect()
        .await
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// Like [`lazy_channel`], over TLS when `tls` is given.
pub fn lazy_channel_with(url: &str, tls: Option<&TlsFiles>) -> Result<Channel, Error> {
    Ok(tls_endpoint(url, tls)?.connect_lazy())
}

/// Wraps `message` in a request with a deadline and, if given, a bearer token.
pub fn authorized<T>(message: T, deadline: Duration, token: Option<&str>) -> tonic::Request<T> {
    let mut request = with_deadline(message, deadline);
    add_token(&mut request, token);
    request
}

/// Adds `authorization: Bearer TOKEN` to `request`, if a token is given.
pub fn add_token<T>(request: &mut tonic::Request<T>, token: Option<&str>) {
    if let Some(value) = token.and_then(|t| format!("Bearer {t}").parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
}

/// Connects now; fails if the service is not reachable.
pub async fn channel(url: &str) -> Result<Channel, Error> {
    endpoint(url)?
        .connect()
        .await
        .map_err(|source| Error::Connect {
            url: url.to_owned(),
            source,
        })
}

/// A channel that connects on first use and reconnects after failures, so a caller keeps
/// working when the service comes back.
pub fn lazy_channel(url: &str) -> Result<Channel, Error> {
    Ok(endpoint(url)?.connect_lazy())
}

/// Wraps `message` in a request carrying a deadline (sent as `grpc-timeout`).
pub fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

/// The trade data service.
pub mod data {
    use super::*;

    /// The generated client of `tradepact.data.v1.TradeDataService`.
    pub type DataClient =
        proto::data_v1::trade_data_service_client::TradeDataServiceClient<Channel>;

    /// Connects to the data service at `url` (e.g. `http://127.0.0.1:50051`).
    pub async fn connect(url: &str) -> Result<DataClient, Error> {
        Ok(client(channel(url).await?))
    }

    /// A data client over `channel`, accepting messages up to 64 MiB.
    pub fn client(channel: Channel) -> DataClient {
        DataClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
    }

    /// One value of a `StreamSeriesColumns` message, decoded.
    #[derive(Clone, Debug, PartialEq)]
    pub struct ColumnValue<'a> {
        /// Period ordinal (annual: year; quarterly: year·4 + quarter − 1; monthly: year·12 + month − 1).
        pub ordinal: u32,
        /// Value (or sum) in US dollars.
        pub value_usd: f64,
        /// Source of the value.
        pub source: &'a str,
        /// Stored points summed into the value (1 when not aggregated).
        pub input_count: u32,
    }

    /// The values of a `StreamSeriesColumns` message, in period order. A message whose arrays
    /// disagree in length (which the server never sends) yields only its consistent prefix.
    pub fn column_values(
        msg: &proto::data_v1::StreamSeriesColumnsResponse,
    ) -> impl Iterator<Item = ColumnValue<'_>> {
        let mut ordinal = 0u32;
        msg.period_deltas
            .iter()
            .zip(&msg.values_usd)
            .enumerate()
            .map_while(move |(i, (delta, value))| {
                ordinal = ordinal.checked_add(*delta)?;
                let source = match msg.source_indexes.get(i) {
                    Some(&s) => msg.sources.get(usize::try_from(s).ok()?)?,
                    None if msg.source_indexes.is_empty() => msg.sources.first()?,
                    None => return None,
                };
                let input_count = match msg.input_counts.get(i) {
                    Some(&n) => n,
                    None if msg.input_counts.is_empty() => 1,
                    None => return None,
                };
                Some(ColumnValue {
                    ordinal,
                    value_usd: *value,
                    source,
                    input_count,
                })
            })
    }

    /// A `StreamWritePoints` message as the `StreamWriteColumns` message of the same rows
    /// (each distinct string once; the measure, unit and source columns left empty when every
    /// row's is the default). A point without a source takes its series' source, as the
    /// server reads `StreamWritePoints`.
    pub fn columns_of(
        batch: proto::data_v1::StreamWritePointsRequest,
    ) -> proto::data_v1::StreamWriteColumnsRequest {
        use std::collections::HashMap;
        let mut out = proto::data_v1::StreamWriteColumnsRequest {
            release: batch.release,
            ..Default::default()
        };
        let mut strings: HashMap<String, u32> = HashMap::new();
        let mut index = |out: &mut proto::data_v1::StreamWriteColumnsRequest, s: &str| {
            if let Some(&i) = strings.get(s) {
                return i;
            }
            let i = out.strings.len() as u32;
            out.strings.push(s.to_owned());
            strings.insert(s.to_owned(), i);
            i
        };
        let (mut measures, mut units, mut sources) = (false, false, false);
        for series in &batch.series {
            let Some(key) = &series.key else { continue };
            let reporter = index(&mut out, &key.reporter);
            let partner = index(&mut out, &key.partner);
            let product = index(&mut out, &key.product);
            let unit = index(&mut out, &key.quantity_unit);
            measures |= key.measure != 0;
            units |= !key.quantity_unit.is_empty();
            for point in &series.points {
                let source = match point.source.as_str() {
                    "" => series.source.as_str(),
                    s => s,
                };
                sources |= !source.is_empty();
                let source = index(&mut out, source);
                let period = index(&mut out, &point.period);
                out.reporter.push(reporter);
                out.partner.push(partner);
                out.flow.push(key.flow);
                out.kind.push(key.kind);
                out.product.push(product);
                out.frequency.push(key.frequency);
                out.measure.push(key.measure);
                out.quantity_unit.push(unit);
                out.period.push(period);
                out.value.push(point.value_usd);
                out.source.push(source);
            }
        }
        if !measures {
            out.measure.clear();
        }
        if !units {
            out.quantity_unit.clear();
        }
        if !sources {
            out.source.clear();
        }
        out
    }

    /// A period ordinal written as the API writes periods (`2016`, `2016-Q3`, `2016-07`);
    /// `None` for an unspecified frequency.
    pub fn period_text(frequency: proto::data_v1::Frequency, ordinal: u32) -> Option<String> {
        use proto::data_v1::Frequency;
        match frequency {
            Frequency::Annual => Some(format!("{ordinal:04}")),
            Frequency::Quarterly => Some(format!("{:04}-Q{}", ordinal / 4, ordinal % 4 + 1)),
            Frequency::Monthly => Some(format!("{:04}-{:02}", ordinal / 12, ordinal % 12 + 1)),
            Frequency::Unspecified => None,
        }
    }
}

/// The negotiation service.
pub mod negotiation {
    use super::*;

    /// The generated client of `tradepact.negotiation.v1.NegotiationService`.
    pub type NegotiationClient =
        proto::negotiation_v1::negotiation_service_client::NegotiationServiceClient<Channel>;

    /// Connects to the negotiation service at `url` (e.g. `http://127.0.0.1:50052`).
    pub async fn connect(url: &str) -> Result<NegotiationClient, Error> {
        Ok(client(channel(url).await?))
    }

    /// A negotiation client over `channel`, accepting messages up to 64 MiB.
    pub fn client(channel: Channel) -> NegotiationClient {
        NegotiationClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
    }
}

/// The address in a server's readiness line (`… listening on 127.0.0.1:PORT …`), which a
/// tradepact server logs once it accepts calls: for supervisors, tests and benchmarks that
/// start a server on port 0.
pub fn readiness_addr(line: &str) -> Option<String> {
    let at = line.find("listening on ")? + "listening on ".len();
    let addr: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    (!addr.is_empty()).then_some(addr)
}

#[cfg(test)]
mod readiness_tests {
    #[test]
    fn the_readiness_line_gives_the_address() {
        let line = "2026-11-30T22:09:30Z  INFO tradepact_rpc::server: listening on 127.0.0.1:44207 service=\"x\"";
        assert_eq!(
            super::readiness_addr(line).as_deref(),
            Some("127.0.0.1:44207")
        );
        assert_eq!(
            super::readiness_addr("listening on [::1]:50051").as_deref(),
            Some("[::1]:50051")
        );
        assert_eq!(super::readiness_addr("store open"), None);
    }
}
