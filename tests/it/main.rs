//! Integration tests: the `mlreg` binary and the MLflow client against a real MLflow server.
//!
//! One MLflow server is started per test binary, on first use (see `support`); tests
//! isolate themselves by model-name prefix. Tests that need no server (manifest
//! validation) never start one.

// Tests may say on stderr what they measured; the lint guards the binary's own output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod aliases;
mod bad_input;
mod cli;
mod crash;
mod diagnostics;
mod environments;
mod faults;
mod gates;
mod lifecycle;
mod notify;
mod page;
mod races;
mod reconcile;
mod registry;
mod render;
mod scoped;
mod security;
mod selectors;
mod serving;
mod support;
mod validate;
mod versions;
mod watch;
mod webhooks;
