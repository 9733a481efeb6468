"""A text run trained under mixed_bfloat16 (precision auto's choice on bf16 CPUs) exports to
TFLite and ONNX: the string step is cut off before the numeric network is rebuilt in float32."""

import numpy as np

from tfpilot.config import load_config
from tfpilot.export import export
from tfpilot.inference import load
from tfpilot.testing.text import make_text_corpus, write_text_table
from tfpilot.training import Trainer


def test_bf16_text_run_exports_and_answers_raw_strings(tmp_path):
    texts, labels = make_text_corpus(80)
    write_text_table(tmp_path / "r.csv", texts, labels)
    cfg = load_config({"data": {"dataset": str(tmp_path / "r.csv")}, "model": {"name": "ngram_mlp"},
                       "train": {"epochs": 1, "batch_size": 16, "precision": "mixed_bfloat16",
                                 "callbacks": {"tensorboard": False, "progress": "none"}},
                       "output": {"run_dir": str(tmp_path / "run")}})
    run = Trainer(cfg).fit().run_
    export(run.path, ["tflite", "onnx"])
    sample = ["a short review", texts[0], texts[1]]
    keras_probs = load(run.path).predict_proba(sample)
    for fmt in ("tflite", "onnx"):
        probs = load(run.path / "export" / fmt).predict_proba(sample)
        np.testing.assert_allclose(probs, keras_probs, atol=2e-2)
        assert (probs.argmax(1) == keras_probs.argmax(1)).all()
