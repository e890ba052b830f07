//! moi-ingest as an operator installs and watches it: `--version`, its lines under
//! systemd, man pages, metrics pushed to a Pushgateway, the alert rules and the dashboard.
//!
//! The tests that need Debian's `prometheus-pushgateway` or `promtool` are `#[ignore]`d:
//! `.ci/run` installs both and runs them with `--ignored`, and a missing tool fails them
//! there, saying what to install.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory;
use moi_ingest::cli::Cli;

use crate::util::{self, code, stderr, upload};

/// A program the test cannot do without: found on PATH, or the test fails with what to
/// install.
fn required_tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: apt-get install {package} (.ci/run does)")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_the_commit_it_was_built_from() {
    let env = util::emulator().await;
    let out = util::run(&env, &["--version"]).await;
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = head.unwrap_or_else(|| "unknown".into());
    assert_eq!(
        text,
        format!("moi-ingest {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// The device and inode of a file, as `JOURNAL_STREAM` names a stream.
fn stream_id(file: &std::fs::File) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

/// Runs the binary with stderr into a file, `JOURNAL_STREAM` set to `stream` (`None`: the
/// file's own, as systemd would set it), and returns the exit code and what stderr held.
async fn run_with_stream(env: &util::Env, args: &[String], stream: Option<&str>) -> (i32, String) {
    let log = env.path(&format!("stderr-{}", args.len()));
    let file = std::fs::File::create(&log).unwrap();
    let id = stream.map_or_else(|| stream_id(&file), str::to_string);
    let child = util::command(env)
        .args(args)
        .env("JOURNAL_STREAM", id)
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let out = util::finish(child).await;
    (code(&out), std::fs::read_to_string(&log).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_lines_carry_a_priority_and_no_timestamp_of_ours() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    let d = src.display().to_string();
    let stamped =
        |line: &str| line.len() > 24 && line[..24].ends_with('Z') && line.starts_with("20");

    let (exit, text) = run_with_stream(&env, &util::upload_args(&env, &d, &[]), None).await;
    assert_eq!(exit, 0, "{text}");
    assert!(text.contains("<6>upload: 3 files seen"), "{text}");
    for line in text.lines() {
        assert!(
            line.starts_with("<6>") && !stamped(&line[3..]),
            "{line:?} in\n{text}"
        );
    }

    // A night that goes wrong says so at priority 3, which `journalctl -p warning` shows.
    let mut args = util::upload_args(&env, &d, &[]);
    let at = args.iter().position(|a| a == "--volume").unwrap();
    args[at + 1] = "no-such-volume".into();
    let (exit, text) = run_with_stream(&env, &args, None).await;
    assert_eq!(exit, 2, "{text}");
    assert!(
        text.starts_with("<3>moi-ingest: error: the volume no-such-volume"),
        "{text}"
    );

    // A child that inherits the variable while its stderr goes elsewhere stamps its lines.
    let (exit, text) = run_with_stream(&env, &util::upload_args(&env, &d, &[]), Some("1:1")).await;
    assert_eq!(exit, 0, "{text}");
    assert!(
        text.lines().all(|l| stamped(l) && !l.contains("<6>")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn man_writes_a_page_for_every_command_and_each_documents_its_options() {
    let env = util::emulator().await;
    let dir = env.path("man1");
    let out = util::run(&env, &["man", "--dir", &dir.display().to_string()]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    fn check(cmd: &clap::Command, prefix: &str, dir: &Path) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        let page = std::fs::read_to_string(dir.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no page {name}.1: {e}"));
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                // roff writes a hyphen as `\-`.
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(page.contains(&roff), "{name}.1 lacks --{long}");
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            // The page names each command's own page, and that page exists.
            let roff_page = format!("{name}-{}(1)", sub.get_name()).replace('-', "\\-");
            assert!(
                page.contains(&roff_page),
                "{name}.1 does not point to {}",
                sub.get_name()
            );
            check(sub, &name, dir);
        }
    }
    let mut cli = Cli::command();
    cli.build();
    check(&cli, "", &dir);
    let upload = std::fs::read_to_string(dir.join("moi-ingest-upload.1")).unwrap();
    assert!(upload.contains("\\-\\-metrics\\-push"), "{upload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zsh_and_fish_complete_options_too() {
    let env = util::emulator().await;
    for (shell, option) in [("zsh", "--concurrency"), ("fish", "concurrency")] {
        let out = util::run(&env, &["completions", shell]).await;
        assert_eq!(code(&out), 0);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains(option) && script.contains("max-delete"),
            "{shell}: {script}"
        );
    }
}

/// A Pushgateway that never answers: a closed port.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushgateway_that_is_down_is_a_warning_not_a_failed_night() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 4, 10);
    let gw = closed_port();
    let out = upload(&env, &src, &["--metrics-push", &gw]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(util::summary(&out)["uploaded"], 4);
    let err = stderr(&out);
    assert_eq!(
        err.matches("cannot push the metrics to the Pushgateway")
            .count(),
        1,
        "warned once: {err}"
    );
    assert!(err.contains("WARN"), "{err}");
    // An address that is not a gateway's is refused before anything is sent.
    let out = upload(&env, &src, &["--metrics-push", "ftp://gw"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--metrics-push"), "{}", stderr(&out));
}

/// A real Pushgateway (Debian's `prometheus-pushgateway`) on a free port of 127.0.0.1.
struct Pushgateway {
    url: String,
    _child: tokio::process::Child,
}

async fn pushgateway(dir: &Path) -> Pushgateway {
    let program = required_tool("prometheus-pushgateway", "prometheus-pushgateway");
    let addr = closed_port().trim_start_matches("http://").to_string();
    let child = tokio::process::Command::new(program)
        .arg(format!("--web.listen-address={addr}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{url}/-/ready")).send().await
            && r.status().is_success()
        {
            return Pushgateway { url, _child: child };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the Pushgateway at {url} did not get ready within 10 s");
}

/// `name{labels} value` lines of an exposition, by series.
fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (s, v) = l.rsplit_once(' ').unwrap();
            (s.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus-pushgateway: .ci/run installs it and runs ignored tests"]
async fn metrics_are_pushed_to_a_real_pushgateway_grouped_by_job_volume_and_shard() {
    let env = util::emulator().await;
    let gw = pushgateway(env.dir.path()).await;
    let src = env.path("src");
    util::small_files(&src, 12, 10);
    let prom = env.path("run.prom");
    let p = prom.display().to_string();
    let mut pushed = BTreeMap::new();
    for shard in ["0/2", "1/2"] {
        let journal = env.path(&format!("journal-{}.sqlite", &shard[..1]));
        let d = src.display().to_string();
        let mut args = util::upload_args(
            &env,
            &d,
            &[
                "--metrics-push",
                &gw.url,
                "--metrics-file",
                &p,
                "--shard",
                shard,
            ],
        );
        let at = args.iter().position(|a| a == "--journal").unwrap();
        args[at + 1] = journal.display().to_string();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = util::run(&env, &refs).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        pushed.insert(shard, series(&std::fs::read_to_string(&prom).unwrap()));
    }
    let text = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at_gateway = series(&text);
    let mut uploaded = 0.0;
    for (shard, file) in &pushed {
        // Every series the file has is at the gateway, with the same value, under the
        // group's labels: job, volume and shard (and the empty instance it adds).
        for (s, v) in file {
            if s.starts_with("moi_ingest_duration_seconds") {
                continue;
            }
            let (name, labels) = s.split_once('{').unwrap();
            let want = format!(
                "{name}{{instance=\"\",job=\"moi-ingest\",shard=\"{shard}\",volume=\"{}\"}}",
                env.volume
            );
            assert!(labels.contains(&format!("shard=\"{shard}\"")), "{s}");
            assert_eq!(at_gateway.get(&want), Some(v), "{want} in\n{text}");
        }
        uploaded += file[&format!(
            "moi_ingest_files_uploaded{{volume=\"{}\",shard=\"{shard}\"}}",
            env.volume
        )];
    }
    assert_eq!(
        uploaded, 12.0,
        "the two shards together sent the folder once"
    );
    assert!(
        text.contains("push_time_seconds{instance=\"\",job=\"moi-ingest\",shard=\"1/2\""),
        "{text}"
    );
}

/// Flags that cut a night short after `after` on a slow service: one file at a time.
fn cut_short(after: &'static str) -> [&'static str; 8] {
    [
        "--max-duration",
        after,
        "--drain-timeout",
        "100ms",
        "--concurrency",
        "1",
        "--batch-files",
        "1",
    ]
}

/// One night's metrics file, from a real run.
async fn night(env: &util::Env, src: &Path, extra: &[&str]) -> (i32, BTreeMap<String, f64>) {
    let prom = env.path("night.prom");
    let _ = std::fs::remove_file(&prom);
    let p = prom.display().to_string();
    let mut args = vec!["--metrics-file", p.as_str()];
    args.extend_from_slice(extra);
    let out = upload(env, src, &args).await;
    (code(&out), series(&std::fs::read_to_string(&prom).unwrap()))
}

/// The series of a metrics file for promtool, held for 33 hours, as a textfile collector
/// or a Pushgateway would keep offering them; their timestamps moved so that the run
/// started at 0 (promtool's clock starts at the epoch).
fn promtool_series(file: &BTreeMap<String, f64>) -> String {
    let started = file
        .iter()
        .find(|(s, _)| s.starts_with("moi_ingest_started_timestamp_seconds"))
        .map(|(_, v)| *v)
        .unwrap();
    let mut out = String::new();
    for (s, v) in file {
        let v = if s.contains("_timestamp_seconds") {
            v - started
        } else {
            *v
        };
        out.push_str(&format!(
            "      - series: '{s}'\n        values: '{v}+0x200'\n"
        ));
    }
    out
}

/// The rule named `alert` in the shipped rules file.
fn rule(alert: &str) -> yaml_rust2::Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/moi-ingest.rules.yml");
    let docs =
        yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    docs[0]["groups"][0]["rules"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|r| r["alert"].as_str() == Some(alert))
        .unwrap_or_else(|| panic!("no rule {alert}"))
        .clone()
}

/// `exp_alerts` for `alert` firing on the series of `file` with `value`: the rule's
/// labels and the file's, and its annotations as Prometheus renders them.
fn expected(file: &BTreeMap<String, f64>, alert: &str, value: &str) -> String {
    let labels: Vec<(String, String)> = file
        .keys()
        .next()
        .unwrap()
        .split_once('{')
        .unwrap()
        .1
        .trim_end_matches('}')
        .split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect();
    let rule = rule(alert);
    let render = |text: &str| {
        let mut t = text.replace("{{ $value }}", value);
        for name in ["volume", "shard"] {
            let v = labels
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str());
            t = t.replace(&format!("{{{{ $labels.{name} }}}}"), v);
        }
        serde_json::to_string(&t).unwrap()
    };
    let mut out = "          - exp_labels:\n".to_string();
    for (k, v) in rule["labels"].as_hash().unwrap() {
        out.push_str(&format!(
            "              {}: {}\n",
            k.as_str().unwrap(),
            v.as_str().unwrap()
        ));
    }
    for (k, v) in &labels {
        out.push_str(&format!("              {k}: \"{v}\"\n"));
    }
    out.push_str("            exp_annotations:\n");
    for (k, v) in rule["annotations"].as_hash().unwrap() {
        out.push_str(&format!(
            "              {}: {}\n",
            k.as_str().unwrap(),
            render(v.as_str().unwrap())
        ));
    }
    out
}

/// A promtool test case over `file`'s series: each check is when, which alert, and the
/// value it fires with, or `None` when it must not fire.
fn case(file: &BTreeMap<String, f64>, checks: &[(&str, &str, Option<&str>)]) -> String {
    let mut out = format!(
        "  - interval: 10m\n    input_series:\n{}    alert_rule_test:\n",
        promtool_series(file)
    );
    for (at, alert, value) in checks {
        out.push_str(&format!(
            "      - eval_time: {at}\n        alertname: {alert}\n        exp_alerts:"
        ));
        match value {
            Some(v) => out.push_str(&format!("\n{}", expected(file, alert, v))),
            None => out.push_str(" []\n"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool (Debian's prometheus): .ci/run installs it and runs ignored tests"]
async fn the_alert_rules_fire_on_real_nights_and_only_then() {
    let promtool = required_tool("promtool", "prometheus");
    // A night that sent everything.
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 5, 10);
    let (exit, good) = night(&env, &src, &[]).await;
    assert_eq!(exit, 0);
    // A night with files that fail for good, in a journal that never had a good night.
    let env_bad = util::emulator_with(|c| c.faults.always_fail_suffix = Some(".bad".into())).await;
    let bad_src = env_bad.path("src");
    util::small_files(&bad_src, 3, 10);
    std::fs::write(bad_src.join("refused.bad"), b"x").unwrap();
    let (exit, bad) = night(&env_bad, &bad_src, &["--max-retries", "0"]).await;
    assert_eq!(exit, 1, "{bad:?}");
    // Two nights cut short by --max-duration, on a slow service.
    let env_slow = util::emulator_with(|c| c.faults.latency = Duration::from_millis(400)).await;
    let slow_src = env_slow.path("src");
    util::small_files(&slow_src, 40, 10);
    let window = cut_short("1s");
    let (exit, first_cut) = night(&env_slow, &slow_src, &window).await;
    assert_eq!(exit, 6);
    let (exit, second_cut) = night(&env_slow, &slow_src, &window).await;
    assert_eq!(exit, 6);
    // A run caught while it goes: its file says running, with a window of 1 h + 30 s.
    let env_hung = util::emulator_with(|c| c.faults.latency = Duration::from_secs(4)).await;
    let hung_src = env_hung.path("src");
    util::small_files(&hung_src, 2, 10);
    let prom = env_hung.path("running.prom");
    let p = prom.display().to_string();
    let d = hung_src.display().to_string();
    let args = util::upload_args(
        &env_hung,
        &d,
        &["--max-duration", "1h", "--metrics-file", &p],
    );
    let child = util::command(&env_hung)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    util::wait_until("the running run writes its metrics", || prom.exists()).await;
    let running = series(&std::fs::read_to_string(&prom).unwrap());
    drop(child);
    assert!(
        running
            .iter()
            .any(|(s, v)| s.starts_with("moi_ingest_running") && *v == 1.0)
    );

    let mut tests = String::new();
    tests.push_str(&case(
        &good,
        &[
            ("1h", "MoiIngestNoSuccessfulNight", None),
            ("25h", "MoiIngestNoSuccessfulNight", None),
            ("27h", "MoiIngestNoSuccessfulNight", Some("")),
            ("1h", "MoiIngestFilesFailed", None),
            ("1h", "MoiIngestOutgrowsWindow", None),
            ("1h", "MoiIngestRunOverran", None),
        ],
    ));
    tests.push_str(&case(
        &bad,
        &[
            ("10m", "MoiIngestFilesFailed", Some("1")),
            ("25h", "MoiIngestNoSuccessfulNight", None),
            ("27h", "MoiIngestNoSuccessfulNight", Some("")),
        ],
    ));
    tests.push_str(&case(
        &first_cut,
        &[("10m", "MoiIngestOutgrowsWindow", None)],
    ));
    tests.push_str(&case(
        &second_cut,
        &[
            ("10m", "MoiIngestOutgrowsWindow", Some("2")),
            ("10m", "MoiIngestRunOverran", None),
        ],
    ));
    tests.push_str(&case(
        &running,
        &[
            ("60m", "MoiIngestRunOverran", None),
            ("72m", "MoiIngestRunOverran", Some("")),
            ("72m", "MoiIngestFilesFailed", None),
        ],
    ));
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/moi-ingest.rules.yml");
    let file = env.path("rules.test.yml");
    std::fs::write(
        &file,
        format!(
            "rule_files:\n  - {}\nevaluation_interval: 1m\ntests:\n{tests}",
            rules.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(promtool)
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&file).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_json_and_names_only_metrics_a_run_writes() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    let (exit, written) = night(&env, &src, &["--max-duration", "1h"]).await;
    assert_eq!(exit, 0);
    let names: std::collections::BTreeSet<&str> = written
        .keys()
        .map(|s| s.split_once('{').unwrap().0)
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/moi-ingest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut named = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("moi_ingest_") {
                    assert!(
                        names.contains(word),
                        "{word} in panel {:?} is not a metric a run writes: {names:?}",
                        panel["title"]
                    );
                    named += 1;
                }
            }
        }
    }
    for metric in [
        "moi_ingest_files_uploaded",
        "moi_ingest_bytes_uploaded",
        "moi_ingest_files_failed",
        "moi_ingest_duration_seconds",
        "moi_ingest_window_seconds",
        "moi_ingest_last_success_timestamp_seconds",
    ] {
        assert!(text.contains(metric), "the dashboard shows no {metric}");
    }
    assert!(named >= 6, "{named}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_exit_status_turns_a_cut_off_into_0_and_keeps_the_real_code_elsewhere() {
    let env = util::emulator_with(|c| c.faults.latency = Duration::from_millis(300)).await;
    let src = env.path("src");
    util::small_files(&src, 20, 10);
    let window = cut_short("500ms");
    let mut extra = window.to_vec();
    extra.extend(["--success-exit-status", "5,6"]);
    let (exit, metrics) = night(&env, &src, &extra).await;
    assert_eq!(exit, 0, "a cut-off reported as 0");
    let code = |m: &BTreeMap<String, f64>| {
        m.iter()
            .find(|(s, _)| s.starts_with("moi_ingest_last_exit_code"))
            .map(|(_, v)| *v)
    };
    assert_eq!(code(&metrics), Some(6.0), "the metrics keep the real code");
    let status = util::status_json(&env).await;
    assert_eq!(status["runs"][0]["exit_code"], 6, "{status}");
    // Without the flag, the same night exits 6.
    let (exit, _) = night(&env, &src, &window).await;
    assert_eq!(exit, 6);
    // A code the flag does not list passes through.
    let mut extra = window.to_vec();
    extra.extend(["--success-exit-status", "5"]);
    let (exit, _) = night(&env, &src, &extra).await;
    assert_eq!(exit, 6);
}
