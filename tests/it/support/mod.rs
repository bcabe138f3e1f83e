//! Shared test support: the MLflow server, unique names, running the binary.
