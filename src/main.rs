//! The `mlreg` binary: parse arguments, set up logging, build the runtime, run, exit.

use std::process::ExitCode;

use clap::Parser;
use mlreg::cli::Cli;
use mlreg::exit::ExitStatus;

fn main() -> ExitCode {
    let cli = Cli::parse();
    mlreg::commands::init_logging_for(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitStatus::Failure.into();
        }
    };
    let status = match runtime.block_on(mlreg::run(cli)) {
        Ok(status) => status,
        // `mlreg plan | head` closing the pipe early is not a failure.
        Err(error) if mlreg::commands::is_broken_pipe(&error) => ExitStatus::Success,
        Err(error) => {
            mlreg::commands::report_error(&error);
            ExitStatus::Failure
        }
    };
    status.into()
}
