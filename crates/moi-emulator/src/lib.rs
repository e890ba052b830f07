//! A local MOI server, so that nobody needs a MOI account to try or test moi-ingest.
//!
//! It speaks the calls the worker uses (upload, task files/get/list/retry, task
//! create/update/delete/pause/resume, session login and refresh) over real HTTP, keeps its
//! state in SQLite and file bodies under its data folder, simulates ingestion over time,
//! and injects faults on demand. It shares the api module's wire types, so the two sides
//! cannot drift apart, but never calls the worker's pipeline.
//!
//! It runs its own accept loop (rather than `axum::serve`) so that a handler can close
//! its connection mid-body: that is how a dropped connection is emulated.

// Handlers and their helpers answer a refusal as a ready-made `Response` in `Err`; it is
// large, but only on the cold path of a rejected request.
#![allow(clippy::result_large_err)]

mod answer;
mod catalog;
mod clock;
mod connectors;
mod export;
mod extract;
mod faults;
mod form;
mod routes;
mod schema;
mod store;
mod tasks;
mod upload;
pub mod volume;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use faults::Rng;
pub use faults::{Faults, Stats, StatsSnapshot};
use store::Store;

pub(crate) use answer::{EmuError, json_body, ok_empty, ok_json, ok_lower, refuse};
pub use store::{ListedFile, file_type_of};

use moi_client::secret::Secret;

/// The volume the emulator has when none is named (the id of the vendor's examples).
pub const DEFAULT_VOLUME: &str = "1889578498228068352";

/// Which shape of answers the emulator gives (requests in either shape are accepted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// As the vendor's SDKs and their live tests expect (2026): the upload's `task_id` a
    /// JSON number, `/task/get` the task itself with string fields.
    #[default]
    Sdk,
    /// As the 2025 documents show: ids as strings, `/task/get` under `task`, integers.
    Seed,
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sdk" => Ok(Dialect::Sdk),
            "seed" => Ok(Dialect::Seed),
            other => Err(format!(
                "'{other}' is not a dialect: use sdk (the live service, as the vendor's SDKs \
                 see it) or seed (the 2025 documents)"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Login {
    pub account: String,
    pub username: String,
    pub password: Secret,
}

#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    pub data_dir: PathBuf,
    /// When set, requests must carry `moi-key` with this value (or a session token).
    pub api_key: Option<Secret>,
    pub logins: Vec<Login>,
    /// How long an access token lives (15 minutes at MOI).
    pub token_ttl: Duration,
    /// Volumes that exist: (id, name). Ids are opaque text.
    pub volumes: Vec<(String, String)>,
    pub dialect: Dialect,
    /// How long an uploaded file takes to be ingested.
    pub ingest_time: Duration,
    /// Largest `page_size` honoured by the list calls (larger requests get this many).
    pub max_page_size: u64,
    pub faults: Faults,
}

impl EmulatorConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            data_dir: data_dir.into(),
            api_key: None,
            logins: Vec::new(),
            token_ttl: Duration::from_secs(15 * 60),
            volumes: vec![(DEFAULT_VOLUME.to_string(), "demo-volume".to_string())],
            dialect: Dialect::default(),
            ingest_time: Duration::from_millis(300),
            max_page_size: 1000,
            faults: Faults::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot use the emulator's data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the emulator's database {path}: {source}")]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

struct Session {
    uid: String,
    refresh: String,
    expires: Instant,
}

pub(crate) struct AppState {
    config: EmulatorConfig,
    faults: RwLock<Faults>,
    rng: Mutex<Rng>,
    store: Mutex<Store>,
    stats: Arc<Stats>,
    arrivals: faults::Arrivals,
    /// API calls still to be answered 503, whatever the draws (`Faults::unavailable_next`).
    unavailable_left: std::sync::atomic::AtomicU64,
    /// Uploads of `Faults::unavailable_name` still to be answered 503.
    unavailable_name_left: std::sync::atomic::AtomicU64,
    sessions: Mutex<HashMap<String, Session>>,
    tmp_counter: std::sync::atomic::AtomicU64,
    /// The clock tokens expire by (the store has it too, for ingestion and exports).
    clock: Arc<clock::Clock>,
}

/// Closes the connection a request came on: the emulated network failure.
#[derive(Clone)]
pub(crate) struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    pub fn kill(&self) {
        self.0.notify_one();
    }
}

/// The gate every handler passes (counts, auth, injected faults), as an [`EmuError`] path.
pub(crate) async fn admit(s: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    Stats::bump(&s.stats.requests);
    s.authenticate(headers)?;
    s.common_faults().await
}

impl AppState {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn faults(&self) -> Faults {
        self.faults.read().map(|f| f.clone()).unwrap_or_default()
    }

    fn chance(&self, rate: f64) -> bool {
        self.rng.lock().map(|mut r| r.chance(rate)).unwrap_or(false)
    }

    fn volume_dir(&self, volume: &str) -> PathBuf {
        volume_dir(&self.config.data_dir, volume)
    }

    /// Checks the request's credentials; `Err` is the 401 to send.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), Response> {
        let open = self.config.api_key.is_none() && self.config.logins.is_empty();
        if open {
            return Ok(());
        }
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        if let (Some(key), Some(expected)) = (header("moi-key"), &self.config.api_key) {
            if key == expected.expose() {
                return Ok(());
            }
            Stats::bump(&self.stats.auth_rejected);
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "ErrUnauthorized",
                "the moi-key header does not hold a valid API key",
            ));
        }
        if let Some(token) = header("access-token") {
            let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let now = self.clock.instant();
            return match sessions.get(token) {
                Some(s) if s.expires > now && header("uid") == Some(s.uid.as_str()) => Ok(()),
                Some(s) if s.expires <= now => {
                    Stats::bump(&self.stats.auth_rejected);
                    Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "ErrTokenExpired",
                        "the access token has expired; refresh it through /auth/refresh",
                    ))
                }
                _ => {
                    Stats::bump(&self.stats.auth_rejected);
                    Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "ErrUnauthorized",
                        "the Access-Token and uid headers do not name a valid session",
                    ))
                }
            };
        }
        Stats::bump(&self.stats.auth_rejected);
        Err(refuse(
            StatusCode::UNAUTHORIZED,
            "ErrUnauthorized",
            "missing credentials: send the moi-key header (or Access-Token and uid)",
        ))
    }

    /// Latency and the request-level faults shared by every API call.
    async fn common_faults(&self) -> Result<(), Response> {
        let f = self.faults();
        if !f.latency.is_zero() {
            tokio::time::sleep(f.latency).await;
        }
        let forced = self
            .unavailable_left
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if forced || self.chance(f.unavailable) {
            Stats::bump(&self.stats.injected_unavailable);
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "ErrServiceUnavailable",
                "service unavailable (injected by the emulator)",
            ));
        }
        if self.chance(f.too_many) {
            Stats::bump(&self.stats.injected_too_many);
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "ErrTooManyRequests",
                "too many requests (injected by the emulator)",
            );
            r.headers_mut().insert(
                "retry-after",
                f.retry_after_secs
                    .to_string()
                    .parse()
                    .map_err(|_| ok_empty())?,
            );
            return Err(r);
        }
        if self.chance(f.error_code) {
            Stats::bump(&self.stats.injected_error_code);
            return Err(refuse(
                StatusCode::OK,
                "ErrInternal",
                "internal error (injected by the emulator)",
            ));
        }
        Ok(())
    }
}

/// Where a volume's files are stored. The id is opaque text, so it is encoded to stay one
/// safe path component (the accepted ids have no `/`, but this folder name must not depend
/// on that).
pub fn volume_dir(data_dir: &Path, volume: &str) -> PathBuf {
    let mut safe = String::new();
    for b in volume.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            safe.push(b as char);
        } else {
            safe.push_str(&format!("%{b:02X}"));
        }
    }
    data_dir.join("volumes").join(safe)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// A running emulator; dropping it stops the server.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats.snapshot()
    }
    pub fn set_faults(&self, faults: Faults) {
        self.state
            .unavailable_left
            .store(faults.unavailable_next, std::sync::atomic::Ordering::SeqCst);
        self.state.unavailable_name_left.store(
            faults.unavailable_name_times(),
            std::sync::atomic::Ordering::SeqCst,
        );
        if let Ok(mut f) = self.state.faults.write() {
            *f = faults;
        }
        if let Ok(mut r) = self.state.rng.lock() {
            *r = Rng::new(self.state.faults().seed);
        }
    }
    /// Where the files uploaded to `volume` are stored.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.state.volume_dir(volume)
    }
    /// Moves the emulator's clock forward: ingestion, exports and token lifetimes advance
    /// as if `by` had passed, so a test need not sleep.
    pub fn advance(&self, by: Duration) {
        self.state.clock.advance(by);
    }
    /// When each upload request arrived.
    pub fn upload_arrivals(&self) -> Vec<Instant> {
        self.state.arrivals.list()
    }
    /// The files `volume` holds now, one row per stored version (what a listing shows).
    pub fn listing(&self, volume: &str) -> Vec<ListedFile> {
        self.state
            .store()
            .volume_listing(volume)
            .unwrap_or_default()
    }
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
    /// Serves until `shutdown` is cancelled (for the `emulator` command).
    pub async fn wait(self, shutdown: CancellationToken) {
        shutdown.cancelled().await;
        self.stop().await;
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the emulator on `listen` (use `127.0.0.1:0` for an ephemeral port).
pub async fn start(config: EmulatorConfig, listen: &str) -> Result<RunningEmulator, EmulatorError> {
    let dir = config.data_dir.clone();
    let dir_err = |source| EmulatorError::DataDir {
        path: dir.clone(),
        source,
    };
    create_private_dir(&dir).map_err(dir_err)?;
    create_private_dir(&dir.join("tmp")).map_err(dir_err)?;
    create_private_dir(&dir.join("volumes")).map_err(dir_err)?;
    let db_path = dir.join("emulator.sqlite");
    precreate_private(&db_path).map_err(dir_err)?;
    let db_err = |source| EmulatorError::Database {
        path: db_path.clone(),
        source,
    };
    let clock = Arc::new(clock::Clock::default());
    let store = Store::open(&db_path, clock.clone()).map_err(db_err)?;
    for (id, name) in &config.volumes {
        store.ensure_volume(id, name).map_err(db_err)?;
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| EmulatorError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let unavailable_next = config.faults.unavailable_next;
    let unavailable_name_times = config.faults.unavailable_name_times();
    let state = Arc::new(AppState {
        faults: RwLock::new(config.faults.clone()),
        rng: Mutex::new(Rng::new(config.faults.seed)),
        config,
        store: Mutex::new(store),
        stats: Arc::new(Stats::default()),
        arrivals: faults::Arrivals::default(),
        unavailable_left: std::sync::atomic::AtomicU64::new(unavailable_next),
        unavailable_name_left: std::sync::atomic::AtomicU64::new(unavailable_name_times),
        sessions: Mutex::new(HashMap::new()),
        tmp_counter: Default::default(),
        clock,
    });
    let router = routes::router(state.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(accept_loop(listener, router, shutdown.clone()));
    Ok(RunningEmulator {
        addr,
        state,
        shutdown,
        task: Some(task),
    })
}

/// Creates `path` with owner-only permissions if it does not exist yet.
pub(crate) fn precreate_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

async fn accept_loop(listener: TcpListener, router: axum::Router, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small answers must not wait for Nagle's algorithm and the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let kill = ConnectionKill(Arc::new(Notify::new()));
            let kill_for_requests = kill.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(kill_for_requests.clone());
                    strip_trailing_slash(&mut req);
                    router.clone().oneshot(req)
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.0.notified() => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// The vendor's own examples call `/task/delete/`: accept a trailing slash everywhere.
fn strip_trailing_slash(req: &mut axum::http::Request<axum::body::Body>) {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/').to_string();
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed,
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
}
