"""A small prediction service that asks `mlreg resolve` what to serve.

At startup it runs `mlreg resolve MODEL --output json`, loads the URI it answers with
`mlflow.pyfunc.load_model`, and serves

    GET  /healthz   200 and what is loaded (URI, version, target, where it came from)
    POST /predict   {"inputs": [[feature, ...], ...]} -> {"predictions": [...]}

When the registry is unreachable, `mlreg resolve` still answers from the manifest, but a
`models:/` URI cannot be loaded without the registry: the service then loads the manifest's
`serving.localFallback` (a directory holding an MLflow model, e.g. one written by
`mlflow.sklearn.save_model`), which `mlreg resolve` reports in its JSON as `local_fallback`.

Usage (MLFLOW_TRACKING_URI names the registry for mlreg and MLflow alike):

    python serve.py MODEL [--dir desired-state] [--host 127.0.0.1] [--port 8080] [--mlreg mlreg]

The model is resolved once, at startup: a running service keeps serving the version it
loaded (the URI is pinned to the version number) until it is restarted, which is how a
deployment rolls out a new alias target. Standard library only, besides MLflow.
"""

import argparse
import json
import os
import subprocess
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# MLflow retries a failing registry for minutes by default; a service starting during an
# outage should give up quickly and serve the local copy instead. Set these to override.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

import mlflow.pyfunc  # noqa: E402  (after the retry settings, which MLflow reads at import)
import numpy  # noqa: E402  (installed with MLflow)

# `mlreg resolve` asks the registry with short timeouts and one retry; this bounds a hang.
RESOLVE_TIMEOUT_SECONDS = 60


def log(message):
    print(f"serve: {message}", file=sys.stderr, flush=True)


def resolve(mlreg, model, desired_state):
    """The JSON answer of `mlreg resolve MODEL`; its notes and warnings go to our stderr."""
    command = [mlreg, "resolve", model, "--output", "json", "--dir", desired_state]
    done = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=None,  # mlreg's warnings (registry unreachable) belong in the service log
        text=True,
        timeout=RESOLVE_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"serve: `{' '.join(command)}` failed (exit {done.returncode})")
    return json.loads(done.stdout)


def load(answer):
    """Loads what `answer` names, else its local fallback. Returns (model, description)."""
    uri = answer["uri"]
    local = answer.get("local_fallback")
    # Answered by the manifest with a registry URI: mlreg could not reach the registry, so
    # MLflow cannot either; the local copy is the one thing that can be loaded.
    registry_down = answer["answered_by"] == "manifest" and uri.startswith("models:/")
    if registry_down and local:
        log(f"the registry is unreachable; loading the local fallback {local} instead of {uri}")
        return mlflow.pyfunc.load_model(local), {"uri": local, "served_from": "local_fallback"}
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as error:  # noqa: BLE001  (any failure to load means: try the local copy)
        if not local or local == uri:
            raise
        log(f"cannot load {uri} ({error}); loading the local fallback {local}")
        return mlflow.pyfunc.load_model(local), {"uri": local, "served_from": "local_fallback"}
    served_from = "local_fallback" if answer["fallback"] == "local" else "registry"
    return model, {
        "uri": uri,
        "served_from": served_from,
        "version": answer["version"],
        "target": answer["target"],
    }


def handler(model, loaded):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                self.reply(HTTPStatus.OK, {"status": "ok", **loaded})
            else:
                self.reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self):
            if self.path != "/predict":
                self.reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                inputs = json.loads(self.rfile.read(length))["inputs"]
            except (ValueError, KeyError, TypeError) as error:
                self.reply(HTTPStatus.BAD_REQUEST, {"error": f"expected {{\"inputs\": [[...]]}}: {error}"})
                return
            try:
                predictions = model.predict(numpy.asarray(inputs, dtype=float))
            except Exception as error:  # noqa: BLE001  (the model's error, for the caller)
                self.reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(error)})
                return
            listed = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
            self.reply(HTTPStatus.OK, {"predictions": listed, "uri": loaded["uri"]})

        def log_message(self, format, *args):  # noqa: A002  (the base class's name)
            log(format % args)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the registered model")
    parser.add_argument("--dir", default="desired-state", help="the desired-state directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--mlreg", default=os.environ.get("MLREG", "mlreg"), help="the mlreg binary")
    args = parser.parse_args()

    answer = resolve(args.mlreg, args.model, args.dir)
    model, loaded = load(answer)
    server = ThreadingHTTPServer((args.host, args.port), handler(model, loaded))
    host, port = server.server_address[:2]
    # One line on stdout, so whoever started the service (a test, a supervisor) learns the port.
    print(f"serving {args.model} from {loaded['uri']} on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
