//! moi-ingest: bulk upload and ingestion worker for MatrixOne Intelligence (MOI).
//!
//! A file's life in one run is the architecture: [`walk`] lists the folder, the
//! [`pipeline`] plans each file against the [`journal`], uploads it through the [`api`],
//! records the answer, follows its ingestion and reports. The [`emulator`] is a local MOI
//! server for demos and tests; it shares the api's wire types but never the pipeline.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod journal;
pub mod metrics;
pub mod mirror;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod secret;
pub mod verify;
pub mod walk;
