//! Record: the service's confirmations, written to the journal in bulk.
//!
//! An upload's answer is handed to the recorder and the upload slot moves on; the recorder
//! writes whatever answers have gathered in one journal transaction. With one file per
//! request that turns a commit per file into a commit per few dozen, which was a sixth of
//! a small-file upload's CPU. What this costs: a crash can lose the confirmations of the
//! last few milliseconds. Those files are still marked in flight, so the next run counts
//! them as possible duplicates and sends them again (with `dedup` replace where that is
//! safe), exactly as for a crash between the answer and its commit.

use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::journal::{Confirmed, Journal, JournalError};

/// Answers waiting for their commit. Bounded, so a journal that stalls (a full disk) holds
/// the uploads back instead of piling answers up in memory.
const WAITING: usize = 256;
/// How long the recorder gathers answers before a commit.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

pub struct Recorder {
    path: std::path::PathBuf,
    answers: Mutex<Option<mpsc::Sender<Vec<Confirmed>>>>,
    writer: Mutex<Option<JoinHandle<Result<(), JournalError>>>>,
}

impl Recorder {
    pub fn start(journal: Journal) -> Recorder {
        let journal_path = journal.path().to_path_buf();
        let (answers, mut rx) = mpsc::channel::<Vec<Confirmed>>(WAITING);
        let writer = tokio::spawn(async move {
            let mut gathered = Vec::with_capacity(WAITING);
            while rx.recv_many(&mut gathered, WAITING).await > 0 {
                // Nothing waits on a confirmation but the end of the run, so the recorder
                // can wait for company: answers arrive one by one, a commit costs about the
                // same for one file as for hundreds.
                tokio::time::sleep(GATHER).await;
                if gathered.len() < WAITING && !rx.is_empty() {
                    let room = WAITING - gathered.len();
                    rx.recv_many(&mut gathered, room).await;
                }
                let files: Vec<Confirmed> = gathered.drain(..).flatten().collect();
                journal.confirm(files).await?;
            }
            Ok(())
        });
        Recorder {
            path: journal_path,
            answers: Mutex::new(Some(answers)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Hands `files` over for the next commit. `Err` when the recorder stopped on a journal
    /// error, which [`Recorder::finish`] returns.
    pub async fn confirm(&self, files: Vec<Confirmed>) -> Result<(), ()> {
        let answers = self.answers.lock().ok().and_then(|a| a.clone()).ok_or(())?;
        answers.send(files).await.map_err(|_| ())
    }

    /// Waits until every answer handed over is committed; later answers are refused.
    pub async fn finish(&self) -> Result<(), JournalError> {
        if let Ok(mut a) = self.answers.lock() {
            a.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        match writer {
            None => Ok(()),
            Some(w) => w.await.unwrap_or_else(|e| {
                Err(JournalError::Write {
                    path: self.path.clone(),
                    detail: format!("the journal's recorder ended: {e}"),
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Id;
    use crate::journal::{FileState, Listed};

    fn listed(i: usize) -> Listed {
        Listed {
            path: format!("d/f{i:04}.txt"),
            size: i as u64,
            mtime_ns: 1,
            sha256: None,
            inode: (0, 0),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_answer_handed_over_is_committed_by_finish() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite"), None).unwrap();
        journal
            .begin_send((0..300).map(listed).collect(), 1)
            .await
            .unwrap();
        let recorder = std::sync::Arc::new(Recorder::start(journal.clone()));
        let senders: Vec<_> = (0..300)
            .collect::<Vec<_>>()
            .chunks(7)
            .map(|chunk| {
                let recorder = recorder.clone();
                let files: Vec<Confirmed> = chunk
                    .iter()
                    .map(|&i| Confirmed {
                        file: listed(i),
                        file_id: Some(Id(1_000 + i as u64)),
                        task_id: Some(Id(7)),
                    })
                    .collect();
                tokio::spawn(async move { recorder.confirm(files).await })
            })
            .collect();
        for s in senders {
            s.await.unwrap().unwrap();
        }
        recorder.finish().await.unwrap();
        // After finish, nothing more is taken.
        assert!(recorder.confirm(Vec::new()).await.is_err());
        let rows = journal
            .lookup((0..300).map(|i| listed(i).path).collect())
            .await
            .unwrap();
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref().unwrap();
            assert_eq!(row.state, FileState::Uploaded, "{}", row.path);
            assert!(!row.in_flight);
            assert_eq!(row.file_id, Some(Id(1_000 + i as u64)));
        }
    }
}
