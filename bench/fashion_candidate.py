"""One neural leaderboard candidate on fashion-9k image + productDisplayName -> articleType, with a
chosen text encoder (char_wb 1-5 tf-idf, no hidden layer) and ``input_scale``; prints the
validation accuracy only (the recipe choices of docs/bench/mm.md are made on it).

Usage:
    TFPILOT_DATA_DIR=/work/shared/datasets nice -n 5 python bench/fashion_candidate.py NAME MODEL SCALE ['{json}']

``MODEL`` is ``multitask`` (the leaderboard's 128-64, dropout 0.1) or ``linear``; the JSON may hold
``params`` (more model params, e.g. ``{"input_dropout": 0.2}``), ``image_model`` (the image
encoder, e.g. ``mini_resnet``), ``text_only`` (true: no image input) and any ``train`` keys. The
recipe is the leaderboard candidate's: 40 epochs at most, batch 256, early stopping (patience 5).
"""

from __future__ import annotations

import json
import sys
import time

import tfpilot


def main() -> None:
    name, model, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    params = {"vocab_size": 50000, "output_mode": "tf_idf", "sublinear_tf": True, "normalize": True,
              "hidden_units": [], "ngrams": 5, "tokenize": "char_wb"}
    if scale != 1:
        params["input_scale"] = scale
    model_params = {"hidden_units": [128, 64], "dropout": 0.1} if model == "multitask" else {}
    model_params.update(extra.pop("params", {}))
    inputs: list[dict] = [{"name": "productDisplayName", "encoder": {"model": "ngram_mlp", "params": params}}]
    image_model = extra.pop("image_model", None)
    if not extra.pop("text_only", False):
        image = {"name": "image", "type": "image"}
        inputs.insert(0, {**image, "encoder": {"model": image_model}} if image_model else image)
    cfg = {"data": {"dataset": "fashion_9k"}, "features": {"inputs": inputs, "outputs": ["articleType"]},
           "model": {"name": model, "params": model_params},
           "train": {"epochs": 40, "batch_size": 256,
                     "callbacks": {"progress": "none", "early_stopping": {"patience": 5}}, **extra},
           "output": {"run_dir": f"/tmp/fashion_candidate/{name}", "overwrite": True}}
    started = time.time()
    run = tfpilot.train(cfg, report=False)
    m = run.metrics
    print(name, "val", m["val"]["heads"]["articleType"]["accuracy"], "epochs", m["epochs_run"],
          "train_s", m["train_seconds"], "wall", round(time.time() - started), flush=True)


if __name__ == "__main__":
    main()
