//! `moi-ingest task ...`: the load-task calls, one at a time, for people and scripts.
//! Human lines on stdout, or with `--json` the answer's `data` as one JSON line.

use super::{CommandResult, Output};
use crate::api::Client;
use crate::api::model::{TaskListQuery, file_status, task_status};
use crate::cli::{TaskAction, TaskArgs};
use crate::config;
use crate::report::Failure;

/// Asks on a terminal; without one (scripts, cron) there is nobody to ask, so it is a yes.
pub(super) fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// A deletion goes ahead with `--yes`, without a terminal, or when the person says yes.
pub(super) fn confirm_delete(what: &str, yes: bool) -> Result<(), Failure> {
    if !yes && !confirm(&format!("Delete {what}?")) {
        return Err(Failure::usage(
            "not deleted (answer y to delete, or pass --yes)",
        ));
    }
    Ok(())
}

use super::calls_io::{api_failure, id, list_lines, print, read_body};

pub async fn task(args: &TaskArgs, out: Output) -> CommandResult {
    let conn = config::connection(&args.connection)?;
    let client =
        Client::new(&conn.endpoint, conn.credentials, conn.options).map_err(Failure::usage)?;
    run(&args.action, &client, out).await?;
    Ok(0)
}

/// A task for people: one field a line, statuses with their names, times as local dates.
fn describe_task(t: &crate::api::model::Task) -> String {
    let mut lines = vec![
        format!("task {}", t.id),
        format!("status: {}", task_status::describe(&t.status)),
        format!(
            "volume: {} {}",
            t.volume_id
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            if t.volume_name.is_empty() {
                String::new()
            } else {
                format!("({})", t.volume_name)
            }
        ),
    ];
    if !t.name.is_empty() {
        lines.push(format!("name: {}", t.name));
    }
    if let Some(c) = t.source_connector_id {
        lines.push(format!("connector: {c} (type {})", t.source_connector_type));
    }
    if !t.creator.is_empty() {
        lines.push(format!("creator: {}", t.creator));
    }
    lines.push(format!("created: {}", crate::report::stamp(&t.created_at)));
    lines.push(format!("updated: {}", crate::report::stamp(&t.updated_at)));
    if !t.start_at.is_unset() {
        lines.push(format!("started: {}", crate::report::stamp(&t.start_at)));
    }
    if !t.end_at.is_unset() {
        lines.push(format!("ended: {}", crate::report::stamp(&t.end_at)));
    }
    if let Some(uris) = t.source_config["common_file_task_config"]["uris"].as_array() {
        lines.push(format!("files: {}", uris.len()));
    }
    lines.join("\n")
}

fn interval_type(raw: &str) -> Result<i64, Failure> {
    use crate::api::model::load_interval;
    Ok(match raw {
        "once" => load_interval::ONCE,
        "daily" => load_interval::DAILY,
        "hourly" => load_interval::HOURLY,
        "minutely" | "every-minute" => load_interval::MINUTELY,
        other => other.parse().map_err(|_| {
            Failure::usage(format!(
                "--interval-type '{other}' is not once, daily, hourly or minutely"
            ))
        })?,
    })
}

async fn run(action: &TaskAction, client: &Client, out: Output) -> Result<(), Failure> {
    use crate::api::calls;
    use crate::api::endpoints::Checked;
    use crate::api::model::{
        CommonFileTaskConfig, CreateTask, LoadModeConfig, RetryFiles, SourceConfig, TaskRef,
        UpdateTask,
    };
    match action {
        TaskAction::Create {
            connector,
            volume,
            uris,
            interval_type: it,
            interval,
            body,
        } => {
            let req = match &body.body {
                Some(p) => read_body::<CreateTask>(p, "POST /task")?,
                None => Checked::from_model(CreateTask {
                    source_connector_id: id(
                        connector.as_deref().ok_or_else(|| {
                            Failure::usage("--connector is needed, or --body FILE")
                        })?,
                        "connector id",
                    )?,
                    volume_id: config::volume(
                        volume
                            .as_deref()
                            .ok_or_else(|| Failure::usage("--volume is needed"))?,
                    )?,
                    source_config: SourceConfig {
                        common_file_task_config: CommonFileTaskConfig {
                            load_mode_config: LoadModeConfig {
                                load_interval_type: interval_type(it)?,
                                interval: *interval,
                            },
                            uris: uris.clone(),
                        },
                    },
                    config_type: 1,
                }),
            };
            if req
                .model
                .source_config
                .common_file_task_config
                .uris
                .is_empty()
            {
                return Err(Failure::usage(
                    "the task loads no files: give --uri (repeatable)",
                ));
            }
            client
                .send(&calls::CreateTask { body: &req })
                .await
                .map_err(api_failure)?;
            print(out, false, &serde_json::json!({"created": true}), |_| {
                format!(
                    "load task created for {} files of connector {} (`moi-ingest task list` shows it)",
                    req.model.source_config.common_file_task_config.uris.len(),
                    req.model.source_connector_id
                )
            });
        }
        TaskAction::Update {
            task_id,
            uris,
            interval_type: it,
            interval,
            body,
        } => {
            let req = match &body.body {
                Some(p) => read_body::<UpdateTask>(p, "POST /task/update")?,
                None => Checked::from_model(UpdateTask {
                    task_id: id(task_id, "task id")?,
                    load_mode_config: it
                        .as_deref()
                        .map(|t| -> Result<LoadModeConfig, Failure> {
                            Ok(LoadModeConfig {
                                load_interval_type: interval_type(t)?,
                                interval: *interval,
                            })
                        })
                        .transpose()?,
                    uris: (!uris.is_empty()).then(|| uris.clone()),
                }),
            };
            client
                .send(&calls::UpdateTask { body: &req })
                .await
                .map_err(api_failure)?;
            print(
                out,
                false,
                &serde_json::json!({"updated": req.model.task_id}),
                |_| format!("task {} updated", req.model.task_id),
            );
        }
        TaskAction::List {
            status,
            page,
            page_size,
            order_by,
            desc,
        } => {
            let query = TaskListQuery {
                status: status.clone(),
                page: Some(*page),
                page_size: Some(*page_size),
                order_by: order_by.clone(),
                is_desc: desc.then_some(true),
                ..TaskListQuery::default()
            };
            let list = client.send(&query).await.map_err(api_failure)?;
            print(out, false, &list, |_| {
                list_lines(
                    format!("{} tasks", list.total),
                    list.tasks.iter().map(|t| {
                        format!(
                            "{}\tstatus {}\tvolume {}\t{}",
                            t.id,
                            task_status::describe(&t.status),
                            t.volume_name,
                            t.name
                        )
                    }),
                )
            });
        }
        TaskAction::Get { task_id } => {
            let task_id = id(task_id, "task id")?;
            let task = client
                .send(&calls::GetTask { task_id })
                .await
                .map_err(api_failure)?
                .task;
            print(out, false, &task, |_| describe_task(&task));
        }
        TaskAction::Files {
            task_id,
            status,
            page,
            page_size,
        } => {
            let req = calls::ListTaskFiles {
                task_id: id(task_id, "task id")?,
                statuses: status.clone(),
                page: *page,
                page_size: *page_size,
            };
            let page_data = client.send(&req).await.map_err(api_failure)?;
            print(out, false, &page_data, |_| {
                list_lines(
                    format!(
                        "{} files ({} succeeded, {} failed)",
                        page_data.total, page_data.total_success, page_data.total_failed
                    ),
                    page_data.files.iter().map(|f| {
                        let reason = if f.reason.is_empty() {
                            String::new()
                        } else {
                            format!("\t{}", f.reason)
                        };
                        format!(
                            "{}\t{}\t{}{reason}",
                            f.id,
                            file_status::describe(&f.status),
                            f.path
                        )
                    }),
                )
            });
        }
        TaskAction::Retry { task_id, file_ids } => {
            let ids = file_ids
                .iter()
                .map(|f| id(f, "file id"))
                .collect::<Result<Vec<_>, _>>()?;
            let req = RetryFiles {
                task_id: id(task_id, "task id")?,
                ids: ids.clone(),
            };
            client.send(&req).await.map_err(api_failure)?;
            print(
                out,
                false,
                &serde_json::json!({"retried": ids.len()}),
                |_| format!("asked task {task_id} to load {} files again", ids.len()),
            );
        }
        TaskAction::Pause { task_id }
        | TaskAction::Resume { task_id }
        | TaskAction::Delete { task_id, .. } => {
            let task = id(task_id, "task id")?;
            if let TaskAction::Delete { yes, .. } = action {
                confirm_delete(
                    &format!("task {task} and its file list at the service"),
                    *yes,
                )?;
            }
            let one = TaskRef { task_id: task };
            let (verb, result) = match action {
                TaskAction::Pause { .. } => ("paused", client.send(&calls::PauseTask(one)).await),
                TaskAction::Resume { .. } => {
                    ("resumed", client.send(&calls::ResumeTask(one)).await)
                }
                _ => ("deleted", client.send(&calls::DeleteTask(one)).await),
            };
            result.map_err(api_failure)?;
            print(
                out,
                false,
                &serde_json::json!({"task_id": task, "done": verb}),
                |_| format!("task {task} {verb}"),
            );
        }
    }
    Ok(())
}
