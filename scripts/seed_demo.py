"""Seeds an MLflow registry the way a team's training pipelines would have left it, for the
demo: the two example models of desired-state/ plus one model no manifest manages.

Versions are registered without a run, with `s3://` sources (MLflow accepts any non-local
URI). Stages are set the way people set them by hand, so `mlreg plan` has drift to show.
Run with the project's venv python and MLFLOW_TRACKING_URI set.
"""

import warnings

from mlflow import MlflowClient

warnings.filterwarnings("ignore", category=FutureWarning)  # stages are deprecated client-side

client = MlflowClient()


def seed(name, description, versions, stages, tags=None):
    if client.search_registered_models(filter_string=f"name = '{name}'"):
        print(f"seed: {name} exists, left as is")
        return
    client.create_registered_model(name, tags=tags or {}, description=description)
    for number in range(1, versions + 1):
        client.create_model_version(name, source=f"s3://models/{name}/{number}")
    for number, stage in stages.items():
        client.transition_model_version_stage(name, str(number), stage)
    print(f"seed: {name}: {versions} versions, stages {stages}")


# Version 1 served production until now; 2 was tried in Staging; 3-5 came from retraining.
seed(
    "bert_fake_review_detector",
    "BERT model for fake review detection",
    versions=5,
    stages={1: "Production", 2: "Staging"},
    tags={"framework": "pytorch"},
)
seed(
    "churn_classifier",
    "",
    versions=3,
    stages={1: "Production"},
)
# Not in any manifest: mlreg lists it as unmanaged and never touches it.
seed(
    "legacy_sentiment",
    "Old sentiment model kept for a batch job",
    versions=2,
    stages={2: "Production"},
)
