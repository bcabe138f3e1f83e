//! Rendering plans, reports and tables.

pub mod table;
