//! Resolved settings: raw flags in, checked values out. Every refusal here names the
//! option and what to write instead, and ends the run with exit code 2.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use url::Url;

use crate::api::{ClientOptions, Credentials, VolumeId, is_loopback};
use crate::cli::{ConnectionArgs, FollowArgs, UploadArgs};
use crate::journal::Identity;
use crate::pipeline::pace::{Pacer, Schedule};
use crate::pipeline::{FollowSettings, SendSettings, Shard, UploadSettings};
use crate::secret::Secret;
use crate::walk::WalkOptions;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A setting that cannot be used is a usage error (exit 2).
impl From<ConfigError> for crate::report::Failure {
    fn from(e: ConfigError) -> crate::report::Failure {
        crate::report::Failure::usage(e)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub endpoint: Url,
    pub credentials: Credentials,
    pub options: ClientOptions,
}

/// Checks the endpoint: a URL, HTTPS unless it is on this machine or `--allow-http`.
pub fn endpoint(raw: Option<&str>, allow_http: bool) -> Result<Url, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return err("no endpoint: set MOI_ENDPOINT or pass --endpoint, e.g. \
             https://freetier-01.cn-hangzhou.cluster.matrixonecloud.cn");
    };
    let url = match Url::parse(raw) {
        Ok(u) if u.has_host() => u,
        _ => {
            return err(format!(
                "the endpoint '{raw}' is not a URL; write it with its scheme, e.g. https://host"
            ));
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return err("the endpoint must not carry a user name or password; use MOI_KEY");
    }
    // A call's address pasted whole (from the documents, or a browser): every path is
    // appended to the endpoint, so it would be doubled and every call answered 404.
    let path = url.path();
    if let Some(at) = [
        "/connectors",
        "/task",
        "/byoa/api/v1",
        "/export",
        "/auth/login",
    ]
    .iter()
    .filter_map(|p| {
        path.find(&format!("{p}/"))
            .or_else(|| path.ends_with(p).then(|| path.len() - p.len()))
    })
    .min()
    {
        let mut base = url.clone();
        base.set_path(&path[..at]);
        base.set_query(None);
        return err(format!(
            "the endpoint '{raw}' holds an API path ({}); give the service's address alone, \
             e.g. {}: moi-ingest adds each call's path itself",
            &path[at..],
            base.as_str().trim_end_matches('/')
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_http || is_loopback(&url) => Ok(url),
        "http" => err(format!(
            "the endpoint '{raw}' is plain http: the API key would cross the network \
             unencrypted. Use https://, or pass --allow-http if you really mean it"
        )),
        other => err(format!(
            "the endpoint scheme '{other}' is not http or https"
        )),
    }
}

pub fn connection(args: &ConnectionArgs) -> Result<Connection, ConfigError> {
    connection_with_default(args, None)
}

/// As [`connection`], with an endpoint to fall back on (the one a journal recorded).
pub fn connection_with_default(
    args: &ConnectionArgs,
    recorded_endpoint: Option<&str>,
) -> Result<Connection, ConfigError> {
    let endpoint = endpoint(
        args.endpoint.as_deref().or(recorded_endpoint),
        args.allow_http,
    )?;
    let password = args
        .password
        .clone()
        .or_else(|| std::env::var("MOI_PASSWORD").ok());
    let credentials = match (&args.api_key, &args.account, &args.username, password) {
        (Some(key), _, _, _) if !key.trim().is_empty() => {
            Credentials::ApiKey(Secret::new(key.trim()))
        }
        (_, Some(account), Some(username), Some(password)) => Credentials::Session {
            account: account.clone(),
            username: username.clone(),
            password: Secret::new(password),
        },
        _ => {
            return err(
                "no credentials: set MOI_KEY to your API key (or MOI_ACCOUNT, MOI_USERNAME \
                 and MOI_PASSWORD for a session login)",
            );
        }
    };
    let extra_roots = match &args.ca_cert {
        None => Vec::new(),
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read --ca-cert {}: {e}. Give the PEM file of the certificate to \
                     trust",
                    path.display()
                ))
            })?;
            crate::api::ca_certificates(&pem).map_err(|what| {
                ConfigError(format!(
                    "--ca-cert {} {what}. Give the CA's certificate in PEM form (openssl x509 \
                     -inform der -in ca.cer -out ca.pem converts a DER one)",
                    path.display()
                ))
            })?
        }
    };
    Ok(Connection {
        endpoint,
        credentials,
        options: ClientOptions {
            connect_timeout: args.connect_timeout,
            idle_timeout: args.idle_timeout,
            extra_roots,
            names: setting_names(),
            ..ClientOptions::default()
        },
    })
}

/// The client's messages name our flags and variables.
pub fn setting_names() -> crate::api::SettingNames {
    crate::api::SettingNames {
        endpoint: "--endpoint (MOI_ENDPOINT)".into(),
        api_key: "the API key (MOI_KEY or --api-key)".into(),
        ca_cert: "--ca-cert (or MOI_CA_CERT)".into(),
        connect_timeout: "--connect-timeout".into(),
    }
}

pub fn volume(raw: &str) -> Result<VolumeId, ConfigError> {
    raw.parse()
        .map_err(|e: crate::api::id::BadVolumeId| ConfigError(format!("--volume: {e}")))
}

/// `--prefix`: a folder in the volume, written `a/b` (slashes at the ends are dropped).
pub fn prefix(raw: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(p) = raw
        .map(|p| p.trim().trim_matches('/'))
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    let bad = p.contains('\\')
        || p.chars().any(char::is_control)
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return err(format!(
            "--prefix '{p}' is not a folder path in the volume: write folder names separated \
             by /, without '.', '..', '//' or backslashes (e.g. --prefix nightly/papers)"
        ));
    }
    Ok(Some(p.to_string()))
}

/// The folder to upload, made absolute and canonical (so the journal's identity does not
/// depend on how it was spelled).
pub fn root(dir: &Path) -> Result<PathBuf, ConfigError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return err(format!(
                "{} is not a folder; name the folder to upload",
                dir.display()
            ));
        }
        Err(e) => return err(format!("cannot use the folder {}: {e}", dir.display())),
    }
    std::fs::canonicalize(dir)
        .map_err(|e| ConfigError(format!("cannot resolve the folder {}: {e}", dir.display())))
}

pub fn identity(endpoint: &Url, volume: &VolumeId, root: &Path) -> Identity {
    Identity {
        endpoint: endpoint_key(endpoint),
        volume: volume.to_string(),
        root: root.display().to_string(),
    }
}

fn state_dir() -> Option<PathBuf> {
    let from_env = |k: &str| {
        std::env::var_os(k)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    from_env("XDG_STATE_HOME").or_else(|| from_env("HOME").map(|h| h.join(".local/state")))
}

/// `--shard K/N` (0-based K; `env` for $JOB_COMPLETION_INDEX).
pub fn shard(raw: Option<&str>) -> Result<Option<Shard>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = || {
        ConfigError(format!(
            "--shard '{raw}' is not K/N: write e.g. --shard 3/8 (0-based K below N), or \
             --shard env/8 to take K from $JOB_COMPLETION_INDEX"
        ))
    };
    let (k, n) = raw.trim().split_once('/').ok_or_else(bad)?;
    let k = if matches!(k, "env" | "" | "$JOB_COMPLETION_INDEX") {
        std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
            ConfigError(format!(
                "--shard '{raw}' takes K from $JOB_COMPLETION_INDEX, which is not set"
            ))
        })?
    } else {
        k.to_string()
    };
    let index: u32 = k.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Some(Shard { index, count }))
}

/// The endpoint as journals record it: without a trailing slash.
pub fn endpoint_key(endpoint: &Url) -> String {
    endpoint.as_str().trim_end_matches('/').to_string()
}

/// Where default journals live: `$XDG_STATE_HOME/moi-ingest/journals`
/// (`~/.local/state/moi-ingest/journals`).
pub fn journals_dir() -> Option<PathBuf> {
    state_dir().map(|s| s.join("moi-ingest").join("journals"))
}

/// One journal per (endpoint, volume, folder, shard index): the same cron line always
/// finds its own.
pub fn default_journal(id: &Identity, shard: Option<Shard>) -> Result<PathBuf, ConfigError> {
    let Some(journals) = journals_dir() else {
        return err("neither XDG_STATE_HOME nor HOME is set: pass --journal PATH");
    };
    // By shard index, not count: with jump hashing, going from N to N+1 shards only moves
    // files into the new shard, so every existing shard's journal stays right.
    let shard_key = shard.map_or(String::new(), |s| format!("\nshard {}", s.index));
    let digest = Sha256::digest(
        format!("{}\n{}\n{}{shard_key}", id.endpoint, id.volume, id.root).as_bytes(),
    );
    let suffix = shard.map_or(String::new(), |s| format!("-shard{}", s.index));
    let base: String = Path::new(&id.root)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    Ok(journals.join(format!(
        "{base}-{}{suffix}.sqlite",
        &hex::encode(digest)[..16]
    )))
}

/// Makes `path` absolute without requiring it to exist.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn follow(args: &FollowArgs) -> FollowSettings {
    FollowSettings {
        max_retries: args.max_retries,
        wait_timeout: args.wait_timeout,
        poll_interval: args.poll_interval,
        max_poll_interval: args.max_poll_interval.max(args.poll_interval),
        ..FollowSettings::default()
    }
}

/// Everything an `upload` needs, checked.
pub struct UploadPlan {
    pub connection: Connection,
    pub identity: Identity,
    pub journal: PathBuf,
    pub settings: UploadSettings,
    /// `--metrics-file`: where to write Prometheus text for node_exporter.
    pub metrics_file: Option<PathBuf>,
    /// `--metrics-push`: the Pushgateway to push the same metrics to.
    pub metrics_push: Option<url::Url>,
}

/// `--metrics-push URL`: an http(s) URL of a Pushgateway, without a path of its own.
fn metrics_push(raw: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        // The text itself is not repeated: an address may carry a password.
        ConfigError(format!(
            "--metrics-push is not a URL ({e}); give the Pushgateway's address, \
             e.g. --metrics-push http://pushgateway:9091"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return err(
            "--metrics-push must be an http:// or https:// address of a Pushgateway, e.g. http://pushgateway:9091",
        );
    }
    if url.path().trim_matches('/').contains("metrics") {
        return err(
            "--metrics-push takes the Pushgateway's address alone (http://pushgateway:9091); moi-ingest adds /metrics/job/moi-ingest/... itself",
        );
    }
    Ok(url)
}

/// `--concurrency N` or `auto` (then up to `--max-concurrency`), and whether it adapts.
fn concurrency(args: &UploadArgs) -> Result<(usize, bool), ConfigError> {
    let (concurrency, adaptive) = match args.concurrency.trim() {
        "auto" => (args.max_concurrency, true),
        n => (
            n.parse::<usize>().map_err(|_| {
                ConfigError(format!(
                    "--concurrency '{n}' is neither a number nor auto (e.g. --concurrency 16)"
                ))
            })?,
            false,
        ),
    };
    if concurrency == 0 || concurrency > 1024 {
        return err("--concurrency (and --max-concurrency) must be between 1 and 1024");
    }
    Ok((concurrency, adaptive))
}

/// The bounds of the sending flags that clap cannot check alone.
fn check_sending(args: &UploadArgs) -> Result<(), ConfigError> {
    if args.attempts == 0 {
        return err("--attempts must be at least 1");
    }
    if args.retries == 0 {
        return err("--retries must be at least 1 (1: no pass after the first)");
    }
    if args.batch_files == 0 || args.batch_files > 1000 {
        return err("--batch-files must be between 1 and 1000");
    }
    if let Some(bad) = args
        .dedup_by
        .iter()
        .find(|b| !matches!(b.as_str(), "name" | "md5"))
    {
        return err(format!(
            "--dedup-by '{bad}' is not a criterion: use name, md5 or name,md5"
        ));
    }
    Ok(())
}

/// The journal and its companions (WAL, shared memory, lock), which the walk must never
/// send, under their canonical folder too, since the walk sees canonical paths.
fn journal_files(journal: &Path) -> Vec<PathBuf> {
    let mut never = vec![journal.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal", ".lock"] {
        let mut p = journal.as_os_str().to_owned();
        p.push(suffix);
        never.push(PathBuf::from(p));
    }
    if let (Some(parent), Some(name)) = (journal.parent(), journal.file_name())
        && let Ok(canon) = std::fs::canonicalize(parent)
    {
        for n in never.clone() {
            if let Some(f) = n.file_name() {
                never.push(canon.join(f));
            }
        }
        never.push(canon.join(name));
    }
    never
}

pub fn upload(args: &UploadArgs) -> Result<UploadPlan, ConfigError> {
    let mut connection = connection(&args.connection)?;
    if let Some(raw) = &args.bwlimit {
        let schedule =
            Schedule::parse_bwlimit(raw).map_err(|e| ConfigError(format!("--bwlimit: {e}")))?;
        connection.options.body_pace = Some(std::sync::Arc::new(Pacer::new(schedule)));
    }
    if args.tps_limit.is_some_and(|n| n.is_nan() || n <= 0.0) {
        return err("--tps-limit must be a number of requests per second above 0");
    }
    let shard = shard(args.shard.as_deref())?;
    let volume = volume(&args.volume)?;
    let root = root(&args.dir)?;
    let (concurrency, adaptive) = concurrency(args)?;
    check_sending(args)?;
    let identity = identity(&connection.endpoint, &volume, &root);
    let journal = match &args.journal.journal {
        Some(p) => absolute(p),
        None => default_journal(&identity, shard)?,
    };
    let never = journal_files(&journal);
    let settings = UploadSettings {
        root,
        walk: WalkOptions {
            include: args.include.clone(),
            exclude: args.exclude.clone(),
            extensions: args.ext.clone(),
            max_size: args.max_file_size,
            hidden: args.hidden,
            follow_symlinks: args.follow_symlinks,
            never,
            checkers: args.checkers,
        },
        send: SendSettings {
            volume,
            prefix: prefix(args.prefix.as_deref())?,
            dedup: args.dedup,
            dedup_by: args.dedup_by.clone(),
            concurrency,
            adaptive,
            attempts: args.attempts,
            passes: args.retries,
            retry_budget: args.retry_budget,
            retry_base: args.retry_delay,
            base_names: args.base_names,
            checksum: args.checksum,
            batch_files: args.batch_files,
            batch_bytes: args.batch_bytes,
            tps_limit: args.tps_limit,
            shard,
            unreachable_timeout: args.unreachable_timeout,
            ..SendSettings::default()
        },
        follow: follow(&args.follow),
        no_wait: args.no_wait,
        dry_run: args.dry_run,
        drain_timeout: args.drain_timeout,
        max_duration: args.max_duration,
        files_from: args.files_from.as_ref().map(|p| {
            if p.as_os_str() == "-" {
                p.clone()
            } else {
                absolute(p)
            }
        }),
        mirror: mirror_settings(args)?,
    };
    crate::walk::check(&settings.walk).map_err(|e| ConfigError(e.to_string()))?;
    Ok(UploadPlan {
        connection,
        identity,
        journal,
        settings,
        metrics_file: args.metrics_file.as_ref().map(|p| absolute(p)),
        metrics_push: args.metrics_push.as_deref().map(metrics_push).transpose()?,
    })
}

/// `--delete`, `--max-delete`, `--adopt`, refused where the volume's paths are not the
/// folder's (`--base-names`) or the night does not see the whole folder (`--files-from`).
fn mirror_settings(args: &UploadArgs) -> Result<crate::mirror::MirrorSettings, ConfigError> {
    for (on, flag) in [(args.delete, "--delete"), (args.adopt, "--adopt")] {
        if on && args.base_names {
            return Err(ConfigError(format!(
                "{flag} cannot go with --base-names: the volume's paths would not be the \
                 folder's. Drop one of them"
            )));
        }
    }
    if args.delete && args.files_from.is_some() {
        return Err(ConfigError(
            "--delete cannot go with --files-from: a night that does not walk the whole \
             folder cannot tell a deleted file from one it did not look at. Drop one of them"
                .into(),
        ));
    }
    Ok(crate::mirror::MirrorSettings {
        delete: args.delete,
        max_delete: args.max_delete,
        adopt: args.adopt,
    })
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn an_endpoint_with_a_calls_path_is_refused_with_the_base_to_use() {
        for (raw, api, base) in [
            (
                "https://freetier-01.example.cn/connectors/upload",
                "(/connectors/upload)",
                "e.g. https://freetier-01.example.cn:",
            ),
            (
                "https://h.example/byoa/api/v1/",
                "(/byoa/api/v1/)",
                "e.g. https://h.example:",
            ),
            (
                "https://h.example/moi/task/files?page=1",
                "(/task/files)",
                "e.g. https://h.example/moi:",
            ),
            (
                "https://h.example/auth/login",
                "(/auth/login)",
                "e.g. https://h.example:",
            ),
        ] {
            let e = endpoint(Some(raw), false).unwrap_err().0;
            assert!(e.contains(api) && e.contains(base), "{raw}: {e}");
        }
        // A deployment under a path of its own is fine, even one that starts like a call.
        for raw in [
            "https://h.example/moi/",
            "https://h.example/taskforce",
            "https://h.example",
        ] {
            assert!(endpoint(Some(raw), false).is_ok(), "{raw}");
        }
    }
}
