//! moi-ingest: bulk upload and ingestion worker for MatrixOne Intelligence (MOI).
//!
//! A file's life in one run is the architecture: [`walk`] lists the folder, the
//! [`pipeline`] plans each file against the [`journal`], uploads it through the [`api`],
//! records the answer, follows its ingestion and reports.
//!
//! The crates under `crates/` hold what the worker builds on, and cannot reach back into
//! it: `moi-client` ([`api`], [`secret`]) is the only place that knows HTTP and the wire
//! format; `moi-emulator` ([`emulator`], the default feature `emulator`) is a local MOI
//! server for demos and tests, which never sees the pipeline.

pub use moi_client as api;
pub use moi_client::secret;
#[cfg(feature = "emulator")]
pub use moi_emulator as emulator;

pub mod cli;
pub mod commands;
pub mod config;
pub mod journal;
pub mod metrics;
pub mod mirror;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod run;
pub mod verify;
pub mod walk;
