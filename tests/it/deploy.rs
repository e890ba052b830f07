//! The deployment examples under `deploy/` are checked, not just shipped: the Kubernetes
//! manifests parse and shard as they say, every command line in them parses with the real
//! CLI, and the systemd template units pass `systemd-analyze verify` and keep an exposure
//! of at most 2.0 (an ignored test, which `.ci/run` runs where systemd is installed).

use std::path::{Path, PathBuf};

use clap::Parser;
use moi_ingest::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

/// A moi-ingest command line from a deployment file must be one the CLI accepts.
fn assert_parses(args: &[String]) {
    let mut argv = vec!["moi-ingest".to_string()];
    argv.extend(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(&argv) {
        panic!("{argv:?} does not parse: {e}");
    }
}

/// What a cron line runs after the binary, up to its `>>` redirection, must parse.
fn assert_cron_command_parses(after_binary: &str) {
    let argv: Vec<String> = after_binary
        .split(">>")
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_parses(&argv);
}

fn str_of(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Checks an Indexed Job spec (a Job's, or a CronJob's jobTemplate's).
fn check_indexed_job(spec: &Yaml) {
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().unwrap();
    let parallelism = spec["parallelism"].as_i64().unwrap();
    assert!(
        n > 1 && (1..=n).contains(&parallelism),
        "completions {n}, parallelism {parallelism}"
    );
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<String> = c["args"].as_vec().unwrap().iter().map(str_of).collect();
    let shard_at = args.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(args[shard_at + 1], format!("$(JOB_COMPLETION_INDEX)/{n}"));
    // What the pod runs, once Kubernetes has expanded the index.
    let expanded: Vec<String> = args
        .iter()
        .map(|a| a.replace("$(JOB_COMPLETION_INDEX)", "3"))
        .collect();
    assert_parses(&expanded);
    let env = c["env"].as_vec().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap()
    };
    assert!(
        var("MOI_KEY")["valueFrom"]["secretKeyRef"]["name"]
            .as_str()
            .is_some(),
        "the key comes from a Secret"
    );
    let state = var("XDG_STATE_HOME")["value"].as_str().unwrap().to_string();
    let mounts = c["volumeMounts"].as_vec().unwrap();
    let volumes = pod["volumes"].as_vec().unwrap();
    let folder = &args[1];
    let data = mounts
        .iter()
        .find(|m| folder.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap();
    assert_eq!(
        data["readOnly"].as_bool(),
        Some(true),
        "the folder is mounted read-only"
    );
    let journals = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(state.as_str()))
        .unwrap();
    let journal_volume = volumes
        .iter()
        .find(|v| v["name"].as_str() == journals["name"].as_str())
        .unwrap();
    assert!(
        journal_volume["persistentVolumeClaim"]["claimName"]
            .as_str()
            .is_some(),
        "journals live on a PersistentVolumeClaim"
    );
    // Exits 5 and 6 are nights as planned: reported as 0, and never failed by the policy.
    let ok_at = args
        .iter()
        .position(|a| a == "--success-exit-status")
        .expect("--success-exit-status");
    assert_eq!(args[ok_at + 1], "5,6");
    let rules = spec["podFailurePolicy"]["rules"].as_vec().unwrap();
    assert!(
        rules.iter().all(|r| {
            r["onExitCodes"]["values"]
                .as_vec()
                .is_none_or(|v| v.iter().all(|c| !matches!(c.as_i64(), Some(0 | 5 | 6))))
        }),
        "the policy fails no night that went as planned"
    );
    assert_eq!(
        rules[0]["onExitCodes"]["containerName"].as_str(),
        c["name"].as_str()
    );
    // Non-root, a read-only root file system, no privileges.
    let pod_sec = &pod["securityContext"];
    assert_eq!(pod_sec["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod_sec["runAsUser"].as_i64().unwrap() > 0);
    let sec = &c["securityContext"];
    assert_eq!(sec["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sec["allowPrivilegeEscalation"].as_bool(), Some(false));
    // Metrics are pushed; nothing is written where nobody reads it.
    assert!(args.iter().any(|a| a == "--metrics-push"));
    assert!(!args.iter().any(|a| a == "--metrics-file"));
    // The image is the Containerfile's.
    let image = c["image"].as_str().unwrap();
    let containerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile"))
            .unwrap();
    assert!(image.ends_with("/moi-ingest:0.1.0"), "{image}");
    assert!(
        containerfile.contains(&format!("-t {image}")),
        "the Containerfile says how to build {image}"
    );
}

#[test]
fn the_kubernetes_manifests_shard_as_they_say() {
    let text = std::fs::read_to_string(deploy("kubernetes/indexed-job.yaml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let job = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Job"))
        .unwrap();
    check_indexed_job(&job["spec"]);
    let pvc = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("PersistentVolumeClaim"))
        .unwrap();
    // SQLite's WAL needs one host: block storage one node mounts.
    assert_eq!(
        pvc["spec"]["accessModes"][0].as_str(),
        Some("ReadWriteOnce")
    );
    assert_eq!(
        pvc["metadata"]["name"].as_str(),
        job["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"]
            .as_str()
    );
    let text = std::fs::read_to_string(deploy("kubernetes/cronjob.yaml")).unwrap();
    let cron = &YamlLoader::load_from_str(&text).unwrap()[0];
    assert_eq!(cron["kind"].as_str(), Some("CronJob"));
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    check_indexed_job(&cron["spec"]["jobTemplate"]["spec"]);
}

fn unit_value(text: &str, key: &str) -> Option<String> {
    let mut joined = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        joined.push_str(line.trim_end_matches('\\'));
        if !line.ends_with('\\') {
            joined.push('\n');
        }
    }
    joined
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// `KEY=value` lines of an environment file, as systemd reads them.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn the_systemd_template_units_and_the_crontab_hold_up() {
    let service = std::fs::read_to_string(deploy("systemd/moi-ingest@.service")).unwrap();
    let timer = std::fs::read_to_string(deploy("systemd/moi-ingest@.timer")).unwrap();
    let example = std::fs::read_to_string(deploy("systemd/example.env")).unwrap();
    assert_eq!(unit_value(&timer, "Persistent").as_deref(), Some("true"));
    assert!(unit_value(&timer, "RandomizedDelaySec").is_some());
    assert_eq!(
        unit_value(&service, "EnvironmentFile").as_deref(),
        Some("/etc/moi-ingest/%i.env")
    );
    for (key, want) in [
        ("SuccessExitStatus", "5 6"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "moi-ingest"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("KillSignal", "SIGINT"),
    ] {
        assert_eq!(unit_value(&service, key).as_deref(), Some(want), "{key}");
    }
    // Longer than the default drain (30 s), so a stopped night flushes its journal.
    let stop: u64 = unit_value(&service, "TimeoutStopSec")
        .unwrap()
        .parse()
        .unwrap();
    assert!(stop > 30, "TimeoutStopSec={stop}");
    // The job's command line, with the example's settings as systemd expands them: ${VAR}
    // as one word, $VAR split on spaces; --volume comes from MOI_VOLUME.
    let vars = env_file(&example);
    let var = |k: &str| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    for key in ["MOI_KEY", "MOI_ENDPOINT", "MOI_VOLUME"] {
        var(key);
    }
    let exec = unit_value(&service, "ExecStart").unwrap();
    let mut argv: Vec<String> = Vec::new();
    for word in exec.split_whitespace().skip(1) {
        match word {
            "${MOI_INGEST_FOLDER}" => argv.push(var("MOI_INGEST_FOLDER")),
            "$MOI_INGEST_FLAGS" => argv.extend(
                var("MOI_INGEST_FLAGS")
                    .split_whitespace()
                    .map(str::to_string),
            ),
            w => argv.push(w.to_string()),
        }
    }
    argv.extend(["--volume".to_string(), "1889578498228068352".to_string()]);
    assert_parses(&argv);
    let cron = std::fs::read_to_string(deploy("cron/moi-ingest.cron")).unwrap();
    let line = cron.lines().find(|l| l.starts_with("15 ")).unwrap();
    assert!(
        !line.contains("flock"),
        "the journal's lock handles overlap"
    );
    let cmd = line.split("/usr/local/bin/moi-ingest ").nth(1).unwrap();
    assert_cron_command_parses(cmd);
}

/// systemd's own check on an instance of each template, with ExecStart pointed at this
/// build, and the units' exposure score.
#[test]
#[ignore = "needs systemd-analyze (Debian's systemd): .ci/run installs it and runs ignored tests"]
fn systemd_analyze_verifies_the_template_units_and_scores_them_at_most_2() {
    let service = std::fs::read_to_string(deploy("systemd/moi-ingest@.service")).unwrap();
    let timer = std::fs::read_to_string(deploy("systemd/moi-ingest@.timer")).unwrap();
    let probe = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze is not installed: apt-get install systemd");
    assert!(probe.status.success());
    let dir = tempfile::tempdir().unwrap();
    let instance = dir.path().join("moi-ingest@papers.service");
    std::fs::write(
        &instance,
        service.replace("/usr/bin/moi-ingest", env!("CARGO_BIN_EXE_moi-ingest")),
    )
    .unwrap();
    std::fs::write(dir.path().join("moi-ingest@papers.timer"), &timer).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&instance)
        .arg(dir.path().join("moi-ingest@papers.timer"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&instance)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze security: exposure above 2.0:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The README's install and first night work as written: the package is installed with
/// dpkg and puts the binary at /usr/bin (where the cron line and the unit name it), the three
/// commands of a templated job name the files the package ships, and the cron line is a
/// command line the CLI accepts. cron runs jobs with `PATH=/usr/bin:/bin`, so the line
/// names the binary by its full path.
#[test]
fn the_readmes_install_and_first_night_name_what_the_package_ships() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    // The first code block fenced with `fence` after `heading`.
    let block = |heading: &str, fence: &str| -> String {
        let at = readme
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading}"));
        let start = at + readme[at..].find(fence).unwrap() + fence.len();
        let body = &readme[start..];
        body[..body.find("```").unwrap()].to_string()
    };
    let install = block("## Install", "```sh\n");
    assert!(install.starts_with("sudo dpkg -i moi-ingest_"), "{install}");
    let installed = "/usr/bin/moi-ingest";
    assert!(
        cargo.contains(r#"["target/release/moi-ingest", "usr/bin/", "755"]"#),
        "the package does not put the binary at {installed}"
    );
    let first = block("## First night", "```sh\n");
    let commands: Vec<&str> = first.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(commands.len(), 3, "{first}");
    assert!(commands[0].starts_with("sudo dpkg -i "));
    assert!(
        commands[1].contains("/etc/moi-ingest/example.env")
            && commands[1].contains("/etc/moi-ingest/papers.env")
    );
    assert!(cargo.contains(r#"["deploy/systemd/example.env", "etc/moi-ingest/", "600"]"#));
    assert_eq!(
        commands[2],
        "sudo systemctl enable --now moi-ingest@papers.timer"
    );
    assert!(
        cargo.contains(r#"["deploy/systemd/moi-ingest@.timer", "lib/systemd/system/", "644"]"#)
    );
    let cron = block("## First night", "```cron\n");
    let line = cron.lines().find(|l| l.starts_with("15 ")).unwrap();
    let (before, after) = line
        .split_once(&format!(" {installed} "))
        .unwrap_or_else(|| panic!("the cron line does not run {installed}: {line}"));
    // Only environment assignments between the schedule and the binary.
    for word in before.split_whitespace().skip(5) {
        assert!(
            word.contains('='),
            "{word:?} in the cron line is not VAR=value"
        );
    }
    assert_cron_command_parses(after);
}
