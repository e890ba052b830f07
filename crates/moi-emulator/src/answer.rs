//! What every answer looks like: the envelope (`code`, `msg`, `request_id`, `data`),
//! the export API's lower-case variant, and a refusal as a value ([`EmuError`]).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Every answer is this envelope, with a `request_id` in the body and in `X-Request-Id`,
/// as the live service does.
pub(crate) fn envelope(
    status: StatusCode,
    code: &str,
    msg: &str,
    data: Option<serde_json::Value>,
) -> Response {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request_id = format!("emu-{:x}-{n:08x}", std::process::id());
    let mut body = serde_json::json!({"code": code, "msg": msg, "request_id": request_id});
    if let Some(d) = data {
        body["data"] = d;
    }
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = request_id.parse() {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The JSON error every refusal carries: `{"code": ..., "msg": ..., "request_id": ...}`.
pub(crate) fn refuse(status: StatusCode, code: &str, msg: impl Into<String>) -> Response {
    envelope(status, code, &msg.into(), None)
}

pub(crate) fn ok_json(data: impl serde::Serialize) -> Response {
    match serde_json::to_value(data) {
        Ok(v) => envelope(StatusCode::OK, "OK", "OK", Some(v)),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrInternal",
            e.to_string(),
        ),
    }
}

pub(crate) fn ok_empty() -> Response {
    envelope(StatusCode::OK, "OK", "OK", None)
}

/// The export API's own envelope: a lower-case `"ok"`, and `"data": null` when there is
/// nothing, as seed 004 shows it.
pub(crate) fn ok_lower(data: Option<serde_json::Value>) -> Response {
    envelope(
        StatusCode::OK,
        "ok",
        "ok",
        Some(data.unwrap_or(serde_json::Value::Null)),
    )
}

/// A refusal from a handler, as a value: `?` turns storage errors into a 500, and the
/// response is the same JSON error every refusal carries.
#[derive(Debug)]
pub(crate) struct EmuError {
    pub status: StatusCode,
    pub code: &'static str,
    pub msg: String,
}

impl EmuError {
    pub fn bad(msg: impl Into<String>) -> EmuError {
        EmuError {
            status: StatusCode::BAD_REQUEST,
            code: "ErrInvalidParameter",
            msg: msg.into(),
        }
    }
    pub fn not_found(code: &'static str, msg: impl Into<String>) -> EmuError {
        EmuError {
            status: StatusCode::NOT_FOUND,
            code,
            msg: msg.into(),
        }
    }
}

impl From<rusqlite::Error> for EmuError {
    fn from(e: rusqlite::Error) -> EmuError {
        EmuError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "ErrInternal",
            msg: format!("emulator storage error: {e}"),
        }
    }
}

impl IntoResponse for EmuError {
    fn into_response(self) -> Response {
        refuse(self.status, self.code, self.msg)
    }
}

/// A JSON body as `T`, or the 400 that says what is wrong with it.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, EmuError> {
    serde_json::from_slice(body).map_err(|e| {
        EmuError::bad(format!(
            "the JSON body is not as the reference describes: {e}"
        ))
    })
}
