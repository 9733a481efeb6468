"""Table models against single-input models and scikit-learn, on the same splits (issue 12).

Three tasks, in one invocation:

1. ``fashion``: fashion-9k, image + productDisplayName -> articleType + baseColour + gender +
   year (number), against an image-only and a text-only model of the same size (the same
   encoders and combiner, one input each) for articleType. Images at ``--image-size``.
2. ``petfinder``: petfinder-mini, every column incl. the free-text Description ->
   AdoptionSpeed (5 classes), against scikit-learn's ``HistGradientBoostingClassifier``
   on the non-text columns (categories ordinal-encoded and declared categorical).
3. ``auto_mpg``: UCI Auto MPG (the registered ``auto_mpg`` dataset), the 7 numeric/
   categorical columns -> mpg, against ``HistGradientBoostingRegressor`` and
   ``LinearRegression`` (origin one-hot); MAE for all three.

Every model of a task trains on the same rows: tfpilot's ``split.json`` members are the
splits the scikit-learn models fit (train) and are scored on (test); the scikit-learn
models use the train rows only, as tfpilot does (its val rows only stop training early).

Usage:
    TFPILOT_DATA_DIR=../shared/datasets nice python bench/multimodal.py [--tasks fashion petfinder auto_mpg]
        [--out DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

COMMON_TRAIN = {"callbacks": {"tensorboard": False, "progress": "none", "checkpoint": False,
                              "early_stopping": {"enabled": True, "patience": 4, "restore_best_weights": True}}}


def _train(cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import tfpilot

    run = tfpilot.train(cfg, report=False)
    return run, run.metrics


def _splits(run: Any) -> dict[str, list[int]]:
    return json.loads(run.file("split.json").read_text())["splits"]


# -- 1. fashion-9k -----------------------------------------------------------------------------
def fashion(out: Path, image_size: int, epochs: int) -> dict[str, Any]:
    import pandas as pd

    from tfpilot.data.paths import extract_archive, find_data_file

    archive = find_data_file(["fashion-9k.tar.gz"])
    root = extract_archive(archive) / "fashion-9k"
    frame = pd.read_csv(root / "fashion_9k.csv")
    targets = ["articleType", "baseColour", "gender", "year"]
    frame = frame.dropna(subset=targets).reset_index(drop=True)  # the same rows for every model
    frame["image"] = [str(root / p) for p in frame["image"]]
    table = out / "fashion_9k_clean.csv"
    frame[["image", "productDisplayName", *targets]].to_csv(table, index=False)
    encoders = {"image": {"name": "image", "type": "image", "encoder": {"model": "small_cnn"}},
                "text": {"name": "productDisplayName", "type": "text"}}
    model = {"name": "multitask", "params": {"hidden_units": [256], "dropout": 0.3}}
    data = {"dataset": str(table), "image_size": [image_size, image_size]}
    train = {**COMMON_TRAIN, "epochs": epochs, "batch_size": 64, "optimizer": {"learning_rate": 2e-3}}
    runs = {
        "multi-input, 4 heads": {"inputs": [encoders["image"], encoders["text"]], "outputs": [
            {"name": "articleType"}, {"name": "baseColour", "loss_weight": 0.2}, {"name": "gender", "loss_weight": 0.1},
            {"name": "year", "type": "number", "loss": "huber", "loss_weight": 0.1}]},
        "image only": {"inputs": [encoders["image"]], "outputs": [{"name": "articleType"}]},
        "text only": {"inputs": [encoders["text"]], "outputs": [{"name": "articleType"}]},
    }
    rows, splits = {}, []
    for name, features in runs.items():
        cfg = {"data": data, "features": features, "model": model, "train": train,
               "output": {"run_dir": str(out / f"fashion-{name.split(',')[0].replace(' ', '_')}"), "overwrite": True}}
        run, m = _train(cfg)
        splits.append(_splits(run))
        heads = m["test"]["heads"]
        rows[name] = {"articleType_accuracy": heads["articleType"]["accuracy"],
                      "articleType_val_accuracy": m["val"]["heads"]["articleType"]["accuracy"],
                      "articleType_macro_f1": heads["articleType"]["macro_f1"],
                      "other_heads": {h: _headline(v) for h, v in heads.items() if h != "articleType"},
                      "train_seconds": m["train_seconds"], "epochs": m["epochs_run"], "params": m["params"],
                      "precision": m["precision"], "run": str(run.path), "config": cfg}
    assert all(s == splits[0] for s in splits), "the three fashion models did not train on the same splits"
    multi = rows["multi-input, 4 heads"]["articleType_accuracy"]
    return {"rows": rows, "test_rows": len(splits[0]["test"]), "train_rows": len(splits[0]["train"]),
            "passed": multi > max(rows["image only"]["articleType_accuracy"], rows["text only"]["articleType_accuracy"])}


def _headline(head: dict[str, Any]) -> dict[str, float]:
    keys = ("mae", "rmse", "r2", "baseline_mae") if head.get("kind") == "number" else ("accuracy", "baseline_accuracy")
    return {k: round(float(head[k]), 4) for k in keys}


# -- 2. petfinder-mini -------------------------------------------------------------------------
def petfinder(out: Path, epochs: int) -> dict[str, Any]:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import OrdinalEncoder

    from tfpilot.data.paths import find_data_file

    table = find_data_file(["petfinder-mini.csv"])
    cfg = {"data": {"dataset": str(table)},
           "features": {"outputs": ["AdoptionSpeed"],
                        "inputs": None},
           "model": {"name": "multitask", "params": {"hidden_units": [128, 64], "dropout": 0.3}},
           "train": {**COMMON_TRAIN, "epochs": epochs, "batch_size": 128, "optimizer": {"learning_rate": 1e-3}},
           "output": {"run_dir": str(out / "petfinder"), "overwrite": True}}
    run, m = _train(cfg)
    head = m["test"]["heads"]["AdoptionSpeed"]
    splits = _splits(run)
    frame = pd.read_csv(table)
    y = frame["AdoptionSpeed"].to_numpy()
    x = frame.drop(columns=["AdoptionSpeed", "Description"])
    cats = [c for c in x.columns if x[c].dtype == object or str(x[c].dtype).startswith("str")]
    x[cats] = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(
        x.loc[splits["train"], cats]).transform(x[cats])
    tr, te = np.array(splits["train"]), np.array(splits["test"])
    t0 = time.perf_counter()
    hgb = HistGradientBoostingClassifier(categorical_features=[x.columns.get_loc(c) for c in cats], random_state=0)
    hgb.fit(x.iloc[tr], y[tr])
    seconds = time.perf_counter() - t0
    hgb_acc = float(np.mean(hgb.predict(x.iloc[te]) == y[te]))
    from sklearn.metrics import f1_score

    hgb_f1 = float(f1_score(y[te], hgb.predict(x.iloc[te]), average="macro"))
    schema = [c.strip() for c in (run.path / "schema.yaml").read_text().splitlines() if c.startswith("#   ")]
    return {"rows": {
        "tfpilot multitask (all columns incl. Description)": {
            "accuracy": head["accuracy"], "macro_f1": head["macro_f1"], "train_seconds": m["train_seconds"],
            "epochs": m["epochs_run"], "precision": m["precision"], "run": str(run.path), "config": cfg},
        "HistGradientBoostingClassifier (non-text columns)": {
            "accuracy": hgb_acc, "macro_f1": hgb_f1, "train_seconds": round(seconds, 3)}},
        "baseline_accuracy": head.get("baseline_accuracy"), "schema": schema,
        "test_rows": len(te), "train_rows": len(tr), "passed": head["accuracy"] > hgb_acc}


# -- 3. auto-mpg -------------------------------------------------------------------------------
def auto_mpg(out: Path, epochs: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from tfpilot.data.paths import find_data_file
    from tfpilot.data.table_builtin import read_auto_mpg

    columns = ["cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year", "origin"]
    cfg = {"data": {"dataset": "auto_mpg", "val_split": 0.2, "test_split": 0.2},
           "features": {"inputs": columns, "outputs": [{"name": "mpg", "loss": "mse"}]},
           "model": {"name": "multitask", "params": {"hidden_units": [64, 64], "dropout": 0.0}},
           "train": {**COMMON_TRAIN, "epochs": epochs, "batch_size": 32, "optimizer": {"learning_rate": 3e-3},
                     "precision": "float32",  # a 5k-parameter MLP: nothing to gain from bfloat16
                     "callbacks": {**COMMON_TRAIN["callbacks"],
                                   "early_stopping": {"enabled": True, "patience": 20, "restore_best_weights": True}}},
           "output": {"run_dir": str(out / "auto_mpg"), "overwrite": True}}
    run, m = _train(cfg)
    head = m["test"]["heads"]["mpg"]
    splits = _splits(run)
    frame = read_auto_mpg(find_data_file(["auto-mpg.data"]))
    tr, te = np.array(splits["train"]), np.array(splits["test"])
    x = frame[columns].copy()
    x["horsepower"] = x["horsepower"].fillna(x.loc[tr, "horsepower"].mean())  # the train mean, as tfpilot imputes
    onehot = x.join(x.pop("origin").str.get_dummies().astype(float))
    y = frame["mpg"].to_numpy()
    rows = {"tfpilot multitask": {"mae": head["mae"], "rmse": head["rmse"], "r2": head["r2"],
                                  "train_seconds": m["train_seconds"], "epochs": m["epochs_run"],
                                  "precision": m["precision"], "run": str(run.path), "config": cfg}}
    for name, est, data in (("HistGradientBoostingRegressor", HistGradientBoostingRegressor(random_state=0), onehot),
                            ("LinearRegression", LinearRegression(), onehot)):
        t0 = time.perf_counter()
        est.fit(data.iloc[tr], y[tr])
        seconds = time.perf_counter() - t0
        pred = est.predict(data.iloc[te])
        err = pred - y[te]
        from sklearn.metrics import r2_score

        rows[name] = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
                      "r2": float(r2_score(y[te], pred)), "train_seconds": round(seconds, 3)}
    best = min(v["mae"] for k, v in rows.items() if k != "tfpilot multitask")
    return {"rows": rows, "baseline_mae": head["baseline_mae"], "test_rows": len(te), "train_rows": len(tr),
            "best_baseline_mae": best, "passed": head["mae"] <= 1.1 * best}


def cpu_kind() -> str:
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return "unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("Model name")), "?")
    return f"{model}; avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'}; CPUs: {os.cpu_count()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["fashion", "petfinder", "auto_mpg"],
                        choices=["fashion", "petfinder", "auto_mpg"])
    parser.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--fashion-epochs", type=int, default=12)
    parser.add_argument("--petfinder-epochs", type=int, default=30)
    parser.add_argument("--mpg-epochs", type=int, default=300)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="tfpilot-multimodal-"))
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cpu": cpu_kind()}
    for task in args.tasks:
        t0 = time.perf_counter()
        if task == "fashion":
            results[task] = fashion(out, args.image_size, args.fashion_epochs)
        elif task == "petfinder":
            results[task] = petfinder(out, args.petfinder_epochs)
        else:
            results[task] = auto_mpg(out, args.mpg_epochs)
        results[task]["wall_seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({task: {k: v for k, v in results[task].items() if k != "rows"} |
                          {"rows": {n: {k: v for k, v in r.items() if k != "config"}
                                    for n, r in results[task]["rows"].items()}}}, indent=1, default=str), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
