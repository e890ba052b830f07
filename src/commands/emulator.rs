//! `moi-ingest emulator`: the local MOI server, until Ctrl-C.

use std::io::Write;

use super::{Output, complain};
use crate::cli::EmulatorArgs;
use crate::emulator::{self, EmulatorConfig, Faults};
use crate::pipeline::Cancel;
use crate::report::Exit;
use crate::secret::Secret;

pub async fn emulator(args: &EmulatorArgs, _out: Output, cancel: Cancel) -> i32 {
    let mut config = EmulatorConfig::new(&args.data);
    config.api_key = args
        .api_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    if !args.volume.is_empty() {
        config.volumes.clear();
        for v in &args.volume {
            let (id, name) = v.split_once(':').unwrap_or((v, ""));
            let id = match crate::config::volume(id) {
                Ok(id) => id.to_string(),
                Err(e) => return complain(Exit::Usage, format!("{e} (write ID or ID:NAME)")),
            };
            let name = if name.is_empty() {
                format!("volume-{id}")
            } else {
                name.to_string()
            };
            config.volumes.push((id, name));
        }
    }
    config.ingest_time = args.ingest_time;
    config.dialect = args.dialect;
    for (flag, rate) in [
        ("--ingest-failure-rate", args.ingest_failure_rate),
        ("--fail-503", args.fail_503),
        ("--fail-429", args.fail_429),
        ("--drop-rate", args.drop_rate),
        ("--error-code-rate", args.error_code_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return complain(Exit::Usage, format!("{flag} must be between 0.0 and 1.0"));
        }
    }
    config.faults = Faults {
        seed: args.seed,
        unavailable: args.fail_503,
        too_many: args.fail_429,
        retry_after_secs: 1,
        drop_connection: args.drop_rate,
        error_code: args.error_code_rate,
        latency: args.latency,
        ingest_failure: args.ingest_failure_rate,
        max_body_bytes: args.max_body,
        ..Faults::default()
    };
    let running = match emulator::start(config, &args.listen).await {
        Ok(r) => r,
        Err(e) => return complain(Exit::Usage, e),
    };
    println!(
        "moi-ingest emulator listening on {} (data in {})",
        running.url(),
        args.data.display()
    );
    let _ = std::io::stdout().flush();
    running.wait(cancel.soft.clone()).await;
    0
}
