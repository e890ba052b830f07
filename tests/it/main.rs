//! Integration tests: the library and the real binary against the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_wire;
mod contract;
mod copies;
mod deploy;
mod dialects;
mod emulator_checks;
mod faults_security;
mod first_night;
mod follow_run;
mod journal_checks;
mod layers;
mod mirror;
mod networks;
mod sources;
mod system;
mod task_cli;
mod upload_run;
mod util;
mod vendor_client;
mod vendor_sdk;
mod verdict;
mod window;
