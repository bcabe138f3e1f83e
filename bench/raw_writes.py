#!/usr/bin/env python3
"""The server's own write throughput: a tight loop of raw REST writes, no client library.

Replays a list of writes (stage transitions, optionally each followed by its audit tag,
exactly the writes `mlreg reconcile` makes) from C concurrent keep-alive connections
(http.client: the lightest client Python has, so the client steals as little CPU as possible
from the server on a small machine). Writes of one model stay in order on one connection;
models are handed out from a shared queue, as mlreg does.

Usage: raw_writes.py URI PLAN_JSON [--connections C] [--tags] [--limit N] [--fresh]
(PLAN_JSON: the output of `mlreg plan --output json`.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import sys
import threading
import time
import urllib.parse

AUDIT_TAG = "mlreg.transition"


def writes_by_model(plan: dict, tags: bool, limit: int | None = None) -> list[list[tuple[str, dict]]]:
    """Per model, the (endpoint, body) of each write, in order; at most `limit` writes."""
    models = []
    total = 0
    for model in plan["models"]:
        writes = []
        for change in model["changes"]:
            if change["kind"] != "transition":
                continue
            body = {
                "name": model["name"],
                "version": str(change["version"]),
                "stage": change["to"],
                "archive_existing_versions": False,
            }
            writes.append(("model-versions/transition-stage", body))
            if tags:
                value = json.dumps(
                    {
                        "from": change["from"],
                        "to": change["to"],
                        "when": "2026-11-28T09:00:00Z",
                        "manifest": model["manifest"],
                    },
                    separators=(",", ":"),
                )
                writes.append(
                    (
                        "model-versions/set-tag",
                        {"name": model["name"], "version": str(change["version"]), "key": AUDIT_TAG, "value": value},
                    )
                )
        if writes:
            if limit is not None and total + len(writes) > limit:
                break
            models.append(writes)
            total += len(writes)
    return models


def replay(
    uri: str, models: list[list[tuple[str, dict]]], connections: int, fresh: bool = False
) -> dict:
    """Sends every write; returns seconds, writes and errors.

    With `fresh`, every request goes on a new TCP connection instead of a kept-alive one.
    MLflow's multi-worker uvicorn server leaves Nagle's algorithm on for accepted sockets, so
    on a reused connection the response body waits for the client's delayed ACK (~40 ms);
    a new connection starts in quick-ACK mode and does not wait (see docs/benchmarks.md).
    """
    parsed = urllib.parse.urlparse(uri)
    work: queue.Queue = queue.Queue()
    for writes in models:
        work.put(writes)
    errors = []
    counts = [0] * connections
    barrier = threading.Barrier(connections + 1)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        if not fresh:
            connection.connect()
        barrier.wait()
        headers = {"Content-Type": "application/json"}
        while True:
            try:
                writes = work.get_nowait()
            except queue.Empty:
                break
            for endpoint, body in writes:
                connection.request("POST", f"/api/2.0/mlflow/{endpoint}", json.dumps(body), headers)
                response = connection.getresponse()
                payload = response.read()
                if fresh:
                    connection.close()
                counts[index] += 1
                if response.status != 200:
                    errors.append(f"{endpoint}: HTTP {response.status}: {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    writes = sum(counts)
    return {
        "connections": connections,
        "fresh": fresh,
        "writes": writes,
        "seconds": seconds,
        "per_second": writes / seconds if seconds else 0.0,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("plan")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--tags", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--fresh", action="store_true", help="a new connection per request")
    args = parser.parse_args()
    with open(args.plan) as file:
        plan = json.load(file)
    result = replay(args.uri, writes_by_model(plan, args.tags, args.limit), args.connections, args.fresh)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
