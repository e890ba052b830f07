//! `moi-ingest emulator`: the local MOI server, until Ctrl-C.

use super::CommandResult;
use crate::cli::EmulatorArgs;
use crate::emulator::{self, EmulatorConfig, Faults};
use crate::pipeline::Cancel;
use crate::report::Failure;
use crate::secret::Secret;

pub async fn emulator(args: &EmulatorArgs, cancel: Cancel) -> CommandResult {
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
            let id = crate::config::volume(id)
                .map_err(|e| Failure::usage(format!("{e} (write ID or ID:NAME)")))?
                .to_string();
            let name = if name.is_empty() {
                format!("volume-{id}")
            } else {
                name.to_string()
            };
            config.volumes.push((id, name));
        }
    }
    for l in &args.logins {
        let mut parts = l.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(u), Some(p)) if !a.is_empty() && !u.is_empty() && !p.is_empty() => {
                config.logins.push(emulator::Login {
                    account: a.to_string(),
                    username: u.to_string(),
                    password: Secret::new(p),
                });
            }
            _ => {
                return Err(Failure::usage(
                    "--login takes ACCOUNT:USER:PASSWORD (e.g. --login acme:alice:s3cret)",
                ));
            }
        }
    }
    config.ingest_time = args.ingest_time;
    config.dialect = args.dialect;
    for (flag, rate) in [
        ("--ingest-failure-rate", args.ingest_failure_rate),
        ("--fail-503", args.fail_503),
        ("--fail-429", args.fail_429),
        ("--drop-rate", args.drop_rate),
        ("--lost-answer-rate", args.lost_answer_rate),
        ("--garbled-rate", args.garbled_rate),
        ("--error-code-rate", args.error_code_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Failure::usage(format!(
                "{flag} must be between 0.0 and 1.0"
            )));
        }
    }
    config.faults = Faults {
        seed: args.seed,
        unavailable: args.fail_503,
        too_many: args.fail_429,
        retry_after_secs: 1,
        drop_connection: args.drop_rate,
        lost_answer: args.lost_answer_rate,
        garbled: args.garbled_rate,
        error_code: args.error_code_rate,
        latency: args.latency,
        ingest_failure: args.ingest_failure_rate,
        max_body_bytes: args.max_body,
        max_in_flight: args.max_in_flight,
        ..Faults::default()
    };
    let running = emulator::start(config, &args.listen)
        .await
        .map_err(Failure::usage)?;
    crate::output::stdout_line(format_args!(
        "moi-ingest emulator listening on {} (data in {})",
        running.url(),
        args.data.display()
    ));
    running.wait(cancel.soft.clone()).await;
    Ok(0)
}
