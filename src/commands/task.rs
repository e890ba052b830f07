//! `moi-ingest task ...`: the load-task calls, one at a time, for people and scripts.
//! Human lines on stdout, or with `--json` the answer's `data` as one JSON line.

use super::{CommandResult, Output};
use crate::api::Client;
use crate::api::calls;
use crate::api::endpoints::Checked;
use crate::api::model::{
    CommonFileTaskConfig, CreateTask, LoadModeConfig, RetryFiles, SourceConfig, TaskFilesPage,
    TaskList, TaskListQuery, TaskRef, UpdateTask, file_status, task_status,
};
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

/// `task create`'s body from its flags.
fn create_from_flags(action: &TaskAction) -> Result<CreateTask, Failure> {
    let TaskAction::Create {
        connector,
        volume,
        uris,
        interval_type: it,
        interval,
        ..
    } = action
    else {
        return Err(Failure::usage("not a task create"));
    };
    let connector = connector
        .as_deref()
        .ok_or_else(|| Failure::usage("--connector is needed, or --body FILE"))?;
    let volume = volume
        .as_deref()
        .ok_or_else(|| Failure::usage("--volume is needed"))?;
    Ok(CreateTask {
        source_connector_id: id(connector, "connector id")?,
        volume_id: config::volume(volume)?,
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
    })
}

/// `task update`'s body from its flags: only what was given.
fn update_from_flags(action: &TaskAction) -> Result<UpdateTask, Failure> {
    let TaskAction::Update {
        task_id,
        uris,
        interval_type: it,
        interval,
        ..
    } = action
    else {
        return Err(Failure::usage("not a task update"));
    };
    let load_mode = |t: &str| -> Result<LoadModeConfig, Failure> {
        Ok(LoadModeConfig {
            load_interval_type: interval_type(t)?,
            interval: *interval,
        })
    };
    Ok(UpdateTask {
        task_id: id(task_id, "task id")?,
        load_mode_config: it.as_deref().map(load_mode).transpose()?,
        uris: (!uris.is_empty()).then(|| uris.clone()),
    })
}

fn describe_list(list: &TaskList) -> String {
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
}

fn describe_files(page: &TaskFilesPage) -> String {
    list_lines(
        format!(
            "{} files ({} succeeded, {} failed)",
            page.total, page.total_success, page.total_failed
        ),
        page.files.iter().map(|f| {
            let reason = if f.reason.is_empty() {
                String::new()
            } else {
                format!("\t{}", f.reason)
            };
            let status = file_status::describe(&f.status);
            format!("{}\t{status}\t{}{reason}", f.id, f.path)
        }),
    )
}

/// `task create`: the body given, or one from the flags.
async fn create(
    action: &TaskAction,
    body: &crate::cli::BodyArg,
    client: &Client,
    out: Output,
) -> Result<(), Failure> {
    let req = match &body.body {
        Some(p) => read_body::<CreateTask>(p, "POST /task")?,
        None => Checked::from_model(create_from_flags(action)?),
    };
    let config = &req.model.source_config.common_file_task_config;
    if config.uris.is_empty() {
        let why = "the task loads no files: give --uri (repeatable)";
        return Err(Failure::usage(why));
    }
    let send = calls::CreateTask { body: &req };
    client.send(&send).await.map_err(api_failure)?;
    print(out, false, &serde_json::json!({"created": true}), |_| {
        format!(
            "load task created for {} files of connector {} (`moi-ingest task list` shows it)",
            config.uris.len(),
            req.model.source_connector_id
        )
    });
    Ok(())
}

async fn run(action: &TaskAction, client: &Client, out: Output) -> Result<(), Failure> {
    match action {
        TaskAction::Create { body, .. } => create(action, body, client, out).await?,
        TaskAction::Update { body, .. } => {
            let req = match &body.body {
                Some(p) => read_body::<UpdateTask>(p, "POST /task/update")?,
                None => Checked::from_model(update_from_flags(action)?),
            };
            let send = calls::UpdateTask { body: &req };
            client.send(&send).await.map_err(api_failure)?;
            let task = req.model.task_id;
            let done = serde_json::json!({"updated": task});
            print(out, false, &done, |_| format!("task {task} updated"));
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
            print(out, false, &list, |_| describe_list(&list));
        }
        TaskAction::Get { task_id } => {
            let task_id = id(task_id, "task id")?;
            let got = client.send(&calls::GetTask { task_id }).await;
            let task = got.map_err(api_failure)?.task;
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
            print(out, false, &page_data, |_| describe_files(&page_data));
        }
        TaskAction::Retry { task_id, file_ids } => {
            let ids = file_ids
                .iter()
                .map(|f| id(f, "file id"))
                .collect::<Result<Vec<_>, _>>()?;
            let n = ids.len();
            let req = RetryFiles {
                task_id: id(task_id, "task id")?,
                ids,
            };
            client.send(&req).await.map_err(api_failure)?;
            print(out, false, &serde_json::json!({"retried": n}), |_| {
                format!("asked task {task_id} to load {n} files again")
            });
        }
        TaskAction::Pause { task_id }
        | TaskAction::Resume { task_id }
        | TaskAction::Delete { task_id, .. } => one_task(action, task_id, client, out).await?,
    }
    Ok(())
}

/// Pause, resume or delete one task.
async fn one_task(
    action: &TaskAction,
    task_id: &str,
    client: &Client,
    out: Output,
) -> Result<(), Failure> {
    let task = id(task_id, "task id")?;
    if let TaskAction::Delete { yes, .. } = action {
        let what = format!("task {task} and its file list at the service");
        confirm_delete(&what, *yes)?;
    }
    let one = TaskRef { task_id: task };
    let (verb, result) = match action {
        TaskAction::Pause { .. } => ("paused", client.send(&calls::PauseTask(one)).await),
        TaskAction::Resume { .. } => ("resumed", client.send(&calls::ResumeTask(one)).await),
        _ => ("deleted", client.send(&calls::DeleteTask(one)).await),
    };
    result.map_err(api_failure)?;
    let done = serde_json::json!({"task_id": task, "done": verb});
    print(out, false, &done, |_| format!("task {task} {verb}"));
    Ok(())
}
