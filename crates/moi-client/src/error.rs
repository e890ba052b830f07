//! A classified API error: callers decide what to do from [`ErrorKind`], never from text.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401/403 or a refused login: every further request would fail the same way.
    Auth,
    /// Timeouts, dropped connections, 408, 429, 5xx: the same request may succeed later.
    Transient,
    /// Any other refusal (4xx, or HTTP 200 with an error `code`): repeating it will not help.
    Permanent,
    /// The answer was not the JSON the reference describes (a proxy's HTML page, say).
    Malformed,
    /// A local file could not be opened or read while building the request.
    Local,
    /// A local file is no longer what the walk saw (size or modification time).
    Changed,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Which call failed, e.g. `POST /connectors/upload`.
    pub call: &'static str,
    pub status: Option<u16>,
    /// The envelope's `code`, when the service sent one.
    pub code: Option<String>,
    /// What to show the user: the service's `msg`, or what went wrong locally.
    pub message: String,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// The envelope's `request_id` (or the `X-Request-Id` header): what vendor support asks for.
    pub request_id: Option<String>,
    /// The request failed before a connection was made (refused, no route, name not found).
    pub before_connecting: bool,
    /// A setting of the caller's that would help, which [`crate::Client`] names in the
    /// message by its [`crate::SettingNames`] before the error leaves it.
    pub remedy: Option<Remedy>,
}

/// What the caller could change, said in its own words ([`crate::SettingNames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The endpoint is not the service's base address (a redirect, a pasted call URL).
    BaseEndpoint,
    /// The service's certificate is signed by a CA the client does not trust.
    TrustCertificate,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
}

impl ApiError {
    pub fn new(kind: ErrorKind, call: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            call,
            status: None,
            code: None,
            message: message.into(),
            retry_after: None,
            request_id: None,
            before_connecting: false,
            remedy: None,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// A short key that is equal for errors that will repeat identically for every file
    /// (same call, status and code): what the run's circuit breaker counts.
    pub fn signature(&self) -> String {
        format!(
            "{}|{:?}|{}",
            self.call,
            self.status,
            self.code.as_deref().unwrap_or("")
        )
    }

    /// Classification of an HTTP status that came without a usable envelope.
    pub fn kind_for_status(status: u16) -> ErrorKind {
        match status {
            401 | 403 => ErrorKind::Auth,
            408 | 429 => ErrorKind::Transient,
            500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file that could not be read never reached the service: say so, not the call.
        if matches!(self.kind, ErrorKind::Local | ErrorKind::Changed) {
            return write!(f, "local file: {}", self.message);
        }
        write!(f, "{}: {}", self.call, self.message)?;
        let mut notes = Vec::new();
        if let Some(s) = self.status {
            notes.push(format!("HTTP {s}"));
        }
        if let Some(c) = &self.code {
            notes.push(format!("code {c}"));
        }
        if let Some(r) = &self.request_id {
            notes.push(format!("request_id {r}"));
        }
        if notes.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", notes.join(", "))
        }
    }
}

impl std::error::Error for ApiError {}
