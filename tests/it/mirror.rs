//! Mirroring through the real binary, over several nights: deletes, renames, one version
//! per path, the rails that keep a volume from being wiped, and `ls`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use moi_ingest::emulator::ListedFile;

use crate::util::{self, Env, code, run, stderr, summary, upload};

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// 20 files in 4 folders, each with its own content.
fn folder(root: &Path) -> Vec<String> {
    (0..20)
        .map(|i| {
            let rel = format!("d{}/f{i:02}.txt", i % 4);
            write(root, &rel, &format!("file {i}\n"));
            rel
        })
        .collect()
}

fn paths(listing: &[ListedFile]) -> Vec<String> {
    let mut v: Vec<String> = listing.iter().map(|f| f.path.clone()).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Another uploader's files in the same volume: another folder, another journal.
async fn others(env: &Env) -> Vec<ListedFile> {
    let other = env.path("other-uploader");
    write(&other, "d0/f00.txt", "not ours, same path as ours\n");
    write(&other, "theirs/keep.txt", "not ours\n");
    let journal = env.path("other.sqlite").display().to_string();
    let dir = other.display().to_string();
    let out = run(
        env,
        &[
            "upload",
            &dir,
            "--volume",
            &env.volume,
            "--journal",
            &journal,
            "--prefix",
            "elsewhere",
            "--no-wait",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.emu
        .listing(&env.volume)
        .into_iter()
        .filter(|f| f.path.starts_with("elsewhere/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_propagate_and_never_touch_other_files() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = folder(&src);
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let theirs = others(&env).await;
    assert_eq!(theirs.len(), 2);

    std::fs::remove_file(src.join("d1/f01.txt")).unwrap();
    std::fs::remove_file(src.join("d2/f02.txt")).unwrap();
    let before = env.emu.listing(&env.volume);

    // A dry run lists the deletes and changes nothing.
    let out = upload(&env, &src, &["--delete", "--dry-run"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("would delete\td1/f01.txt\t"), "{stdout}");
    assert!(stdout.contains("would delete\td2/f02.txt\t"), "{stdout}");
    assert_eq!(env.emu.listing(&env.volume), before);

    // verify names what --delete would remove, and fails.
    let out = run(&env, &["verify", "--journal", &env.journal()]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gone\td1/f01.txt\t"), "{stdout}");

    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["deleted"], 2);
    assert_eq!(summary(&out)["uploaded"], 0);
    let out = run(&env, &["verify", "--journal", &env.journal()]).await;
    assert_eq!(
        code(&out),
        0,
        "{}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let after = env.emu.listing(&env.volume);
    let mut want: Vec<String> = names
        .iter()
        .filter(|n| !["d1/f01.txt", "d2/f02.txt"].contains(&n.as_str()))
        .cloned()
        .collect();
    want.extend(theirs.iter().map(|f| f.path.clone()));
    assert_eq!(paths(&after), sorted(want));
    // The other uploader's files are the very same stored files.
    for t in &theirs {
        assert!(after.contains(t), "{} was touched", t.path);
    }
    assert!(!env.stored().join("d1/f01.txt").exists());

    // The journal keeps them as deletions; the next night has nothing to do.
    let status = util::status_json(&env).await;
    assert_eq!(status["counts"]["deleted"], 2, "{status}");
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        (
            summary(&out)["deleted"].as_u64(),
            summary(&out)["uploaded"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // A file removed from the volume behind the journal's back is missing to verify.
    let client = moi_ingest::api::Client::new(
        &env.emu.url().parse().unwrap(),
        moi_ingest::api::Credentials::ApiKey(moi_ingest::secret::Secret::new(util::KEY)),
        Default::default(),
    )
    .unwrap();
    let victim = after.iter().find(|f| f.path == "d3/f03.txt").unwrap();
    client
        .send(&moi_ingest::api::catalog::FileDelete {
            id: victim.file_id.to_string(),
        })
        .await
        .unwrap();
    let out = run(&env, &["verify", "--journal", &env.journal()]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("missing\td3/f03.txt\tnot in the volume"),
        "{stdout}"
    );

    // A deleted file that comes back is a new file again.
    write(&src, "d1/f01.txt", "back\n");
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(summary(&out)["uploaded"], 1, "{}", stderr(&out));

    // `ls` shows what the volume holds, folders with a slash.
    let out = run(&env, &["ls", "--volume", &env.volume, "-R"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().any(|l| l.ends_with("\td1/")), "{listed}");
    assert!(
        listed.lines().any(|l| l.ends_with("\td1/f01.txt")),
        "{listed}"
    );
    assert!(!listed.contains("d2/f02.txt"), "{listed}");
    assert_eq!(
        listed.lines().filter(|l| !l.ends_with('/')).count(),
        env.emu.listing(&env.volume).len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_send_nothing_and_a_move_sends_once_and_deletes_once() {
    let env = util::emulator().await;
    let src = env.path("src");
    let mut names = folder(&src);
    write(&src, "d3/inner/deep.txt", "deep\n");
    names.push("d3/inner/deep.txt".into());
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = env.emu.stats().files_accepted;

    // Same folder, a whole folder (with a subfolder), and a move elsewhere.
    std::fs::rename(src.join("d0/f00.txt"), src.join("d0/renamed.txt")).unwrap();
    std::fs::rename(src.join("d3"), src.join("d3-new")).unwrap();
    std::fs::create_dir_all(src.join("moved/here")).unwrap();
    std::fs::rename(src.join("d1/f01.txt"), src.join("moved/here/f01.txt")).unwrap();

    let out = upload(&env, &src, &["--delete", "--dry-run"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("would rename\td0/f00.txt\td0/renamed.txt"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would rename\td3/\td3-new/\t6 files"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would upload\tmoved/here/f01.txt"),
        "{stdout}"
    );
    assert!(stdout.contains("would delete\td1/f01.txt"), "{stdout}");
    assert_eq!(env.emu.stats().files_accepted, sent);

    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        util::counts(&s, &["renamed", "uploaded", "deleted"]),
        [7, 1, 1],
        "{s}"
    );
    assert_eq!(
        env.emu.stats().files_accepted,
        sent + 1,
        "only the move was sent"
    );
    let want: Vec<String> = names
        .iter()
        .map(|n| match n.as_str() {
            "d0/f00.txt" => "d0/renamed.txt".to_string(),
            "d1/f01.txt" => "moved/here/f01.txt".to_string(),
            n if n.starts_with("d3/") => n.replacen("d3/", "d3-new/", 1),
            n => n.to_string(),
        })
        .collect();
    assert_eq!(paths(&env.emu.listing(&env.volume)), sorted(want));
    util::assert_same_tree(&src, &env.stored());

    // The journal followed: a rerun finds nothing to do.
    let out = upload(&env, &src, &["--delete"]).await;
    let s = summary(&out);
    assert_eq!(
        util::counts(&s, &["uploaded", "deleted", "renamed"]),
        [0, 0, 0],
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_whose_name_repeats_elsewhere_ends_as_one_version() {
    let env = util::emulator().await;
    let src = env.path("src");
    write(&src, "a/report.pdf", "first a\n");
    write(&src, "b/report.pdf", "first b\n");
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b_before: Vec<ListedFile> = env
        .emu
        .listing(&env.volume)
        .into_iter()
        .filter(|f| f.path == "b/report.pdf")
        .collect();
    write(&src, "a/report.pdf", "second a, longer\n");
    // No --delete: one version per path holds all the same.
    let out = upload(&env, &src, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["copies_removed"], 1, "{}", stderr(&out));
    let listing = env.emu.listing(&env.volume);
    util::assert_once_per_path(&env, &["a/report.pdf".into(), "b/report.pdf".into()]);
    let a: Vec<&ListedFile> = listing
        .iter()
        .filter(|f| f.path == "a/report.pdf")
        .collect();
    assert_eq!(a[0].size, "second a, longer\n".len() as u64);
    let b: Vec<ListedFile> = listing
        .into_iter()
        .filter(|f| f.path == "b/report.pdf")
        .collect();
    assert_eq!(b, b_before, "the other folder's file was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rails_refuse_over_the_cap_an_emptied_folder_and_a_missing_one() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = folder(&src);
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let full = env.emu.listing(&env.volume);

    // Half the folder gone: over the default cap (a quarter).
    for n in names.iter().take(10) {
        std::fs::remove_file(src.join(n)).unwrap();
    }
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-delete"), "{}", stderr(&out));
    assert_eq!(summary(&out)["deleted"], 0);
    assert_eq!(
        env.emu.listing(&env.volume),
        full,
        "a refused night deleted something"
    );

    // An emptied folder (an unmounted share) is refused whatever the cap.
    let away = env.path("away");
    std::fs::rename(&src, &away).unwrap();
    std::fs::create_dir(&src).unwrap();
    let out = upload(&env, &src, &["--delete", "--max-delete", "100%"]).await;
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is the share mounted?"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.emu.listing(&env.volume), full);

    // A missing folder, or a file in its place, refuses the whole run.
    std::fs::remove_dir(&src).unwrap();
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    std::fs::write(&src, b"not a folder").unwrap();
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(env.emu.listing(&env.volume), full);

    // Back, with the cap lifted, the ten go and nothing else.
    std::fs::remove_file(&src).unwrap();
    std::fs::rename(&away, &src).unwrap();
    let out = upload(&env, &src, &["--delete", "--max-delete", "off"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["deleted"], 10);
    assert_eq!(
        paths(&env.emu.listing(&env.volume)),
        sorted(names[10..].to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_error_withholds_every_delete() {
    let env = util::emulator().await;
    let src = env.path("src");
    folder(&src);
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let full = env.emu.listing(&env.volume);
    std::fs::remove_file(src.join("d0/f00.txt")).unwrap();
    // A rename on the same night: sent at its new path, its old copy kept for now.
    std::fs::rename(src.join("d2/f02.txt"), src.join("d2/g02.txt")).unwrap();
    let locked = src.join("d1");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let d = src.display().to_string();
    let args = util::upload_args(&env, &d, &["--delete"]);
    let mut cmd = util::command_as_user(&env);
    cmd.args(&args);
    let out = util::finish(
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    )
    .await;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code(&out), 8, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the walk met 1 errors"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("d1"), "{}", stderr(&out));
    let after = env.emu.listing(&env.volume);
    for f in &full {
        assert!(
            after.contains(f),
            "a night with a walk error deleted {}",
            f.path
        );
    }
    assert_eq!(paths(&after).len(), full.len() + 1);
    assert!(
        paths(&after).contains(&"d2/g02.txt".to_string()),
        "the renamed file did not arrive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_deletes_is_finished_by_the_next_night() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names: Vec<String> = (0..80)
        .map(|i| {
            let rel = format!("d{}/f{i:02}.txt", i % 5);
            write(&src, &rel, &format!("{i}\n"));
            rel
        })
        .collect();
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = env.emu.stats().files_accepted;
    for n in names.iter().take(16) {
        std::fs::remove_file(src.join(n)).unwrap();
    }
    // Slow answers, so that the kill lands mid-way through the deletes.
    env.emu.set_faults(moi_ingest::emulator::Faults {
        latency: Duration::from_millis(150),
        ..Default::default()
    });
    let d = src.display().to_string();
    let mut child = util::command(&env)
        .args(util::upload_args(&env, &d, &["--delete"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    util::wait_until("some deletes are done", || {
        env.emu.listing(&env.volume).len() < 80
    })
    .await;
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let left = env.emu.listing(&env.volume).len();
    assert!(
        left > 64,
        "the kill came too late to test anything: {left} left"
    );
    env.emu.set_faults(moi_ingest::emulator::Faults::default());

    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["uploaded"], 0);
    assert_eq!(
        paths(&env.emu.listing(&env.volume)),
        sorted(names[16..].to_vec())
    );
    assert_eq!(
        env.emu.stats().files_accepted,
        sent,
        "something was sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_takes_over_a_volume_that_already_holds_the_folder() {
    let env = util::emulator().await;
    let src = env.path("src");
    let names = folder(&src);
    // Uploaded before by something else (another journal stands for the vendor's SDK).
    let elsewhere = env.path("sdk-journal.sqlite").display().to_string();
    let d = src.display().to_string();
    let out = run(
        &env,
        &[
            "upload",
            &d,
            "--volume",
            &env.volume,
            "--journal",
            &elsewhere,
            "--no-wait",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sent = env.emu.stats().files_accepted;
    // One file changed since: its size no longer matches, so it is sent.
    write(&src, "d0/f00.txt", "changed since the other upload\n");

    let out = upload(&env, &src, &["--adopt"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(
        (s["adopted"].as_u64(), s["uploaded"].as_u64()),
        (Some(19), Some(1)),
        "{s}"
    );
    assert_eq!(env.emu.stats().files_accepted, sent + 1);
    // The changed file's old version is gone: one version per path.
    util::assert_once_per_path(&env, &names);

    // The journal now knows them all: the next night sends nothing, and verify agrees.
    let out = upload(&env, &src, &["--adopt", "--delete"]).await;
    let s = summary(&out);
    assert_eq!(
        (s["unchanged"].as_u64(), s["uploaded"].as_u64()),
        (Some(20), Some(0)),
        "{s}"
    );
    let out = run(&env, &["verify", "--journal", &env.journal()]).await;
    assert_eq!(
        code(&out),
        0,
        "{}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_emptied_by_deletes_goes_unless_it_holds_someone_elses() {
    let env = util::emulator().await;
    let src = env.path("src");
    for dir in ["a", "b/x", "c/y"] {
        for i in 0..3 {
            write(&src, &format!("{dir}/f{i}.txt"), &format!("{dir} {i}\n"));
        }
    }
    let out = upload(&env, &src, &["--delete"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Someone else keeps an empty folder of their own inside c.
    let client = moi_ingest::api::Client::new(
        &env.emu.url().parse().unwrap(),
        moi_ingest::api::Credentials::ApiKey(moi_ingest::secret::Secret::new(util::KEY)),
        Default::default(),
    )
    .unwrap();
    let root = client.list_children(&env.volume, "").await.unwrap();
    let c = root.iter().find(|e| e.name == "c").unwrap();
    client
        .send(&moi_ingest::api::catalog::FolderCreate {
            name: "theirs".into(),
            volume_id: env.volume.clone(),
            parent_id: c.id.clone(),
        })
        .await
        .unwrap();
    std::fs::remove_dir_all(src.join("b")).unwrap();
    std::fs::remove_dir_all(src.join("c")).unwrap();
    let out = upload(&env, &src, &["--delete", "--max-delete", "off"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(summary(&out)["deleted"], 6);
    let out = run(&env, &["ls", "--volume", &env.volume, "-R"]).await;
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        ["a/", "a/f0.txt", "a/f1.txt", "a/f2.txt", "c/", "c/theirs/"],
        "b and c/y were emptied and go; c stays, it holds someone else's folder"
    );
}
