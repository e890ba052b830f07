//! The MOI API: the only module that knows HTTP, headers, multipart and the JSON envelope.
//!
//! Everything else speaks in the typed calls of [`Client`] and the classified [`ApiError`].
//! Calls here make one attempt (plus one transparent session renewal on a 401); retrying
//! transient failures is the caller's policy, because only the caller knows its budget.

mod answer;
mod auth;
pub mod catalog;
mod client;
pub(crate) use client::error_chain;
mod direct;
pub mod endpoints;
mod error;
pub mod id;
pub mod lenient;
pub mod model;
mod multipart;
mod sources;
mod upload;

pub use answer::{Answer, decode_body};
pub use auth::Credentials;
pub use client::{Client, ClientOptions, is_loopback};
pub use direct::ca_certificates;
pub use error::{ApiError, ErrorKind};
pub use id::{Id, VolumeId};
pub use multipart::{UploadBody, upload_body};
pub use upload::{BodyPace, UPLOAD_CALL, UploadSource, meta_json};
