//! What the end of one request means for the whole run.
//!
//! Each unit of upload work ends in a [`UnitEnd`]. [`Verdict`] judges them in turn: a
//! refused credential stops the run at once (exit 3); the same permanent refusal many times
//! in a row with no success between (unknown volume, wrong endpoint, an HTML proxy) trips a
//! breaker instead of failing every file (exit 2); a service that never answered stops the
//! run with the files left pending (exit 7); a journal that cannot be written stops it
//! (exit 1). The first reason to stop wins.

use crate::api::{ApiError, ErrorKind};
use crate::journal::JournalError;

use super::plan::{DedupClass, PlannedFile, Unit};
use super::{Cancel, Cause};

pub(super) enum UnitEnd {
    /// The service answered; per-file refusals inside the answer were recorded.
    Answered,
    /// The request failed for good; its files (these paths) were recorded as failed.
    Failed(ApiError, Vec<String>),
    /// A file changed under us, or the run was stopped hard mid-send.
    Left,
    Journal(JournalError),
    /// A request of several files was refused for good: each file goes again on its own,
    /// so one bad file (too large, a refused name) does not fail its companions.
    Split(Vec<PlannedFile>, DedupClass),
    /// Every attempt failed transiently: the files wait for another pass at the end of the run.
    Transient(Unit, ApiError),
    /// No request has ever been answered: the files stay pending, the run stops. The
    /// error says whether its attempt got a connection all the same (a service that takes
    /// bodies and never answers is not one that cannot be reached).
    Unreachable(ApiError),
    /// The service answered at first, then nothing was answered for this long
    /// (`--unreachable-timeout`): the files stay pending, the run stops.
    Gone(ApiError, std::time::Duration),
}

pub(super) struct Verdict {
    breaker_limit: u32,
    signature: String,
    count: u32,
    /// The files refused the same way since the last answer: when the breaker trips, the
    /// refusal was the run's (a wrong volume), not theirs, so they go back to pending.
    streak: Vec<String>,
    /// Files to put back to pending once the run has stopped (see `streak`).
    pub unfail: Vec<String>,
}

impl Verdict {
    pub fn new(breaker_limit: u32) -> Verdict {
        Verdict {
            breaker_limit: breaker_limit.max(1),
            signature: String::new(),
            count: 0,
            streak: Vec::new(),
            unfail: Vec::new(),
        }
    }

    /// Counts a permanent refusal of `files`; true when the same one has been given to
    /// `limit` files in a row (files, not requests: 199 files in requests of 32 are only
    /// 7 requests, and a wrong volume should not fail them all before it stops).
    fn breaker_trips(&mut self, e: &ApiError, files: Vec<String>) -> bool {
        let sig = e.signature();
        if sig != self.signature {
            self.signature = sig;
            self.count = 0;
            self.streak.clear();
        }
        self.count = self.count.saturating_add(files.len().max(1) as u32);
        self.streak.extend(files);
        self.count >= self.breaker_limit
    }

    pub fn judge(&mut self, end: UnitEnd, endpoint: &str, cancel: &Cancel) {
        let next = match end {
            UnitEnd::Answered => {
                self.count = 0;
                self.streak.clear();
                None
            }
            UnitEnd::Left | UnitEnd::Split(..) | UnitEnd::Transient(..) => None,
            UnitEnd::Journal(e) => Some(Cause::from_journal(&e)),
            UnitEnd::Unreachable(e) => Some(Cause::Unreachable(if !e.before_connecting {
                format!(
                    "{endpoint} took upload bodies but never answered one ({e}). Check \
                             the endpoint (MOI_ENDPOINT or --endpoint) and any proxy between; \
                             if the service is only slow to answer, raise --idle-timeout. \
                             Nothing was lost: every file not confirmed stays pending for the \
                             next run"
                )
            } else {
                format!(
                    "no request reached {endpoint} ({e}). Check the endpoint \
                             (MOI_ENDPOINT or --endpoint), the network, and any proxy or \
                             firewall between. Nothing was lost: every file not sent stays \
                             pending for the next run"
                )
            })),
            UnitEnd::Gone(e, silent) => Some(Cause::Unreachable(format!(
                "{endpoint} stopped answering: nothing was answered for {}s (the last \
                         error: {e}). Nothing was lost: every file not confirmed stays pending \
                         for the next run. --unreachable-timeout sets how long to wait",
                silent.as_secs()
            ))),
            UnitEnd::Failed(e, files) if e.kind == ErrorKind::Auth => {
                self.unfail.extend(files);
                Some(Cause::from_api(&e))
            }
            UnitEnd::Failed(e, files)
                if matches!(e.kind, ErrorKind::Permanent | ErrorKind::Malformed) =>
            {
                self.breaker_trips(&e, files).then(|| {
                    self.unfail.append(&mut self.streak);
                    let check = if e.message.to_ascii_lowercase().contains("dedup") {
                        "The service seems to refuse the dedup part: run again with --dedup off"
                    } else {
                        "Check --endpoint and --volume"
                    };
                    Cause::Usage(format!(
                        "the service refused {} files in a row the same way, so the run \
                         stopped instead of failing every file (they stay pending): {e}. \
                         {check}",
                        self.count
                    ))
                })
            }
            UnitEnd::Failed(..) => None,
        };
        // The run keeps the first failure (see `Cause`): a later one is not told again.
        if let Some(cause) = next {
            let reason = cause.reason().unwrap_or_default().to_string();
            // Start nothing new; what is in flight ends on its own (an auth refusal would
            // only repeat, so those are abandoned at once).
            let kept = if matches!(cause, Cause::Auth(_)) {
                cancel.stop_now(cause)
            } else {
                cancel.stop(cause)
            };
            if kept {
                tracing::error!("{reason}");
            }
        }
    }
}
