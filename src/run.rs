//! A run: one `upload`, `retry` or `status --follow`, from taking the journal's lock to the
//! summary recorded in it.
//!
//! [`Run`] owns the lock, the journal, the client, the run's row in the journal, its
//! counters, its cancel (which carries the reason it stopped) and its settings. The
//! settings of an upload are recorded in the journal, so that `retry` and
//! `status --follow` go on with the same ones (`--base-names`, `--prefix`, `--dedup`...).
//! The stages take the run's [`RunContext`]; [`Run::finish`] records the outcome and
//! returns the summary, which only the command layer prints. A dry run takes no lock,
//! creates no journal and records nothing.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::Client;
use crate::config::Connection;
use crate::journal::{Identity, Journal, JournalLock, LockError};
use crate::pipeline::{
    Cancel, FollowSettings, RunContext, RunOutcome, SendSettings, UploadSettings,
};
use crate::report::{Exit, Failure, RunStats, Summary};

/// What a command resolved before a run can start.
pub struct RunPlan {
    /// `upload`, `retry`, `status --follow`, `demo`...
    pub command: String,
    pub journal: PathBuf,
    /// The journal must belong to this (endpoint, volume, folder); `None` takes what it has.
    pub identity: Option<Identity>,
    pub connection: Connection,
    pub dry_run: bool,
    /// A client the command already made for this connection (and may have logged in
    /// with): the run takes it instead of making a second one.
    pub client: Option<Arc<Client>>,
}

/// The settings an upload recorded, for the commands that go on with its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedSettings {
    pub send: SendSettings,
    pub follow: FollowSettings,
}

const SETTINGS_NOTE: &str = "settings";

/// The `--prefix` the last upload recorded in `journal` (where its files are in the volume).
pub async fn recorded_prefix(journal: &Journal) -> Option<String> {
    let text = journal.note(SETTINGS_NOTE).await.ok().flatten()?;
    let recorded: RecordedSettings = serde_json::from_str(&text).ok()?;
    recorded.send.prefix
}

pub struct Run {
    command: String,
    context: RunContext,
    dry_run: bool,
    _lock: Option<JournalLock>,
}

impl Run {
    /// Takes the lock (exit 4 when another run holds it), opens the journal and the client,
    /// and records the run's start.
    pub async fn start(plan: RunPlan, cancel: Cancel) -> Result<Run, Failure> {
        let (lock, journal) = if plan.dry_run {
            let journal = Journal::open_read_only(&plan.journal).map_err(Failure::usage)?;
            (None, journal)
        } else {
            let lock = JournalLock::acquire(&plan.journal).map_err(|e| match e {
                LockError::Held { .. } => Failure::new(Exit::Locked, e),
                LockError::Io { .. } | LockError::Folder { .. } => Failure::usage(e),
            })?;
            let journal =
                Journal::open(&plan.journal, plan.identity.as_ref()).map_err(Failure::usage)?;
            (Some(lock), journal)
        };
        let client = match plan.client {
            Some(client) => client,
            None => Client::new(
                &plan.connection.endpoint,
                plan.connection.credentials.clone(),
                plan.connection.options.clone(),
            )
            .map(Arc::new)
            .map_err(Failure::usage)?,
        };
        let run_id = if plan.dry_run {
            0
        } else {
            journal
                .start_run(&plan.command)
                .await
                .map_err(|e| Failure::new(Exit::Failures, e))?
        };
        Ok(Run {
            command: plan.command,
            context: RunContext {
                client,
                journal,
                run_id,
                stats: RunStats::new(),
                cancel,
            },
            dry_run: plan.dry_run,
            _lock: lock,
        })
    }

    /// The handles the stages work with.
    pub fn context(&self) -> RunContext {
        self.context.clone()
    }
    pub fn journal(&self) -> &Journal {
        &self.context.journal
    }
    pub fn client(&self) -> &Arc<Client> {
        &self.context.client
    }
    pub fn stats(&self) -> &Arc<RunStats> {
        &self.context.stats
    }
    pub fn cancel(&self) -> &Cancel {
        &self.context.cancel
    }

    /// Records an upload's settings, for `retry` and `status --follow`.
    pub async fn record_settings(&self, settings: &UploadSettings) -> Result<(), Failure> {
        if self.dry_run {
            return Ok(());
        }
        let recorded = RecordedSettings {
            send: settings.send.clone(),
            follow: settings.follow.clone(),
        };
        let text = serde_json::to_string(&recorded).map_err(Failure::usage)?;
        self.journal()
            .set_note(SETTINGS_NOTE, text)
            .await
            .map_err(|e| Failure::new(Exit::Failures, e))
    }

    /// The settings the last upload recorded; `None` for a journal from before they were.
    pub async fn recorded_settings(&self) -> Option<RecordedSettings> {
        let text = self.journal().note(SETTINGS_NOTE).await.ok().flatten()?;
        serde_json::from_str(&text).ok()
    }

    /// Records the outcome in the journal and returns the summary to print.
    pub async fn finish(self, outcome: RunOutcome) -> Summary {
        let mut summary = Summary::build(
            &self.command,
            &self.context.stats,
            outcome.exit,
            outcome.stopped,
            &self.context.journal.path().display().to_string(),
        );
        if !self.dry_run {
            // What `status` shows as this run's history: the same counts as the summary.
            let json = serde_json::to_value(&summary).unwrap_or_default();
            if let Err(e) = self
                .context
                .journal
                .finish_run(self.context.run_id, outcome.exit.code(), json)
                .await
            {
                summary.journal_error = Some(e.to_string());
            }
            if let Err(e) = self.context.journal.checkpoint().await {
                tracing::debug!("checkpoint of the journal: {e}");
            }
        }
        summary
    }
}
