#!/usr/bin/env python3
"""Events: how fast MLflow's webhooks bring the daemon, and what notifications cost a reconcile.

Run it through `bench/run.sh --preset events` (which builds mlreg in release mode first). In
one run it

1. starts a real MLflow server with webhooks on (scripts/mlflow-server.sh, SQLite), seeds one
   model (bench/seed.py: 20 versions, `@champion` on the newest) and starts `mlreg watch
   --self-heal --interval 1h --register-mlflow-webhook`, so that only MLflow's webhook can
   bring the daemon within the run;
2. TRIALS times moves `@champion` by hand through MLflow's Python client
   (`MlflowClient.set_registered_model_alias`) and measures the time until the registry shows
   the alias back where the manifest puts it (polled every 20 ms);
3. times `mlreg reconcile` applying one alias move, REPS times each, interleaved: without
   `--notify`, with a receiver that answers at once, and with one that accepts the connection
   and never answers. The reconcile's own time (`stats.elapsed_ms`) is what must not change;
   the process's wall time also holds the bounded wait for pending deliveries at exit.

Not a test: nothing here asserts; the report says which targets were met.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import seed  # noqa: E402
from bench import log, median  # noqa: E402

# A fixed Fernet key: every server worker must read the secrets another stored.
WEBHOOK_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "7V9UnhJpcWQX2yNnHq329HPu07k76FuA26c2SRlsqCo=",
}
VERSIONS = 20


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def alias_version(uri: str, name: str, alias: str) -> str | None:
    try:
        answer = bench.request(uri, "GET", "registered-models/alias", params={"name": name, "alias": alias})
    except RuntimeError:
        return None
    return (answer.get("model_version") or {}).get("version")


def manifest(name: str, champion: int) -> str:
    return (
        f"apiVersion: mlreg/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\n"
        f"spec:\n  aliases:\n    champion: {champion}\n    challenger: {VERSIONS - 1}\n"
    )


class Receiver:
    """A notification receiver on loopback: answers 200 at once, or (`hang`) accepts the
    connection and never answers."""

    def __init__(self, hang: bool):
        self.count = 0
        if hang:
            self.socket = socket.socket()
            self.socket.bind(("127.0.0.1", 0))
            self.socket.listen(64)
            self.port = self.socket.getsockname()[1]
            self.held: list[socket.socket] = []
            threading.Thread(target=self._hold, daemon=True).start()
        else:
            outer = self

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_POST(self):  # noqa: N802 — http.server's naming
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    outer.count += 1
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, *args):
                    pass

            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.port = self.server.server_address[1]
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _hold(self):
        while True:
            connection, _ = self.socket.accept()
            self.count += 1
            self.held.append(connection)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--mlreg", default=os.path.join(bench.ROOT, "target", "release", "mlreg"))
    parser.add_argument("--out", help="write the Markdown report here (docs/benchmarks-events.md)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--command", default="", help="the command line to print in the report")
    args = parser.parse_args()

    started = time.perf_counter()
    info = bench.machine(args.workers)
    info["load_before"] = os.getloadavg()
    mlreg = bench.Mlreg(args.mlreg)
    results: dict = {"machine": info, "args": vars(args)}
    work = tempfile.mkdtemp(prefix="mlreg-events.")
    os.environ.update(WEBHOOK_ENV)
    server = bench.Server("events", os.path.join(work, "server"), args.workers).wait()
    daemon = None
    try:
        name = "events_model"
        seed.seed_model(server.uri, name, VERSIONS)
        desired = os.path.join(work, "desired")
        os.makedirs(desired)
        with open(os.path.join(desired, f"{name}.yaml"), "w") as file:
            file.write(manifest(name, VERSIONS))

        # 1. The daemon, brought only by MLflow's webhook (the resync is an hour away).
        port = bench.free_port()
        log_path = os.path.join(work, "watch.log")
        env = dict(os.environ, MLFLOW_TRACKING_URI=server.uri, NO_COLOR="1", MLREG_HOOK_SECRET="bench-secret-0123456789")
        with open(log_path, "w") as log_file:
            daemon = subprocess.Popen(
                [
                    mlreg.binary, "watch", "--dir", desired, "--interval", "1h", "--self-heal",
                    "--listen", f"127.0.0.1:{port}", "--mlflow-webhook-secret-env", "MLREG_HOOK_SECRET",
                    "--register-mlflow-webhook", f"http://127.0.0.1:{port}/hooks/mlflow",
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while bench.http_get(f"{base}/readyz")[0] != 200:
            if daemon.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlreg watch did not become ready; see {log_path}")
            time.sleep(0.1)
        time.sleep(3)  # the webhook registered, and MLflow's webhook cache (1 s) expired

        from mlflow import MlflowClient  # noqa: E402 — only in the venv, and slow to import

        client = MlflowClient(tracking_uri=server.uri)
        latencies, missed = [], 0
        for trial in range(args.trials):
            moved_to = str(1 + trial % (VERSIONS - 2))
            began = time.perf_counter()
            client.set_registered_model_alias(name, "champion", moved_to)
            while alias_version(server.uri, name, "champion") != str(VERSIONS):
                if time.perf_counter() - began > 30:
                    missed += 1
                    break
                time.sleep(0.02)
            else:
                latencies.append(time.perf_counter() - began)
            time.sleep(1.0)
        _, metrics = bench.http_get(f"{base}/metrics")
        received = [
            line for line in metrics.decode().splitlines() if line.startswith("mlreg_webhook_received_total")
        ]
        results["webhook"] = {
            "trials": args.trials,
            "healed": len(latencies),
            "missed": missed,
            "p50_s": percentile(latencies, 0.5) if latencies else None,
            "p95_s": percentile(latencies, 0.95) if latencies else None,
            "samples": latencies,
            "received": received,
        }
        log(f"webhook heal: {results['webhook']}")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        daemon = None

        # 2. Notifications never slow a reconcile.
        quick, hanging = Receiver(hang=False), Receiver(hang=True)
        variants = {"none": [], "answering": ["--notify", quick.url], "hanging": ["--notify", hanging.url]}
        runs: dict[str, list[dict]] = {key: [] for key in variants}
        champion = VERSIONS
        for _ in range(args.reps):
            for key, extra in variants.items():
                champion = VERSIONS - 2 if champion == VERSIONS else VERSIONS
                with open(os.path.join(desired, f"{name}.yaml"), "w") as file:
                    file.write(manifest(name, champion))
                run = mlreg.run(server.uri, ["reconcile", "--dir", desired, "--output", "json", *extra])
                applied = (run["output"].get("result") or {}).get("applied")
                if applied != 1:
                    raise RuntimeError(f"reconcile ({key}) applied {applied}, expected 1")
                runs[key].append(run)
        results["notify"] = {
            key: {
                "elapsed_ms": median([r["elapsed_ms"] for r in value]),
                "wall_s": median([r["seconds"] for r in value]),
                "samples_ms": [r["elapsed_ms"] for r in value],
            }
            for key, value in runs.items()
        }
        results["notify"]["answering"]["received"] = quick.count
        results["notify"]["hanging"]["connections"] = hanging.count
        log(f"notifications: {json.dumps(results['notify'])}")
    finally:
        if daemon is not None:
            daemon.kill()
        server.stop()

    info["load_after"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    text = report(results)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2, default=str)
    if args.out:
        rendered = document(text, results, args)
        with open(args.out, "w") as file:
            file.write(rendered)
    return 0


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"


def report(r: dict) -> str:
    w, n = r["webhook"], r["notify"]
    ok = w["p50_s"] is not None and w["p50_s"] < 2 and w["missed"] == 0
    lines = [
        "| measure | value | target | verdict |",
        "|---|---|---|---|",
        f"| `@champion` moved by hand → reverted through MLflow's webhook ({w['healed']} of {w['trials']} trials) "
        f"| p50 {ms(w['p50_s'])}, p95 {ms(w['p95_s'])} | p50 < 2 s, every trial | {'**met**' if ok else '**missed**'} |",
    ]
    base = n["none"]["elapsed_ms"]
    for key, label in (("answering", "a receiver that answers"), ("hanging", "a receiver that never answers")):
        lines.append(
            f"| `reconcile` (one alias move) with {label}: its own time / process wall time "
            f"| {n[key]['elapsed_ms']:.0f} ms / {ms(n[key]['wall_s'])} (without `--notify`: {base:.0f} ms / "
            f"{ms(n['none']['wall_s'])}) | its own time unchanged | "
            f"{'**met**' if n[key]['elapsed_ms'] <= base * 1.2 + 20 else '**missed**'} |"
        )
    return "\n".join(lines)


def document(table: str, r: dict, args) -> str:
    m = r["machine"]
    analysis = bench.kept_analysis(args.out) or "(No analysis written yet.)"
    return f"""# Events benchmark

How fast MLflow's webhooks bring `mlreg watch`, and what notifications cost a reconcile
(DESIGN.md "Events"). Produced by one run of `{args.command or 'bench/run.sh --preset events'}`
({r['wall_s'] / 60:.0f} minutes after the build) on commit `{m['commit']}`, {m['date']}.

Machine: {m['nproc']} cores ({m['cpu']}), MLflow {m['mlflow']} with {m['workers']} workers on
SQLite, {m['rustc']}; load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after.

{table}

How it is measured (bench/events.py): the daemon runs with `--interval 1h --self-heal
--register-mlflow-webhook`, so within the run only a webhook can bring it; each trial moves the
alias with MLflow's own Python client, then polls the registry every 20 ms until the alias is
back, one trial a second. The reconciles apply one alias move each, interleaved across the three
variants; "its own time" is the `stats.elapsed_ms` of mlreg's JSON output (read, plan, apply,
verify), the wall time also holds the bounded wait for pending deliveries at exit.

## Reading the results

{bench.ANALYSIS_BEGIN}
{analysis}
{bench.ANALYSIS_END}
"""


if __name__ == "__main__":
    sys.exit(main())
