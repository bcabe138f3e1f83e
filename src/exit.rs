//! Process exit statuses.
//!
//! mlreg follows Terraform's `plan -detailed-exitcode` convention so that CI
//! pipelines written for Terraform work unchanged:
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success (with `--detailed-exitcode`: success and no changes) |
//! | 1    | error, including a command-line usage error |
//! | 2    | success with changes pending (only with `--detailed-exitcode`) |
//! | 130  | interrupted by SIGINT |
//! | 143  | terminated by SIGTERM |

use std::process::ExitCode;

/// How a command ended, mapped to the process exit code by [`From<ExitStatus> for ExitCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did what was asked (and, with `--detailed-exitcode`, found nothing to change).
    Success,
    /// The command failed; the reason has been written to stderr.
    Failure,
    /// The command succeeded and found changes pending (only with `--detailed-exitcode`).
    ChangesPending,
    /// The process was interrupted by SIGINT.
    Interrupted,
    /// The process was terminated by SIGTERM.
    Terminated,
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::ChangesPending => 2,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }

    /// The status for what clap returned instead of a command line: `--help` and
    /// `--version` succeed; every usage error is a failure (1), never clap's default 2,
    /// which CI reads as "changes pending" under `--detailed-exitcode`.
    pub fn of_usage_error(error: &clap::Error) -> ExitStatus {
        if error.use_stderr() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn usage_errors_fail_and_help_succeeds() {
        let status = |args: &[&str]| match crate::cli::Cli::try_parse_from(args) {
            Ok(_) => None,
            Err(error) => Some(ExitStatus::of_usage_error(&error)),
        };
        assert_eq!(status(&["mlreg", "--help"]), Some(ExitStatus::Success));
        assert_eq!(status(&["mlreg", "--version"]), Some(ExitStatus::Success));
        assert_eq!(
            status(&["mlreg", "plan", "--bogus"]),
            Some(ExitStatus::Failure)
        );
        assert_eq!(status(&["mlreg"]), Some(ExitStatus::Failure));
    }
}
