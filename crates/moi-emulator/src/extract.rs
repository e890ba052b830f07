//! What every handler takes before its own work, as axum extractors: the gate (counts,
//! auth, injected faults), a JSON body checked against the reference's model, the query
//! with its repeated keys, and paging.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::{AppState, EmuError, admit, json_body};

/// A request that passed the gate. Listed first among a handler's arguments, so that the
/// gate runs before the body is read.
pub(crate) struct Admitted;

impl FromRequestParts<Arc<AppState>> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<AppState>) -> Result<Self, Response> {
        admit(s, &parts.headers).await?;
        Ok(Admitted)
    }
}

/// A JSON body as `T`, or the 400 that says what is wrong with it.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = EmuError;

    async fn from_request(req: Request, state: &S) -> Result<Self, EmuError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| EmuError::bad(format!("the body cannot be read: {e}")))?;
        json_body(&bytes).map(JsonBody)
    }
}

/// The query's pairs, repeated keys kept (`status=4&status=5`).
pub(crate) struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn parse(query: Option<&str>) -> QueryPairs {
        QueryPairs(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value of `key` that parses. The vendor's `/task/files` example sends a
    /// literal `task_id={task_id}` in the URL and the real id as a second parameter.
    pub fn last<T: FromStr>(&self, key: &str) -> Option<T> {
        let values = self.0.iter().rev().filter(|(k, _)| k == key);
        values.map(|(_, v)| v).find_map(|v| v.parse().ok())
    }

    /// Every number given for `key`, repeated or comma-separated.
    pub fn all(&self, key: &str) -> Vec<i64> {
        let values = self.0.iter().filter(|(k, _)| k == key);
        values
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryPairs::parse(parts.uri.query()))
    }
}

/// Which part of a listing a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub skip: usize,
    pub take: usize,
}

/// Ten a page unless asked otherwise, as the documents show.
const DEFAULT_PAGE_SIZE: u64 = 10;

impl Paging {
    /// `page` (from 1) of `page_size`, at most `max` a page.
    pub fn pages(page: Option<u64>, page_size: Option<u64>, max: u64) -> Paging {
        let page = page.unwrap_or(1).max(1);
        let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, max.max(1));
        Paging {
            skip: ((page - 1) * size) as usize,
            take: size as usize,
        }
    }

    /// `limit` items after `offset` (the export API's paging), at most `max`.
    pub fn window(offset: Option<u64>, limit: Option<u64>, max: u64) -> Paging {
        Paging {
            skip: offset.unwrap_or(0) as usize,
            take: limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, max.max(1)) as usize,
        }
    }

    pub fn slice<T>(self, items: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
        items.into_iter().skip(self.skip).take(self.take)
    }
}

/// `page` and `page_size` from the query, capped by the emulator's `max_page_size`.
impl FromRequestParts<Arc<AppState>> for Paging {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let q = QueryPairs::parse(parts.uri.query());
        let max = s.config.max_page_size;
        Ok(Paging::pages(q.last("page"), q.last("page_size"), max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_windows_are_bounded() {
        assert_eq!(
            Paging::pages(None, None, 1000),
            Paging { skip: 0, take: 10 }
        );
        assert_eq!(
            Paging::pages(Some(3), Some(20), 1000),
            Paging { skip: 40, take: 20 }
        );
        assert_eq!(
            Paging::pages(Some(0), Some(5000), 100),
            Paging { skip: 0, take: 100 }
        );
        assert_eq!(
            Paging::window(Some(7), Some(0), 1000),
            Paging { skip: 7, take: 1 }
        );
        let page: Vec<i32> = Paging::pages(Some(2), Some(2), 10).slice(1..=5).collect();
        assert_eq!(page, [3, 4]);
    }

    #[test]
    fn query_pairs_keep_repeated_keys_and_the_last_value_that_parses() {
        let q = QueryPairs::parse(Some("task_id={task_id}&task_id=42&status=4&status=5,6"));
        assert_eq!(q.last::<u64>("task_id"), Some(42));
        assert_eq!(q.all("status"), [4, 5, 6]);
        assert_eq!(q.last::<String>("keyword"), None);
    }
}
