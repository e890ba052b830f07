//! A typed client for the MatrixOne Intelligence (MOI) data API: the only crate of
//! moi-ingest that knows HTTP, headers, multipart and the JSON envelope.
//!
//! Callers make a call by its request type ([`calls`], [`catalog`]) with [`Client::send`],
//! and get its typed answer or a classified [`ApiError`]. Calls
//! make one attempt (plus one transparent session renewal on a 401); retrying transient
//! failures is the caller's policy, because only the caller knows its budget.
//!
//! ```no_run
//! use moi_client::secret::Secret;
//! use moi_client::{Client, ClientOptions, Credentials};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = url::Url::parse("https://freetier-01.cn-hangzhou.cluster.matrixonecloud.cn")?;
//! let key = Credentials::ApiKey(Secret::new(std::env::var("MOI_KEY")?));
//! let client = Client::new(&endpoint, key, ClientOptions::default())?;
//! // What the volume's root holds, every page of it.
//! for entry in client.list_children("1889578498228068352", "").await? {
//!     println!("{}\t{}", entry.size, entry.full_name());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! It names no command-line flag and formats no time for people: hints about flags and
//! local dates are the tool's business. `examples/list_volume.rs` lists a volume's folder.

mod answer;
mod auth;
pub mod calls;
pub mod catalog;
mod client;
pub use client::error_chain;
mod direct;
pub mod endpoints;
mod error;
pub mod id;
pub mod lenient;
pub mod model;
mod multipart;
pub mod secret;
mod sources;
mod upload;

pub use answer::{Answer, decode_body};
pub use auth::Credentials;
pub use client::{Client, ClientOptions, SettingNames, is_loopback};
pub use direct::ca_certificates;
pub use error::{ApiError, ErrorKind, Remedy};
pub use id::{Id, VolumeId};
pub use multipart::{UploadBody, mtime_ns, upload_body};
pub use upload::{BodyPace, UPLOAD_CALL, UploadSource, meta_json};
