//! The upload call's own HTTP/1.1 client: hyper-util's pooled client, and the TLS
//! configuration both clients share (the bundled Mozilla roots, and `--ca-cert`).
//!
//! reqwest wraps every request in layers this call never uses: a redirect policy that
//! parses the URL again (IDNA included) and clones the headers, a retry layer, and a URL
//! kept with the answer. For a small file those came to about a sixth of the client's CPU
//! (README, performance round four). Every other call, and any upload that a proxy
//! variable sends through a proxy, stays with reqwest, which tunnels and authenticates.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Url;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::auth::AuthHeaders;
use super::client::{ClientOptions, is_loopback};
use super::error::{ApiError, ErrorKind};
use super::multipart::UploadBody;
use super::upload::UPLOAD_CALL;

type Tls = hyper_rustls::HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connector under a limit for the whole connection: TCP and the TLS handshake, as
/// reqwest's `connect_timeout` is. hyper-util's own limit covers TCP only, so a service (or
/// a proxy) that takes the connection and never finishes the handshake would otherwise be
/// noticed only by the idle watchdog, and reported as one that took a body.
#[derive(Clone)]
struct Connector {
    tls: Tls,
    limit: std::time::Duration,
}

impl tower::Service<http::Uri> for Connector {
    type Response = <Tls as tower::Service<http::Uri>>::Response;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.tls.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.tls.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(done) => done,
                Err(_) => Err(format!("{} ({limit:?})", super::client::CONNECT_TIMED_OUT).into()),
            }
        })
    }
}

pub(crate) struct Direct {
    pool: Pool<Connector, reqwest::Body>,
    uri: http::Uri,
    user_agent: HeaderValue,
}

/// What came back: status, headers, the whole body.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Direct {
    /// A client for uploads to `url`, or `None` when a proxy variable applies to it (the
    /// upload then goes through reqwest and the proxy, like every other call).
    pub fn for_url(
        url: &Url,
        options: &ClientOptions,
        tls: rustls::ClientConfig,
    ) -> Result<Option<Direct>, ApiError> {
        let refused = |m: String| ApiError::new(ErrorKind::Permanent, "client", m);
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| refused(format!("the upload address {url} is not a URI: {e}")))?;
        let proxies = hyper_util::client::proxy::matcher::Matcher::from_env();
        if !is_loopback(url) && proxies.intercept(&uri).is_some() {
            return Ok(None);
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        // Also per TCP attempt: hyper-util shares it out among a name's addresses, so one
        // that never answers leaves time for the next (the limit below alone would not).
        http.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = Connector {
            tls: https,
            limit: options.connect_timeout,
        };
        let pool = Pool::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        let user_agent = HeaderValue::from_str(&options.user_agent)
            .map_err(|_| refused("the user agent cannot go in a header".into()))?;
        Ok(Some(Direct {
            pool,
            uri,
            user_agent,
        }))
    }

    /// Sends one upload and reads its whole answer.
    pub async fn send(&self, upload: UploadBody, auth: AuthHeaders) -> Result<Reply, ApiError> {
        let mut request = http::Request::new(upload.body);
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        let content_type = HeaderValue::from_str(&upload.content_type).map_err(|_| {
            ApiError::new(
                ErrorKind::Permanent,
                UPLOAD_CALL,
                "the content type is not a header",
            )
        })?;
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(upload.length));
        headers.insert(USER_AGENT, self.user_agent.clone());
        auth.insert_into(headers);
        let response = self.pool.request(request).await.map_err(|e| {
            let chain = super::client::error_chain(&e);
            super::client::transport_failure(UPLOAD_CALL, e.is_connect(), chain)
        })?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| {
            let chain = super::client::error_chain(&e);
            super::client::transport_failure(UPLOAD_CALL, false, chain)
        })?;
        Ok(Reply {
            status,
            headers: parts.headers,
            body: body.to_bytes(),
        })
    }
}

/// The certificates of a `--ca-cert` PEM file, each checked to be a usable trust anchor.
/// `Err` says what is wrong with the file, for the caller to put beside its name.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    let mut scratch = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("is not valid PEM ({e})"))?;
        scratch
            .add(cert.clone())
            .map_err(|e| format!("holds a certificate that cannot be parsed ({e})"))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate (a block that starts with \
                    -----BEGIN CERTIFICATE-----)"
            .into());
    }
    Ok(certs)
}

/// The TLS configuration of both clients, as reqwest would build its own: the bundled
/// Mozilla roots, ring, TLS 1.2 and 1.3; and the certificates of `--ca-cert` beside the
/// roots (already checked by [`ca_certificates`]).
pub(crate) fn tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, ApiError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(extra_roots.iter().cloned());
    // No ALPN here: hyper-rustls offers HTTP/1.1 itself (and refuses a config that already
    // names protocols), and reqwest speaks HTTP/1.1 without it.
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|_| ApiError::new(ErrorKind::Permanent, "client", "no TLS version available"))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}
