//! Why a run stopped before its end, and the one place that turns it into an exit code.
//!
//! A run holds one [`Cause`] in its [`Cancel`]. The first one given is kept, except that a
//! failure found while the run was already stopping (a journal that cannot be written, a
//! service that refuses every request) replaces a mere request to stop (a signal, the
//! `--max-duration` cut-off): the morning needs to hear of the failure, and the next night
//! would meet it again.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, ErrorKind};
use crate::journal::JournalError;
use crate::report::Exit;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--max-duration` ran out: the rest waits for the next run.
    Deadline,
    /// A refused credential.
    Auth(String),
    /// A mistake in what the run was given, as the service or the folder showed it: the same
    /// refusal for every upload (unknown volume, wrong endpoint, an HTML proxy), a folder
    /// that cannot be walked.
    Usage(String),
    /// No request got through, or the service stopped answering for
    /// `--unreachable-timeout`.
    Unreachable(String),
    /// The journal could not be written, or a stage of the run failed.
    Journal(String),
}

impl Cause {
    pub fn from_api(e: &ApiError) -> Cause {
        if e.kind == ErrorKind::Auth {
            Cause::Auth(e.to_string())
        } else {
            Cause::Usage(e.to_string())
        }
    }

    pub fn from_journal(e: &JournalError) -> Cause {
        Cause::Journal(e.to_string())
    }

    /// The exit code a run that stopped for this cause ends with.
    pub fn exit(&self) -> Exit {
        match self {
            Cause::Signal => Exit::Interrupted,
            Cause::Deadline => Exit::CutOff,
            Cause::Auth(_) => Exit::Auth,
            Cause::Usage(_) => Exit::Usage,
            Cause::Unreachable(_) => Exit::Unreachable,
            Cause::Journal(_) => Exit::Failures,
        }
    }

    /// A failure, as opposed to a request to stop.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Cause::Signal | Cause::Deadline)
    }

    /// What the summary says of a failure (a request to stop is told with the run's counts,
    /// by the run).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Cause::Signal | Cause::Deadline => None,
            Cause::Auth(r) | Cause::Usage(r) | Cause::Unreachable(r) | Cause::Journal(r) => Some(r),
        }
    }
}

/// Stopping a run. `soft`: start nothing new, let what is in flight finish. `hard`:
/// abandon what is in flight too (the second Ctrl-C, or the drain timeout).
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    pub soft: CancellationToken,
    pub hard: CancellationToken,
    cause: Arc<Mutex<Option<Cause>>>,
}

impl Cancel {
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Start nothing new, for `why`. True when `why` is now the run's cause (see the
    /// module's doc for which one is kept).
    pub fn stop(&self, why: Cause) -> bool {
        let kept = match self.cause.lock() {
            Ok(mut cause) => match &*cause {
                Some(now) if now.is_failure() || !why.is_failure() => false,
                _ => {
                    *cause = Some(why);
                    true
                }
            },
            Err(_) => false,
        };
        self.soft.cancel();
        kept
    }

    /// Abandon what is in flight too.
    pub fn stop_now(&self, why: Cause) -> bool {
        let kept = self.stop(why);
        self.hard.cancel();
        kept
    }

    pub fn cause(&self) -> Option<Cause> {
        self.cause.lock().ok().and_then(|c| c.clone())
    }

    /// The failure that stopped the run, if one did.
    pub fn failure(&self) -> Option<Cause> {
        self.cause().filter(Cause::is_failure)
    }

    /// Stopped by a signal (the only stop that exits 130).
    pub fn interrupted(&self) -> bool {
        self.cause() == Some(Cause::Signal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_has_its_exit_code() {
        let codes: Vec<i32> = [
            Cause::Signal,
            Cause::Deadline,
            Cause::Auth("a".into()),
            Cause::Usage("u".into()),
            Cause::Unreachable("n".into()),
            Cause::Journal("j".into()),
        ]
        .iter()
        .map(|c| c.exit().code())
        .collect();
        assert_eq!(codes, [130, 6, 3, 2, 7, 1]);
    }

    #[test]
    fn the_first_cause_is_kept() {
        let cancel = Cancel::new();
        assert!(cancel.stop(Cause::Deadline));
        assert!(!cancel.stop(Cause::Signal));
        assert_eq!(cancel.cause(), Some(Cause::Deadline));
        assert!(cancel.soft.is_cancelled() && !cancel.hard.is_cancelled());
        assert!(!cancel.interrupted());
        assert_eq!(cancel.failure(), None);

        let cancel = Cancel::new();
        assert!(cancel.stop_now(Cause::Auth("refused".into())));
        assert!(!cancel.stop(Cause::Usage("breaker".into())));
        assert!(!cancel.stop(Cause::Signal));
        assert_eq!(cancel.cause(), Some(Cause::Auth("refused".into())));
        assert!(cancel.hard.is_cancelled());
    }

    #[test]
    fn a_failure_found_while_stopping_replaces_the_request_to_stop() {
        let cancel = Cancel::new();
        cancel.stop(Cause::Signal);
        assert!(cancel.interrupted());
        assert!(cancel.stop(Cause::Journal("disk full".into())));
        assert!(!cancel.interrupted());
        assert_eq!(cancel.failure().map(|c| c.exit().code()), Some(1));
        assert_eq!(
            cancel.cause().and_then(|c| c.reason().map(String::from)),
            Some("disk full".into())
        );
    }

    #[test]
    fn an_api_error_is_auth_or_usage() {
        let e = ApiError::new(ErrorKind::Auth, crate::api::UPLOAD_CALL, "bad key");
        assert_eq!(Cause::from_api(&e).exit(), Exit::Auth);
        let e = ApiError::new(ErrorKind::Permanent, crate::api::UPLOAD_CALL, "no volume");
        assert_eq!(Cause::from_api(&e).exit(), Exit::Usage);
    }
}
