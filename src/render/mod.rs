//! Rendering plans, reports and tables.
