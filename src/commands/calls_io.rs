//! What the call commands (`connector`, `task`, `export`, `login`) share: the client, ids and
//! `--body` files as given, and answers shown as lines for people or JSON for scripts.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Output;
use crate::api::endpoints::Checked;
use crate::api::model::{ConnectorList, ExportFiles, ExportList};
use crate::api::{ApiError, Client, ErrorKind, Id};
use crate::config;
use crate::output::stdout_line;
use crate::report::{Exit, Failure};
use crate::secret::mask_secrets;

pub(crate) fn api_failure(e: ApiError) -> Failure {
    let exit = if e.kind == ErrorKind::Auth {
        Exit::Auth
    } else {
        Exit::Failures
    };
    Failure::new(exit, e)
}

pub(super) fn client_for(args: &crate::cli::ConnectionArgs) -> Result<Client, Failure> {
    let conn = config::connection(args)?;
    Client::new(&conn.endpoint, conn.credentials, conn.options).map_err(Failure::usage)
}

/// `--body FILE` (`-`: stdin), checked against the call's model `T` so that a wrong body
/// is refused here, with the reason, rather than by the service; it is sent as written.
pub(super) fn read_body<T: DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Checked<T>, Failure> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| Failure::usage(format!("cannot read --body {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .and_then(Checked::parse)
        .map_err(|e| {
            Failure::usage(format!(
                "--body {} is not the documented {what} body: {e}",
                path.display()
            ))
        })
}

/// Prints `data`: JSON with `--json`, else the human lines; secrets masked unless shown.
pub(super) fn print(
    out: Output,
    show_secrets: bool,
    data: &impl Serialize,
    human: impl FnOnce(&Value) -> String,
) {
    let mut v = serde_json::to_value(data).unwrap_or_default();
    if !show_secrets {
        mask_secrets(&mut v);
    }
    if out.json {
        stdout_line(v);
    } else {
        stdout_line(human(&v));
    }
}

pub(super) fn id(raw: &str, what: &str) -> Result<Id, Failure> {
    raw.parse().map_err(|_| {
        Failure::usage(format!(
            "{what} '{raw}' is not an id (a number such as 100004 or 1889613340219121664)"
        ))
    })
}

/// A listing for people: a head line (`3 connectors`), then one line an item.
pub(super) fn list_lines(head: String, items: impl IntoIterator<Item = String>) -> String {
    std::iter::once(head)
        .chain(items)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A listing that comes in pages: how many items a page holds, of how many in all, and
/// how a later page joins it.
pub(super) trait Listing {
    fn len(&self) -> u64;
    fn total(&self) -> u64;
    fn append(&mut self, later: Self);
}

impl Listing for ConnectorList {
    fn len(&self) -> u64 {
        self.connectors.len() as u64
    }
    fn total(&self) -> u64 {
        self.total
    }
    fn append(&mut self, later: Self) {
        self.connectors.extend(later.connectors);
        self.total = later.total;
    }
}

impl Listing for ExportList {
    fn len(&self) -> u64 {
        self.tasks.len() as u64
    }
    fn total(&self) -> u64 {
        self.total
    }
    fn append(&mut self, later: Self) {
        self.tasks.extend(later.tasks);
        self.total = later.total;
    }
}

impl Listing for ExportFiles {
    fn len(&self) -> u64 {
        self.files.len() as u64
    }
    fn total(&self) -> u64 {
        self.total
    }
    fn append(&mut self, later: Self) {
        self.files.extend(later.files);
        self.total = later.total;
        self.total_failure = later.total_failure;
        self.total_files = later.total_files;
        self.total_success = later.total_success;
    }
}

/// The page `fetch(0, 0)` and, with `all`, every one after it: `fetch(n, seen)` asks for
/// the page after `n` pages holding `seen` items. `skipped` is how many items come before
/// the first page (an offset, or the pages before `--page`), so that the end is known from
/// the listing's total.
pub(super) async fn every_page<P, F, Fut>(
    all: bool,
    skipped: u64,
    mut fetch: F,
) -> Result<P, Failure>
where
    P: Listing,
    F: FnMut(u64, u64) -> Fut,
    Fut: std::future::Future<Output = Result<P, ApiError>>,
{
    let mut list = fetch(0, 0).await.map_err(api_failure)?;
    let mut pages = 1;
    while all && list.len() > 0 && skipped + list.len() < list.total() {
        let later = fetch(pages, list.len()).await.map_err(api_failure)?;
        if later.len() == 0 {
            break;
        }
        list.append(later);
        pages += 1;
    }
    Ok(list)
}
