//! A new user's first nights, as they type them: the README's commands on a fresh machine
//! (empty HOME, no XDG_STATE_HOME, no --journal), output read the morning after.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use moi_ingest::emulator::Faults;

use crate::util::{self, Env, KEY, code, stderr, summary};

/// The binary as a new user runs it: a HOME of its own with nothing in it, no
/// XDG_STATE_HOME, the key and endpoint in the environment, in `cwd`.
pub(crate) fn fresh(env: &Env, cwd: &Path) -> tokio::process::Command {
    let home = env.path("fresh-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_moi-ingest"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("MOI_KEY", KEY)
        .env("MOI_ENDPOINT", env.emu.url())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// What cron leaves in a log: every line starts with an RFC 3339 timestamp.
fn assert_every_line_timestamped(err: &str) {
    for line in err.lines() {
        // One format for every line, ours and tracing's: 2026-12-06T20:46:41.362Z.
        let b = line.as_bytes();
        assert!(
            line.len() > 25 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z',
            "not timestamped as 2026-12-06T20:46:41.362Z: {line:?}"
        );
    }
}

pub(crate) async fn output(mut c: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("the run did not end within 120 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_upload_command_works_on_a_fresh_machine() {
    let env = util::emulator().await;
    let names = util::corpus(&env.path("corpus"));
    let vol = env.volume.clone();
    let readme = ["upload", "./corpus", "--volume", vol.as_str()];

    // --dry-run first: it lists and totals, and creates nothing (no journal, no lock).
    let mut c = fresh(&env, env.dir.path());
    c.args(readme).arg("--dry-run");
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("would upload\t").count(),
        names.len(),
        "{stdout}"
    );
    assert!(stdout.contains("\tnew"), "{stdout}");
    assert!(
        stdout.contains(&format!("would upload {} files, 20.", names.len())),
        "{stdout}"
    );
    let state = env.path("fresh-home/.local/state");
    assert!(!state.exists(), "a dry run created {}", state.display());
    assert_eq!(env.emu.stats().upload_requests, 0);

    // The night itself, then the next night.
    let mut c = fresh(&env, env.dir.path());
    c.args(readme);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    util::assert_same_tree(&env.path("corpus"), &env.stored());
    let journals: Vec<String> = std::fs::read_dir(state.join("moi-ingest/journals"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        journals.iter().filter(|n| n.ends_with(".sqlite")).count(),
        1,
        "{journals:?}"
    );
    let requests = env.emu.stats().upload_requests;
    let mut c = fresh(&env, env.dir.path());
    c.args(readme);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        env.emu.stats().upload_requests,
        requests,
        "the rerun sent something"
    );
    // The morning after: every stderr line is timestamped, the last one says the exit code.
    let err = stderr(&out);
    assert_every_line_timestamped(&err);
    assert!(
        err.lines()
            .last()
            .unwrap()
            .ends_with("upload ended with exit 0 (everything done)"),
        "{err}"
    );

    // status, from the same place, reads the default journal and writes to stdout.
    let mut c = fresh(&env, env.dir.path());
    c.args(["status", "./corpus", "--volume", vol.as_str()]);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} ingested", names.len())),
        "{stdout}"
    );
    // Local dates, `2026-11-23 02:15:07`, not Unix seconds.
    let run_line = stdout.lines().find(|l| l.starts_with("run ")).unwrap();
    let date = run_line.split(" started ").nth(1).unwrap();
    assert!(
        date.as_bytes()[4] == b'-' && date.as_bytes()[10] == b' ',
        "{run_line}"
    );
}

/// The README's crontab line, run as cron runs it: `sh -c` with cron's PATH and HOME and
/// nothing else, with what a user fills in put in place of the `...` (and this build in
/// place of the installed binary; `deploy.rs` checks the install section puts it there).
/// Nothing is printed to cron's mail; the log in HOME ends with the exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_cron_line_runs_as_cron_runs_it() {
    let env = util::emulator().await;
    let papers = env.path("papers");
    let names = util::small_files(&papers, 5, 100);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = &readme[readme.find("```cron\n").unwrap() + 8..];
    let line = block.lines().find(|l| l.starts_with("15 ")).unwrap();
    let command = line
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ")
        .replace("MOI_KEY=...", &format!("MOI_KEY={KEY}"))
        .replace(
            "MOI_ENDPOINT=https://...",
            &format!("MOI_ENDPOINT={}", env.emu.url()),
        )
        .replace("/usr/bin/moi-ingest", env!("CARGO_BIN_EXE_moi-ingest"))
        .replace("/data/papers", &papers.display().to_string())
        .replace("1889578498228068352", &env.volume);
    let home = env.path("cron-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = tokio::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg(&command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("SHELL", "/bin/sh")
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{command}: {}", stderr(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "cron would mail this: {}",
        stderr(&out)
    );
    let log = std::fs::read_to_string(home.join("moi-ingest.log")).unwrap();
    assert!(
        log.lines()
            .last()
            .unwrap()
            .ends_with("upload ended with exit 0 (everything done)"),
        "{log}"
    );
    assert_eq!(env.emu.stats().files_accepted, names.len() as u64);
    util::assert_same_tree(&papers, &env.stored());
}

/// A file name with a newline or a tab (legal on Linux) is one MOI refuses: it is left out
/// at the walk with a warning, on one timestamped line with the name escaped, is never
/// sent, and does not fail the night (nor every night after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newline_in_a_file_name_stays_on_one_line() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 2, 10);
    std::fs::write(src.join("two\nlines\tand a tab.txt"), "x").unwrap();
    let vol = env.volume.clone();
    let mut c = fresh(&env, env.dir.path());
    c.args(["upload", "./src", "--volume", vol.as_str(), "--dry-run"]);
    let out = output(c).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("and a tab"), "{stdout}");
    for night in 0..2 {
        let mut c = fresh(&env, env.dir.path());
        c.args(["upload", "./src", "--volume", vol.as_str(), "--no-wait"]);
        let out = output(c).await;
        assert_eq!(code(&out), 0, "night {night}: {}", stderr(&out));
        let err = stderr(&out);
        assert_every_line_timestamped(&err);
        assert!(
            err.contains("two\\nlines\\tand a tab.txt: its name has a control character"),
            "{err}"
        );
    }
    assert_eq!(env.emu.stats().files_accepted, 2);
    assert_eq!(env.emu.stats().bad_requests, 0, "the name was sent");
}

/// A HOME where no journal folder can be made (a service account's, say) stops the night
/// before anything is sent, naming the folder and the two ways out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_without_room_for_the_journal_says_what_to_do() {
    let env = util::emulator().await;
    util::small_files(&env.path("src"), 2, 10);
    // A file where HOME should be a folder: even root cannot make folders under it.
    let home = env.path("not-a-folder");
    std::fs::write(&home, "").unwrap();
    let vol = env.volume.clone();
    let mut c = fresh(&env, env.dir.path());
    c.env("HOME", &home)
        .args(["upload", "./src", "--volume", vol.as_str()]);
    let out = output(c).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot create the journal's folder")
            && err.contains("--journal PATH")
            && err.contains("XDG_STATE_HOME"),
        "{err}"
    );
    assert_eq!(env.emu.stats().upload_requests, 0);
}

/// The morning after a cron night, in a shell with the key but not the endpoint (the cron
/// line set it): `status`, `verify` and `retry` find the night's journal from what is given,
/// and when several fit, list them instead of guessing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_after_needs_no_endpoint_to_find_the_journal() {
    let env = util::emulator().await;
    let names = util::corpus(&env.path("corpus"));
    util::small_files(&env.path("other"), 2, 10);
    let vol = env.volume.clone();
    let night = |dir: &'static str| {
        let mut c = fresh(&env, env.dir.path());
        c.args(["upload", dir, "--volume", vol.as_str()]);
        c
    };
    let morning = |args: &[&str]| {
        let mut c = fresh(&env, env.dir.path());
        c.env_remove("MOI_ENDPOINT").args(args);
        c
    };
    let out = output(night("./corpus")).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // One journal: `status` alone is enough.
    let out = output(morning(&["status"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} ingested", names.len())) && stdout.contains("corpus"),
        "{stdout}"
    );
    // verify talks to the service: the endpoint comes from the journal.
    let out = output(morning(&["verify"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Two journals: `status` alone lists both and asks; the folder picks one.
    let out = output(night("./other")).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = output(morning(&["status"])).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("2 journals")
            && err.contains("--journal")
            && err.contains("/corpus,")
            && err.contains("/other,"),
        "{err}"
    );
    let out = output(morning(&["retry", "./other", "--volume", vol.as_str()])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = output(morning(&["status", "./other", "--volume", vol.as_str()])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 ingested"));

    // The endpoint spelled another way: no journal for it, and the one there is, named.
    let other_spelling = env.emu.url().replace("127.0.0.1", "localhost");
    let mut c = morning(&["status", "./corpus", "--volume", vol.as_str()]);
    c.env("MOI_ENDPOINT", &other_spelling);
    let out = output(c).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("journals for other endpoints") && err.contains(&env.emu.url()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_still_names_what_failed_for_good() {
    let env = util::emulator_with(|c| c.faults.always_fail_suffix = Some(".bad".into())).await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    for n in ["one.bad", "two.bad"] {
        std::fs::write(src.join(n), n).unwrap();
    }
    let out = util::upload(&env, &src, &["--quiet", "--max-retries", "0"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("2 files failed; exit 1"), "{err}");
    assert!(err.contains("one.bad") && err.contains("two.bad"), "{err}");
    // -v names every uploaded file.
    std::fs::write(src.join("three.txt"), "3").unwrap();
    let out = util::upload(&env, &src, &["-v", "--no-wait"]).await;
    assert!(
        stderr(&out).contains("uploaded three.txt ("),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_bars_show_totals_and_the_follow_phase() {
    // `script` gives the run a terminal, as a person at a shell has.
    assert!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok(),
        "this test needs `script` (util-linux, on every Debian): apt-get install util-linux"
    );
    let env = util::emulator_with(|c| {
        c.faults.latency = Duration::from_millis(40);
        c.ingest_time = Duration::from_millis(1500);
    })
    .await;
    let src = env.path("src");
    util::small_files(&src, 60, 10);
    let cmd = format!(
        "{} upload {} --volume {} --journal {} --batch-files 1 --concurrency 2 --poll-interval 100ms",
        env!("CARGO_BIN_EXE_moi-ingest"),
        src.display(),
        env.volume,
        env.journal()
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("MOI_KEY", KEY)
        .env("MOI_ENDPOINT", env.emu.url())
        .env("HOME", env.dir.path())
        .env("XDG_STATE_HOME", env.path("state"))
        .env("COLUMNS", "160")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // Sending, once the walk is done: bytes against the total with an ETA, and files sent
    // of files to send; while walking, no total.
    let sending = screen
        .split('\u{1b}')
        .find(|frame| frame.contains("/60 files"));
    assert!(
        sending.is_some_and(|f| f.contains("ETA") && !f.contains("walking")),
        "{screen}"
    );
    assert!(
        screen
            .split('\u{1b}')
            .filter(|f| f.contains("walking"))
            .all(|f| !f.contains("ETA")),
        "{screen}"
    );
    // Following: files ingested of those to follow.
    assert!(
        screen.contains("ingestion") && screen.contains("/60"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_add_up_and_the_list_says_how_many_more() {
    let env = util::emulator_with(|c| c.faults.always_fail_suffix = Some(".bad".into())).await;
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..60 {
        std::fs::write(src.join(format!("f{i:02}.bad")), "x").unwrap();
    }
    let out = util::upload(&env, &src, &["--max-retries", "0"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["ingest_failed"], 60);
    assert_eq!(s["failures"].as_array().unwrap().len(), 50);
    assert_eq!(s["failures_not_listed"], 10);
    assert!(
        stderr(&out).contains("... and 10 more failed"),
        "{}",
        stderr(&out)
    );
    // The run history says the same.
    let journal = env.journal();
    let status = summary(&util::run(&env, &["status", "--journal", &journal, "--json"]).await);
    assert_eq!(status["runs"][0]["summary"]["ingest_failed"], 60);
    assert_eq!(status["counts"]["failed"], 60);

    // retry rides out a service that answers /task/retry with 503s and 429s, then reports
    // what status reports.
    // The first two /task/retry calls are answered 503, then 429s come at random.
    env.emu.set_faults(Faults {
        seed: 2,
        unavailable_next: 2,
        too_many: 0.2,
        retry_after_secs: 0,
        always_fail_suffix: Some(".bad".into()),
        ..Faults::default()
    });
    let out = util::run(
        &env,
        &[
            "retry",
            "--journal",
            &journal,
            "--json",
            "--max-retries",
            "0",
            "--poll-interval",
            "100ms",
        ],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["ingest_retries"], 60, "{s}");
    let st = env.emu.stats();
    assert!(st.injected_unavailable >= 2, "{st:?}");
    let status = summary(&util::run(&env, &["status", "--journal", &journal, "--json"]).await);
    assert_eq!(status["counts"]["failed"], s["ingest_failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_following_says_interrupted() {
    let env = util::emulator_with(|c| c.ingest_time = Duration::from_secs(60)).await;
    let src = env.path("src");
    util::small_files(&src, 3, 10);
    let d = src.display().to_string();
    let args = util::upload_args(&env, &d, &[]);
    let child = util::command(&env)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    util::wait_until("the follow phase polls", || {
        env.emu.stats().task_files_requests > 0
    })
    .await;
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = util::finish(child).await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("interrupted while following ingestion"),
        "{err}"
    );
    assert!(!err.contains("--wait-timeout ran out"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_is_not_an_error() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 3000, 1);
    let d = src.display().to_string();
    let vol = env.volume.clone();
    let mut child = util::command(&env)
        .args(["upload", &d, "--volume", &vol, "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let _ = tokio::io::AsyncReadExt::read(&mut stdout, &mut first)
        .await
        .unwrap();
    drop(stdout);
    let out = util::finish(child).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_from_uploads_only_the_listed_files() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = util::small_files(&src, 6, 10);
    let list = env.path("list.txt");
    std::fs::write(
        &list,
        format!("# tonight\n{}\n\n./{}\n../escape\n", names[0], names[3]),
    )
    .unwrap();
    let l = list.display().to_string();
    let out = util::upload(&env, &src, &["--files-from", &l, "--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["uploaded"].as_u64(), s["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    util::assert_once_per_path(&env, &[names[0].clone(), names[3].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_first_use_records_hashes_without_sending() {
    let env = util::emulator().await;
    let src = env.path("src");
    util::small_files(&src, 10, 50);
    let out = util::upload(&env, &src, &["--no-wait"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let requests = env.emu.stats().upload_requests;
    let out = util::upload(&env, &src, &["--no-wait", "--checksum"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 0);
    assert_eq!(env.emu.stats().upload_requests, requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_completions_and_man_page() {
    let env = util::emulator().await;
    let out = util::run(&env, &["emulator", "--help"]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        !help.contains("--json") && !help.contains("--quiet"),
        "{help}"
    );
    let out = util::run(&env, &["upload", "--help"]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Output:") && help.contains("Connection and credentials:"),
        "{help}"
    );
    // The command's own options stay under Options, not under a group's heading.
    let own = help.find("\n      --volume <VOLUME>").unwrap();
    assert!(
        own < help.find("Connection and credentials:").unwrap(),
        "{help}"
    );
    assert!(own < help.find("Output:").unwrap(), "{help}");
    let out = util::run(&env, &["upload", "/tmp"]).await;
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("--volume") && !err.contains("<DIR>\n  --"),
        "{err}"
    );
    let out = util::run(&env, &["completions", "bash"]).await;
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete -F _moi__ingest"));
    // Options complete, as bash drives the function: `moi-ingest upload --con<TAB>`.
    let script = env.path("moi-ingest.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let offered = |words: &str, cur: &str, prev: &str| {
        let n = words.split(' ').count() - 1;
        let line = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={n}; _moi__ingest moi-ingest '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &line])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let got = offered("moi-ingest upload --con", "--con", "upload");
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["--concurrency", "--connect-timeout"],
        "{got}"
    );
    let got = offered("moi-ingest upload --del", "--del", "upload");
    assert!(got.lines().any(|l| l == "--delete"), "{got}");
    let out = util::run(&env, &["man"]).await;
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH moi-ingest"));
}
