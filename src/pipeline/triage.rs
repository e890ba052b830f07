//! Send's decisions, without I/O: what a failed attempt calls for, and what an answer
//! says file by file. `send` carries them out (waits, records, hands back), so each
//! branch here is reachable from a unit test.

use crate::api::model::UploadAnswer;
use crate::api::{ApiError, ErrorKind, Id};

/// What a failed attempt calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// No answer at all, after the service has answered before: an outage if it has been
    /// silent a while (the outage clock decides), else a passing fault.
    Silent,
    /// A passing fault: wait and try again while the file's attempts last.
    Transient,
    /// A request of several files was refused in a way that may concern one file only:
    /// each file goes again on its own.
    Split,
    /// A file is not what was listed: it stays pending for the next run.
    Changed,
    /// Refused for good: recorded as failed (refused, when the service said so).
    Refused,
}

pub(super) fn triage_failure(e: &ApiError, files: usize, answered_before: bool) -> Failure {
    if e.is_transient() {
        if e.status.is_none() && answered_before {
            Failure::Silent
        } else {
            Failure::Transient
        }
    } else if files > 1 && splits(e) {
        Failure::Split
    } else if e.kind == ErrorKind::Changed {
        Failure::Changed
    } else {
        Failure::Refused
    }
}

/// A malformed answer among good ones is a passing fault (a proxy's error page, a cut
/// body): the files may even be stored, so it is tried again like a timeout. A run whose
/// answers were all malformed keeps it permanent, for the breaker (a wrong endpoint).
pub(super) fn passing_fault(mut e: ApiError, accepted_before: bool) -> ApiError {
    if e.kind == ErrorKind::Malformed && accepted_before {
        e.kind = ErrorKind::Transient;
    }
    e
}

/// What becomes of a unit whose attempts ran out on transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutOfTries {
    /// Nothing was ever answered: the service cannot be reached, the run stops.
    Unreachable,
    /// Handed back for a pass at the end of the run.
    HandBack,
}

pub(super) fn out_of_tries(e: &ApiError, answered_before: bool) -> OutOfTries {
    if e.status.is_none() && !answered_before {
        OutOfTries::Unreachable
    } else {
        OutOfTries::HandBack
    }
}

/// Whether a refused request of several files should be sent again file by file: when the
/// refusal may concern one file only (it vanished or changed, is too large, or has a name
/// the service refuses), not when it concerns every request (unknown volume, HTML proxy).
pub(super) fn splits(e: &ApiError) -> bool {
    match e.kind {
        ErrorKind::Local | ErrorKind::Changed => true,
        ErrorKind::Permanent => matches!(e.status, Some(400 | 413 | 422)),
        _ => false,
    }
}

/// The service's word on one file of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FileAnswer {
    Stored(Option<Id>),
    Refused(String),
}

/// An answer read file by file, in the order the files were sent. `Err` is a request
/// refused as a whole (no per-file results), with the service's message.
pub(super) fn triage_answer(a: &UploadAnswer, files: usize) -> Result<Vec<FileAnswer>, String> {
    if !a.success && a.results.is_empty() {
        return Err(a.message.clone());
    }
    let single = files == 1;
    Ok((0..files)
        .map(|i| match a.results.get(i) {
            Some(r) if r.success => Stored(r.file_id.or(if single { a.file_id } else { None })),
            Some(r) => FileAnswer::Refused(r.message.clone()),
            // A short answer: what it says as a whole stands for the files it leaves out.
            None if a.success => Stored(if single { a.file_id } else { None }),
            None => FileAnswer::Refused(a.message.clone()),
        })
        .collect())
}

use FileAnswer::Stored;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::UploadFileResult;

    fn err(kind: ErrorKind, status: Option<u16>) -> ApiError {
        let mut e = ApiError::new(kind, crate::api::UPLOAD_CALL, "x");
        e.status = status;
        e
    }

    #[test]
    fn a_silence_is_an_outage_candidate_only_after_an_answer() {
        let reset = err(ErrorKind::Transient, None);
        assert_eq!(triage_failure(&reset, 1, true), Failure::Silent);
        assert_eq!(triage_failure(&reset, 1, false), Failure::Transient);
        let busy = err(ErrorKind::Transient, Some(503));
        assert_eq!(triage_failure(&busy, 4, true), Failure::Transient);
    }

    #[test]
    fn refusals_split_change_or_fail() {
        let too_large = err(ErrorKind::Permanent, Some(413));
        assert_eq!(triage_failure(&too_large, 3, true), Failure::Split);
        assert_eq!(triage_failure(&too_large, 1, true), Failure::Refused);
        let unknown_volume = err(ErrorKind::Permanent, Some(404));
        assert_eq!(triage_failure(&unknown_volume, 3, true), Failure::Refused);
        let changed = err(ErrorKind::Changed, None);
        assert_eq!(triage_failure(&changed, 3, true), Failure::Split);
        assert_eq!(triage_failure(&changed, 1, true), Failure::Changed);
        let auth = err(ErrorKind::Auth, Some(401));
        assert_eq!(triage_failure(&auth, 3, true), Failure::Refused);
    }

    #[test]
    fn a_malformed_answer_passes_only_after_accepted_ones() {
        let garbled = err(ErrorKind::Malformed, Some(200));
        assert_eq!(
            passing_fault(garbled.clone(), true).kind,
            ErrorKind::Transient
        );
        assert_eq!(passing_fault(garbled, false).kind, ErrorKind::Malformed);
        let refused = err(ErrorKind::Permanent, Some(400));
        assert_eq!(passing_fault(refused, true).kind, ErrorKind::Permanent);
    }

    #[test]
    fn spent_tries_stop_the_run_only_when_nothing_ever_answered() {
        let reset = err(ErrorKind::Transient, None);
        assert_eq!(out_of_tries(&reset, false), OutOfTries::Unreachable);
        assert_eq!(out_of_tries(&reset, true), OutOfTries::HandBack);
        let busy = err(ErrorKind::Transient, Some(503));
        assert_eq!(out_of_tries(&busy, false), OutOfTries::HandBack);
    }

    fn result(success: bool, id: Option<u64>, message: &str) -> UploadFileResult {
        UploadFileResult {
            success,
            file_id: id.map(Id),
            message: message.into(),
        }
    }

    #[test]
    fn an_answer_is_read_file_by_file() {
        let a = UploadAnswer {
            success: true,
            results: vec![result(true, Some(7), ""), result(false, None, "bad name")],
            ..UploadAnswer::default()
        };
        assert_eq!(
            triage_answer(&a, 3),
            Ok(vec![
                Stored(Some(Id(7))),
                FileAnswer::Refused("bad name".into()),
                Stored(None),
            ])
        );
    }

    #[test]
    fn a_single_file_takes_the_answers_own_id() {
        let a = UploadAnswer {
            success: true,
            file_id: Some(Id(9)),
            ..UploadAnswer::default()
        };
        assert_eq!(triage_answer(&a, 1), Ok(vec![Stored(Some(Id(9)))]));
        assert_eq!(triage_answer(&a, 2), Ok(vec![Stored(None), Stored(None)]));
        let with_result = UploadAnswer {
            results: vec![result(true, None, "")],
            ..a
        };
        assert_eq!(
            triage_answer(&with_result, 1),
            Ok(vec![Stored(Some(Id(9)))])
        );
    }

    #[test]
    fn a_refusal_as_a_whole_is_told_apart_from_short_results() {
        let whole = UploadAnswer {
            success: false,
            message: "volume not found".into(),
            ..UploadAnswer::default()
        };
        assert_eq!(triage_answer(&whole, 2), Err("volume not found".into()));
        let short = UploadAnswer {
            success: false,
            message: "partly".into(),
            results: vec![result(true, Some(1), "")],
            ..UploadAnswer::default()
        };
        assert_eq!(
            triage_answer(&short, 2),
            Ok(vec![
                Stored(Some(Id(1))),
                FileAnswer::Refused("partly".into())
            ])
        );
    }
}
