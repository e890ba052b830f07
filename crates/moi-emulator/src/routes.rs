//! The JSON calls: tasks, task files, retry, session login and refresh, and the counters.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::extract::{JsonBody, QueryPairs};
use super::faults::Stats;
use super::{AppState, EmuError, Session, ok_empty, ok_json, refuse};
use moi_client::model::{LoginAnswer, LoginRequest};

type St = State<Arc<AppState>>;

pub(super) fn router(state: Arc<AppState>) -> Router {
    let router = super::connectors::routes(Router::new());
    let router = super::export::routes(router);
    let router = super::catalog::routes(router);
    let router = super::tasks::routes(router);
    router
        .route("/connectors/upload", post(super::upload::upload))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/volume", get(volume_listing))
        .fallback(not_found)
        // Upload bodies are streamed to disk and limited by `Faults::max_body_bytes`, not
        // by axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            count_refusals,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "ErrNotFound",
        format!("no such API path: {}", uri.path()),
    )
}

async fn stats(State(s): St) -> Response {
    axum::Json(s.stats.snapshot()).into_response()
}

/// What a volume holds now (not a MOI call): `?volume_id=ID`, one row per stored version.
async fn volume_listing(State(s): St, q: QueryPairs) -> Result<Response, EmuError> {
    let volume = q
        .last::<String>("volume_id")
        .unwrap_or_else(|| super::DEFAULT_VOLUME.to_string());
    let files = s.store().volume_listing(&volume)?;
    Ok(axum::Json(files).into_response())
}

/// Every 400 is counted, whichever handler refused the request.
async fn count_refusals(State(s): St, resp: Response) -> Response {
    if resp.status() == StatusCode::BAD_REQUEST {
        Stats::bump(&s.stats.bad_requests);
    }
    resp
}

fn new_token() -> String {
    // Tokens need only be unguessable within a test run; hash a counter and the clock.
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seed = format!("{n}-{:?}-{}", Instant::now(), std::process::id());
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn with_tokens(s: &AppState, mut resp: Response, uid: &str) -> Response {
    let access = new_token();
    let refresh = new_token();
    let session = Session {
        uid: uid.to_string(),
        refresh: refresh.clone(),
        expires: s.clock.instant() + s.config.token_ttl,
    };
    s.sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(access.clone(), session);
    let h = resp.headers_mut();
    if let (Ok(a), Ok(r)) = (access.parse(), refresh.parse()) {
        h.insert("Access-Token", a);
        h.insert("Refresh-Token", r);
    }
    resp
}

async fn login(State(s): St, JsonBody(req): JsonBody<LoginRequest>) -> Response {
    Stats::bump(&s.stats.requests);
    Stats::bump(&s.stats.logins);
    let known = s.config.logins.iter().any(|l| {
        l.account == req.account_name
            && l.username == req.username
            && l.password.expose() == req.password
    });
    if !known {
        Stats::bump(&s.stats.auth_rejected);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "ErrLoginFailed",
            "account, username or password is wrong",
        );
    }
    let uid = format!("{}:{}", req.account_name, req.username);
    let answer = LoginAnswer {
        uid: uid.clone(),
        login_at: "2025-02-12T03:38:36Z".into(),
    };
    with_tokens(&s, ok_json(answer), &uid)
}

async fn refresh(State(s): St, headers: HeaderMap) -> Response {
    Stats::bump(&s.stats.requests);
    Stats::bump(&s.stats.refreshes);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(access), Some(refresh), Some(uid)) = (
        header("access-token"),
        header("refresh-token"),
        header("uid"),
    ) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "ErrUnauthorized",
            "refresh needs the Access-Token, Refresh-Token and uid headers",
        );
    };
    let old = s
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&access);
    match old {
        // The refresh token outlives the access token: an expired access token may be renewed.
        Some(sess) if sess.refresh == refresh && sess.uid == uid => {
            with_tokens(&s, ok_empty(), &uid)
        }
        _ => {
            Stats::bump(&s.stats.auth_rejected);
            refuse(
                StatusCode::UNAUTHORIZED,
                "ErrUnauthorized",
                "the refresh token does not match a session; log in again",
            )
        }
    }
}
