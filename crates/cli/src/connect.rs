//! How the command-line tool reaches the services: URLs come with each command; TLS and the
//! bearer token are global flags.

use std::path::PathBuf;
use std::time::Duration;

use tradepact_client::{data::DataClient, negotiation::NegotiationClient, TlsFiles};

/// Client flags shared by every command.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ClientArgs {
    /// Bearer token sent to the services (prefer the environment: flags show in `ps`).
    #[arg(long, env = "TRADEPACT_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA certificate of the services' TLS certificates (then use https:// URLs).
    #[arg(long, env = "TRADEPACT_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for services that require mutual TLS.
    #[arg(
        long,
        env = "TRADEPACT_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM key of --client-cert.
    #[arg(
        long,
        env = "TRADEPACT_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

impl ClientArgs {
    fn tls(&self) -> anyhow::Result<Option<TlsFiles>> {
        let Some(ca) = &self.ca else { return Ok(None) };
        Ok(Some(TlsFiles {
            ca: read(ca)?,
            identity: match (&self.client_cert, &self.client_key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                _ => None,
            },
            domain: None,
        }))
    }

    /// A data service client.
    pub async fn data(&self, url: &str) -> anyhow::Result<DataClient> {
        let channel = tradepact_client::channel_with(url, self.tls()?.as_ref()).await?;
        Ok(tradepact_client::data::client(channel))
    }

    /// A negotiation service client.
    pub async fn negotiation(&self, url: &str) -> anyhow::Result<NegotiationClient> {
        let channel = tradepact_client::channel_with(url, self.tls()?.as_ref()).await?;
        Ok(tradepact_client::negotiation::client(channel))
    }

    /// A request carrying the token and, if given, a deadline.
    pub fn request<T>(&self, message: T, deadline: Option<Duration>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(d) = deadline {
            request.set_timeout(d);
        }
        tradepact_client::add_token(&mut request, self.token.as_deref());
        request
    }
}
