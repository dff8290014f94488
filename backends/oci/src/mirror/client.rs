//! The mirror's HTTP client of its upstream registry: Basic credentials, and the Bearer token
//! handshake of Docker Hub, GHCR and Harbor (a 401 names a token endpoint, which trades the
//! credentials, or none, for a short-lived token per repository).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, RANGE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use super::Secret;
use crate::names::Name;

/// How long connecting to the upstream (or its token endpoint) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the upstream may stay silent in the middle of an answer before the fetch fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Tokens cached at most (one per repository); beyond it the cache starts over, so a client
/// walking many repositories cannot grow it without bound.
const MAX_TOKENS: usize = 1024;
/// Largest token-endpoint answer read.
const MAX_TOKEN_ANSWER: usize = 64 * 1024;

/// Why the upstream could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// Connecting, sending or reading failed (the upstream is down or too slow).
    #[error("upstream unreachable: {0}")]
    Transport(#[from] reqwest::Error),
    /// The token endpoint refused or answered nonsense.
    #[error("upstream token endpoint: {0}")]
    Token(String),
}

/// A `Range: bytes=<offset>-` header on a request, when there is an offset.
trait MaybeRange {
    fn maybe_range(self, from: Option<u64>) -> Self;
}

impl MaybeRange for RequestBuilder {
    fn maybe_range(self, from: Option<u64>) -> Self {
        match from {
            Some(offset) => self.header(RANGE, format!("bytes={offset}-")),
            None => self,
        }
    }
}

/// A cached Bearer token.
struct Token {
    value: String,
    until: Instant,
}

/// The upstream registry as a client sees it.
pub(crate) struct Upstream {
    /// `scheme://host[:port]/`.
    base: Url,
    http: reqwest::Client,
    username: Option<String>,
    password: Option<Secret>,
    tokens: Mutex<HashMap<String, Token>>,
}

impl Upstream {
    /// A client of `base` (already validated); plain-HTTP upstreams load no TLS roots.
    pub(crate) fn new(
        base: Url,
        username: Option<String>,
        password: Option<Secret>,
    ) -> Result<Upstream, String> {
        // reqwest is built without a bundled crypto provider; ring is the one the whole binary
        // uses. Installing fails only when a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("everlock-mirror/", env!("CARGO_PKG_VERSION")));
        if base.scheme() == "http" {
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder
            .build()
            .map_err(|e| format!("upstream client: {e}"))?;
        Ok(Upstream {
            base,
            http,
            username,
            password,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// `method /v2/<name>/<tail>` upstream, authenticating as the upstream asks: the cached
    /// token of the repository, else Basic credentials if configured; a Bearer challenge is
    /// answered once with a fresh token.
    pub(crate) async fn send(
        &self,
        method: Method,
        name: &Name,
        tail: &str,
        accept: &[&str],
    ) -> Result<Response, UpstreamError> {
        self.ask(method, name, tail, accept, None).await
    }

    /// `GET /v2/<name>/<tail>` from byte `offset` on (`Range: bytes=<offset>-`), the way
    /// [`Upstream::send`] authenticates. An upstream may ignore the range and answer `200`
    /// with the whole content; the caller tells the two apart by the status.
    pub(crate) async fn get_from(
        &self,
        name: &Name,
        tail: &str,
        offset: u64,
    ) -> Result<Response, UpstreamError> {
        self.ask(Method::GET, name, tail, &[], Some(offset)).await
    }

    async fn ask(
        &self,
        method: Method,
        name: &Name,
        tail: &str,
        accept: &[&str],
        from: Option<u64>,
    ) -> Result<Response, UpstreamError> {
        let url = self
            .base
            .join(&format!("v2/{name}/{tail}"))
            .map_err(|e| UpstreamError::Token(format!("bad upstream path: {e}")))?;
        let cached = self.cached_token(name);
        let first = self
            .request(method.clone(), url.clone(), accept, cached.as_deref())
            .maybe_range(from)
            .send()
            .await?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let Some((scheme, params)) = first
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
        else {
            return Ok(first);
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(first);
        }
        let token = self.fetch_token(name, &params).await?;
        self.remember(name, &token);
        Ok(self
            .request(method, url, accept, Some(&token.value))
            .maybe_range(from)
            .send()
            .await?)
    }

    /// The origin shown to operators (`/oci list`).
    pub(crate) fn origin(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn request(
        &self,
        method: Method,
        url: Url,
        accept: &[&str],
        token: Option<&str>,
    ) -> RequestBuilder {
        let mut request = self.http.request(method, url);
        for a in accept {
            request = request.header(ACCEPT, *a);
        }
        match (token, &self.username) {
            (Some(t), _) => request.bearer_auth(t),
            (None, Some(user)) => {
                request.basic_auth(user, self.password.as_ref().map(Secret::expose))
            }
            (None, None) => request,
        }
    }

    fn cached_token(&self, name: &Name) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .get(name.as_str())
            .filter(|t| t.until > Instant::now())
            .map(|t| t.value.clone())
    }

    fn remember(&self, name: &Name, token: &Token) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(
            name.as_str().to_owned(),
            Token {
                value: token.value.clone(),
                until: token.until,
            },
        );
    }

    /// Asks the challenge's realm for a pull token of `name`, with the Basic credentials if
    /// configured (anonymously otherwise, as Docker Hub allows for public images).
    async fn fetch_token(
        &self,
        name: &Name,
        params: &HashMap<String, String>,
    ) -> Result<Token, UpstreamError> {
        let realm = params
            .get("realm")
            .ok_or_else(|| UpstreamError::Token("Bearer challenge without realm".into()))?;
        let mut url =
            Url::parse(realm).map_err(|e| UpstreamError::Token(format!("realm {realm:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UpstreamError::Token(format!("realm {realm:?} is not HTTP")));
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{name}:pull"));
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &scope);
        }
        let mut request = self.http.get(url);
        if let Some(user) = &self.username {
            request = request.basic_auth(user, self.password.as_ref().map(Secret::expose));
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(UpstreamError::Token(format!(
                "answered {}",
                response.status()
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_TOKEN_ANSWER as u64)
        {
            return Err(UpstreamError::Token("answer too large".into()));
        }
        let body = response.bytes().await?;
        parse_token(&body, Instant::now())
    }
}

/// The JSON answer of a token endpoint (`token` or the OAuth2 `access_token`).
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// A token from a token endpoint's answer; it is used until shortly before it expires (the
/// Docker spec's default lifetime is 60 seconds).
fn parse_token(body: &[u8], now: Instant) -> Result<Token, UpstreamError> {
    if body.len() > MAX_TOKEN_ANSWER {
        return Err(UpstreamError::Token("answer too large".into()));
    }
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|e| UpstreamError::Token(format!("not a token answer: {e}")))?;
    let value = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| UpstreamError::Token("answer without a token".into()))?;
    let lifetime = answer.expires_in.unwrap_or(60).clamp(10, 3600);
    Ok(Token {
        value,
        until: now + Duration::from_secs(lifetime.saturating_sub(5)),
    })
}

/// Splits a `WWW-Authenticate` value into its scheme and `key="value"` parameters (quoted
/// values may contain commas and `\"`); `None` when there is no scheme.
pub(crate) fn parse_challenge(value: &str) -> Option<(String, HashMap<String, String>)> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), val.trim().to_owned());
    }
    Some((scheme.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_split_into_scheme_and_parameters() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, one",scope="repository:a/b:pull,push",error="x\"y""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "reg, one");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(p["error"], "x\"y");
        let (scheme, p) = parse_challenge("Basic realm=everlock").unwrap();
        assert_eq!(scheme, "Basic");
        assert_eq!(p["realm"], "everlock");
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn token_answers_give_a_token_that_expires_early() {
        let now = Instant::now();
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value, "abc");
        assert_eq!(t.until, now + Duration::from_secs(295));
        let t = parse_token(br#"{"access_token":"x"}"#, now).unwrap();
        assert_eq!(t.value, "x");
        assert_eq!(t.until, now + Duration::from_secs(55));
        assert!(parse_token(br#"{"token":""}"#, now).is_err());
        assert!(parse_token(b"<html>", now).is_err());
    }
}
