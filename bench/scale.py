#!/usr/bin/env python3
"""A plan costs what the managed models cost: the scale benchmark (docs/benchmarks-scale.md).

Run it through `bench/run.sh --preset shared` (which builds mlreg in release mode first). In
one run it

1. starts a real MLflow server (scripts/mlflow-server.sh, SQLite), seeds TEMPLATES models x M
   versions through the REST API (seed.py), reconciles them with mlreg so they are in sync
   with their manifests, then grows the registry step by step to MODELS x M versions by
   cloning those rows in the SQLite store (grow.py; seeding 100 000 versions through the
   API would take far too long), every clone in sync with its manifest;
2. at every step of the growth curve measures the whole-registry floor (the two paged
   searches, sequential; and the two sent at once) and `mlreg plan` managing every model;
3. at the largest size, with manifests for the first MANAGED models only, measures the
   floor of the managed models' own searches (`name IN (...)` on both searches, sent at
   once), the floor of the scoped read mlreg sends (every model listed, the managed
   models' versions filtered), `mlreg plan` on those manifests (it lists the other models
   as unmanaged) and `mlreg plan --model` for each of them (no listing), and `mlreg watch`'s
   resident memory, idle and after resyncs, managing the few models and managing all.

Not a test: nothing here asserts; the report says which targets were met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import grow  # noqa: E402
import seed  # noqa: E402
from bench import log, median  # noqa: E402


def in_filter(names: list[str]) -> str:
    quoted = ", ".join("'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'" for name in names)
    return f"name IN ({quoted})"


def search_all(uri: str, path: str, key: str, page: int, order: list[str], filter_string: str | None) -> int:
    """One paged search to its end; returns the rows read."""
    token, total = None, 0
    while True:
        params = [("max_results", page)] + [("order_by", o) for o in order]
        if filter_string:
            params.append(("filter", filter_string))
        if token:
            params.append(("page_token", token))
        answer = bench.request(uri, "GET", path, params=params)
        total += len(answer.get(key, []))
        token = answer.get("next_page_token")
        if not token:
            return total


MODELS = ("registered-models/search", "registered_models", 1000, ["name ASC"])
VERSIONS = ("model-versions/search", "model_versions", 200_000, ["name ASC", "version_number ASC"])


def at_once(*calls) -> float:
    """The searches sent at the same time; returns the wall time."""
    threads = [threading.Thread(target=search_all, args=call) for call in calls]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def managed_floor(uri: str, names: list[str]) -> float:
    """The managed models' own searches: both filtered, sent at once."""
    where = in_filter(names)
    return at_once((uri, *MODELS, where), (uri, *VERSIONS, where))


def scoped_floor(uri: str, names: list[str]) -> float:
    """What a scoped read sends: every model listed, the managed models' versions filtered."""
    return at_once((uri, *MODELS, None), (uri, *VERSIONS, in_filter(names)))


def interleaved(reps: int, *measures) -> list[list[float]]:
    """Each measure `reps` times, interleaved, so that a changing load hits all alike."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(reps):
        for index, measure in enumerate(measures):
            samples[index].append(measure())
    return samples


def watch_rss(mlreg: bench.Mlreg, uri: str, directory: str, resyncs: int) -> dict:
    """`mlreg watch` on an in-sync registry: RSS when idle after its first reconcile, and
    after `resyncs` resyncs (VmHWM: the peak a resync reached)."""
    port = bench.free_port()
    log_path = os.path.join(directory, "..", f"watch-{port}.log")
    args = [mlreg.binary, "watch", "--dir", directory, "--interval", "2s", "--listen", f"127.0.0.1:{port}"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, NO_COLOR="1")
    with open(log_path, "w") as log_file:
        daemon = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 300
        while bench.http_get(f"{base}/readyz")[0] != 200:
            if daemon.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlreg watch did not become ready; see {log_path}")
            time.sleep(0.1)
        time.sleep(1)
        idle_rss, idle_hwm = bench.rss_of(daemon.pid)
        first = json.loads(bench.http_get(f"{base}/status")[1] or b"{}")
        seen, started_at = 0, (first.get("last_reconcile") or {}).get("started_at")
        deadline = time.time() + 60 + 30 * resyncs
        while seen < resyncs:
            status = json.loads(bench.http_get(f"{base}/status")[1] or b"{}")
            record = status.get("last_reconcile") or {}
            if record.get("started_at") != started_at:
                seen, started_at = seen + 1, record.get("started_at")
            if time.time() > deadline:
                raise RuntimeError(f"mlreg watch: only {seen} resyncs; see {log_path}")
            time.sleep(0.2)
        rss, hwm = bench.rss_of(daemon.pid)
        states: dict[str, int] = {}
        for model in status.get("models", []):
            states[model.get("state")] = states.get(model.get("state"), 0) + 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    return {
        "idle_rss_mb": idle_rss,
        "idle_hwm_mb": idle_hwm,
        "after_resyncs_rss_mb": rss,
        "peak_rss_mb": hwm,
        "resyncs": seen,
        "states": states,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--managed", type=int, default=10, help="models the scoped manifests manage")
    parser.add_argument("--templates", type=int, default=10, help="models seeded through the API")
    parser.add_argument("--growth", default="2000,10000,20000,50000,100000", help="registry sizes (versions)")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--resyncs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--mlreg", default=os.path.join(bench.ROOT, "target", "release", "mlreg"))
    parser.add_argument("--out", help="write the Markdown report here (docs/benchmarks-scale.md)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--command", default="", help="the command line to print in the report")
    args = parser.parse_args()
    m = args.versions
    sizes = sorted({int(s) for s in args.growth.split(",") if s.strip()} | {args.models * m})

    started = time.perf_counter()
    info = bench.machine(args.workers)
    info["load_before"] = os.getloadavg()
    mlreg = bench.Mlreg(args.mlreg)
    results: dict = {"machine": info, "args": vars(args), "growth": []}
    work = tempfile.mkdtemp(prefix="mlreg-scale.")
    server = None
    try:
        server = bench.Server("scale", os.path.join(work, "server"), args.workers).wait()
        log(f"seeding {args.templates} x {m} through the API")
        seed.seed(server.uri, 0, args.templates, m)
        everything = os.path.join(work, "all")
        seed.write_manifests(everything, 0, args.templates, m)
        run = mlreg.run(server.uri, ["reconcile", "--dir", everything, "--no-annotate", "--output", "json"])
        log(f"  reconciled the templates: {run['output'].get('result')}")
        current = args.templates
        for size in sizes:
            wanted = max(args.templates, size // m)
            if wanted > current:
                grow.clone(server.db, args.templates, current, wanted)
                seed.write_manifests(everything, current, wanted - current, m)
                current = wanted
            reps = max(3, args.reps if size <= 20_000 else args.reps // 3)
            mlreg.plan(server.uri, everything)  # warm-up
            floors, parallel, plans = [], [], []
            for _ in range(reps):
                floors.append(bench.measure_floor(server.uri, 1))
                parallel.append(bench.read_registry_concurrently(server.uri))
                plans.append(mlreg.plan(server.uri, everything))
            row = {
                "models": current,
                "versions": floors[-1]["versions"],
                "floor_s": median([f["seconds"] for f in floors]),
                "concurrent_s": median(parallel),
                "plan_s": median([p["seconds"] for p in plans]),
                "plan_samples": [p["seconds"] for p in plans],
                "requests": plans[-1]["requests"],
                "rss_mb": max(p["rss_mb"] for p in plans),
                "changes": sum(len(x.get("changes", [])) for x in plans[-1]["output"].get("models", [])),
            }
            results["growth"].append(row)
            log(
                f"{row['versions']} versions: floor {row['floor_s'] * 1000:.0f} ms (at once "
                f"{row['concurrent_s'] * 1000:.0f} ms), plan {row['plan_s'] * 1000:.0f} ms, "
                f"{row['requests']} requests, {row['rss_mb']:.0f} MB, {row['changes']} changes"
            )

        # The shared registry: the manifests manage a few of its models.
        names = [seed.model_name(i) for i in range(args.managed)]
        few = os.path.join(work, "few")
        seed.write_manifests(few, 0, args.managed, m)
        model_args = [arg for name in names for arg in ("--model", name)]
        mlreg.plan(server.uri, few)  # warm-up
        samples = interleaved(
            args.reps,
            lambda: bench.measure_floor(server.uri, 1)["seconds"],
            lambda: managed_floor(server.uri, names),
            lambda: scoped_floor(server.uri, names),
            lambda: mlreg.plan(server.uri, few)["seconds"],
            lambda: mlreg.run(server.uri, ["plan", "--dir", few, "--output", "json", *model_args])["seconds"],
        )
        scoped = mlreg.plan(server.uri, few)
        selected = mlreg.run(server.uri, ["plan", "--dir", few, "--output", "json", *model_args])
        results["shared"] = {
            "models": current,
            "versions": results["growth"][-1]["versions"],
            "managed": args.managed,
            "whole_floor_s": median(samples[0]),
            "managed_floor_s": median(samples[1]),
            "scoped_floor_s": median(samples[2]),
            "plan_s": median(samples[3]),
            "plan_samples": samples[3],
            "plan_requests": scoped["requests"],
            "plan_rss_mb": scoped["rss_mb"],
            "unmanaged_listed": len(scoped["output"].get("unmanaged", [])),
            "selected_plan_s": median(samples[4]),
            "selected_plan_samples": samples[4],
            "selected_requests": selected["requests"],
        }
        log(f"shared registry: {json.dumps(results['shared'])}")

        log("mlreg watch managing the few models")
        results["watch_few"] = watch_rss(mlreg, server.uri, few, args.resyncs)
        log(f"  {results['watch_few']}")
        log("mlreg watch managing every model")
        results["watch_all"] = watch_rss(mlreg, server.uri, everything, args.resyncs)
        log(f"  {results['watch_all']}")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    info["load_after"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    text = report(results)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2, default=str)
    if args.out:
        with open(args.out, "w") as file:
            file.write(document(text, results, args))
    return 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(r: dict) -> str:
    s = r["shared"]
    few, every = r["watch_few"], r["watch_all"]
    growth = r["growth"]
    lines = [
        f"Shared registry: {s['models']} models, {s['versions']} versions; the manifests manage {s['managed']}.",
        "",
        "| measure | value | target | verdict |",
        "|---|---|---|---|",
        f"| whole-registry floor (two paged searches) | {ms(s['whole_floor_s'])} | | |",
        f"| the managed models' own searches (floor) | {ms(s['managed_floor_s'])} | | |",
        f"| a scoped read's searches (all models listed, managed versions filtered) | {ms(s['scoped_floor_s'])} | | |",
        f"| `mlreg plan` ({s['plan_requests']} requests, {s['unmanaged_listed']} unmanaged listed) "
        f"| {ms(s['plan_s'])} = {s['plan_s'] / s['scoped_floor_s']:.2f}x its searches, "
        f"{s['whole_floor_s'] / s['plan_s']:.1f}x faster than the whole floor "
        f"| ≤ 1.5x its floor; ≥ 20x faster than a whole read "
        f"| {verdict(s['plan_s'] <= 1.5 * s['scoped_floor_s'])}; {verdict(s['whole_floor_s'] >= 20 * s['plan_s'])} |",
        f"| `mlreg plan --model` x{s['managed']} ({s['selected_requests']} requests, no listing) "
        f"| {ms(s['selected_plan_s'])} = {s['selected_plan_s'] / s['managed_floor_s']:.2f}x the managed floor, "
        f"{s['whole_floor_s'] / s['selected_plan_s']:.1f}x faster than the whole floor "
        f"| ≤ 1.5x its floor; ≥ 20x faster than a whole read "
        f"| {verdict(s['selected_plan_s'] <= 1.5 * s['managed_floor_s'])}; "
        f"{verdict(s['whole_floor_s'] >= 20 * s['selected_plan_s'])} |",
        f"| `mlreg watch`, {s['managed']} managed: idle RSS / after {few['resyncs']} resyncs / peak "
        f"| {few['idle_rss_mb']:.1f} / {few['after_resyncs_rss_mb']:.1f} / {few['peak_rss_mb']:.1f} MB | < 60 MB "
        f"| {verdict(few['after_resyncs_rss_mb'] < 60)} |",
        f"| `mlreg watch`, all {s['models']} managed: idle RSS / after {every['resyncs']} resyncs / peak "
        f"| {every['idle_rss_mb']:.1f} / {every['after_resyncs_rss_mb']:.1f} / {every['peak_rss_mb']:.1f} MB | < 60 MB "
        f"| {verdict(every['after_resyncs_rss_mb'] < 60)} |",
        "",
        "Growth of a plan that manages every model:",
        "",
        "| versions | models | floor | both searches at once | `mlreg plan` | plan / at once | plan per 1000 versions | requests | plan RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in growth:
        lines.append(
            f"| {row['versions']} | {row['models']} | {ms(row['floor_s'])} | {ms(row['concurrent_s'])} "
            f"| {ms(row['plan_s'])} | {row['plan_s'] / row['concurrent_s']:.2f}x "
            f"| {row['plan_s'] * 1000 / (row['versions'] / 1000):.1f} ms | {row['requests']} | {row['rss_mb']:.0f} MB |"
        )
    last = growth[-1]
    lines += [
        "",
        f"Full plan at {last['versions']} versions: {last['plan_s'] / last['concurrent_s']:.2f}x the server's own time "
        f"for the same searches sent at once (target ≤ 1.05x: {verdict(last['plan_s'] <= 1.05 * last['concurrent_s'])}).",
    ]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def document(table: str, r: dict, args) -> str:
    m = r["machine"]
    analysis = bench.kept_analysis(args.out) or "(No analysis written yet.)"
    return f"""# Scale benchmark

What a plan costs on a large shared registry, and what the daemon holds in memory there
(DESIGN.md "Scale"). Produced by one run of `{args.command or 'bench/run.sh --preset shared'}`
({r['wall_s'] / 60:.0f} minutes after the build) on commit `{m['commit']}`, {m['date']}.

Machine: {m['nproc']} cores ({m['cpu']}), MLflow {m['mlflow']} with {m['workers']} workers on
SQLite, {m['rustc']}; load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after.

{table}

How it is measured (bench/scale.py): {args.templates} models of {args.versions} versions are
seeded through the REST API and reconciled, then cloned row for row in the SQLite store
(bench/grow.py) up to each size, every clone in sync with its manifest. Floors are MLflow's own
searches sent from Python on fresh connections (the largest pages MLflow allows); mlreg's
figures are whole-process wall times of the release binary (start, read, plan, print), medians
of interleaved repetitions. RSS is read from `/proc/PID/status` (VmRSS, VmHWM).

## Reading the results

{bench.ANALYSIS_BEGIN}
{analysis}
{bench.ANALYSIS_END}
"""


if __name__ == "__main__":
    sys.exit(main())
