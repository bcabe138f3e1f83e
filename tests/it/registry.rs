//! The MLflow REST client against the real server.
