//! Rendering: plans, apply reports and tables as text, JSON or Markdown, always into an
//! `impl Write` (stdout in the binary, a `Vec<u8>` in tests). Nothing here decides whether
//! to color: callers pass that in (terminal detection and `NO_COLOR` live in
//! [`crate::output`]).

pub mod diff;
pub mod plan;
pub mod resolve;
pub mod table;

pub use crate::output::printable;
