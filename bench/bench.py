#!/usr/bin/env python3
"""mlreg against what teams use today: the benchmark behind docs/benchmarks.md.

Run it through bench/run.sh (which builds mlreg in release mode first). In one run it

1. starts a real MLflow server (scripts/mlflow-server.sh, SQLite), seeds it with N models x M
   versions (seed.py) and writes the matching manifests, then copies the SQLite database
   three times and starts a server on each copy, so every measurement that writes starts
   from the same registry;
2. measures (a) the floor: the two raw paged searches that read the whole registry;
   (b) `mlreg plan`; (c) the Python baseline (baseline.py: MlflowClient, one model at a
   time) planning and applying; (d) `mlreg reconcile`, annotated and `--no-annotate`;
   (e) the server's own write throughput for the same writes (raw_writes.py); (f) `mlreg
   watch`: manifest save -> registry converged, and idle memory; (g) `mlreg plan` as the
   registry grows (grow.py);
3. prints a table and writes it, with the machine and the command, into docs/benchmarks.md.

Not a test: nothing here asserts; the report says which targets were met.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import grow  # noqa: E402
import raw_writes  # noqa: E402
import seed  # noqa: E402

PYTHON = os.path.join(ROOT, ".venv", "bin", "python")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values):
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------------------
# MLflow servers


class Server:
    """One `scripts/mlflow-server.sh` on its own data directory."""

    def __init__(self, label: str, data_dir: str, workers: int):
        self.label = label
        self.data_dir = data_dir
        self.workers = workers
        self.uri = ""
        os.makedirs(data_dir, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "MLFLOW_WORKERS": str(workers),
                "MLFLOW_DATA_DIR": data_dir,
                "MLREG_PARENT_PID": str(os.getpid()),
                # MLflow 3.x starts a job runner with seven huey consumers that poll the
                # database; they serve GenAI jobs, not the registry, and cost ~0.5 CPU idle.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            }
        )
        self._stderr = open(os.path.join(data_dir, "server-script.err"), "w")
        self.process = subprocess.Popen(
            [os.path.join(ROOT, "scripts", "mlflow-server.sh")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,
        )
        self.started = time.perf_counter()

    def wait(self) -> "Server":
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("MLFLOW_TRACKING_URI="):
                self.uri = line.split("=", 1)[1].strip()
            if line.startswith("MLFLOW_DATA_DIR="):
                break
        if not self.uri:
            raise RuntimeError(f"the MLflow server {self.label} did not start; see {self.data_dir}")
        self.startup_seconds = time.perf_counter() - self.started
        log(f"server {self.label}: {self.uri} ({self.startup_seconds:.0f} s to start)")
        return self

    @property
    def db(self) -> str:
        return os.path.join(self.data_dir, "mlflow.db")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._stderr.close()


def copy_db(source: str, target_dir: str) -> None:
    """A consistent copy of a SQLite database (the server may hold it open)."""
    os.makedirs(target_dir, exist_ok=True)
    src = sqlite3.connect(source, timeout=60)
    dst = sqlite3.connect(os.path.join(target_dir, "mlflow.db"))
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


# ---------------------------------------------------------------------------------------
# Small HTTP helpers (http.client: no connection reuse unless asked)


def request(uri: str, method: str, path: str, body: dict | None = None, params=None) -> dict:
    """One request on a new connection; returns the decoded JSON answer."""
    parsed = urllib.parse.urlparse(uri)
    if params:
        path = f"{path}?{urllib.parse.urlencode(params)}"
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, f"/api/2.0/mlflow/{path}", data, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload[:200]!r}")
        return json.loads(payload or b"{}")
    finally:
        connection.close()


def read_registry(uri: str, model_page: int, version_page: int) -> tuple[int, int, int]:
    """The floor: every registered model, then every version, paged. Returns (models,
    versions, requests)."""
    counts = []
    sent = 0
    for path, key, page, order in (
        ("registered-models/search", "registered_models", model_page, ["name ASC"]),
        ("model-versions/search", "model_versions", version_page, ["name ASC", "version_number ASC"]),
    ):
        token = None
        total = 0
        while True:
            params = [("max_results", page)] + [("order_by", o) for o in order]
            if token:
                params.append(("page_token", token))
            answer = request(uri, "GET", path, params=params)
            sent += 1
            total += len(answer.get(key, []))
            token = answer.get("next_page_token")
            if not token:
                break
        counts.append(total)
    return counts[0], counts[1], sent


def read_registry_concurrently(uri: str) -> float:
    """Both searches at once, one page each; returns the wall time."""
    started = time.perf_counter()
    threads = [
        threading.Thread(target=request, args=(uri, "GET", path), kwargs={"params": params})
        for path, params in (
            ("registered-models/search", [("max_results", 1000), ("order_by", "name ASC")]),
            (
                "model-versions/search",
                [("max_results", 200_000), ("order_by", "name ASC"), ("order_by", "version_number ASC")],
            ),
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def measure_floor(uri: str, reps: int) -> dict:
    """Median wall time of the two searches with the largest pages MLflow allows (the fewest
    requests), each request on a fresh connection (see raw_writes.replay on why)."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        models, versions, sent = read_registry(uri, 1000, 200_000)
        times.append(time.perf_counter() - started)
    return {"seconds": median(times), "samples": times, "models": models, "versions": versions, "requests": sent}


# ---------------------------------------------------------------------------------------
# mlreg


class Mlreg:
    def __init__(self, binary: str):
        self.binary = binary

    def run(self, uri: str, args: list[str], check: bool = True) -> dict:
        """Runs mlreg under /usr/bin/time; returns wall seconds, peak RSS and the JSON output."""
        with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
            env = dict(os.environ, MLFLOW_TRACKING_URI=uri, NO_COLOR="1")
            started = time.perf_counter()
            process = subprocess.run(
                ["/usr/bin/time", "-f", "%M %U %S", "-o", timing.name, self.binary, *args],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            rss_kb, user, system = timing.read().strip().splitlines()[-1].split()
            rss_kb = int(rss_kb)
        if check and process.returncode != 0:
            raise RuntimeError(f"mlreg {' '.join(args)} exited {process.returncode}: {process.stderr[-2000:]}")
        output = json.loads(process.stdout) if process.stdout.strip().startswith("{") else {}
        return {
            "seconds": wall,
            "rss_mb": rss_kb / 1024,
            "cpu_s": float(user) + float(system),
            "requests": output.get("stats", {}).get("requests"),
            "elapsed_ms": output.get("stats", {}).get("elapsed_ms"),
            "output": output,
            "exit": process.returncode,
        }

    def plan(self, uri: str, directory: str) -> dict:
        return self.run(uri, ["plan", "--dir", directory, "--output", "json"])


def floor_and_plan(
    mlreg: "Mlreg", uri: str, directory: str, reps: int, concurrent: bool = False
) -> tuple[dict, dict]:
    """The floor and `mlreg plan`, interleaved (floor, plan, floor, plan, ...) so that a
    shared machine's changing load and the server's own slow spells hit both alike. With
    `concurrent`, also the two searches sent at the same time."""
    mlreg.plan(uri, directory)  # warm-up
    floors, runs, parallel = [], [], []
    for _ in range(reps):
        floors.append(measure_floor(uri, 1))
        runs.append(mlreg.plan(uri, directory))
        if concurrent:
            parallel.append(read_registry_concurrently(uri))
    floor = {
        "seconds": median([f["seconds"] for f in floors]),
        "samples": [f["seconds"] for f in floors],
        "models": floors[-1]["models"],
        "versions": floors[-1]["versions"],
        "requests": floors[-1]["requests"],
        "concurrent_s": median(parallel) if parallel else None,
        "concurrent_samples": parallel,
    }
    plan = {
        "seconds": median([r["seconds"] for r in runs]),
        "samples": [r["seconds"] for r in runs],
        "requests": runs[-1]["requests"],
        "rss_mb": max(r["rss_mb"] for r in runs),
        "cpu_s": median([r["cpu_s"] for r in runs]),
        "changes": plan_changes(runs[-1]["output"]),
        "output": runs[-1]["output"],
    }
    return floor, plan


def plan_changes(document: dict) -> list[tuple]:
    return [
        (model["name"], change.get("version"), change.get("from"), change.get("to"), change.get("reason"))
        for model in document.get("models", [])
        for change in model.get("changes", [])
    ]


# ---------------------------------------------------------------------------------------
# The Python baseline


def run_baseline(uri: str, directory: str, extra: list[str]) -> dict:
    process = subprocess.run(
        [PYTHON, os.path.join(HERE, "baseline.py"), uri, directory, *extra],
        capture_output=True,
        text=True,
    )
    if process.returncode != 0:
        raise RuntimeError(f"baseline.py failed: {process.stderr[-2000:]}")
    return json.loads(process.stdout)


# ---------------------------------------------------------------------------------------
# mlreg watch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def swapped_manifest(name: str, versions: int) -> str:
    """The model's manifest with Production and Staging swapped."""
    return seed.manifest_text(name, versions).replace(
        f"    Production: {versions}\n    Staging: {versions - 1}\n",
        f"    Production: {versions - 1}\n    Staging: {versions}\n",
    )


def stages_of(uri: str, name: str, numbers: list[int]) -> list[str]:
    return [
        request(uri, "GET", "model-versions/get", params={"name": name, "version": n})["model_version"]["current_stage"]
        for n in numbers
    ]


def measure_watch(mlreg: Mlreg, server: Server, directory: str, versions: int, edits: int, annotate: bool) -> dict:
    port = free_port()
    log_path = os.path.join(server.data_dir, "watch.log")
    args = [mlreg.binary, "watch", "--dir", directory, "--interval", "1h", "--listen", f"127.0.0.1:{port}"]
    if not annotate:
        args.append("--no-annotate")
    env = dict(os.environ, MLFLOW_TRACKING_URI=server.uri, NO_COLOR="1")
    with open(log_path, "w") as log_file:
        daemon = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while http_get(f"{base}/readyz")[0] != 200:
            if daemon.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlreg watch did not become ready; see {log_path}")
            time.sleep(0.05)
        time.sleep(3)  # idle
        idle_rss, idle_hwm = rss_of(daemon.pid)

        latencies = []
        reconciles = []
        for i in range(edits):
            name = seed.model_name(i)
            target = ["Production", "Staging"]  # of versions M-1 and M
            path = os.path.join(directory, f"{name}.yaml")
            text = swapped_manifest(name, versions)
            before = json.loads(http_get(f"{base}/status")[1] or b"{}").get("last_reconcile") or {}
            started = time.perf_counter()
            with open(path, "w") as file:  # saved in place, as `echo > file` or an editor would
                file.write(text)
            # Converged = the daemon has finished the reconcile this edit triggered, its
            # verifying re-read included. Polling the daemon, not MLflow, leaves the server
            # to the daemon.
            while True:
                status = json.loads(http_get(f"{base}/status")[1] or b"{}")
                record = status.get("last_reconcile") or {}
                if record.get("started_at") != before.get("started_at") and record.get("trigger") == "manifest_change":
                    break
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"watch: no reconcile within 60 s of editing {name}; see {log_path}")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
            reconciles.append(record.get("duration_ms"))
            model = next((x for x in status.get("models", []) if x.get("name") == name), {})
            if record.get("result") != "success" or model.get("state") != "in_sync":
                raise RuntimeError(f"watch: {name} did not converge: {record}; see {log_path}")
            if stages_of(server.uri, name, [versions - 1, versions]) != target:
                raise RuntimeError(f"watch: the daemon reported success but {name} is not in its new stages")
            time.sleep(1.0)  # let the next edit start its own debounce window
        busy_rss, busy_hwm = rss_of(daemon.pid)
        status = json.loads(http_get(f"{base}/status")[1] or b"{}")
        in_sync = sum(1 for m in status.get("models", []) if m.get("state") == "in_sync")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()

    # The server's own time for the same work, replayed sequentially: the daemon's read of
    # the whole registry, the stale-plan re-read of the model, its two transitions and two
    # audit tags, and the verifying re-read. Done on models the daemon did not touch.
    server_times = []
    for i in range(edits, 2 * edits):
        name = seed.model_name(i)
        started = time.perf_counter()
        read_registry(server.uri, 1000, 10_000)
        request(server.uri, "GET", "registered-models/get", params={"name": name})
        request(server.uri, "GET", "model-versions/search", params={"filter": f"name='{name}'", "max_results": 10_000})
        for number, stage, old in ((versions - 1, "Production", "Staging"), (versions, "Staging", "Production")):
            request(
                server.uri,
                "POST",
                "model-versions/transition-stage",
                {"name": name, "version": str(number), "stage": stage, "archive_existing_versions": False},
            )
            if annotate:
                request(
                    server.uri,
                    "POST",
                    "model-versions/set-tag",
                    {"name": name, "version": str(number), "key": "mlreg.transition", "value": json.dumps({"from": old, "to": stage})},
                )
        request(server.uri, "GET", "registered-models/get", params={"name": name})
        request(server.uri, "GET", "model-versions/search", params={"filter": f"name='{name}'", "max_results": 10_000})
        server_times.append(time.perf_counter() - started)
    return {
        "edits": edits,
        "latency_s": median(latencies),
        "latency_samples": latencies,
        "reconcile_ms": median([r for r in reconciles if r is not None]),
        "reconcile_samples_ms": reconciles,
        "server_s": median(server_times),
        "server_samples": server_times,
        "beyond_server_s": median(latencies) - median(server_times),
        "idle_rss_mb": idle_rss,
        "idle_hwm_mb": idle_hwm,
        "after_edits_rss_mb": busy_rss,
        "peak_rss_mb": busy_hwm,
        "models_in_sync": in_sync,
        "models": len(status.get("models", [])),
    }


# ---------------------------------------------------------------------------------------
# Machine


def sh(command: str) -> str:
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001 — informational only
        return ""


def machine(workers: int) -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": sh("nproc"),
        "free": sh("free -h"),
        "cpu": cpu,
        "kernel": platform.release(),
        "mlflow": sh(f"{shlex.quote(PYTHON)} -c 'import mlflow; print(mlflow.__version__)'"),
        "python": sh(f"{shlex.quote(PYTHON)} --version"),
        "rustc": sh("rustc --version"),
        "workers": workers,
        "commit": sh(f"git -C {shlex.quote(ROOT)} rev-parse --short HEAD"),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every few seconds during the run."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(5):
            self.samples.append(os.getloadavg()[0])


# ---------------------------------------------------------------------------------------
# The run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="MLflow server workers (MLflow's default: 4)")
    parser.add_argument("--reps", type=int, default=31, help="repetitions of the floor and of mlreg plan")
    parser.add_argument("--edits", type=int, default=10, help="manifest edits timed under mlreg watch")
    parser.add_argument("--growth", default="2000,5000,10000,20000", help="registry sizes (versions) for the plan curve")
    parser.add_argument("--baseline-apply-models", type=int, help="apply only this many models with the script (extrapolated)")
    parser.add_argument("--baseline-tag-models", type=int, default=5, help="models applied by the script with audit tags")
    parser.add_argument(
        "--raw-limit",
        type=int,
        default=0,
        help="writes per raw run beside mlreg reconcile (0: all the writes mlreg makes)",
    )
    parser.add_argument("--raw-scan-limit", type=int, default=800, help="writes per run of the connection scan")
    parser.add_argument("--raw-single-limit", type=int, default=200, help="writes timed on one kept-alive connection (~20/s)")
    parser.add_argument("--mlreg", default=os.path.join(ROOT, "target", "release", "mlreg"))
    parser.add_argument("--out", help="write the Markdown report here (docs/benchmarks.md)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--command", default="", help="the command line to print in the report")
    args = parser.parse_args()

    started = time.perf_counter()
    load = LoadSampler()
    load.start()
    info = machine(args.workers)
    info["load_before"] = os.getloadavg()
    mlreg = Mlreg(args.mlreg)
    n, m = args.models, args.versions
    results: dict = {"machine": info, "models": n, "versions": m, "args": vars(args)}
    work = tempfile.mkdtemp(prefix="mlreg-bench.")
    servers: list[Server] = []
    try:
        # 1. Seed.
        log(f"starting the seed server ({args.workers} workers)")
        s1 = Server("seed", os.path.join(work, "s1"), args.workers).wait()
        servers.append(s1)
        results["server_startup_s"] = s1.startup_seconds
        desired = os.path.join(work, "desired")
        figures = seed.seed(s1.uri, 0, n, m)
        seed.write_manifests(desired, 0, n, m)
        results["seed"] = figures
        log(f"seeded {n} x {m} in {figures['seconds']:.1f} s ({figures['per_second']:.0f} requests/s)")

        labels = ["reconcile", "no-annotate", "raw"]
        for label in labels:
            copy_db(s1.db, os.path.join(work, label))
        copies = {label: Server(label, os.path.join(work, label), args.workers) for label in labels}
        servers.extend(copies.values())
        for server in copies.values():
            server.wait()

        # (a) floor and (b) mlreg plan, on the seeded registry.
        log("floor and mlreg plan, interleaved")
        results["floor"], plan = floor_and_plan(mlreg, s1.uri, desired, args.reps, concurrent=True)
        results["plan"] = {k: v for k, v in plan.items() if k not in ("output", "changes")}
        results["plan"]["changes"] = len(plan["changes"])
        plan_path = os.path.join(work, "plan.json")
        with open(plan_path, "w") as file:
            json.dump(plan["output"], file)
        transitions = sum(1 for c in plan["changes"] if c[2] is not None)
        log(
            f"  floor {results['floor']['seconds'] * 1000:.0f} ms; plan {plan['seconds'] * 1000:.0f} ms, "
            f"{plan['requests']} requests, {len(plan['changes'])} changes"
        )

        # (c) the Python baseline: plan, then plan + apply, on the seed server.
        log("Python baseline: plan")
        base_plan = run_baseline(s1.uri, desired, ["--plan-only"])
        base_changes = [
            (c["model"], c.get("version"), c.get("from"), c.get("to"), c.get("reason")) for c in base_plan["changes"]
        ]
        extra = []
        if args.baseline_apply_models:
            extra = ["--apply-models", str(args.baseline_apply_models)]
        log("Python baseline: plan + apply (one transition at a time)")
        base_apply = run_baseline(s1.uri, desired, extra)
        results["baseline"] = {
            "import_s": median([base_plan["import_seconds"], base_apply["import_seconds"]]),
            "plan_s": median([base_plan["plan_seconds"], base_apply["plan_seconds"]]),
            "plan_samples": [base_plan["plan_seconds"], base_apply["plan_seconds"]],
            "apply_s": base_apply["apply_seconds"],
            "applied": base_apply["applied"],
            "same_plan_as_mlreg": base_changes == plan["changes"],
            "changes": len(base_changes),
        }
        per = base_apply["apply_seconds"] / max(1, base_apply["applied"])
        results["baseline"]["per_transition_ms"] = per * 1000
        results["baseline"]["apply_full_s"] = per * transitions
        results["baseline"]["extrapolated"] = base_apply["applied"] < transitions
        if not results["baseline"]["extrapolated"]:
            after = mlreg.plan(s1.uri, desired)
            results["baseline"]["mlreg_plan_after"] = len(plan_changes(after["output"]))
        log(
            f"  plan {results['baseline']['plan_s']:.1f} s, apply {base_apply['apply_seconds']:.1f} s "
            f"for {base_apply['applied']} ({per * 1000:.0f} ms each); same plan as mlreg: "
            f"{results['baseline']['same_plan_as_mlreg']}"
        )

        # (c') the script with audit tags, on a sample (in full it would take twice as long
        # as the plain apply), on the copy kept for raw writes (writes cost the same
        # whatever state they find).
        raw_server = copies["raw"]
        if args.baseline_tag_models:
            log(f"Python baseline with audit tags on {args.baseline_tag_models} models")
            tagged = run_baseline(raw_server.uri, desired, ["--annotate", "--apply-models", str(args.baseline_tag_models)])
            per_tagged = tagged["apply_seconds"] / max(1, tagged["applied"])
            results["baseline"]["tagged_per_transition_ms"] = per_tagged * 1000
            results["baseline"]["tagged_applied"] = tagged["applied"]
            results["baseline"]["tagged_apply_full_s"] = per_tagged * transitions
            log(f"  {per_tagged * 1000:.0f} ms per transition with its tag")

        # (d) mlreg reconcile, annotated and not, each on its own fresh copy, (e) each
        # bracketed by the server's raw throughput for the same writes, measured just
        # before and just after, so that a shared machine's changing load hits both alike.
        results["raw"] = []

        def raw_run(tags: bool, connections: int, fresh: bool, when: str) -> None:
            if (connections, fresh) == (1, False):
                limit = args.raw_single_limit
            elif when == "scan":
                limit = args.raw_scan_limit
            else:
                limit = args.raw_limit or None
            models = raw_writes.writes_by_model(plan["output"], tags, limit)
            figures = raw_writes.replay(raw_server.uri, models, connections, fresh)
            figures.update(tags=tags, when=when)
            results["raw"].append(figures)
            log(
                f"raw writes ({'transition+tag' if tags else 'transition'}, {connections} conn, "
                f"{'new connection per request' if fresh else 'keep-alive'}): {figures['per_second']:.0f}/s "
                f"({figures['writes']} writes, {figures['errors']} errors)"
            )

        for label, tags, flags in (("reconcile", True, []), ("no-annotate", False, ["--no-annotate"])):
            raw_run(tags, 8, False, "before")
            raw_run(tags, 8, True, "before")
            log(f"mlreg reconcile {' '.join(flags)}")
            server = copies[label]
            run = mlreg.run(server.uri, ["reconcile", "--dir", desired, "--output", "json", *flags])
            outcome = run["output"].get("result") or {}
            raw_run(tags, 8, True, "after")
            raw_run(tags, 8, False, "after")
            after = mlreg.plan(server.uri, desired)
            results[label] = {
                "seconds": run["seconds"],
                "requests": run["requests"],
                "rss_mb": run["rss_mb"],
                "cpu_s": run["cpu_s"],
                "exit": run["exit"],
                "changes": len(plan_changes(run["output"])),
                "plan_after": len(plan_changes(after["output"])),
                "success": outcome.get("success"),
                "applied": outcome.get("applied"),
                "failed": outcome.get("failed"),
                "replanned": sum(1 for model in run["output"].get("models", []) if model.get("replanned")),
            }
            log(
                f"  {run['seconds']:.1f} s, {run['requests']} requests, {run['rss_mb']:.0f} MB; "
                f"applied {outcome.get('applied')}, failed {outcome.get('failed')}; "
                f"plan afterwards: {results[label]['plan_after']} changes"
            )
        # How the server's write throughput depends on the number of connections.
        raw_run(False, 1, False, "scan")
        for connections in (1, 2, 4):
            raw_run(False, connections, True, "scan")

        # (f) mlreg watch on the reconciled (annotated) registry.
        log("mlreg watch")
        watch_dir = os.path.join(work, "watch-desired")
        shutil.copytree(desired, watch_dir)
        results["watch"] = measure_watch(mlreg, copies["reconcile"], watch_dir, m, min(args.edits, n // 2), True)
        log(
            f"  save -> converged {results['watch']['latency_s'] * 1000:.0f} ms (server {results['watch']['server_s'] * 1000:.0f} ms), "
            f"idle RSS {results['watch']['idle_rss_mb']:.1f} MB"
        )

        # (g) plan time as the registry grows, on the --no-annotate copy (converged).
        growth_server = copies["no-annotate"]
        growth_dir = os.path.join(work, "growth-desired")
        shutil.copytree(desired, growth_dir)
        results["growth"] = []
        current = n
        for size in [int(s) for s in args.growth.split(",") if s.strip()]:
            wanted = max(n, size // m)
            if wanted > current:
                grow.clone(growth_server.db, n, current, wanted)
                seed.write_manifests(growth_dir, current, wanted - current, m)
                current = wanted
            reps = max(3, min(args.reps, 5 if size >= 10_000 else 15))
            floor, run = floor_and_plan(mlreg, growth_server.uri, growth_dir, reps)
            results["growth"].append(
                {
                    "models": current,
                    "versions": floor["versions"],
                    "floor_s": floor["seconds"],
                    "plan_s": run["seconds"],
                    "requests": run["requests"],
                    "rss_mb": run["rss_mb"],
                    "changes": len(run["changes"]),
                }
            )
            log(
                f"growth {floor['versions']} versions: floor {floor['seconds'] * 1000:.0f} ms, "
                f"plan {run['seconds'] * 1000:.0f} ms, {run['requests']} requests, {run['rss_mb']:.0f} MB"
            )
    finally:
        for server in servers:
            server.stop()
        load.stopped.set()
        shutil.rmtree(work, ignore_errors=True)

    info["load_after"] = os.getloadavg()
    info["load_samples"] = load.samples
    results["wall_s"] = time.perf_counter() - started
    text = report(results, args)
    print(text)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2, default=str)
    if args.out:
        # Render before opening: opening for writing empties the file, and the document
        # keeps the analysis of the report it replaces.
        rendered = document(text, results, args)
        with open(args.out, "w") as file:
            file.write(rendered)
    return 0


# ---------------------------------------------------------------------------------------
# Report


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report(r: dict, args) -> str:
    n, m = r["models"], r["versions"]
    floor = r["floor"]["seconds"]
    plan = r["plan"]
    base = r["baseline"]
    raw = r["raw"]
    rows = []

    def raw_rate(tags: bool, connections: int, fresh: bool) -> float:
        """Mean rate of the matching raw runs (before and after mlreg's run)."""
        rates = [x["per_second"] for x in raw if x["tags"] == tags and x["connections"] == connections and x["fresh"] == fresh]
        return statistics.mean(rates) if rates else 0.0

    def best(tags: bool, connections: int) -> float:
        return max(raw_rate(tags, connections, False), raw_rate(tags, connections, True))

    transitions = base["changes"]
    def fastest(samples: list) -> str:
        return f" (fastest {ms(min(samples))})" if samples else ""

    rows.append(
        (
            "Floor: the two raw paged searches (fresh connection each, one page each)",
            ms(floor) + fastest(r["floor"].get("samples", [])),
            "",
            "",
        )
    )
    if r["floor"].get("concurrent_s"):
        rows.append(
            (
                "The same two searches sent at the same time, as mlreg sends them",
                ms(r["floor"]["concurrent_s"]) + fastest(r["floor"].get("concurrent_samples", [])),
                "",
                "",
            )
        )
    plan_ratio = plan["seconds"] / floor
    rows.append(
        (
            "`mlreg plan` (wall, process start to exit)",
            f"{ms(plan['seconds'])}{fastest(plan.get('samples', []))}; {plan['requests']} requests; peak RSS {plan['rss_mb']:.1f} MB; CPU {ms(plan['cpu_s'])}",
            "≤ 1.5× floor",
            f"{plan_ratio:.2f}× floor {verdict(plan_ratio <= 1.5)}"
            + (
                f" ({plan['seconds'] / r['floor']['concurrent_s']:.2f}× the searches sent at the same time)"
                if r["floor"].get("concurrent_s")
                else ""
            ),
        )
    )
    speedup_plan = base["plan_s"] / plan["seconds"]
    rows.append(
        (
            "Python script: plan (MlflowClient, per model get + search)",
            f"{base['plan_s']:.2f} s (+{base['import_s']:.1f} s `import mlflow`, not counted)",
            "mlreg ≥ 50× faster",
            f"mlreg {speedup_plan:.0f}× faster {verdict(speedup_plan >= 50)}"
            + (
                f" ({base['plan_s'] / min(plan['samples']):.0f}× for mlreg's fastest plan)"
                if plan.get("samples")
                else ""
            ),
        )
    )
    extrapolated = " (extrapolated)" if base["extrapolated"] else ""
    rows.append(
        (
            f"Python script: apply {transitions} transitions one by one",
            f"{base['apply_full_s']:.1f} s{extrapolated}; {base['per_transition_ms']:.0f} ms per transition",
            "",
            "same plan as mlreg, change for change: " + ("yes" if base["same_plan_as_mlreg"] else "**NO**")
            + (f"; `mlreg plan` afterwards: {base['mlreg_plan_after']} changes" if "mlreg_plan_after" in base else ""),
        )
    )
    if "tagged_per_transition_ms" in base:
        rows.append(
            (
                "Python script: apply with the audit tag per transition",
                f"{base['tagged_apply_full_s']:.1f} s (extrapolated from {base['tagged_applied']} transitions); "
                f"{base['tagged_per_transition_ms']:.0f} ms per transition",
                "",
                "",
            )
        )
    for tags, label in ((True, "transitions + audit tags"), (False, "transitions only")):
        keep = raw_rate(tags, 8, False)
        fresh = raw_rate(tags, 8, True)
        rows.append(
            (
                f"Server write throughput, {label}, 8 connections (mean of the runs before and after mlreg's)",
                f"**{max(keep, fresh):.0f} writes/s** (kept-alive connections {keep:.0f}/s, a new connection per request {fresh:.0f}/s)",
                "",
                "",
            )
        )
    scan = {c: raw_rate(False, c, True) for c in (1, 2, 4, 8)}
    rows.append(
        (
            "Server write throughput, transitions only, by connections (new connection per request)",
            ", ".join(f"{c}: {rate:.0f}/s" for c, rate in scan.items())
            + f"; 1 kept-alive connection: {raw_rate(False, 1, False):.0f}/s",
            "",
            "",
        )
    )
    for label, tags, script_s, script_label, expect in (
        ("reconcile", True, base.get("tagged_apply_full_s", base["apply_full_s"]) + base["plan_s"], "script with tags", 12),
        ("no-annotate", False, base["apply_full_s"] + base["plan_s"], "script", 25),
    ):
        run = r[label]
        writes = transitions * (2 if tags else 1)
        rate = best(tags, 8)
        server_s = writes / rate
        ratio = run["seconds"] / server_s
        if not tags and max(scan.values()) > rate:
            peak = max(scan, key=scan.get)
            note = f" (the server's best, {scan[peak]:.0f}/s at {peak} connections: {run['seconds'] / (writes / scan[peak]):.2f}×)"
        else:
            note = ""
        speedup = script_s / run["seconds"]
        name = "`mlreg reconcile`" if tags else "`mlreg reconcile --no-annotate`"
        rows.append(
            (
                f"{name}: {transitions} transitions{' + audit tags' if tags else ''} ({writes} writes)",
                f"{run['seconds']:.1f} s; {run['requests']} requests ({run['requests'] - writes} reads); "
                f"peak RSS {run['rss_mb']:.1f} MB; CPU {run['cpu_s']:.2f} s; plan afterwards: {run['plan_after']} changes",
                "≤ 1.3× server time for its writes",
                f"server needs {server_s:.1f} s at {rate:.0f}/s (8 conn) → {ratio:.2f}× {verdict(ratio <= 1.3)}{note}; "
                f"{speedup:.0f}× faster than the {script_label} (≈{expect}× expected)",
            )
        )
    w = r["watch"]
    beyond = w["beyond_server_s"]
    rows.append(
        (
            f"`mlreg watch`: manifest saved → registry converged and verified (median of {w['edits']} edits)",
            f"{ms(w['latency_s'])} (server's own time for the same requests {ms(w['server_s'])}; daemon reconcile {w['reconcile_ms']:.0f} ms)",
            "≤ 0.5 s beyond the server's time",
            f"{ms(beyond)} beyond {verdict(beyond <= 0.5)}",
        )
    )
    rows.append(
        (
            f"`mlreg watch`: idle RSS with {n * m} versions",
            f"{w['idle_rss_mb']:.1f} MB (after the edits {w['after_edits_rss_mb']:.1f} MB, peak {w['peak_rss_mb']:.1f} MB)",
            "< 20 MB",
            verdict(w["idle_rss_mb"] < 20),
        )
    )
    g = r["growth"]
    if g:
        def expected_requests(x):
            return max(1, -(-x["models"] // 1000)) + max(1, -(-x["versions"] // 10_000))

        rows.append(
            (
                "Requests per `mlreg plan` (model pages of 1000, version pages of 10 000)",
                "; ".join(f"{x['requests']} at {x['models']} models / {x['versions']} versions" for x in g),
                "2 + extra pages, whatever the number of models",
                verdict(all(x["requests"] == expected_requests(x) for x in g)),
            )
        )
    if len(g) >= 3:
        first, last = g[0], g[-1]
        xs = [x["versions"] for x in g]
        ys = [x["plan_s"] for x in g]
        slope, intercept = statistics.linear_regression(xs, ys)
        mean_y = statistics.mean(ys)
        ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys))
        ss_tot = sum((y - mean_y) ** 2 for y in ys) or 1e-12
        r2 = 1 - ss_res / ss_tot
        growth = (last["plan_s"] / first["plan_s"]) / (last["versions"] / first["versions"])
        floor_slope, _ = statistics.linear_regression(xs, [x["floor_s"] for x in g])
        rows.append(
            (
                f"`mlreg plan` from {first['versions']} to {last['versions']} versions",
                f"{ms(first['plan_s'])} → {ms(last['plan_s'])}; least-squares line {slope * 1e6:.0f} ms per 1000 versions "
                f"+ {intercept * 1000:.0f} ms, R² = {r2:.3f} (the server's two searches: {floor_slope * 1e6:.0f} ms per 1000); "
                f"time grew {growth:.2f}× as fast as the registry",
                "linear",
                verdict(r2 >= 0.98 and growth <= 1.5),
            )
        )

    lines = ["| Measurement | Result | Target | Verdict |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    if g:
        lines += [
            "",
            "Plan time as the registry grows (medians; the registry in sync with the manifests):",
            "",
            "| versions | models | floor (2 searches) | `mlreg plan` | plan / floor | requests | peak RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for x in g:
            lines.append(
                f"| {x['versions']} | {x['models']} | {ms(x['floor_s'])} | {ms(x['plan_s'])} | "
                f"{x['plan_s'] / x['floor_s']:.2f}× | {x['requests']} | {x['rss_mb']:.1f} MB |"
            )
    lines += [
        "",
        "Raw samples (seconds): floor " + ", ".join(f"{x:.3f}" for x in r["floor"]["samples"])
        + "; mlreg plan " + ", ".join(f"{x:.3f}" for x in plan["samples"])
        + "; watch save→converged " + ", ".join(f"{x:.3f}" for x in w["latency_samples"])
        + "; watch server time " + ", ".join(f"{x:.3f}" for x in w["server_samples"]) + ".",
    ]
    return "\n".join(lines)


ANALYSIS_BEGIN = "<!-- analysis: kept as is when bench/run.sh rewrites this file -->"
ANALYSIS_END = "<!-- end of analysis -->"


def kept_analysis(path: str) -> str:
    """The hand-written analysis of an existing report, which a rerun keeps."""
    try:
        with open(path) as file:
            text = file.read()
    except OSError:
        return ""
    if ANALYSIS_BEGIN in text and ANALYSIS_END in text:
        return text[text.index(ANALYSIS_BEGIN) + len(ANALYSIS_BEGIN) : text.index(ANALYSIS_END)].strip("\n")
    return ""


def document(table: str, r: dict, args) -> str:
    info = r["machine"]
    load = info.get("load_samples") or []
    load_text = (
        f"1-minute load average {info['load_before'][0]:.2f} at the start, {info['load_after'][0]:.2f} at the end, "
        f"median {median(load):.2f} (max {max(load):.2f}) during the run"
        if load
        else "load average not sampled"
    )
    analysis = kept_analysis(args.out) or "(No analysis written yet.)"
    return TEMPLATE.format(
        table=table,
        command=args.command or "bench/run.sh",
        models=r["models"],
        versions=r["versions"],
        total=r["models"] * r["versions"],
        nproc=info["nproc"],
        cpu=info["cpu"],
        free=info["free"],
        kernel=info["kernel"],
        mlflow=info["mlflow"],
        python=info["python"],
        rustc=info["rustc"],
        workers=info["workers"],
        commit=info["commit"],
        date=info["date"],
        load=load_text,
        wall=r["wall_s"] / 60,
        seed_s=r["seed"]["seconds"],
        seed_rate=r["seed"]["per_second"],
        startup=r["server_startup_s"],
        analysis_begin=ANALYSIS_BEGIN,
        analysis=analysis,
        analysis_end=ANALYSIS_END,
        reps=r["args"]["reps"],
    )


TEMPLATE = """# Benchmarks: mlreg against what teams use today

Generated by `{command}` on {date} (mlreg at commit {commit}); the whole run took
{wall:.1f} minutes. Every figure in the results tables comes from that one run; rerun it to
check. How each row is measured is under "Method"; what the figures mean, and why a target
is missed, under "Reading the results", which also cites other runs of the same day and
says so.

## Results: {models} models × {versions} versions ({total} versions)

{table}

Reproduce: `bench/run.sh` (this table; about 10 minutes plus the build), `bench/run.sh --quick`
(20 × 10 smoke run, 2–3 minutes, leaves docs/ alone), `bench/run.sh --models N --versions M`,
`bench/run.sh --preset large` (500 × 40; the script's apply is sampled on 50 models and
extrapolated). Every figure of a run is also written to `target/bench/results-<time>.json`.
A large shared registry (5000 × 20, 10 models managed: scoped reads, the daemon's memory, the
plan's growth to 100 000 versions) has its own run and page: `bench/run.sh --preset shared`,
[benchmarks-scale.md](benchmarks-scale.md). Webhook heal latency and what notifications
cost: `bench/run.sh --preset events`, [benchmarks-events.md](benchmarks-events.md). What
promotion gates cost a plan: `bench/run.sh --preset gates`,
[benchmarks-gates.md](benchmarks-gates.md).

## Machine

- {nproc} CPUs: {cpu}; Linux {kernel}.
- {load}. The machine is shared with other engineers' builds and integration tests (which
  start MLflow servers of their own), so single figures are noisy; the fast figures are
  medians of repeated runs.
- Memory (`free -h` at the start):

```
{free}
```

- MLflow {mlflow}: `mlflow server` (uvicorn) with **{workers} workers**, MLflow's default, a
  SQLite backend in a temporary directory, on loopback; {python}. mlreg built with {rustc},
  release profile.
- MLflow's job runner is off on the benchmark servers (`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`):
  its seven huey consumers poll the database, cost about half a CPU while idle, and have
  nothing to do with the registry.
- One server took {startup:.0f} s to start. Seeding through the REST API (8 threads) took
  {seed_s:.1f} s ({seed_rate:.0f} requests/s).

## Method

The registry (bench/seed.py): every model has a description, a tag, and versions 1..M with
`s3://bench/...` sources; version 1 starts in Production, version 2 in Staging, the rest in
None; aliases `champion` → M and `challenger` → M-1. Each manifest declares `Production: M`,
`Staging: M-1`, the same aliases, description and tag, and `retention.keepLatest: 2`: each
model needs M-2 transitions (2 promotions, 2 versions leaving a stage, M-6 retention
archives), 18 per model at M = 20. The seeded SQLite database is copied (SQLite backup API)
before anything is applied and a server is started on each copy, so every run that writes
starts from the same registry.

- **Floor**: `registered-models/search` then `model-versions/search`, with the largest pages
  MLflow allows (1000, 200 000) so each is one request, each on a new connection; wall time.
- **`mlreg plan`**: the release binary, `plan --output json`, timed from process start to exit
  (so manifest loading, planning and JSON rendering are included); requests from the JSON
  `stats`; peak RSS and CPU from `/usr/bin/time`. After one warm-up run, {reps} runs
  interleaved with {reps} floor measurements and {reps} of the two searches sent at the same
  time (floor, plan, both at once, floor, ...); medians, and the fastest of each. The
  server's answers are bimodal (a full garbage collection in a worker adds about 180 ms;
  see "Reading the results"), so a median of few samples can land in either mode.
- **Python script** (bench/baseline.py): `MlflowClient`, per manifest `get_registered_model` +
  `search_model_versions(f"name='{{name}}'")`, the same rules and order as mlreg (checked: its
  plan equals mlreg's, change for change), then `transition_model_version_stage(...,
  archive_existing_versions=False)` one at a time. Its plan time excludes `import mlflow`.
  With audit tags (`set_model_version_tag` after each transition) it runs on a sample of
  models and is extrapolated per transition; a full run would take twice as long as the
  plain one.
- **`mlreg reconcile`**: on a fresh copy, annotated; and `--no-annotate` on another copy.
  Wall time of the whole command (read, plan, per-model stale-plan re-read, writes,
  verification re-read). Afterwards `mlreg plan` must find nothing to do.
- **Server write throughput** (bench/raw_writes.py): the same writes (the transitions of
  mlreg's plan, each followed by its audit tag or not) replayed raw with `http.client`, each
  model's writes in order on one connection. From 8 connections just before and just after
  each `mlreg reconcile`, all the writes that reconcile makes (3600 annotated, 1800
  without), on kept-alive connections and with a new connection per request; the mean of
  before and after, in the faster mode, is "what the server allows". Then a scan: 1, 2 and
  4 connections (new connection per request, 800 writes each) and one kept-alive connection
  (200 writes).
- **`mlreg watch`**: started on the reconciled registry with `--interval 1h`; after `/readyz`
  and 3 s idle, RSS is read from `/proc`. Then, one model at a time (1 s apart), its manifest
  is saved in place with Production and Staging swapped, and the daemon's `/status` is polled
  every 10 ms until it reports the reconcile that this save triggered as finished
  (verification included), with the model in sync; the registry is then checked. Polling the
  daemon rather than MLflow leaves the server to the daemon. The server's own time is the
  same requests (the daemon's read of the registry, the model's re-read, two transitions with
  their tags, the verifying re-read) replayed back to back on other models.
- **Growth**: on the `--no-annotate` copy (in sync with the manifests), the seeded models
  are cloned row for row in the SQLite store (bench/grow.py; seeding 18 000 versions through
  the API would take minutes) to 2 000, 5 000, 10 000 and 20 000 versions, with their
  manifests; floor and `mlreg plan` at each size, interleaved (15 each below 10 000 versions,
  5 above).

## Reading the results

{analysis_begin}
{analysis}
{analysis_end}
"""


if __name__ == "__main__":
    sys.exit(main())
