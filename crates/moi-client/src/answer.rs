//! What comes back: an answer's status, headers and body, read through MOI's envelope
//! into the call's `data`, or into an [`ApiError`] classified for the caller (transient,
//! permanent, authentication, malformed). Both HTTP clients hand their answers here.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Response, Url};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::client::transport_error;
use super::error::Remedy;
use super::error::{ApiError, ErrorKind};
use super::model::*;
use crate::secret::Redactor;

/// Codes of an error envelope that name a passing condition on the server's side; the
/// reference lists no codes, so this is a judgement, documented in the README.
fn code_is_transient(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    [
        "internal",
        "timeout",
        "unavailable",
        "busy",
        "toomany",
        "ratelimit",
        "retry",
    ]
    .iter()
    .any(|w| c.contains(w))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An answer's status, headers and body, as [`decode_body`] reads them.
pub(crate) fn answer<'a>(status: u16, headers: &HeaderMap, body: &'a [u8]) -> Answer<'a> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Answer {
        status,
        retry_after: retry_after(headers),
        request_id: text("x-request-id"),
        redirect: if (300..400).contains(&status) {
            text("location")
        } else {
            None
        },
        body,
    }
}

/// A redirect's target without what could be a secret: user info, query, fragment.
fn address_only(location: &str) -> String {
    match Url::parse(location) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => location
            .split(['?', '#'])
            .next()
            .unwrap_or(location)
            .to_string(),
    }
}

/// Reads the answer, checks the envelope and returns its `data`.
pub(crate) async fn decode<T: DeserializeOwned>(
    call: &'static str,
    resp: Response,
    redactor: &Redactor,
) -> Result<Option<T>, ApiError> {
    // The headers are read before the body consumes the response.
    let mut heard = answer(resp.status().as_u16(), resp.headers(), &[]);
    let bytes = resp.bytes().await.map_err(|e| transport_error(call, e))?;
    heard.body = &bytes;
    decode_body(call, heard, redactor)
}

/// An answer as it came off the wire: what [`decode_body`] reads.
pub struct Answer<'a> {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The `X-Request-Id` header, when there was one.
    pub request_id: Option<String>,
    /// Where a redirect (3xx) points: its `Location` header.
    pub redirect: Option<String>,
    pub body: &'a [u8],
}

/// Checks the envelope of an answer and returns its `data` as `T`: the decoding of every
/// call, with no network (`benches/codec.rs` measures it).
pub fn decode_body<T: DeserializeOwned>(
    call: &'static str,
    answer: Answer<'_>,
    redactor: &Redactor,
) -> Result<Option<T>, ApiError> {
    let Answer {
        status,
        retry_after,
        request_id: header_request_id,
        redirect,
        body: bytes,
    } = answer;
    // `data` stays a borrowed slice of the body until the call's own type reads it: one
    // parse, no intermediate `Value` tree.
    let envelope: Result<Envelope<&RawValue>, _> = serde_json::from_slice(bytes);
    let request_id = envelope
        .as_ref()
        .ok()
        .map(|e| e.request_id.clone())
        .filter(|r| !r.is_empty())
        .or(header_request_id);
    if let Some(r) = &request_id {
        tracing::debug!("{call}: HTTP {status}, request_id {r}");
    }
    let fail = |kind: ErrorKind, code: Option<String>, message: String| ApiError {
        kind,
        call,
        status: Some(status),
        code,
        message: redactor.scrub(&message),
        retry_after,
        request_id: request_id.clone(),
        before_connecting: false,
        remedy: None,
    };
    if (300..400).contains(&status) {
        return Err(ApiError {
            remedy: Some(Remedy::BaseEndpoint),
            ..fail(ErrorKind::Malformed, None, redirected(redirect.as_deref()))
        });
    }
    let envelope: Envelope<&RawValue> = match envelope {
        Ok(e) => e,
        Err(_) => {
            let kind = if (200..300).contains(&status) {
                ErrorKind::Malformed
            } else {
                ApiError::kind_for_status(status)
            };
            return Err(fail(
                kind,
                None,
                format!(
                    "the answer is not MOI's JSON envelope (is the endpoint right?): {}",
                    snippet(bytes)
                ),
            ));
        }
    };
    let success = (200..300).contains(&status);
    if !success || !envelope.is_ok() {
        let kind = refusal_kind(status, &envelope.code);
        let msg = if envelope.msg.is_empty() {
            format!("the service answered code '{}'", envelope.code)
        } else {
            envelope.msg.clone()
        };
        let code = (!envelope.code.is_empty()).then(|| envelope.code.clone());
        return Err(fail(kind, code, msg));
    }
    match envelope.data {
        None => Ok(None),
        Some(v) if v.get() == "null" => Ok(None),
        Some(v) => serde_json::from_str(v.get()).map(Some).map_err(|e| {
            fail(
                ErrorKind::Malformed,
                None,
                format!("the answer's data is not as the reference describes: {e}"),
            )
        }),
    }
}

/// Why a redirect is an error: redirects are not followed, since the key would go along to
/// wherever they point (reqwest drops only the standard credential headers on the way).
fn redirected(to: Option<&str>) -> String {
    let to = to
        .map(address_only)
        .unwrap_or_else(|| "an address it does not name".into());
    format!(
        "the service redirects this call to {to}. Redirects are not followed, so that the key \
         goes only to the endpoint given: if that address is the service, give its base \
         address as the endpoint"
    )
}

/// The kind of a refusal: by its HTTP status, or for a 2xx with an error code, by the code.
fn refusal_kind(status: u16, code: &str) -> ErrorKind {
    if !(200..300).contains(&status) {
        ApiError::kind_for_status(status)
    } else if code_is_transient(code) {
        ErrorKind::Transient
    } else {
        ErrorKind::Permanent
    }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(160)
        .collect();
    if one_line.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        one_line
    }
}
