//! Executing a plan through a registry.
