//! `mlreg versions` and `mlreg info` against the real server.
