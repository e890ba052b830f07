//! Follow: poll `/task/files` until every uploaded file's ingestion is final, and re-drive
//! failed loads through `/task/retry`.
//!
//! Only tasks that still have files in flight are polled, a bounded number at a time, one
//! page request per task per round (more only for tasks over a page). The pause between
//! rounds starts at `--poll-interval` and grows by half each round in which nothing
//! changed, up to a ceiling, so a large backlog costs rounds, not a flood of requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{Cancel, Cause};
use crate::api::calls::ListTaskFiles;
use crate::api::model::RetryFiles;
use crate::api::model::file_status;
use crate::api::{ApiError, Client, ErrorKind, Id};
use crate::journal::{FileState, IngestUpdate, Journal, JournalError};
use crate::policy::RetryPolicy;
use crate::report::RunStats;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FollowSettings {
    /// `/task/retry` rounds per file before its failure is final.
    pub max_retries: u32,
    /// How long the follow phase may last.
    pub wait_timeout: Duration,
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
    /// Tasks polled at once.
    pub concurrency: usize,
    pub page_size: u64,
}

impl Default for FollowSettings {
    fn default() -> Self {
        FollowSettings {
            max_retries: 3,
            wait_timeout: Duration::from_secs(2 * 3600),
            poll_interval: Duration::from_secs(2),
            max_poll_interval: Duration::from_secs(60),
            concurrency: 4,
            page_size: 1000,
        }
    }
}

#[derive(Debug, Default)]
pub struct FollowResult {
    pub failed: u64,
    pub pending: u64,
}

struct TaskRound {
    changed: bool,
}

/// Why one task's round failed: the service (retried next round unless it is an auth
/// refusal) or the journal (which ends the follow phase).
enum RoundError {
    Api(ApiError),
    Journal(JournalError),
}

impl From<ApiError> for RoundError {
    fn from(e: ApiError) -> Self {
        RoundError::Api(e)
    }
}

impl From<JournalError> for RoundError {
    fn from(e: JournalError) -> Self {
        RoundError::Journal(e)
    }
}

/// What one file's status in a listing means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ingest {
    Done,
    /// Failed, with retries left: `/task/retry` is asked to load it again.
    Retry,
    /// Failed with no retries left.
    FailedForGood,
    /// Still on its way.
    Waiting,
}

fn ingest_step(status: i64, retries_so_far: u64, max_retries: u64) -> Ingest {
    match status {
        file_status::SUCCESS => Ingest::Done,
        file_status::FAILED if retries_so_far < max_retries => Ingest::Retry,
        file_status::FAILED => Ingest::FailedForGood,
        _ => Ingest::Waiting,
    }
}

/// One round of following a task: its files listed page by page, each file's news
/// recorded, failed loads re-driven.
async fn poll_task(
    task: Id,
    settings: &FollowSettings,
    client: &Client,
    journal: &Journal,
    stats: &RunStats,
) -> Result<TaskRound, RoundError> {
    let c = &stats.counters;
    let followed = journal.followed_files(task).await?;
    let mut waiting: HashMap<Id, _> = followed.into_iter().map(|f| (f.file_id, f)).collect();
    let mut updates = Vec::new();
    let mut to_retry = Vec::new();
    let mut changed = false;
    let mut page = 1;
    let mut listed = 0u64;
    loop {
        RunStats::add(&c.poll_requests, 1);
        let req = ListTaskFiles {
            task_id: task,
            statuses: Vec::new(),
            page,
            page_size: settings.page_size,
        };
        let answer = match client.send(&req).await {
            Ok(a) => a,
            Err(e) if e.kind == ErrorKind::Permanent => {
                // The task is gone or refused for good: its files cannot finish.
                for (id, f) in waiting.drain() {
                    stats.note_failure(&f.path, "ingest", &e.to_string());
                    RunStats::add(&c.ingest_failed, 1);
                    let reason = Some(e.to_string());
                    updates.push(update(id, file_status::UNKNOWN, FileState::Failed, reason));
                }
                changed = true;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let got = answer.files.len() as u64;
        listed += got;
        for file in answer.files {
            let Some(f) = waiting.remove(&file.id) else {
                continue;
            };
            let reason = (!file.reason.is_empty()).then(|| file.reason.clone());
            let status = file_status::of(&file.status);
            let step = ingest_step(status, f.ingest_retries, settings.max_retries as u64);
            changed |= step != Ingest::Waiting;
            let state = match step {
                Ingest::Done => {
                    RunStats::add(&c.ingested, 1);
                    FileState::Ingested
                }
                Ingest::Retry => {
                    to_retry.push(file.id);
                    FileState::Ingesting
                }
                Ingest::FailedForGood => {
                    let why = reason.clone().unwrap_or_else(|| "ingestion failed".into());
                    tracing::warn!("ingestion of {} failed for good: {why}", f.path);
                    stats.note_failure(&f.path, "ingest", &why);
                    RunStats::add(&c.ingest_failed, 1);
                    FileState::Failed
                }
                Ingest::Waiting => FileState::Ingesting,
            };
            let mut u = update(file.id, status, state, reason);
            u.retried = step == Ingest::Retry;
            updates.push(u);
        }
        // Paged by the answer's total, not our page size: a server may cap pages lower.
        if waiting.is_empty() || got == 0 || listed >= answer.total {
            break;
        }
        page += 1;
    }
    ask_retries(task, &to_retry, &mut updates, client, stats).await?;
    journal.record_ingest(task, updates).await?;
    Ok(TaskRound { changed })
}

fn update(file_id: Id, status: i64, state: FileState, reason: Option<String>) -> IngestUpdate {
    IngestUpdate {
        file_id,
        status,
        state,
        reason,
        retried: false,
    }
}

/// Asks `/task/retry` to load `ids` again, 500 a call. Files it could not ask for are
/// not retried after all: they are seen failed again next round.
async fn ask_retries(
    task: Id,
    ids: &[Id],
    updates: &mut [IngestUpdate],
    client: &Client,
    stats: &RunStats,
) -> Result<(), RoundError> {
    let c = &stats.counters;
    for ids in ids.chunks(500) {
        let req = RetryFiles {
            task_id: task,
            ids: ids.to_vec(),
        };
        let e = match client.send(&req).await {
            Ok(_) => {
                RunStats::add(&c.ingest_retries, ids.len() as u64);
                continue;
            }
            Err(e) if e.kind == ErrorKind::Auth => return Err(e.into()),
            Err(e) => e,
        };
        let n = ids.len();
        if e.is_transient() {
            // A busy service (503, 429): counted, and asked again next round.
            RunStats::add(&c.follow_transient, 1);
            tracing::debug!("asking task {task} to retry {n} files: {e}");
        } else {
            tracing::warn!("asking task {task} to retry {n} files failed: {e}");
        }
        for u in updates.iter_mut().filter(|u| ids.contains(&u.file_id)) {
            u.retried = false;
        }
    }
    Ok(())
}

/// The poll interval after a round: back to `--poll-interval` when something changed,
/// else half as long again, up to the longest.
fn next_interval(interval: Duration, changed: bool, settings: &FollowSettings) -> Duration {
    if changed {
        settings.poll_interval
    } else {
        interval.mul_f64(1.5).min(settings.max_poll_interval)
    }
}

pub async fn run(
    settings: &FollowSettings,
    client: &Client,
    journal: &Journal,
    stats: &Arc<RunStats>,
    cancel: &Cancel,
) -> Result<FollowResult, Cause> {
    let c = &stats.counters;
    let deadline = Instant::now() + settings.wait_timeout;
    let to_follow = journal
        .followable_pending()
        .await
        .map_err(|e| Cause::from_journal(&e))?;
    c.to_follow
        .store(to_follow, std::sync::atomic::Ordering::Relaxed);
    let mut interval = settings.poll_interval;
    loop {
        let tasks = journal
            .tasks_to_follow()
            .await
            .map_err(|e| Cause::from_journal(&e))?;
        if tasks.is_empty() || cancel.soft.is_cancelled() || Instant::now() >= deadline {
            break;
        }
        RunStats::add(&c.follow_rounds, 1);
        let rounds: Vec<Result<TaskRound, RoundError>> = futures::stream::iter(tasks)
            .map(|t| poll_task(t, settings, client, journal, stats))
            .buffer_unordered(settings.concurrency.max(1))
            .collect()
            .await;
        let mut changed = false;
        let mut asked_to_wait = None;
        for r in rounds {
            match r {
                Ok(round) => changed |= round.changed,
                Err(RoundError::Journal(e)) => return Err(Cause::from_journal(&e)),
                Err(RoundError::Api(e)) if e.kind == ErrorKind::Auth => {
                    return Err(Cause::from_api(&e));
                }
                Err(RoundError::Api(e)) if e.is_transient() => {
                    asked_to_wait = asked_to_wait.max(e.retry_after);
                    RunStats::add(&c.follow_transient, 1);
                    tracing::debug!("following ingestion: {e}; trying again next round")
                }
                Err(RoundError::Api(e)) => {
                    tracing::warn!("following ingestion: {e}; trying again next round")
                }
            }
        }
        interval = next_interval(interval, changed, settings);
        let pause = RetryPolicy::wait(interval, asked_to_wait)
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.soft.cancelled() => break,
        }
    }
    let pending = journal
        .followable_pending()
        .await
        .map_err(|e| Cause::from_journal(&e))?;
    let unfollowable = journal
        .unfollowable()
        .await
        .map_err(|e| Cause::from_journal(&e))?;
    if unfollowable > 0 {
        tracing::warn!(
            "{unfollowable} uploaded files came back without a task or file id, so their \
             ingestion cannot be followed; they count as uploaded"
        );
    }
    c.ingest_pending
        .store(pending, std::sync::atomic::Ordering::Relaxed);
    Ok(FollowResult {
        failed: c.ingest_failed.load(std::sync::atomic::Ordering::Relaxed),
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_slow_down_while_nothing_changes_and_a_retry_after_is_obeyed() {
        let settings = FollowSettings::default();
        let first = settings.poll_interval;
        let later = next_interval(first, false, &settings);
        assert_eq!(later, first.mul_f64(1.5));
        assert_eq!(next_interval(later, true, &settings), first);
        let slowest = next_interval(settings.max_poll_interval, false, &settings);
        assert_eq!(slowest, settings.max_poll_interval);
        let asked = Some(Duration::from_secs(20));
        assert_eq!(RetryPolicy::wait(first, asked), Duration::from_secs(20));
    }

    #[test]
    fn a_failed_load_is_retried_until_its_retries_are_spent() {
        assert_eq!(ingest_step(file_status::SUCCESS, 0, 3), Ingest::Done);
        assert_eq!(ingest_step(file_status::FAILED, 2, 3), Ingest::Retry);
        assert_eq!(
            ingest_step(file_status::FAILED, 3, 3),
            Ingest::FailedForGood
        );
        assert_eq!(
            ingest_step(file_status::FAILED, 0, 0),
            Ingest::FailedForGood
        );
        assert_eq!(ingest_step(2, 0, 3), Ingest::Waiting);
    }
}
