#!/usr/bin/env python3
"""Grows a seeded benchmark registry by copying its models' rows in MLflow's SQLite store.

Seeding 18 000 more versions through the REST API would take minutes on a small machine
(MLflow accepts on the order of 100-200 creations a second), so the plan-growth curve is
built by cloning the models seed.py created, row for row (registered model, versions,
model and version tags, aliases), under new names: exactly the rows the API would have
written, in their current state. The server keeps running; it caches nothing of the
registry, and the next search sees the new rows.

Usage: grow.py MLFLOW_DB --templates N --to MODELS --versions M [--manifests DIR]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

import seed


def clone(db_path: str, templates: int, start: int, stop: int) -> None:
    """Creates models start..stop-1, model j a copy of template j % templates."""
    connection = sqlite3.connect(db_path, timeout=60)
    try:
        with connection:
            for index in range(start, stop):
                new = seed.model_name(index)
                old = seed.model_name(index % templates)
                connection.execute(
                    "INSERT INTO registered_models (name, creation_time, last_updated_time, description, workspace) "
                    "SELECT ?, creation_time, last_updated_time, description, workspace "
                    "FROM registered_models WHERE name = ?",
                    (new, old),
                )
                connection.execute(
                    "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, "
                    "user_id, current_stage, source, run_id, status, status_message, run_link, storage_location, workspace) "
                    "SELECT ?, version, creation_time, last_updated_time, description, user_id, current_stage, "
                    "replace(source, ?, ?), run_id, status, status_message, run_link, "
                    "replace(storage_location, ?, ?), workspace FROM model_versions WHERE name = ?",
                    (new, old, new, old, new, old),
                )
                connection.execute(
                    'INSERT INTO registered_model_tags ("key", value, name, workspace) '
                    'SELECT "key", value, ?, workspace FROM registered_model_tags WHERE name = ?',
                    (new, old),
                )
                connection.execute(
                    'INSERT INTO model_version_tags ("key", value, name, version, workspace) '
                    'SELECT "key", value, ?, version, workspace FROM model_version_tags WHERE name = ?',
                    (new, old),
                )
                connection.execute(
                    "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
                    "SELECT alias, version, ?, workspace FROM registered_model_aliases WHERE name = ?",
                    (new, old),
                )
    finally:
        connection.close()


def count_models(db_path: str) -> int:
    connection = sqlite3.connect(db_path, timeout=60)
    try:
        return connection.execute("SELECT count(*) FROM registered_models").fetchone()[0]
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--templates", type=int, required=True)
    parser.add_argument("--to", type=int, required=True, help="total number of models wanted")
    parser.add_argument("--versions", type=int, required=True)
    parser.add_argument("--manifests")
    args = parser.parse_args()
    start = count_models(args.db)
    clone(args.db, args.templates, start, args.to)
    if args.manifests:
        seed.write_manifests(args.manifests, start, args.to - start, args.versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
