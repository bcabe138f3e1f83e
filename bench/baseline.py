#!/usr/bin/env python3
"""The baseline: how teams reconcile an MLflow registry today, with MLflow's own client.

An honest, idiomatic script: for each manifest, ``get_registered_model`` and
``search_model_versions(f"name='{name}'")``; compute the plan with the same rules as mlreg
(DESIGN.md: stages exhaustive, aliases exhaustive, versions leaving a stage archived,
``retention.keepLatest`` among unassigned READY versions in None; the same order inside a
model); then apply it one change at a time with ``transition_model_version_stage(...,
archive_existing_versions=False)`` and, with ``--annotate``, the same ``mlreg.transition``
audit tag mlreg writes after each transition.

Prints one JSON document on stdout: the plan (every change), and the seconds spent importing
mlflow, planning (reading manifests and the registry, computing) and applying.

Usage: baseline.py URI DIR [--plan-only] [--annotate] [--apply-models K]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import sys
import time
import warnings

_started = time.perf_counter()
from mlflow import MlflowClient  # noqa: E402  (timed: importing mlflow is part of the cost)
import yaml  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - _started

DECLARABLE = ("Production", "Staging")
AUDIT_TAG = "mlreg.transition"


def load_manifests(directory: str) -> list[tuple[str, dict]]:
    """(file, document) for every RegisteredModel document under `directory`."""
    paths = sorted(
        glob.glob(os.path.join(directory, "**", "*.yaml"), recursive=True)
        + glob.glob(os.path.join(directory, "**", "*.yml"), recursive=True)
    )
    documents = []
    for path in paths:
        with open(path) as file:
            for document in yaml.safe_load_all(file):
                if document and document.get("kind") == "RegisteredModel":
                    documents.append((path, document))
    return documents


def _versions(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, list):
        return [int(v) for v in value]
    return [int(value)]


def plan_model(spec: dict, model, versions) -> list[dict]:
    """The changes for one model, in mlreg's order."""
    name = model.name
    by_number = {int(v.version): v for v in versions}
    changes = []
    if "description" in spec and spec["description"] != (model.description or ""):
        changes.append({"kind": "set_description", "model": name, "to": spec["description"]})
    for key, value in (spec.get("tags") or {}).items():
        if model.tags.get(key) != str(value):
            changes.append({"kind": "set_model_tag", "model": name, "key": key, "to": str(value)})

    stages = spec.get("stages")
    declared = {}
    if stages is not None:
        canonical = {s.lower(): s for s in DECLARABLE}
        for stage, value in stages.items():
            for number in _versions(value):
                declared[number] = canonical[stage.lower()]
        for stage in DECLARABLE:
            for number in sorted(n for n, s in declared.items() if s == stage):
                current = by_number[number].current_stage
                if current != stage:
                    changes.append(_transition(name, number, current, stage, "declared"))

    aliases = spec.get("aliases")
    current_aliases = {alias: int(v) for alias, v in (model.aliases or {}).items()}
    if aliases is not None:
        for alias, number in sorted(aliases.items()):
            if current_aliases.get(alias) != int(number):
                changes.append({"kind": "set_alias", "model": name, "alias": alias, "to": int(number)})
        for alias in sorted(current_aliases):
            if alias not in aliases:
                changes.append({"kind": "delete_alias", "model": name, "alias": alias})

    if stages is not None:
        for stage in DECLARABLE:
            for number in sorted(by_number):
                version = by_number[number]
                if (
                    version.current_stage == stage
                    and number not in declared
                    and version.status == "READY"
                ):
                    changes.append(_transition(name, number, stage, "Archived", "not_declared_in_stage"))

    retention = spec.get("retention")
    if retention is not None:
        referenced = set(declared)
        if aliases is not None:
            referenced |= {int(v) for v in aliases.values()}
        else:
            referenced |= set(current_aliases.values())
        unassigned = [
            number
            for number in sorted(by_number)
            if by_number[number].current_stage == "None"
            and by_number[number].status == "READY"
            and number not in referenced
        ]
        surplus = max(0, len(unassigned) - int(retention["keepLatest"]))
        for number in unassigned[:surplus]:
            changes.append(_transition(name, number, "None", "Archived", "retention"))
    return changes


def _transition(name: str, version: int, current: str, stage: str, reason: str) -> dict:
    return {
        "kind": "transition",
        "model": name,
        "version": version,
        "from": current,
        "to": stage,
        "reason": reason,
    }


def apply_change(client: MlflowClient, change: dict, manifest: str, annotate: bool) -> None:
    name = change["model"]
    kind = change["kind"]
    if kind == "transition":
        client.transition_model_version_stage(
            name, str(change["version"]), change["to"], archive_existing_versions=False
        )
        if annotate:
            record = {
                "from": change["from"],
                "to": change["to"],
                "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "manifest": manifest,
            }
            client.set_model_version_tag(name, str(change["version"]), AUDIT_TAG, json.dumps(record))
    elif kind == "set_alias":
        client.set_registered_model_alias(name, change["alias"], str(change["to"]))
    elif kind == "delete_alias":
        client.delete_registered_model_alias(name, change["alias"])
    elif kind == "set_description":
        client.update_registered_model(name, description=change["to"])
    elif kind == "set_model_tag":
        client.set_registered_model_tag(name, change["key"], change["to"])
    else:
        raise ValueError(kind)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("dir")
    parser.add_argument("--plan-only", action="store_true")
    parser.add_argument("--annotate", action="store_true", help="tag each transition like mlreg")
    parser.add_argument(
        "--apply-models", type=int, help="apply only the changes of the first K models (a sample)"
    )
    args = parser.parse_args()
    # Stages are deprecated in the client since 2.9; one FutureWarning per call would only
    # slow the script down and flood the terminal.
    warnings.filterwarnings("ignore")

    started = time.perf_counter()
    client = MlflowClient(tracking_uri=args.uri, registry_uri=args.uri)
    plan = []  # (manifest, model, changes)
    for path, document in load_manifests(args.dir):
        name = document["metadata"]["name"]
        spec = document.get("spec") or {}
        model = client.get_registered_model(name)
        versions = client.search_model_versions(f"name='{name}'")
        plan.append((path, name, plan_model(spec, model, versions)))
    plan_seconds = time.perf_counter() - started

    applied = 0
    apply_seconds = 0.0
    if not args.plan_only:
        selected = plan if args.apply_models is None else plan[: args.apply_models]
        started = time.perf_counter()
        for path, _name, changes in selected:
            for change in changes:
                apply_change(client, change, path, args.annotate)
                applied += 1
        apply_seconds = time.perf_counter() - started

    json.dump(
        {
            "import_seconds": IMPORT_SECONDS,
            "plan_seconds": plan_seconds,
            "apply_seconds": apply_seconds,
            "applied": applied,
            "annotate": args.annotate,
            "changes": [change for _path, _name, changes in plan for change in changes],
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
