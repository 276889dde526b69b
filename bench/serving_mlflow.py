"""mlflow side of bench/serving.py: save the benchmark's LightGBM model in MLflow's
format (``mlflow.lightgbm.save_model``) for ``mlflow models serve``. Runs in
bench/.venv-mlflow:

    .venv-mlflow/bin/python serving_mlflow.py MODEL_TXT OUT_DIR
"""

from __future__ import annotations

import sys

import lightgbm as lgb
import mlflow.lightgbm

if __name__ == "__main__":
    booster = lgb.Booster(model_file=sys.argv[1])
    mlflow.lightgbm.save_model(booster, sys.argv[2])
    print(sys.argv[2])
