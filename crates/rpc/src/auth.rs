//! Bearer-token authentication with scopes.
//!
//! Tokens are kept hashed (SHA-256, hex) in a tokens file, one per line:
//!
//! ```text
//! # sha256(token)                                                   name     scopes
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  analyst  data:read,negotiation:read
//! ```
//!
//! `tradepact-data hash-token TOKEN` (or `sha256sum`) gives the hash. Scopes in use:
//! `data:read`, `data:write`, `negotiation:read`, `negotiation:write`,
//! `negotiation:position:PARTY` (read and write that party's private position), and `*` (all).
//!
//! Calls to tradepact services need `authorization: Bearer TOKEN` when a tokens file is
//! configured: a missing or unknown token is `UNAUTHENTICATED`, a missing scope
//! `PERMISSION_DENIED`. Health and reflection stay open. Tokens are never logged. Without a
//! tokens file every caller is allowed everything (the default, for loopback use).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use sha2::{Digest, Sha256};
use tonic::body::Body;
use tonic::Status;

/// Who is calling and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (for logs); never the token.
    pub name: String,
    scopes: HashSet<String>,
}

impl Principal {
    /// The caller when authentication is off: allowed everything.
    pub fn unrestricted() -> Principal {
        Principal {
            name: "anonymous".to_owned(),
            scopes: HashSet::from(["*".to_owned()]),
        }
    }

    /// Whether the caller holds `scope` (or `*`).
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains("*") || self.scopes.contains(scope)
    }
}

/// Checks that the caller of `request` holds `scope`: `PERMISSION_DENIED` otherwise, and
/// also when no principal was attached (fail closed).
pub fn require<T>(request: &tonic::Request<T>, scope: &str) -> Result<(), Status> {
    match principal(request) {
        Some(p) if p.has(scope) => Ok(()),
        Some(p) => Err(Status::permission_denied(format!(
            "token {:?} lacks the scope {scope:?}",
            p.name
        ))),
        None => Err(Status::permission_denied(format!(
            "no authenticated caller; the scope {scope:?} is required"
        ))),
    }
}

/// The caller of `request`, if one was attached.
pub fn principal<T>(request: &tonic::Request<T>) -> Option<&Arc<Principal>> {
    request.extensions().get::<Arc<Principal>>()
}

/// SHA-256 of a token, as lower-case hex (what the tokens file holds).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The known tokens, by hash.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    by_hash: HashMap<String, Arc<Principal>>,
}

impl TokenStore {
    /// Parses a tokens file's text; errors name the line.
    pub fn parse(text: &str) -> anyhow::Result<TokenStore> {
        let mut by_hash = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [hash, name, scopes] = fields[..] else {
                anyhow::bail!(
                    "tokens file line {}: expected `SHA256HEX NAME SCOPE,SCOPE…`",
                    n + 1
                );
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                anyhow::bail!(
                    "tokens file line {}: the first field must be a SHA-256 hash in hex",
                    n + 1
                );
            }
            let principal = Principal {
                name: name.to_owned(),
                scopes: scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            by_hash.insert(hash.to_ascii_lowercase(), Arc::new(principal));
        }
        Ok(TokenStore { by_hash })
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> anyhow::Result<TokenStore> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the tokens file {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// The principal of a presented token.
    pub fn authenticate(&self, token: &str) -> Option<&Arc<Principal>> {
        self.by_hash.get(&hash_token(token))
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Tower layer that authenticates calls to `/tradepact.*` services and attaches the
/// [`Principal`] for the handlers' scope checks.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    tokens: Option<Arc<TokenStore>>,
    // Made once: attaching them costs a reference count per call, not an allocation.
    unrestricted: Arc<Principal>,
    open: Arc<Principal>,
}

impl AuthLayer {
    /// With `None`, every caller is [`Principal::unrestricted`].
    pub fn new(tokens: Option<Arc<TokenStore>>) -> AuthLayer {
        AuthLayer {
            tokens,
            unrestricted: Arc::new(Principal::unrestricted()),
            open: Arc::new(Principal {
                name: "anonymous".to_owned(),
                scopes: HashSet::new(),
            }),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
            unrestricted: self.unrestricted.clone(),
            open: self.open.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    tokens: Option<Arc<TokenStore>>,
    unrestricted: Arc<Principal>,
    open: Arc<Principal>,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let protected = request.uri().path().starts_with("/tradepact.");
        let principal = match (&self.tokens, protected) {
            (None, _) => Ok(self.unrestricted.clone()),
            (Some(_), false) => Ok(self.open.clone()),
            (Some(tokens), true) => {
                let presented = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                match presented.map(|t| tokens.authenticate(t.trim())) {
                    Some(Some(p)) => Ok(p.clone()),
                    Some(None) => Err("unknown bearer token"),
                    None => Err("missing `authorization: Bearer TOKEN` metadata"),
                }
            }
        };
        match principal {
            Ok(p) => {
                request.extensions_mut().insert(p);
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(why) => {
                tracing::warn!(method = %request.uri().path(), "refused: {why}");
                let response = Status::unauthenticated(why).into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_parses_and_authenticates_by_hash() {
        let text = format!(
            "# comment\n{} analyst data:read,negotiation:read\n\n{} admin *\n",
            hash_token("s3cret"),
            hash_token("root")
        );
        let store = TokenStore::parse(&text).unwrap();
        assert_eq!(store.len(), 2);
        let analyst = store.authenticate("s3cret").unwrap();
        assert!(analyst.has("data:read") && !analyst.has("data:write"));
        assert!(store
            .authenticate("root")
            .unwrap()
            .has("negotiation:position:US"));
        assert!(store.authenticate("nope").is_none());
        assert!(TokenStore::parse("abc analyst data:read").is_err());
        assert!(TokenStore::parse(&format!("{} only-two-fields", hash_token("x"))).is_err());
    }
}
