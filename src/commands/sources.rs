//! `moi-ingest connector ...` and `login` (and the helpers `export` shares): the documented calls beyond upload,
//! one at a time, for people (lines on stdout) and scripts (`--json`: the answer's `data`).
//! Connector secrets are shown as `***` in every output unless `--show-secrets` is given,
//! and are scrubbed from every error.

use std::io::IsTerminal;

use serde::Serialize;
use serde_json::{Map, Value};

use super::calls_io::{api_failure, client_for, every_page, id, list_lines, print, read_body};
use super::{CommandResult, Output};
use crate::api::calls::{self, ListConnectors};
use crate::api::endpoints::Checked;
use crate::api::model::*;
use crate::api::{Client, Credentials};
use crate::cli::{ConnectorAction, ConnectorArgs, LoginArgs, SourceFlags};
use crate::config;
use crate::report::{Exit, Failure};
use crate::secret::{Secret, mask_secrets};

/// The source's secret: never a flag. From $MOI_SOURCE_SECRET, else asked on a terminal.
fn source_secret(what: &str) -> Result<String, Failure> {
    if let Ok(s) = std::env::var("MOI_SOURCE_SECRET")
        && !s.is_empty()
    {
        return Ok(s);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("{what} (not shown): "))
            .map_err(|e| Failure::usage(format!("cannot read the {what}: {e}")));
    }
    Err(Failure::usage(format!(
        "the {what} is needed: set MOI_SOURCE_SECRET (it is never a flag, so that it stays out \
         of `ps` and shell history)"
    )))
}

fn need(v: &Option<String>, flag: &str, kind: &str) -> Result<String, Failure> {
    v.clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Failure::usage(format!("{flag} is needed for a {kind} connector")))
}

fn source_type_of(raw: &str) -> Result<i64, Failure> {
    source_type::from_name(raw)
        .or_else(|| raw.parse().ok().filter(|t| source_type::key(*t).is_some()))
        .ok_or_else(|| Failure::usage(format!("--type '{raw}' is not oss, s3, hdfs, mo or dify")))
}

/// The config object of `--type` from the flags (and the secret).
fn configs_from_flags(f: &SourceFlags) -> Result<(i64, SourceConfigs), Failure> {
    let raw = f.source_type.as_deref().ok_or_else(|| {
        Failure::usage("--type is needed (oss, s3, hdfs, mo or dify), or --body FILE")
    })?;
    let t = source_type_of(raw)?;
    let kind = source_type::key(t).unwrap_or("");
    let mut c = SourceConfigs::default();
    match t {
        source_type::OSS => {
            c.oss = Some(OssConfig {
                endpoint: need(&f.source_endpoint, "--source-endpoint", kind)?,
                access_key_id: need(&f.access_key_id, "--access-key-id", kind)?,
                bucket_name: need(&f.bucket, "--bucket", kind)?,
                access_key_secret: source_secret("access key secret")?,
            })
        }
        source_type::S3 => {
            c.s3 = Some(S3Config {
                endpoint: need(&f.source_endpoint, "--source-endpoint", kind)?,
                access_key_id: need(&f.access_key_id, "--access-key-id", kind)?,
                bucket_name: need(&f.bucket, "--bucket", kind)?,
                region: f.region.clone().unwrap_or_default(),
                path_style: f.path_style,
                session_token: None,
                access_key_secret: source_secret("secret access key")?,
            })
        }
        source_type::DIFY => {
            c.dify = Some(DifyConfig {
                api_url: need(&f.api_url, "--api-url", kind)?,
                api_key: source_secret("Dify API key")?,
            })
        }
        source_type::HDFS => {
            c.hdfs = Some(HdfsConfig {
                address: need(&f.address, "--address", kind)?,
                auth_type: f.auth_type.unwrap_or(1),
                username: f.source_user.clone().unwrap_or_default(),
                file_path: f.file_path.clone().unwrap_or_default(),
            })
        }
        _ => {
            c.mo = Some(MoConfig {
                host: need(&f.host, "--host", kind)?,
                port: f
                    .port
                    .ok_or_else(|| Failure::usage("--port is needed for a mo connector"))?,
                username: need(&f.source_user, "--source-user", kind)?,
                password: source_secret("database password")?,
            })
        }
    }
    Ok((t, c))
}

/// The settings fields the flags give for a `kind` connector (`s3`, ...), by their names
/// in its settings object: only what was given.
fn given_settings(f: &SourceFlags, kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |field: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(field.to_string(), v);
        }
    };
    let text = |v: &Option<String>| v.clone().map(Value::from);
    match kind {
        "oss" | "s3" => {
            put("endpoint", text(&f.source_endpoint));
            put("access_key_id", text(&f.access_key_id));
            put("bucket_name", text(&f.bucket));
            if kind == "s3" {
                put("region", text(&f.region));
                put("path_style", f.path_style.then_some(Value::Bool(true)));
            }
        }
        "dify" => put("api_url", text(&f.api_url)),
        "hdfs" => {
            put("address", text(&f.address));
            put("auth_type", f.auth_type.map(Value::from));
            put("username", text(&f.source_user));
            put("file_path", text(&f.file_path));
        }
        _ => {
            put("host", text(&f.host));
            put("port", f.port.map(Value::from));
            put("username", text(&f.source_user));
        }
    }
    m
}

/// The field of a `kind` connector's settings that holds its secret, and what to call it.
fn secret_field(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "oss" => Some(("access_key_secret", "access key secret")),
        "s3" => Some(("access_key_secret", "secret access key")),
        "dify" => Some(("api_key", "Dify API key")),
        "mo" => Some(("password", "database password")),
        _ => None,
    }
}

/// `connector update` from flags: `--name` alone changes the name; settings flags change
/// only those settings. The service's `PUT` replaces a connector's settings object whole,
/// so the stored one is read (from the listing, which returns it) and sent back with the
/// given fields changed. A new `--type` takes all of its settings, as `create` does.
async fn update_from_flags(
    client: &Client,
    cid: &str,
    name: Option<&str>,
    f: &SourceFlags,
) -> Result<Value, Failure> {
    let mut wire = Map::new();
    if let Some(n) = name {
        wire.insert("name".into(), n.into());
    }
    let touches_settings = f.source_type.is_some()
        || ["oss", "s3", "dify", "hdfs", "mo"]
            .iter()
            .any(|k| !given_settings(f, k).is_empty());
    if !touches_settings {
        return Ok(Value::Object(wire));
    }
    let current = find_connector(client, cid).await?;
    let stored = current
        .source_type
        .num()
        .and_then(source_type::key)
        .unwrap_or("");
    let wanted = match &f.source_type {
        Some(raw) => source_type::key(source_type_of(raw)?).unwrap_or(""),
        None => stored,
    };
    if wanted != stored {
        let (_, configs) = configs_from_flags(f)?;
        if let Value::Object(c) = serde_json::to_value(configs).unwrap_or_default() {
            wire.extend(c);
        }
        return Ok(Value::Object(wire));
    }
    let mut settings = current
        .config
        .get(stored)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    settings.extend(given_settings(f, stored));
    if let Some((field, what)) = secret_field(stored) {
        match std::env::var("MOI_SOURCE_SECRET") {
            Ok(secret) if !secret.is_empty() => {
                settings.insert(field.into(), secret.into());
            }
            _ if settings
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
            {
                return Err(Failure::usage(format!(
                    "the service did not return connector {cid}'s stored {what}, and a change \
                     of its settings replaces them whole: set MOI_SOURCE_SECRET to the {what} \
                     so that it is sent again"
                )));
            }
            _ => {}
        }
    }
    wire.insert(stored.into(), Value::Object(settings));
    Ok(Value::Object(wire))
}

/// A connector by id, from the listing (the service has no call for one connector).
async fn find_connector(client: &Client, cid: &str) -> Result<Connector, Failure> {
    let every = ListConnectors {
        page: 1,
        page_size: 100,
        ..ListConnectors::default()
    };
    let all = list_connectors(client, every, true).await?;
    all.connectors
        .into_iter()
        .find(|c| c.id.to_string() == cid)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no connector {cid}: `moi-ingest connector list` shows their ids"
            ))
        })
}

/// The connectors `first` asks for, and with `all` every page after it.
async fn list_connectors(
    client: &Client,
    first: ListConnectors,
    all: bool,
) -> Result<ConnectorList, Failure> {
    let skipped = first.page.saturating_sub(1) * first.page_size;
    every_page(all, skipped, |pages, _| {
        let req = ListConnectors {
            page: first.page + pages,
            ..first.clone()
        };
        async move { client.send(&req).await }
    })
    .await
}

/// Every secret in a body the user gave: scrubbed from the client's error messages too.
fn guard_secrets(client: &Client, body: &impl Serialize) {
    let mut v = serde_json::to_value(body).unwrap_or_default();
    for s in mask_secrets(&mut v) {
        client.redact(&Secret::new(s));
    }
}

/// `connector update`: the body given, or the stored settings with the flags' changes.
async fn update(
    client: &Client,
    cid: &str,
    name: Option<&str>,
    source: &SourceFlags,
    body: &crate::cli::BodyArg,
    out: Output,
    show: bool,
) -> Result<(), Failure> {
    let cid = id(cid, "connector id")?.to_string();
    let req = match &body.body {
        Some(p) => read_body::<UpdateConnector>(p, "PUT /connectors/{id}")?,
        None => {
            let merged = update_from_flags(client, &cid, name, source).await?;
            Checked::parse(merged).map_err(|e| {
                Failure::usage(format!(
                    "connector {cid}'s stored settings with the flags' changes are not \
                             a documented PUT /connectors/{{id}} body ({e}); give the whole \
                             body with --body FILE"
                ))
            })?
        }
    };
    if req.json().as_object().is_none_or(|o| o.is_empty()) {
        return Err(Failure::usage(
            "nothing to change: give --name, settings (--bucket, --type with its \
                     settings, ...), or --body FILE",
        ));
    }
    guard_secrets(client, &req);
    let update = calls::UpdateConnector {
        id: cid.clone(),
        body: &req,
    };
    client.send(&update).await.map_err(api_failure)?;
    print(out, show, &serde_json::json!({"updated": cid}), |_| {
        format!("connector {cid} updated")
    });
    Ok(())
}

/// `connector create`'s body from its flags.
fn create_from_flags(
    name: &Option<String>,
    source: &SourceFlags,
    usage_type: &[i64],
) -> Result<CreateConnector, Failure> {
    let (source_type, config) = configs_from_flags(source)?;
    Ok(CreateConnector {
        name: name
            .clone()
            .ok_or_else(|| Failure::usage("--name is needed, or --body FILE"))?,
        source_type,
        config,
        usage_type: (!usage_type.is_empty()).then(|| usage_type.to_vec()),
    })
}

/// What `connector validate` asks about: a body given, a stored connector, or the flags'
/// settings.
fn validate_body(
    body: &crate::cli::BodyArg,
    cid: Option<&str>,
    source: &SourceFlags,
) -> Result<Value, Failure> {
    Ok(match (&body.body, cid) {
        (Some(p), _) => read_body::<Value>(p, "POST /connectors/validate")?.into_json(),
        (None, Some(cid)) => serde_json::json!({"connector_id": id(cid, "connector id")?}),
        (None, None) => {
            let (t, c) = configs_from_flags(source)?;
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["source_type"] = t.into();
            v
        }
    })
}

/// `connector create`: the body given, or one from the flags.
async fn create(
    client: &Client,
    name: &Option<String>,
    source: &SourceFlags,
    usage_type: &[i64],
    body: &crate::cli::BodyArg,
    out: Output,
    show: bool,
) -> Result<(), Failure> {
    let req = match &body.body {
        Some(p) => read_body::<CreateConnector>(p, "POST /connectors")?,
        None => Checked::from_model(create_from_flags(name, source, usage_type)?),
    };
    req.model.check().map_err(Failure::usage)?;
    guard_secrets(client, &req);
    client
        .send(&calls::CreateConnector { body: &req })
        .await
        .map_err(api_failure)?;
    print(
        out,
        show,
        &serde_json::json!({"created": req.model.name}),
        |_| {
            format!(
                "connector '{}' created (`moi-ingest connector list` shows its id)",
                req.model.name
            )
        },
    );
    Ok(())
}

/// `connector validate`: exit 1 when the service finds the settings not valid.
async fn validate(
    client: &Client,
    cid: Option<&str>,
    source: &SourceFlags,
    body: &crate::cli::BodyArg,
    out: Output,
    show: bool,
) -> CommandResult {
    let req = validate_body(body, cid, source)?;
    guard_secrets(client, &req);
    let answer = client
        .send(&calls::ValidateConnector { body: &req })
        .await
        .map_err(api_failure)?;
    print(out, show, &answer, |_| {
        if answer.valid {
            "valid: the service reached the source".into()
        } else {
            "not valid: the service could not use these settings".into()
        }
    });
    if !answer.valid {
        return Ok(Exit::Failures.code());
    }
    Ok(0)
}

pub async fn connector(args: &ConnectorArgs, out: Output) -> CommandResult {
    let client = client_for(&args.connection)?;
    let show = args.secrets.show_secrets;
    match &args.action {
        ConnectorAction::Create {
            name,
            source,
            usage_type,
            body,
        } => create(&client, name, source, usage_type, body, out, show).await?,
        ConnectorAction::Validate {
            id: cid,
            source,
            body,
        } => return validate(&client, cid.as_deref(), source, body, out, show).await,
        ConnectorAction::List {
            keyword,
            source_type,
            page,
            page_size,
            all,
        } => {
            let first = ListConnectors {
                keyword: keyword.clone(),
                source_type: source_type.as_deref().map(source_type_of).transpose()?,
                page: *page,
                page_size: *page_size,
            };
            let list = list_connectors(&client, first, *all).await?;
            print(out, show, &list, |v| describe_connectors(list.total, v));
        }
        ConnectorAction::Update {
            id: cid,
            name,
            source,
            body,
        } => update(&client, cid, name.as_deref(), source, body, out, show).await?,
        ConnectorAction::Delete { id: cid, yes } => {
            let cid = id(cid, "connector id")?.to_string();
            super::task::confirm_delete(&format!("connector {cid}"), *yes)?;
            client
                .send(&calls::DeleteConnector { id: cid.clone() })
                .await
                .map_err(api_failure)?;
            print(out, show, &serde_json::json!({"deleted": cid}), |_| {
                format!("connector {cid} deleted")
            });
        }
        ConnectorAction::Files {
            id: cid,
            file_types,
        } => {
            let req = calls::ListConnectorFiles {
                connector_id: id(cid, "connector id")?,
                file_types: file_types.clone(),
            };
            let files = client.send(&req).await.map_err(api_failure)?;
            print(out, show, &files, |_| {
                let rows = files.files.iter();
                list_lines(
                    format!("{} files", files.files.len()),
                    rows.map(|f| format!("type {}\t{}\t{}", f.file_type, f.size, f.uri)),
                )
            });
        }
        ConnectorAction::Summary => {
            let s = client
                .send(&calls::ConnectorSummary)
                .await
                .map_err(api_failure)?;
            print(out, show, &s, |v| {
                serde_json::to_string_pretty(v).unwrap_or_default()
            });
        }
    }
    Ok(0)
}

pub async fn login(args: &LoginArgs, out: Output) -> CommandResult {
    let mut conn = args.connection.clone();
    // A login check is about the session credentials, whatever MOI_KEY says.
    conn.api_key = None;
    if conn.password.is_none()
        && std::env::var("MOI_PASSWORD").is_err()
        && std::io::stdin().is_terminal()
    {
        conn.password = Some(
            rpassword::prompt_password("MOI password (not shown): ")
                .map_err(|e| Failure::usage(format!("cannot read the password: {e}")))?,
        );
    }
    let c = config::connection(&conn).map_err(|_| {
        Failure::usage(
            "login needs MOI_ACCOUNT, MOI_USERNAME and MOI_PASSWORD (or a prompt on a terminal)",
        )
    })?;
    let Credentials::Session {
        account, username, ..
    } = &c.credentials
    else {
        return Err(Failure::usage(
            "login needs MOI_ACCOUNT, MOI_USERNAME and MOI_PASSWORD",
        ));
    };
    let (account, username) = (account.clone(), username.clone());
    let ttl = c.options.session_ttl;
    let client = Client::new(&c.endpoint, c.credentials.clone(), c.options.clone())
        .map_err(Failure::usage)?;
    let uid = client.check_login().await.map_err(api_failure)?;
    let expires = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(ttl.as_secs() as i64))
        .map(|t| crate::report::local_time(t.as_second()))
        .unwrap_or_default();
    print(
        out,
        false,
        &serde_json::json!({"account": account, "username": username, "uid": uid, "expires": expires}),
        |_| {
            format!(
                "logged in as '{username}' in account '{account}' (uid {uid}); the session token lasts until {expires} and is refreshed by itself during runs"
            )
        },
    );
    Ok(0)
}

/// A listing for people, from its JSON (secrets already masked).
fn describe_connectors(total: u64, v: &Value) -> String {
    let rows = v["connectors"].as_array().into_iter().flatten();
    list_lines(
        format!("{total} connectors"),
        rows.map(|c| {
            format!(
                "{}\ttype {}\t{}\t{}",
                c["id"].as_str().unwrap_or_default(),
                c["source_type"],
                c["status"].as_str().unwrap_or_default(),
                c["name"].as_str().unwrap_or_default()
            )
        }),
    )
}
