//! `moi-ingest export ...`: export tasks that push processed files to Dify, S3/OSS or
//! MatrixOne, from friendly flags or the documented body (`--body FILE`).

use super::calls_io::{api_failure, client_for, every_page, id, list_lines, print, read_body};
use super::{CommandResult, Output};
use crate::api::Client;
use crate::api::calls::{CreateExport, DeleteExport, GetExport, ListExports, RerunExport};
use crate::api::endpoints::Checked;
use crate::api::model::*;
use crate::cli::{BodyArg, ExportAction, ExportArgs};
use crate::report::Failure;

fn export_type_of(raw: &str) -> Result<i64, Failure> {
    Ok(match raw.to_ascii_lowercase().as_str() {
        "dify" | "1" => export_type::DIFY,
        "s3" | "oss" | "2" => export_type::S3,
        "mo" | "matrixone" | "3" => export_type::MO,
        _ => {
            return Err(Failure::usage(format!(
                "--type '{raw}' is not dify, s3 (or oss) or mo"
            )));
        }
    })
}

/// `--file FILE_ID=path/in/volume`.
fn export_file(flag: &str) -> Result<ExportFile, Failure> {
    let (id, p) = flag
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("--file '{flag}' is not FILE_ID=path/in/volume")))?;
    Ok(ExportFile {
        file_id: id.to_string(),
        full_path: p
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        is_raw: false,
    })
}

fn export_from_flags(a: &ExportAction) -> Result<ExportCreate, Failure> {
    let ExportAction::Create {
        name,
        connector,
        connector_name,
        export_type,
        creator,
        dataset_id,
        dataset_name,
        embedding_model,
        path,
        compress,
        database,
        table,
        new_table,
        files,
        ..
    } = a
    else {
        return Err(Failure::usage("not an export create"));
    };
    let t = export_type_of(
        export_type
            .as_deref()
            .ok_or_else(|| Failure::usage("--type is needed (dify, s3 or mo), or --body FILE"))?,
    )?;
    let mut config = ExportConfig::default();
    let flag = |v: &Option<String>, f: &str| {
        v.clone()
            .ok_or_else(|| Failure::usage(format!("{f} is needed for this --type")))
    };
    match t {
        export_type::DIFY => {
            config.dify_config = Some(DifyExport {
                dataset_id: flag(dataset_id, "--dataset-id")?,
                dataset_name: dataset_name.clone().unwrap_or_default(),
                embedding_model: embedding_model.clone().unwrap_or_default(),
            })
        }
        export_type::S3 => {
            config.s3_config = Some(S3Export {
                path: flag(path, "--path")?,
                need_compress: compress.is_some(),
                compress_method: compress.clone().unwrap_or_default(),
            })
        }
        _ => {
            config.mo_config = Some(MoExport {
                database_name: flag(database, "--database")?,
                table_name: flag(table, "--table")?,
                new_table: *new_table,
                ..MoExport::default()
            })
        }
    }
    let files = files
        .iter()
        .map(|f| export_file(f))
        .collect::<Result<Vec<_>, Failure>>()?;
    Ok(ExportCreate {
        task_name: name
            .clone()
            .ok_or_else(|| Failure::usage("--name is needed, or --body FILE"))?,
        creator: creator.clone(),
        connector_id: id(
            connector
                .as_deref()
                .ok_or_else(|| Failure::usage("--connector is needed"))?,
            "connector id",
        )?,
        connector_name: connector_name.clone().unwrap_or_default(),
        export_type: t,
        config,
        files,
    })
}

/// `export create`: the body given, or one from the flags.
async fn create(
    client: &Client,
    a: &ExportAction,
    body: Option<&std::path::Path>,
    out: Output,
) -> Result<(), Failure> {
    let req = match body {
        Some(p) => read_body::<ExportCreate>(p, "POST /export/task/create")?,
        None => Checked::from_model(export_from_flags(a)?),
    };
    req.model.check().map_err(Failure::usage)?;
    client
        .send(&CreateExport { body: &req })
        .await
        .map_err(api_failure)?;
    print(
        out,
        false,
        &serde_json::json!({"created": req.model.task_name}),
        |_| {
            format!(
                "export task '{}' created for {} files",
                req.model.task_name,
                req.model.files.len()
            )
        },
    );
    Ok(())
}

/// `export list`: a body of the user's own sent once as written, or the flags' pages.
async fn list(client: &Client, action: &ExportAction, out: Output) -> Result<(), Failure> {
    let ExportAction::List {
        status,
        creator,
        connector_name,
        offset,
        limit,
        all,
        body: BodyArg { body },
    } = action
    else {
        return Ok(());
    };
    // A body of the user's own is sent once, as written; the flags page.
    let written = body
        .as_deref()
        .map(|p| read_body::<ExportListQuery>(p, "POST /export/task/list"))
        .transpose()?;
    let list = match &written {
        Some(body) => client
            .send(&ListExports { body })
            .await
            .map_err(api_failure)?,
        None => {
            every_page(*all, *offset, |_, seen| {
                let body = ExportListQuery {
                    offset: Some(offset + seen),
                    limit: Some(*limit),
                    statuses: status.clone(),
                    creator: creator.clone(),
                    connector_name: connector_name.clone(),
                    ..ExportListQuery::default()
                };
                async move { client.send(&ListExports { body: &body }).await }
            })
            .await?
        }
    };
    print(out, false, &list, |_| describe_list(&list));
    Ok(())
}

pub async fn export(args: &ExportArgs, out: Output) -> CommandResult {
    let client = client_for(&args.connection)?;
    match &args.action {
        a @ ExportAction::Create {
            body: BodyArg { body },
            ..
        } => create(&client, a, body.as_deref(), out).await?,
        action @ ExportAction::List { .. } => list(&client, action, out).await?,
        ExportAction::Info { id } => {
            let info = client
                .send(&GetExport(ExportRef { id: id.clone() }))
                .await
                .map_err(api_failure)?;
            print(out, false, &info, |v| describe_info(id, v));
        }
        ExportAction::Files {
            id,
            status,
            offset,
            limit,
            all,
        } => {
            let files: ExportFiles = every_page(*all, *offset, |_, seen| {
                let body = ExportFilesQuery {
                    task_id: id.clone(),
                    offset: Some(offset + seen),
                    limit: Some(*limit),
                    statuses: status.clone(),
                    ..ExportFilesQuery::default()
                };
                let client = &client;
                async move { client.send(&body).await }
            })
            .await?;
            print(out, false, &files, |_| describe_files(&files));
        }
        ExportAction::Rerun { id } => {
            client
                .send(&RerunExport { id: id.clone() })
                .await
                .map_err(api_failure)?;
            print(out, false, &serde_json::json!({"rerun": id}), |_| {
                format!("export task {id}: its failed files go again")
            });
        }
        ExportAction::Delete { id, yes } => {
            super::task::confirm_delete(&format!("export task {id}"), *yes)?;
            client
                .send(&DeleteExport(ExportRef { id: id.clone() }))
                .await
                .map_err(api_failure)?;
            print(out, false, &serde_json::json!({"deleted": id}), |_| {
                format!("export task {id} deleted")
            });
        }
    }
    Ok(0)
}

fn describe_list(list: &ExportList) -> String {
    list_lines(
        format!("{} export tasks", list.total),
        list.tasks
            .iter()
            .map(|t| format!("{}\tstatus {}\t{}", t.id, t.status, t.name)),
    )
}

fn describe_info(id: &str, v: &serde_json::Value) -> String {
    let s = &v["file_stats"];
    format!(
        "export task {} '{}': status {}\nfiles: {} in all, {} pending, {} running, {} completed, {} failed",
        id,
        v["name"].as_str().unwrap_or_default(),
        v["status"],
        s["total"],
        s["pending"],
        s["running"],
        s["completed"],
        s["failed"]
    )
}

fn describe_files(files: &ExportFiles) -> String {
    list_lines(
        format!(
            "{} files: {} exported, {} failed",
            files.total_files, files.total_success, files.total_failure
        ),
        files.files.iter().map(|f| {
            format!(
                "{}\tstatus {}\t{}\t{}",
                f.id, f.status, f.file_name, f.details
            )
        }),
    )
}
