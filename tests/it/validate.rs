//! `mlreg validate` and `mlreg schema` (offline).
