//! The `mlreg` binary: parse arguments, validate them, build the runtime, run, exit.

use std::process::ExitCode;

use clap::Parser;
use mlreg::cli::Cli;
use mlreg::exit::ExitStatus;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version on stdout, usage errors on stderr; nothing more
            // can be done if that fails.
            let _ = error.print();
            return ExitStatus::of_usage_error(&error).into();
        }
    };
    let (settings, output) = match mlreg::prepare(cli) {
        Ok(prepared) => prepared,
        Err(status) => return status.into(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            output.message(format_args!(
                "error: cannot start the async runtime: {error}"
            ));
            return ExitStatus::Failure.into();
        }
    };
    runtime.block_on(mlreg::run(settings, &output)).into()
}
