//! Credentials and the session-token life cycle.
//!
//! With an API key every request carries `moi-key`. With a session login (seed 003) the
//! tokens arrive in response headers and live 15 minutes, while a nightly run lasts hours:
//! tokens are refreshed ahead of expiry and once more when the service answers 401. Only
//! one refresh runs at a time; requests that find a refresh under way wait for it and use
//! its result (the generation counter tells a waiter that somebody else already renewed).

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Mutex, RwLock};

use super::error::{ApiError, ErrorKind};
use super::model::{LoginAnswer, LoginRequest};
use crate::secret::{Redactor, Secret};

#[derive(Clone, Debug)]
pub enum Credentials {
    ApiKey(Secret),
    Session {
        account: String,
        username: String,
        password: Secret,
    },
}

impl Credentials {
    /// Names the credential in messages, without its value.
    pub fn describe(&self) -> String {
        match self {
            Credentials::ApiKey(_) => "the API key".to_string(),
            Credentials::Session {
                account, username, ..
            } => format!("the login of user '{username}' in account '{account}'"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Tokens {
    access: Secret,
    refresh: Secret,
    uid: String,
    obtained: Instant,
    generation: u64,
}

pub(crate) struct Auth {
    credentials: Credentials,
    /// The API key's header value, checked and built once (`None`: it cannot go in a
    /// header, which each request then reports).
    key_header: Option<HeaderValue>,
    /// How long the service keeps an access token; we renew a minute before.
    ttl: Duration,
    /// How long a login or refresh call may take.
    call_timeout: Duration,
    tokens: RwLock<Option<Tokens>>,
    renewing: Mutex<()>,
    redactor: Redactor,
}

const LOGIN: &str = "POST /auth/login";
const REFRESH: &str = "POST /auth/refresh";

impl Tokens {
    pub fn uid(&self) -> &str {
        &self.uid
    }
}

impl Auth {
    pub fn new(
        credentials: Credentials,
        ttl: Duration,
        call_timeout: Duration,
        redactor: Redactor,
    ) -> Self {
        match &credentials {
            Credentials::ApiKey(k) => redactor.add(k),
            Credentials::Session { password, .. } => redactor.add(password),
        }
        let key_header = match &credentials {
            Credentials::ApiKey(k) => header_value(k.expose(), "the API key").ok(),
            Credentials::Session { .. } => None,
        };
        Auth {
            credentials,
            key_header,
            ttl,
            call_timeout,
            tokens: RwLock::new(None),
            renewing: Mutex::new(()),
            redactor,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn is_session(&self) -> bool {
        matches!(self.credentials, Credentials::Session { .. })
    }

    fn renew_margin(&self) -> Duration {
        (self.ttl / 15).clamp(Duration::from_millis(50), Duration::from_secs(60))
    }

    /// Headers for one request, and the token generation they carry.
    pub async fn headers(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<(AuthHeaders, u64), ApiError> {
        match &self.credentials {
            Credentials::ApiKey(key) => {
                let value = match &self.key_header {
                    Some(v) => v.clone(),
                    None => header_value(key.expose(), "the API key")?,
                };
                Ok((AuthHeaders::Key(value), 0))
            }
            Credentials::Session { .. } => {
                let fresh = {
                    let t = self.tokens.read().await;
                    t.as_ref()
                        .filter(|t| t.obtained.elapsed() + self.renew_margin() < self.ttl)
                        .cloned()
                };
                let tokens = match fresh {
                    Some(t) => t,
                    None => self.renew(http, base, None).await?,
                };
                let headers = AuthHeaders::Session {
                    access: header_value(tokens.access.expose(), "the access token")?,
                    uid: header_value(&tokens.uid, "the uid")?,
                };
                Ok((headers, tokens.generation))
            }
        }
    }

    /// Renews the tokens. `rejected` is the generation a 401 came back for: when another
    /// request has renewed since, its tokens are used as they are.
    pub async fn renew(
        &self,
        http: &reqwest::Client,
        base: &str,
        rejected: Option<u64>,
    ) -> Result<Tokens, ApiError> {
        let _one_at_a_time = self.renewing.lock().await;
        let current = self.tokens.read().await.clone();
        if let Some(t) = &current {
            let renewed_since = rejected.is_some_and(|g| t.generation != g);
            let still_fresh =
                rejected.is_none() && t.obtained.elapsed() + self.renew_margin() < self.ttl;
            if renewed_since || still_fresh {
                return Ok(t.clone());
            }
        }
        let generation = current.as_ref().map_or(1, |t| t.generation + 1);
        let next = match &current {
            Some(t) => match self.refresh(http, base, t, generation).await {
                Ok(n) => n,
                // The refresh token may be gone too after a long pause: log in afresh.
                Err(e) if matches!(e.kind, ErrorKind::Auth | ErrorKind::Permanent) => {
                    self.login(http, base, generation).await?
                }
                Err(e) => return Err(e),
            },
            None => self.login(http, base, generation).await?,
        };
        self.redactor.add(&next.access);
        self.redactor.add(&next.refresh);
        *self.tokens.write().await = Some(next.clone());
        Ok(next)
    }

    async fn login(
        &self,
        http: &reqwest::Client,
        base: &str,
        generation: u64,
    ) -> Result<Tokens, ApiError> {
        let Credentials::Session {
            account,
            username,
            password,
        } = &self.credentials
        else {
            return Err(ApiError::new(ErrorKind::Auth, LOGIN, "no login configured"));
        };
        let body = LoginRequest {
            account_name: account.clone(),
            username: username.clone(),
            password: password.expose().to_string(),
        };
        let resp = http
            .post(format!("{base}/auth/login"))
            .timeout(self.call_timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| super::client::transport_error(LOGIN, e))?;
        let headers = resp.headers().clone();
        let answer: Option<LoginAnswer> = super::answer::decode(LOGIN, resp, &self.redactor)
            .await
            .map_err(|mut e| {
                if e.kind == ErrorKind::Permanent {
                    e.kind = ErrorKind::Auth;
                }
                e
            })?;
        let uid = answer.map(|a| a.uid).unwrap_or_default();
        tokens_from(&headers, uid, generation, LOGIN)
    }

    async fn refresh(
        &self,
        http: &reqwest::Client,
        base: &str,
        old: &Tokens,
        generation: u64,
    ) -> Result<Tokens, ApiError> {
        let resp = http
            .post(format!("{base}/auth/refresh"))
            .timeout(self.call_timeout)
            .header("Access-Token", header_value(old.access.expose(), "token")?)
            .header(
                "Refresh-Token",
                header_value(old.refresh.expose(), "token")?,
            )
            .header("uid", header_value(&old.uid, "uid")?)
            .json(&serde_json::json!({"type": "user"}))
            .send()
            .await
            .map_err(|e| super::client::transport_error(REFRESH, e))?;
        let headers = resp.headers().clone();
        let _: Option<serde_json::Value> =
            super::answer::decode(REFRESH, resp, &self.redactor).await?;
        tokens_from(&headers, old.uid.clone(), generation, REFRESH)
    }
}

fn tokens_from(
    headers: &HeaderMap,
    uid: String,
    generation: u64,
    call: &'static str,
) -> Result<Tokens, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Malformed,
                    call,
                    format!("the answer has no {name} header"),
                )
            })
    };
    Ok(Tokens {
        access: get("Access-Token")?,
        refresh: get("Refresh-Token")?,
        uid,
        obtained: Instant::now(),
        generation,
    })
}

/// What authenticates one request.
pub(crate) enum AuthHeaders {
    Key(HeaderValue),
    Session {
        access: HeaderValue,
        uid: HeaderValue,
    },
}

impl AuthHeaders {
    pub fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        self.insert_into(&mut headers);
        request.headers(headers)
    }

    pub fn insert_into(self, headers: &mut HeaderMap) {
        match self {
            AuthHeaders::Key(key) => {
                headers.insert(HeaderName::from_static("moi-key"), key);
            }
            AuthHeaders::Session { access, uid } => {
                headers.insert(HeaderName::from_static("access-token"), access);
                headers.insert(HeaderName::from_static("uid"), uid);
            }
        }
    }
}

/// A header value marked sensitive, so that it is never shown in a debug print.
fn header_value(v: &str, what: &str) -> Result<HeaderValue, ApiError> {
    let mut value = HeaderValue::from_str(v).map_err(|_| {
        ApiError::new(
            ErrorKind::Auth,
            "building a request",
            format!("{what} contains characters that cannot go in an HTTP header"),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}
