# syntax=docker/dockerfile:1
# The mlreg image examples/k8s runs: a build stage with the Rust toolchain, then a small
# runtime with only the binary, CA certificates (HTTPS to the registry) and git (the
# mlreg.transition audit tag records the manifests' commit), running as a non-root user.
#
#   docker build -t ghcr.io/example/mlreg:0.1.0 .
#   docker run --rm ghcr.io/example/mlreg:0.1.0 --version
#
# Not built in this project's CI (it has no container engine): scripts/test.sh checks the
# Kubernetes manifests, not this recipe.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# git lets build.rs record the commit for `mlreg --version` when .git is in the context;
# without it the version says "commit unknown" and the build still succeeds.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=mlreg-target \
    cargo build --locked --release --bin mlreg \
 && install -D -m 0755 target/release/mlreg /out/mlreg \
 && strip /out/mlreg

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 mlreg \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin mlreg
COPY --from=build /out/mlreg /usr/local/bin/mlreg
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# watch's default --listen is loopback; examples/k8s passes --listen=0.0.0.0:9464.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mlreg"]
CMD ["--help"]
