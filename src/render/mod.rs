//! Rendering plans, reports and tables.

pub mod diff;
pub mod table;
