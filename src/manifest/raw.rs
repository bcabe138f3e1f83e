//! Serde types mirroring the YAML of one manifest document.
