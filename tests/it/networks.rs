//! A first night on the networks users have: a service that cannot be reached, one that
//! takes bodies and never answers, a TLS handshake that never ends, a private CA, a proxy.

use std::time::Duration;

use crate::first_night::{fresh, output};
use crate::util::{self, code, stderr, summary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_service_stops_the_run_and_loses_nothing() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = util::small_files(&src, 40, 100);
    // A port nobody listens on: every connection is refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &[]);
    args.extend(["--endpoint".to_string(), endpoint.clone()]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    // Stopped at once: the two requests the 40 files make (32 a request) used their
    // attempts, and nothing more was tried.
    let requests = summary(&out)["requests"].as_u64().unwrap();
    assert!(requests <= 2 * 5, "{requests} requests: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no request reached {endpoint}"))
            && err.contains("Check the endpoint"),
        "{err}"
    );
    assert!(
        !err.contains("WARN upload of"),
        "files were failed one by one: {err}"
    );
    // Left pending, not failed: the same cron line against the service, when it is back,
    // sends them all.
    let journal = env.journal();
    let status = util::run(&env, &["status", "--journal", &journal, "--json"]).await;
    let counts = &summary(&status)["counts"];
    assert_eq!(
        (counts["failed"].as_u64(), counts["uploaded"].as_u64()),
        (Some(0), Some(0)),
        "{counts}"
    );
    let back = moi_ingest::emulator::start(
        {
            let mut cfg = moi_ingest::emulator::EmulatorConfig::new(env.path("emulator-back"));
            cfg.ingest_time = Duration::from_millis(50);
            cfg
        },
        &format!("127.0.0.1:{port}"),
    )
    .await
    .unwrap();
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], names.len());
    assert_eq!(back.stats().files_accepted, names.len() as u64);
}

/// A service (or proxy) that takes every body and never answers is reported as such, not
/// as one no request reached, and the run still stops with exit 7 and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_takes_bodies_and_never_answers_is_named_as_such() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 5, 100);
    let endpoint = util::silent_server().await;
    let d = src.display().to_string();
    let mut args = util::upload_args(&env, &d, &["--idle-timeout", "300ms", "--attempts", "2"]);
    args.extend(["--endpoint".to_string(), endpoint.clone()]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{endpoint} took upload bodies but never answered one"
        )) && err.contains("--idle-timeout")
            && !err.contains("no request reached"),
        "{err}"
    );
    let status = util::run(&env, &["status", "--journal", &env.journal(), "--json"]).await;
    let counts = &summary(&status)["counts"];
    assert_eq!(counts["failed"].as_u64(), Some(0), "{counts}");
}

/// A service (or proxy) that takes the connection and never finishes the TLS handshake is
/// given up after --connect-timeout, and named as one no request reached; it is not left
/// to the idle watchdog, which would call it one that took a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_never_finishes_is_a_connect_timeout() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3, 100);
    let endpoint = util::silent_server().await.replace("http://", "https://");
    let d = src.display().to_string();
    let mut args = util::upload_args(
        &env,
        &d,
        &[
            "--connect-timeout",
            "300ms",
            "--idle-timeout",
            "30s",
            "--attempts",
            "1",
        ],
    );
    args.extend(["--endpoint".to_string(), endpoint.clone()]);
    let out = util::command(&env).args(&args).output().await.unwrap();
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no request reached")
            && err.contains("--connect-timeout")
            && !err.contains("never answered"),
        "{err}"
    );
}

/// Behind a company proxy that inspects TLS, or a service with a private CA, the first
/// night fails on the certificate and says what to do; with the CA's PEM file (--ca-cert or
/// MOI_CA_CERT) it goes through. A file that is not PEM is refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_with_ca_cert_and_named_without_it() {
    let env = util::emulator().await;
    let names = util::small_files(&env.path("src"), 5, 100);
    let https = util::tls_front(&env.emu.url()).await;
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
    let vol = env.volume.clone();
    let night = ["upload", "./src", "--volume", vol.as_str(), "--no-wait"];

    let mut c = fresh(&env, env.dir.path());
    c.env("MOI_ENDPOINT", &https).args(night);
    let out = output(c).await;
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("certificate") && err.contains("--ca-cert"),
        "{err}"
    );
    assert_eq!(env.emu.stats().upload_requests, 0);

    let mut c = fresh(&env, env.dir.path());
    c.env("MOI_ENDPOINT", &https)
        .env("MOI_CA_CERT", ca)
        .args(night);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.emu.stats().files_accepted, names.len() as u64);
    util::assert_same_tree(&env.path("src"), &env.stored());

    // Not PEM at all, and a PEM block whose content is not a certificate: both refused
    // before anything is sent, naming the file.
    let not_pem = env.path("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let broken = env.path("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, what) in [
        (&not_pem, "holds no PEM certificate"),
        (&broken, "cannot be parsed"),
    ] {
        let mut c = fresh(&env, env.dir.path());
        c.env("MOI_ENDPOINT", &https)
            .args(night)
            .arg("--ca-cert")
            .arg(file);
        let out = output(c).await;
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        let err = stderr(&out);
        let named = format!("--ca-cert {}", file.display());
        assert!(err.contains(&named) && err.contains(what), "{err}");
    }
}

/// Behind a company proxy (HTTPS_PROXY, read as curl and rclone read it), the night
/// tunnels through it. A loopback endpoint never goes through a proxy: none elsewhere
/// could reach it, so the demo and a local emulator work whatever the proxy variables say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_carries_the_night_and_loopback_bypasses_it() {
    let env = util::emulator().await;
    let names = util::small_files(&env.path("src"), 5, 100);
    let https = util::tls_front(&env.emu.url()).await;
    let (proxy, tunnels) = util::connect_proxy(&https).await;
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
    let vol = env.volume.clone();
    let night = ["upload", "./src", "--volume", vol.as_str(), "--no-wait"];

    // A name only the proxy knows how to reach: the request can only arrive through it.
    let mut c = fresh(&env, env.dir.path());
    c.env("MOI_ENDPOINT", "https://moi.test")
        .env("MOI_CA_CERT", ca)
        .env("HTTPS_PROXY", &proxy)
        .args(night);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(tunnels.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(env.emu.stats().files_accepted, names.len() as u64);

    // The same proxy variables, a loopback endpoint: straight there, no tunnel (this
    // proxy refuses anything but CONNECT, so a request sent through it would fail).
    let before = tunnels.load(std::sync::atomic::Ordering::SeqCst);
    let accepted = env.emu.stats().files_accepted;
    std::fs::write(env.path("src/new.txt"), "one more").unwrap();
    let mut c = fresh(&env, env.dir.path());
    c.env("HTTPS_PROXY", &proxy)
        .env("HTTP_PROXY", &proxy)
        .env("ALL_PROXY", &proxy)
        .args(night);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(tunnels.load(std::sync::atomic::Ordering::SeqCst), before);
    assert!(env.emu.stats().files_accepted > accepted);
}
