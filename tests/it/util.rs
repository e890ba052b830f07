//! Shared by the integration tests: an emulator per test on 127.0.0.1:0, fresh temp
//! folders, a generated corpus, and the real binary run against them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use moi_ingest::emulator::{self, EmulatorConfig, RunningEmulator};
use moi_ingest::secret::Secret;

pub const KEY: &str = "test-key-5f0c1b2e9a";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub emu: RunningEmulator,
    /// The volume uploads go to (the emulator's first).
    pub volume: String,
}

impl Env {
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn journal(&self) -> String {
        self.path("journal.sqlite").display().to_string()
    }
    pub fn stored(&self) -> PathBuf {
        self.emu.volume_dir(&self.volume)
    }
}

pub async fn emulator_with(tune: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmulatorConfig::new(dir.path().join("emulator"));
    cfg.api_key = Some(Secret::new(KEY));
    cfg.ingest_time = Duration::from_millis(100);
    tune(&mut cfg);
    let volume = cfg.volumes[0].0.clone();
    let emu = emulator::start(cfg, "127.0.0.1:0").await.unwrap();
    Env { dir, emu, volume }
}

pub async fn emulator() -> Env {
    emulator_with(|_| {}).await
}

fn write(path: &Path, body: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn body(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + seed * 17) % 251) as u8)
        .collect()
}

/// The corpus the issues name: nested folders, zero-byte files, non-ASCII names, equal
/// base names in different folders, and one file of 20 MiB.
pub fn corpus(root: &Path) -> Vec<String> {
    let mut names = vec![
        "红楼梦(通行本)简体横排.pdf".to_string(),
        "a/report.pdf".into(),
        "b/report.pdf".into(),
        "a/deep/er/still/notes.md".into(),
        "empty.txt".into(),
        "a/empty-too.csv".into(),
        "big/twenty.bin".into(),
        "spaces in name/x y.txt".into(),
    ];
    for i in 0..12 {
        names.push(format!("many/file-{i:02}.txt"));
    }
    for (i, n) in names.iter().enumerate() {
        let len = match n.as_str() {
            "empty.txt" | "a/empty-too.csv" => 0,
            "big/twenty.bin" => 20 * 1024 * 1024 + 7,
            _ => 1000 + i * 997,
        };
        write(&root.join(n), &body(i, len));
    }
    names
}

/// `n` small files of `size` bytes.
pub fn small_files(root: &Path, n: usize, size: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("d{}/f{i:04}.txt", i % 7);
            write(&root.join(&name), &body(i, size));
            name
        })
        .collect()
}

/// Every file under `src` is under `stored` with the same bytes, and nothing else is.
pub fn assert_same_tree(src: &Path, stored: &Path) {
    let list = |root: &Path| {
        let mut v: Vec<String> = walkdir::WalkDir::new(root)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(root).unwrap().display().to_string())
            .collect();
        v.sort();
        v
    };
    let (a, b) = (list(src), list(stored));
    assert_eq!(a, b, "the stored files differ from the source files");
    for rel in a {
        assert!(
            std::fs::read(src.join(&rel)).unwrap() == std::fs::read(stored.join(&rel)).unwrap(),
            "{rel} differs"
        );
    }
}

/// The volume lists each of `names` exactly once (one stored file per path), and nothing else.
pub fn assert_once_per_path(env: &Env, names: &[String]) {
    let listing = env.emu.listing(&env.volume);
    let mut paths: Vec<String> = listing.iter().map(|f| f.path.clone()).collect();
    paths.sort();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(
        paths, want,
        "the volume does not hold each path exactly once"
    );
}

pub fn command(env: &Env) -> tokio::process::Command {
    command_of(env, env!("CARGO_BIN_EXE_moi-ingest"))
}

/// `program` with the environment a test's run of the binary has (a wrapper such as
/// `setpriv` that then runs the binary).
pub fn command_of(env: &Env, program: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("XDG_STATE_HOME", env.path("state"))
        .env("MOI_KEY", KEY)
        .env("MOI_ENDPOINT", env.emu.url())
        .kill_on_drop(true);
    c
}

/// Whether this process runs as root (who reads folders of mode 000 unless the
/// capability is dropped).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The binary as a user without root's power to read any folder: as root (CI), through
/// `setpriv` with CAP_DAC_* dropped, so that a folder of mode 000 is unreadable as it is
/// to a user.
pub fn command_as_user(env: &Env) -> tokio::process::Command {
    if is_root() {
        let mut c = command_of(env, "setpriv");
        c.arg("--bounding-set=-dac_override,-dac_read_search")
            .arg(env!("CARGO_BIN_EXE_moi-ingest"));
        c
    } else {
        command(env)
    }
}

/// Runs the binary to the end (bounded: a hung run fails the test).
pub async fn run(env: &Env, args: &[&str]) -> Output {
    let child = command(env)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    finish(child).await
}

/// Waits (bounded) for a spawned run to end.
pub async fn finish(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("moi-ingest did not finish within 180 s")
        .unwrap()
}

pub fn upload_args<'a>(env: &'a Env, dir: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "upload".into(),
        dir.into(),
        "--volume".into(),
        env.volume.clone(),
        "--journal".into(),
        env.journal(),
        "--json".into(),
        "--poll-interval".into(),
        "100ms".into(),
        "--max-poll-interval".into(),
        "300ms".into(),
        "--retry-delay".into(),
        "20ms".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub async fn upload(env: &Env, dir: &Path, extra: &[&str]) -> Output {
    let d = dir.display().to_string();
    let args = upload_args(env, &d, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(env, &refs).await
}

/// The summary: the last line of stdout, as JSON.
pub fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "last stdout line is not JSON ({e}): {last}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A FIFO at `path` (the walk must never open one).
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Several counts of a summary at once, for one assertion: `counts(&s, &["a", "b"])`.
pub fn counts(summary: &serde_json::Value, keys: &[&str]) -> Vec<u64> {
    keys.iter()
        .map(|k| {
            summary[*k]
                .as_u64()
                .unwrap_or_else(|| panic!("no count {k}: {summary}"))
        })
        .collect()
}

/// `moi-ingest status --journal J --json`, read.
pub async fn status_json(env: &Env) -> serde_json::Value {
    let out = run(env, &["status", "--journal", &env.journal(), "--json"]).await;
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", stderr(&out)))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Waits (bounded) until `cond` holds.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// An HTTPS front for `target` (an emulator's plain address): TLS with the test
/// certificate in `tests/fixtures/tls` (for 127.0.0.1 and `moi.test`), signed by a test CA
/// no system trusts (`ca.pem`; generated once with openssl, valid until 2126, used nowhere
/// else). Returns its `https://` URL.
pub async fn tls_front(target: &str) -> String {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs =
        vec![CertificateDer::from_pem_slice(include_bytes!("../fixtures/tls/server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/tls/server.key")).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let target = target
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(conn).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    url
}

/// A company proxy as clients meet it: `CONNECT host:port` opens a tunnel, whatever the
/// host, to `target` (so a name no resolver knows, such as `moi.test`, reaches a local
/// server). Returns its `http://` URL and the number of tunnels opened.
pub async fn connect_proxy(target: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = tunnels.clone();
    let target = target
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let target = target.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                // The request head, to its blank line (bounded).
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if conn.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                if !head.starts_with(b"CONNECT ") {
                    let _ = conn
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if conn
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                }
            });
        }
    });
    (url, tunnels)
}

/// A server that takes every connection and every byte sent to it, and never answers.
/// Returns its `http://` URL.
pub async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut conn, &mut tokio::io::sink()).await;
            });
        }
    });
    url
}
