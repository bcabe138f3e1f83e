#!/usr/bin/env python3
"""Gates: what evidence costs a plan (docs/benchmarks-gates.md).

Run it through `bench/run.sh --preset gates` (which builds mlreg in release mode first). It
starts a real MLflow server (scripts/mlflow-server.sh, SQLite), creates MODELS models of three
versions, each version registered from its own run with logged metrics, and writes two sets of
manifests that differ only in `gates`: PROMOTING of the models move Production from version 2
to version 3 (a metrics gate and a noRegression gate on Production), the others are in sync.
It times `mlreg plan` on each set, interleaved, and counts the requests each sends (`stats` of
the JSON output): with gates, about one run read per version entering a gated target, none
for the others.

Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
from bench import log, median  # noqa: E402

GATE = """  gates:
    Production:
      metrics:
        val_accuracy: ">= 0.80"
      noRegression: {metric: val_accuracy, direction: higher, tolerance: 0.01}
"""


def post(uri: str, path: str, body: dict) -> dict:
    return bench.request(uri, "POST", path, body)


def seed(uri: str, models: int) -> dict[str, list[str]]:
    """Returns each model's run ids, version by version."""
    runs: dict[str, list[str]] = {}
    experiment = post(uri, "experiments/create", {"name": f"gates-bench-{time.time_ns()}"})["experiment_id"]
    for index in range(models):
        name = f"gated_{index:04d}"
        post(uri, "registered-models/create", {"name": name})
        for number in (1, 2, 3):
            run = post(uri, "runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"]
            post(
                uri,
                "runs/log-metric",
                {"run_id": run, "key": "val_accuracy", "value": 0.80 + 0.05 * number, "timestamp": 0, "step": 0},
            )
            post(uri, "model-versions/create", {"name": name, "source": f"s3://bench/{name}/{number}", "run_id": run})
            runs.setdefault(name, []).append(run)
        post(
            uri,
            "model-versions/transition-stage",
            {"name": name, "version": "2", "stage": "Production", "archive_existing_versions": False},
        )
    return runs


def read_runs(uri: str, run_ids: list[str]) -> float:
    """The server's own time for the run reads a gated plan sends: `runs/get` for each,
    as many at once as mlreg's evidence reader sends (8). Returns the wall time."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda run: bench.request(uri, "GET", "runs/get", params={"run_id": run}), run_ids))
    return time.perf_counter() - started


def write_manifests(directory: str, models: int, promoting: int, gates: bool) -> None:
    os.makedirs(directory, exist_ok=True)
    for index in range(models):
        name = f"gated_{index:04d}"
        production = 3 if index < promoting else 2
        text = (
            f"apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\n"
            f"spec:\n  stages:\n    Production: {production}\n"
        )
        if gates:
            text += GATE
        with open(os.path.join(directory, f"{name}.yaml"), "w") as file:
            file.write(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--promoting", type=int, default=10)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--mlreg", default=os.path.join(bench.ROOT, "target", "release", "mlreg"))
    parser.add_argument("--out", help="write the Markdown report here (docs/benchmarks-gates.md)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--command", default="", help="the command line to print in the report")
    args = parser.parse_args()

    started = time.perf_counter()
    info = bench.machine(args.workers)
    info["load_before"] = os.getloadavg()
    mlreg = bench.Mlreg(args.mlreg)
    work = tempfile.mkdtemp(prefix="mlreg-gates.")
    server = bench.Server("gates", os.path.join(work, "server"), args.workers).wait()
    try:
        log(f"seeding {args.models} models x 3 versions, each from a run with metrics")
        run_ids = seed(server.uri, args.models)
        # The candidate (version 3) and the current holder (version 2, for noRegression) of
        # each promoting model.
        evidence_runs = [
            run for index in range(args.promoting) for run in run_ids[f"gated_{index:04d}"][1:3]
        ]
        plain, gated = os.path.join(work, "plain"), os.path.join(work, "gated")
        write_manifests(plain, args.models, args.promoting, gates=False)
        write_manifests(gated, args.models, args.promoting, gates=True)
        mlreg.plan(server.uri, plain)  # warm-up
        runs: dict[str, list[dict]] = {"plain": [], "gated": []}
        server_reads: list[float] = []
        for _ in range(args.reps):
            for key, directory in (("plain", plain), ("gated", gated)):
                runs[key].append(mlreg.run(server.uri, ["plan", "--dir", directory, "--output", "json"]))
            server_reads.append(read_runs(server.uri, evidence_runs))
        gated_output = runs["gated"][-1]["output"]
        checks = [
            check
            for model in gated_output.get("models", [])
            for change in model.get("changes", [])
            for check in change.get("gates") or []
        ]
        results = {
            "machine": info,
            "args": vars(args),
            "plain": {
                "seconds": median([r["seconds"] for r in runs["plain"]]),
                "samples": [r["seconds"] for r in runs["plain"]],
                "requests": runs["plain"][-1]["requests"],
                "changes": sum(len(m.get("changes", [])) for m in runs["plain"][-1]["output"].get("models", [])),
            },
            "gated": {
                "seconds": median([r["seconds"] for r in runs["gated"]]),
                "samples": [r["seconds"] for r in runs["gated"]],
                "requests": runs["gated"][-1]["requests"],
                "changes": sum(len(m.get("changes", [])) for m in gated_output.get("models", [])),
                "checks": len(checks),
                "exit": runs["gated"][-1]["exit"],
            },
            "server_reads_s": median(server_reads),
            "server_reads_samples": server_reads,
            "evidence_runs": len(evidence_runs),
        }
    finally:
        server.stop()
    info["load_after"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    p, g = results["plain"], results["gated"]
    table = "\n".join(
        [
            "| `mlreg plan` | median | requests | changes | gate checks |",
            "|---|---|---|---|---|",
            f"| without gates | {p['seconds'] * 1000:.0f} ms | {p['requests']} | {p['changes']} | — |",
            f"| with gates on every model | {g['seconds'] * 1000:.0f} ms | {g['requests']} | {g['changes']} | {g['checks']} |",
            "",
            f"Evidence cost {g['requests'] - p['requests']} requests for {args.promoting} versions entering a gated "
            f"target ({args.models - args.promoting} gated models in sync read none), "
            f"{(g['seconds'] - p['seconds']) * 1000:+.0f} ms ({g['seconds'] / p['seconds']:.2f}x); the server's own time "
            f"for those {results['evidence_runs']} `runs/get`, 8 at once as mlreg sends them: "
            f"{results['server_reads_s'] * 1000:.0f} ms.",
        ]
    )
    print(table)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2, default=str)
    if args.out:
        analysis = bench.kept_analysis(args.out) or "(No analysis written yet.)"
        with open(args.out, "w") as file:
            file.write(
                f"""# Gates benchmark

What promotion gates cost a plan (DESIGN.md "Gates"). Produced by one run of
`{args.command or 'bench/run.sh --preset gates'}` ({results['wall_s'] / 60:.0f} minutes after the
build) on commit `{info['commit']}`, {info['date']}.

Machine: {info['nproc']} cores ({info['cpu']}), MLflow {info['mlflow']} with {args.workers} workers on
SQLite, {info['rustc']}; load average {info['load_before'][0]:.2f} before, {info['load_after'][0]:.2f} after.

{args.models} models of three versions, each version from its own run with a logged
`val_accuracy`; {args.promoting} of them move Production from version 2 to version 3. The two
manifest sets differ only in `gates` (a metrics gate and a noRegression gate on Production, on
every model). Medians of {args.reps} interleaved runs of the release binary (whole-process wall
time); requests from the JSON output's `stats`.

{table}

## Reading the results

{bench.ANALYSIS_BEGIN}
{analysis}
{bench.ANALYSIS_END}
"""
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
