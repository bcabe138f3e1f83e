//! Integration tests: the `mlreg` binary and the MLflow client against a real MLflow server.
//!
//! One MLflow server is started per test binary, on first use (see `support`); tests
//! isolate themselves by model-name prefix. Tests that need no server (manifest
//! validation) never start one.

mod bad_input;
mod crash;
mod diagnostics;
mod faults;
mod lifecycle;
mod races;
mod reconcile;
mod registry;
mod render;
mod security;
mod support;
mod validate;
mod versions;
mod watch;
