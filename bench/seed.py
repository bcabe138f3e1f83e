#!/usr/bin/env python3
"""Seeds an MLflow registry for the benchmark and writes the matching manifests.

Every model gets M versions (sources ``s3://bench/<model>/<n>``), a description, a tag and
two aliases. The registry starts the way a registry that nobody cleaned up looks: version 1
in Production, version 2 in Staging, the rest in None. The manifests declare

    Production: M      Staging: M-1      aliases {champion: M, challenger: M-1}
    retention.keepLatest: KEEP_LATEST

so each model needs M - KEEP_LATEST transitions (2 promotions, 2 archives of versions
leaving a stage, and M-4-KEEP_LATEST retention archives): 18 per model at M=20, 1800 for
100 x 20. Description, tags and aliases already match, so the plan holds transitions only.

Seeding goes through MLflow's REST API directly from a pool of threads (one keep-alive
session each); a model's requests run in order on one thread because version numbers are
assigned in creation order.

Usage: seed.py URI --models N --versions M [--first K] [--manifests DIR] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

KEEP_LATEST = 2
DESCRIPTION = "benchmark model"
TAGS = {"team": "bench"}


def model_name(index: int) -> str:
    return f"bench_model_{index:05d}"


_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


def _post(uri: str, path: str, body: dict) -> dict:
    for attempt in range(8):
        response = _session().post(f"{uri}/api/2.0/mlflow/{path}", json=body, timeout=60)
        if response.status_code < 500 and response.status_code != 429:
            break
        time.sleep(0.2 * (attempt + 1))  # SQLite "database is locked" under contention
    if response.status_code != 200:
        raise RuntimeError(f"{path} {body}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


def seed_model(uri: str, name: str, versions: int) -> int:
    """Creates one model in its initial state; returns the number of requests sent."""
    _post(
        uri,
        "registered-models/create",
        {
            "name": name,
            "description": DESCRIPTION,
            "tags": [{"key": k, "value": v} for k, v in TAGS.items()],
        },
    )
    for number in range(1, versions + 1):
        created = _post(
            uri,
            "model-versions/create",
            {"name": name, "source": f"s3://bench/{name}/{number}"},
        )
        if created["model_version"]["version"] != str(number):
            raise RuntimeError(f"{name}: expected version {number}, got {created}")
    for number, stage in ((1, "Production"), (2, "Staging")):
        _post(
            uri,
            "model-versions/transition-stage",
            {
                "name": name,
                "version": str(number),
                "stage": stage,
                "archive_existing_versions": False,
            },
        )
    for alias, number in (("champion", versions), ("challenger", versions - 1)):
        _post(
            uri,
            "registered-models/alias",
            {"name": name, "alias": alias, "version": str(number)},
        )
    return 1 + versions + 4


def manifest_text(name: str, versions: int) -> str:
    return f"""apiVersion: mlreg/v1
kind: RegisteredModel
metadata:
  name: {name}
spec:
  description: {DESCRIPTION}
  tags:
    team: {TAGS["team"]}
  stages:
    Production: {versions}
    Staging: {versions - 1}
  aliases:
    champion: {versions}
    challenger: {versions - 1}
  retention:
    keepLatest: {KEEP_LATEST}
"""


def write_manifests(directory: str, first: int, models: int, versions: int) -> None:
    os.makedirs(directory, exist_ok=True)
    for index in range(first, first + models):
        name = model_name(index)
        with open(os.path.join(directory, f"{name}.yaml"), "w") as file:
            file.write(manifest_text(name, versions))


def transitions_per_model(versions: int) -> int:
    return versions - KEEP_LATEST


def seed(uri: str, first: int, models: int, versions: int, threads: int = 8) -> dict:
    """Seeds models first..first+models-1; returns timing figures."""
    if versions < 6:
        raise ValueError("--versions must be at least 6 (2 declared, 2 seeded in stages, retention)")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        requests_sent = sum(
            pool.map(lambda i: seed_model(uri, model_name(i), versions), range(first, first + models))
        )
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "requests": requests_sent, "per_second": requests_sent / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--first", type=int, default=0, help="index of the first model")
    parser.add_argument("--manifests", help="write the matching manifests into this directory")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    figures = seed(args.uri.rstrip("/"), args.first, args.models, args.versions, args.threads)
    if args.manifests:
        write_manifests(args.manifests, args.first, args.models, args.versions)
    print(
        f"seeded {args.models} models x {args.versions} versions: {figures['requests']} requests "
        f"in {figures['seconds']:.1f} s ({figures['per_second']:.0f}/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
