//! The `moi-ingest` binary: parse arguments, build the runtime, run, exit with the code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = moi_ingest::cli::Cli::parse();
    let output = cli.output();
    moi_ingest::output::init_logging(output.verbose, output.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("moi-ingest: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(moi_ingest::commands::run(cli));
    // In-flight work was drained or abandoned on purpose; don't wait on stragglers.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
