//! The HTTP client: one connection pool, authentication, the typed calls, and transport
//! failures (what came back is read in `answer`).

use std::time::Duration;

use reqwest::{RequestBuilder, Url};
use serde::de::DeserializeOwned;

use super::auth::{Auth, Credentials};
use super::error::{ApiError, ErrorKind, Remedy};
use crate::secret::Redactor;

/// Network settings. The defaults suit a nightly run over an ordinary internet link.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// How long an upload may go without a byte moving (out, or the answer back) before it
    /// is aborted as stalled, and how long any other call may take as a whole.
    pub idle_timeout: Duration,
    /// How long the service keeps a session token (15 minutes per seed 003).
    pub session_ttl: Duration,
    pub user_agent: String,
    /// Holds upload bodies back to a bandwidth cap (`--bwlimit`), when one is set.
    pub body_pace: Option<std::sync::Arc<dyn super::BodyPace>>,
    /// Certificates to trust beside the built-in roots (`--ca-cert`, read by
    /// [`super::ca_certificates`]).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// How messages name the caller's settings.
    pub names: SettingNames,
}

/// How the client's messages name the settings a caller could change. A program gives its
/// own words (its flags and variables); a library's user gets these fields' names.
#[derive(Debug, Clone)]
pub struct SettingNames {
    pub endpoint: String,
    pub api_key: String,
    pub ca_cert: String,
    pub connect_timeout: String,
}

impl Default for SettingNames {
    fn default() -> Self {
        SettingNames {
            endpoint: "the endpoint".into(),
            api_key: "the API key".into(),
            ca_cert: "ClientOptions::extra_roots (moi_client::ca_certificates reads a PEM file)"
                .into(),
            connect_timeout: "ClientOptions::connect_timeout".into(),
        }
    }
}

/// How a connection that took too long is described; [`Remedy::ConnectTimeout`] is found by it.
pub(crate) const CONNECT_TIMED_OUT: &str =
    "the connection (TCP and TLS handshake) took longer than the connect timeout";

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            session_ttl: Duration::from_secs(15 * 60),
            user_agent: format!("moi-ingest/{}", env!("CARGO_PKG_VERSION")),
            body_pace: None,
            extra_roots: Vec::new(),
            names: SettingNames::default(),
        }
    }
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub struct Client {
    pub(crate) http: reqwest::Client,
    /// The upload call's own client, unless a proxy carries the uploads (see `direct`).
    pub(crate) direct: Option<super::direct::Direct>,
    pub(crate) base: String,
    /// The upload address, parsed once: parsing it per request (IDNA included) was a
    /// measurable share of a small file's CPU.
    pub(crate) upload_url: Url,
    pub(crate) auth: Auth,
    pub(crate) options: ClientOptions,
    pub(crate) redactor: Redactor,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

impl Client {
    pub fn new(
        endpoint: &Url,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ApiError> {
        let mut builder = reqwest::Client::builder();
        // HTTP(S)_PROXY and NO_PROXY are read as curl reads them, except for an endpoint on
        // this machine, which no proxy elsewhere could reach (the demo, a local emulator).
        if is_loopback(endpoint) {
            builder = builder.no_proxy();
        }
        // One TLS configuration for both clients, so that they trust the same roots.
        let tls = super::direct::tls_config(&options.extra_roots)?;
        let http = builder
            .use_preconfigured_tls(tls.clone())
            .connect_timeout(options.connect_timeout)
            // No client-wide read timeout: reqwest starts it with the request and resets it
            // only once the answer's headers arrive, so it cut off every upload whose body
            // took longer than the timeout to send, bytes moving or not. An upload has its
            // own watchdog on moving bytes; every other call carries `call_timeout`.
            .user_agent(options.user_agent.clone())
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            // Retrying is the pipeline's policy (see the module doc of `api`). reqwest's own
            // would only retry HTTP/2 refusals, which we never see, yet it clones every
            // request whose body could be replayed, to keep one at hand.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            // The MOI API does not redirect; one that does is answered with what it names
            // (`decode_body`), since the key would be sent on to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Permanent,
                    "building the HTTP client",
                    error_chain(&e),
                )
            })?;
        let redactor = Redactor::default();
        let auth = Auth::new(
            credentials,
            options.session_ttl,
            options.idle_timeout,
            redactor.clone(),
        );
        let base = endpoint.as_str().trim_end_matches('/').to_string();
        let upload_url = Url::parse(&format!("{base}/connectors/upload")).map_err(|e| {
            ApiError::new(
                ErrorKind::Local,
                "client",
                format!(
                    "the endpoint {base} cannot take an upload path ({e}); give {} as a base \
                     address such as https://host/api",
                    options.names.endpoint
                ),
            )
        })?;
        let direct = super::direct::Direct::for_url(&upload_url, &options, tls)?;
        Ok(Client {
            http,
            direct,
            base,
            upload_url,
            auth,
            options,
            redactor,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.base
    }

    pub fn credentials(&self) -> &Credentials {
        self.auth.credentials()
    }

    /// Scrubs `secret` from every message this client passes on (a connector's secret
    /// that a refusal might echo).
    pub fn redact(&self, secret: &crate::secret::Secret) {
        self.redactor.add(secret);
    }

    /// Logs in with the session credentials (`POST /auth/login`); returns the uid.
    pub async fn check_login(&self) -> Result<String, ApiError> {
        let tokens = self
            .auth
            .renew(&self.http, &self.base, None)
            .await
            .map_err(|e| self.explained(self.explain_auth(e)))?;
        Ok(tokens.uid().to_string())
    }

    /// The limit of a call other than an upload: its bodies are small both ways, so the
    /// whole call is held to the idle timeout.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.options.idle_timeout
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    /// Sends one request built by `build` (called again when a session token had to be
    /// renewed after a 401) and decodes the envelope.
    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        call: &'static str,
        build: impl FnMut(&reqwest::Client) -> Result<RequestBuilder, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        self.execute_unexplained(call, build)
            .await
            .map_err(|e| self.explained(e))
    }

    async fn execute_unexplained<T: DeserializeOwned>(
        &self,
        call: &'static str,
        mut build: impl FnMut(&reqwest::Client) -> Result<RequestBuilder, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        let mut renewed = false;
        loop {
            let (headers, generation) = self.auth_headers().await?;
            let resp = headers
                .apply(build(&self.http)?)
                .send()
                .await
                .map_err(|e| transport_error(call, e))?;
            let status = resp.status().as_u16();
            if self.renew_after(status, generation, &mut renewed).await? {
                continue;
            }
            return super::answer::decode(call, resp, &self.redactor)
                .await
                .map_err(|e| self.explain_auth(e));
        }
    }

    /// As [`Client::execute`], for an upload through the upload call's own client.
    pub(crate) async fn execute_direct<T: DeserializeOwned>(
        &self,
        direct: &super::direct::Direct,
        build: impl FnMut() -> Result<super::multipart::UploadBody, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        self.execute_direct_unexplained(direct, build)
            .await
            .map_err(|e| self.explained(e))
    }

    async fn execute_direct_unexplained<T: DeserializeOwned>(
        &self,
        direct: &super::direct::Direct,
        mut build: impl FnMut() -> Result<super::multipart::UploadBody, ApiError>,
    ) -> Result<Option<T>, ApiError> {
        let mut renewed = false;
        loop {
            let (headers, generation) = self.auth_headers().await?;
            let reply = direct.send(build()?, headers).await?;
            if self
                .renew_after(reply.status, generation, &mut renewed)
                .await?
            {
                continue;
            }
            let answer = super::answer::answer(reply.status, &reply.headers, &reply.body);
            return super::answer::decode_body(super::upload::UPLOAD_CALL, answer, &self.redactor)
                .map_err(|e| self.explain_auth(e));
        }
    }

    async fn auth_headers(&self) -> Result<(super::auth::AuthHeaders, u64), ApiError> {
        self.auth
            .headers(&self.http, &self.base)
            .await
            .map_err(|e| self.explain_auth(e))
    }

    /// Whether an answer of `status` calls for one more attempt: a 401 to a session whose
    /// tokens were not renewed yet for this request (they are renewed here).
    async fn renew_after(
        &self,
        status: u16,
        generation: u64,
        renewed: &mut bool,
    ) -> Result<bool, ApiError> {
        if status != 401 || !self.auth.is_session() || *renewed {
            return Ok(false);
        }
        *renewed = true;
        self.auth
            .renew(&self.http, &self.base, Some(generation))
            .await
            .map_err(|e| self.explain_auth(e))?;
        Ok(true)
    }

    fn explain_auth(&self, mut e: ApiError) -> ApiError {
        if e.kind == ErrorKind::Auth {
            let credential = match self.auth.credentials() {
                Credentials::ApiKey(_) => self.options.names.api_key.clone(),
                other => other.describe(),
            };
            e.message = format!(
                "{credential} was refused: {}. Check the credential and that it may use this \
                 endpoint",
                e.message
            );
        }
        e
    }

    /// `e` with its remedy said in the caller's words: every error leaves the client
    /// through here.
    pub(crate) fn explained(&self, mut e: ApiError) -> ApiError {
        let n = &self.options.names;
        match e.remedy.take() {
            Some(Remedy::BaseEndpoint) => {
                e.message = format!("{} (set {})", e.message, n.endpoint);
            }
            Some(Remedy::TrustCertificate) => {
                e.message = format!(
                    "{}. If a company proxy or a private CA signs the service's certificate, \
                     pass its PEM file with {}",
                    e.message, n.ca_cert
                );
            }
            Some(Remedy::ConnectTimeout) => {
                e.message = format!("{} (raise it with {})", e.message, n.connect_timeout);
            }
            None => {}
        }
        e
    }
}

/// A transport failure: nothing useful came back, so trying again may help.
pub(crate) fn transport_error(call: &'static str, e: reqwest::Error) -> ApiError {
    let kind = if e.is_builder() {
        ErrorKind::Permanent
    } else {
        ErrorKind::Transient
    };
    // The URL is left out: an endpoint written as https://user:pass@host would leak.
    ApiError {
        kind,
        ..transport_failure(call, e.is_connect(), error_chain(&e.without_url()))
    }
}

/// A failure to send or to read an answer, described by `chain` (with no URL in it).
pub(crate) fn transport_failure(
    call: &'static str,
    before_connecting: bool,
    chain: String,
) -> ApiError {
    let remedy = if chain.contains(CONNECT_TIMED_OUT) {
        Some(Remedy::ConnectTimeout)
    } else if before_connecting && chain.contains("certificate") {
        Some(Remedy::TrustCertificate)
    } else {
        None
    };
    ApiError {
        before_connecting,
        remedy,
        ..ApiError::new(ErrorKind::Transient, call, chain)
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod setting_names_tests {
    use super::*;
    use crate::secret::Secret;

    fn client(names: SettingNames) -> Client {
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        let options = ClientOptions {
            names,
            ..ClientOptions::default()
        };
        Client::new(&url, Credentials::ApiKey(Secret::new("k")), options).unwrap()
    }

    /// A library's user reads the client's own words; a program's user reads its flags.
    #[test]
    fn a_remedy_is_said_in_the_callers_words() {
        let cert = || ApiError {
            remedy: Some(Remedy::TrustCertificate),
            ..ApiError::new(ErrorKind::Transient, "POST /x", "invalid peer certificate")
        };
        let plain = client(SettingNames::default()).explained(cert());
        assert!(
            plain.message.contains("ClientOptions::extra_roots"),
            "{}",
            plain.message
        );
        assert!(!plain.message.contains("--"), "{}", plain.message);
        let cli = SettingNames {
            ca_cert: "--ca-cert".into(),
            ..SettingNames::default()
        };
        let said = client(cli).explained(cert());
        assert!(
            said.message.ends_with("pass its PEM file with --ca-cert"),
            "{}",
            said.message
        );
        assert_eq!(said.remedy, None, "said once");
    }
}
