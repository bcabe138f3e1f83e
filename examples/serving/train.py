"""Trains a tiny scikit-learn model (y = SLOPE * x) and registers it, as a training
pipeline would: `mlflow.sklearn.log_model(..., registered_model_name=MODEL)` logs an MLflow 3
logged model (source `models:/m-...`) and registers it as a new version of MODEL.

    python train.py MODEL --slope 2            # register a new version
    python train.py MODEL --slope 10 --save D  # write the local fallback copy to D instead

Prints one JSON line: the version (or the directory) and the predictions for PROBE, so a
caller can tell which model a service serves. MLFLOW_TRACKING_URI names the registry.
"""

import argparse
import json

import mlflow
import mlflow.sklearn
import numpy
from sklearn.linear_model import LinearRegression

# The inputs every caller predicts on, to compare models.
PROBE = [[1.0], [2.0], [3.0]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the registered model")
    parser.add_argument("--slope", type=float, required=True)
    parser.add_argument("--save", metavar="DIR", help="save the model to DIR; register nothing")
    args = parser.parse_args()

    x = numpy.arange(10, dtype=float).reshape(-1, 1)
    model = LinearRegression().fit(x, args.slope * x.ravel())
    predictions = model.predict(numpy.asarray(PROBE)).tolist()

    if args.save:
        mlflow.sklearn.save_model(model, args.save)
        print(json.dumps({"path": args.save, "predictions": predictions}))
        return
    with mlflow.start_run():
        mlflow.log_param("slope", args.slope)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=args.model)
    print(
        json.dumps(
            {
                "version": int(info.registered_model_version),
                "source": info.model_uri,
                "predictions": predictions,
            }
        )
    )


if __name__ == "__main__":
    main()
