//! `mlreg plan` and `mlreg reconcile` against the real server.
