# Convenience recipes; each calls the project's scripts, which work without `just` too.

# Everything CI runs (.ci/run calls the same script).
ci:
    scripts/test.sh

# The end-to-end demo on a local MLflow.
demo:
    scripts/demo.sh

# Format, then lint like CI.
lint:
    cargo fmt --all
    cargo clippy --all-targets -- -D warnings

# Benchmarks against the Python-client baseline (not part of CI).
bench *ARGS:
    bench/run.sh {{ARGS}}
