//! Bearer-token authentication with scopes.
//!
//! Tokens are kept hashed (SHA-256, hex) in a tokens file, one per line:
//!
//! ```text
//! # sha256(token)                                                   name     scopes
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  analyst  data:read,negotiation:read
//! ```
//!
//! `tradepact hash-token TOKEN` (or `sha256sum`) gives the hash. Scopes in use:
//! `data:read`, `data:write`, `negotiation:read`, `negotiation:write`,
//! `negotiation:position:PARTY` (act for that party, and see its position and utilities),
//! `negotiation:all-parties` (see every party's position: analysis and simulation), and `*`
//! (all).
//!
//! Calls to tradepact services need `authorization: Bearer TOKEN` (the scheme in any case,
//! as RFC 6750 allows) when a tokens file is configured: a missing or unknown token is
//! `UNAUTHENTICATED`, a missing scope `PERMISSION_DENIED`. Each service states what each of
//! its methods needs of a token (a [`Policy`]); [`AuthLayer`] checks it on the request
//! headers, before the call takes a slot or its body is read, and a method the policy does
//! not name is refused. What depends on the body (which party a call acts for) is checked by
//! the handler, before it reads or writes anything. Health and reflection stay open. Tokens
//! are never logged. Without a tokens file every caller is allowed everything (the default,
//! for loopback use).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use sha2::{Digest, Sha256};
use tonic::body::Body;
use tonic::Status;

/// Who is calling and what it may do.
#[derive(Debug)]
pub struct Principal {
    /// The token's name (for logs); never the token.
    pub name: String,
    scopes: HashSet<String>,
    /// Whether a token stands behind it (authentication on), as opposed to the anonymous
    /// caller of a server without tokens.
    token: bool,
    /// Its calls in progress (see [`crate::shed`]).
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
}

impl Principal {
    /// The caller when authentication is off: allowed everything.
    pub fn unrestricted() -> Principal {
        Principal::anonymous(HashSet::from(["*".to_owned()]))
    }

    fn anonymous(scopes: HashSet<String>) -> Principal {
        Principal {
            name: "anonymous".to_owned(),
            scopes,
            token: false,
            in_flight: Default::default(),
        }
    }

    /// Whether a token stands behind this caller.
    pub fn is_token(&self) -> bool {
        self.token
    }

    /// Whether the caller holds `scope` (or `*`).
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains("*") || self.scopes.contains(scope)
    }

    /// Whether the caller may act for `party` (hold its position scope).
    pub fn may_act_for(&self, party: &str) -> bool {
        self.has(&position_scope(party))
    }

    /// Whether the caller may see `party`'s position and utilities: its position scope, or
    /// [`ALL_PARTIES`].
    pub fn may_see(&self, party: &str) -> bool {
        self.has(ALL_PARTIES) || self.may_act_for(party)
    }

    /// Whether the caller holds the position scope of some party.
    fn acts_for_some_party(&self) -> bool {
        self.scopes.contains("*") || self.scopes.iter().any(|s| s.starts_with(POSITION_PREFIX))
    }

    fn meets(&self, requirement: Requirement) -> Result<(), String> {
        match requirement {
            Requirement::Scopes(scopes) => match scopes.iter().find(|s| !self.has(s)) {
                None => Ok(()),
                Some(missing) => Err(format!("lacks the scope {missing:?}")),
            },
            Requirement::SomeParty if self.acts_for_some_party() => Ok(()),
            Requirement::SomeParty => Err(format!(
                "acts for no party: the scope {POSITION_PREFIX}PARTY of the party named in the request is required"
            )),
        }
    }
}

/// Prefix of the scope that lets a caller act for a party and see its position.
pub const POSITION_PREFIX: &str = "negotiation:position:";
/// The scope that lets a caller see every party's position (but act for none).
pub const ALL_PARTIES: &str = "negotiation:all-parties";

/// The scope that lets a caller act for `party` and see its position.
pub fn position_scope(party: &str) -> String {
    format!("{POSITION_PREFIX}{party}")
}

/// What a method needs of its caller's token, checked on the request headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Every one of these scopes.
    Scopes(&'static [&'static str]),
    /// The position scope of some party; the handler checks that it is the party the
    /// request names.
    SomeParty,
}

/// What each method of a service needs: `(method name, requirement)`, e.g.
/// `("GetSeries", Requirement::Scopes(&["data:read"]))`.
pub type Policy = &'static [(&'static str, Requirement)];

/// Checks that `policy` names every method of `service` and nothing else, so that no method
/// is served without a stated scope.
pub fn check_policy(service: &str, policy: Policy) -> anyhow::Result<()> {
    let methods = tradepact_proto::method_names(service);
    let missing: Vec<&str> = methods
        .iter()
        .map(String::as_str)
        .filter(|m| !policy.iter().any(|(p, _)| p == m))
        .collect();
    let unknown: Vec<&str> = policy
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !methods.iter().any(|m| m == p))
        .collect();
    anyhow::ensure!(
        missing.is_empty() && unknown.is_empty(),
        "the scope policy of {service} misses {missing:?} and names unknown methods {unknown:?}"
    );
    Ok(())
}

/// Checks that the caller of `request` may act for `party`: `PERMISSION_DENIED` naming the
/// scope otherwise.
pub fn require_party<T>(request: &tonic::Request<T>, party: &str) -> Result<(), Status> {
    require(request, &position_scope(party))
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
                token: true,
                in_flight: Default::default(),
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
    service: &'static str,
    policy: Policy,
    // Made once: attaching them costs a reference count per call, not an allocation.
    unrestricted: Arc<Principal>,
    open: Arc<Principal>,
}

impl AuthLayer {
    /// With `None`, every caller is [`Principal::unrestricted`]. `policy` states what each
    /// method of `service` (its full name, e.g. `tradepact.data.v1.TradeDataService`) needs.
    pub fn new(
        tokens: Option<Arc<TokenStore>>,
        service: &'static str,
        policy: Policy,
    ) -> AuthLayer {
        AuthLayer {
            tokens,
            service,
            policy,
            unrestricted: Arc::new(Principal::unrestricted()),
            open: Arc::new(Principal::anonymous(HashSet::new())),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
            service: self.service,
            policy: self.policy,
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
    service: &'static str,
    policy: Policy,
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
        let principal = match &self.tokens {
            None => Ok(self.unrestricted.clone()),
            Some(_) if !crate::is_tradepact_call(request.uri().path()) => Ok(self.open.clone()),
            Some(tokens) => self.check(tokens, &request),
        };
        let connection = request.extensions().get::<crate::conn::ConnInfo>();
        match (&principal, connection, &self.tokens) {
            (Ok(_), Some(c), Some(_)) if crate::is_tradepact_call(request.uri().path()) => {
                c.authenticated()
            }
            (Err(status), Some(c), _) if status.code() == tonic::Code::Unauthenticated => {
                c.refused_authentication()
            }
            _ => {}
        }
        match principal {
            Ok(p) => {
                request.extensions_mut().insert(p);
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(status) => {
                tracing::warn!(method = %request.uri().path(), "refused: {}", status.message());
                let response = status.into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

impl<S> AuthService<S> {
    /// The caller of a call to a tradepact service, if its token meets the method's
    /// requirement.
    fn check(
        &self,
        tokens: &TokenStore,
        request: &Request<Body>,
    ) -> Result<Arc<Principal>, Status> {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                Status::unauthenticated("missing `authorization: Bearer TOKEN` metadata")
            })?;
        let principal = tokens
            .authenticate(presented)
            .ok_or_else(|| Status::unauthenticated("unknown bearer token"))?;
        let path = request.uri().path();
        let requirement = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.service))
            .and_then(|p| p.strip_prefix('/'))
            .and_then(|method| self.policy.iter().find(|(m, _)| *m == method))
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                Status::permission_denied(format!(
                    "no scope is defined for {}",
                    crate::status::truncated(path)
                ))
            })?;
        principal
            .meets(requirement)
            .map(|()| principal.clone())
            .map_err(|why| Status::permission_denied(format!("token {:?} {why}", principal.name)))
    }
}

/// The token of an `authorization` header value `Bearer TOKEN` (the scheme in any case).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer t0k", "bearer t0k", "BEARER  t0k ", "bEaReR t0k"] {
            assert_eq!(bearer_token(header), Some("t0k"), "{header:?}");
        }
        for header in ["Basic t0k", "Bearer", "Bearer ", "Bearert0k", "t0k"] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }

    #[test]
    fn party_scopes_act_and_see_all_parties_only_sees() {
        let text = format!(
            "{} us negotiation:position:US\n{} analyst negotiation:all-parties,negotiation:read\n",
            hash_token("us"),
            hash_token("analyst")
        );
        let store = TokenStore::parse(&text).unwrap();
        let us = store.authenticate("us").unwrap();
        assert!(us.may_act_for("US") && us.may_see("US"));
        assert!(!us.may_act_for("KOR") && !us.may_see("KOR"));
        assert!(us.meets(Requirement::SomeParty).is_ok());
        assert!(us
            .meets(Requirement::Scopes(&["negotiation:read"]))
            .is_err());
        let analyst = store.authenticate("analyst").unwrap();
        assert!(analyst.may_see("US") && analyst.may_see("KOR"));
        assert!(!analyst.may_act_for("US"));
        assert!(analyst.meets(Requirement::SomeParty).is_err());
        assert!(analyst
            .meets(Requirement::Scopes(&[
                "negotiation:read",
                "negotiation:all-parties"
            ]))
            .is_ok());
        assert!(Principal::unrestricted().may_act_for("ANY"));
    }
}
