"""Text in scripts written without spaces: detected from the data, tokenised by characters
inside the model, chosen with no flags through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.data.text import profile_texts
from tfpilot.testing.text import write_text_table

runner = CliRunner()

#: Characters that mark each class of the synthetic Chinese reviews, and neutral filler.
GOOD, BAD = "好棒赞美净爽", "差脏吵烂臭慢"
FILLER = "酒店房间服务前台早餐位置价格设施环境我们这次入住的感觉还是"


def chinese_reviews(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` headerless-CSV-ready reviews: class 1 holds three GOOD characters, class 0 three BAD,
    among filler; written without spaces, with Chinese punctuation."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        marks = GOOD if i % 2 else BAD
        chars = list(rng.choice(list(FILLER), size=14))
        for pos, c in zip(rng.choice(14, size=3, replace=False), rng.choice(list(marks), size=3)):
            chars[pos] = str(c)
        texts.append("".join(chars[:7]) + "，" + "".join(chars[7:]) + "！")
        labels.append(i % 2)
    return texts, labels


@pytest.mark.parametrize("texts, script, tokenize", [
    (["距离川沙公路较近，但是公交指示不对。", "商务大床房，房间很大，床有2M宽，整体感觉经济实惠不错!"], "Chinese", "chars"),
    (["部屋はとてもきれいでした。", "スタッフの対応が悪かったです"], "Japanese", "chars"),
    (["โรงแรมสะอาดมาก พนักงานบริการดี", "ห้องพักเล็กและสกปรก"], "Thai", "chars"),
    (["The room was clean and the staff were friendly.", "Noisy, dirty and far from the station"], "spaced",
     "words"),
])
def test_the_script_is_detected_from_the_texts(texts, script, tokenize):
    profile = profile_texts(texts)
    assert (profile.script, profile.tokenize) == (script, tokenize)
    assert profile.texts == 2 and profile.median_chars == np.median([len(t) for t in texts])


def test_a_few_english_brand_names_do_not_make_chinese_text_spaced():
    profile = profile_texts(["这款iPhone手机的屏幕很清楚", "华为Mate手机电池不错"])
    assert profile.script == "Chinese" and 0.5 < profile.unspaced_share < 1


def test_chars_mode_makes_a_token_of_each_character_and_keeps_latin_words():
    from tfpilot.models.text_layers import TextEncoder

    enc = TextEncoder(max_tokens=100, output_mode="multi_hot", ngrams=2, tokenize="chars", sparse=False)
    enc.adapt(np.array(["房间很大，Good hotel!", "房间很小"], dtype=object))
    vocab = enc.get_vocabulary()
    assert {"房", "间", "房 间", "good", "good hotel", "大 good"} <= set(vocab)
    assert "房间很大" not in vocab  # a words split would keep the run between punctuation whole
    restored = TextEncoder.from_config(enc.get_config())
    assert restored.tokenize_mode == "chars"
    with pytest.raises(Exception, match="tokenize must be one of words, chars"):
        TextEncoder(tokenize="bytes")


@pytest.fixture(scope="module")
def chinese_run(tmp_path_factory):
    """A headerless ``label,review`` CSV of Chinese reviews, trained with no model named."""
    tmp = tmp_path_factory.mktemp("cjk")
    texts, labels = chinese_reviews(240)
    data = write_text_table(tmp / "hotel.csv", texts, labels, text_column="review", label_column="label",
                            header=False)
    # write_text_table writes text,label; the file is label,review: swap the columns
    rows = [line.split(",", 1)[::-1] for line in data.read_text(encoding="utf-8").splitlines()]
    data.write_text("".join(f"{lab},{text}\n" for lab, text in rows), encoding="utf-8")
    run = tmp / "run"
    res = runner.invoke(app, ["train", "--dataset", str(data), "--run-dir", str(run), "--no-report", "--epochs", "4",
                              "--batch-size", "16", "--set", "train.callbacks.tensorboard=false",
                              "--set", "train.callbacks.backup=false", "--set", "train.callbacks.checkpoint=false"])
    assert res.exit_code == 0, res.output
    return run, res.output


def test_chinese_text_with_no_flags_trains_a_character_model_and_says_why(chinese_run):
    run, output = chinese_run
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert cfg["model"]["name"] == "ngram_mlp" and cfg["model"]["params"]["tokenize"] == "chars"
    assert "Chinese" in cfg["chosen"]["model.name"] and "character" in cfg["chosen"]["model.name"]
    assert cfg["train"]["optimizer"]["learning_rate"] == 0.02 and "train.optimizer.learning_rate" in cfg["chosen"]
    assert (cfg["train"]["epochs"], cfg["train"]["batch_size"]) == (4, 16)  # given: kept, not chosen
    assert not {"train.epochs", "train.batch_size"} & set(cfg["chosen"])
    assert "takes image input" not in output
    metrics = yaml.safe_load((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9  # each class has its own characters


def test_the_saved_chinese_model_predicts_raw_strings(chinese_run):
    import tfpilot

    run, _ = chinese_run
    predictor = tfpilot.load(run)
    labels = [p["label"] for p in predictor.predict(["房间干净，服务好，很棒！", "房间又脏又吵，服务差！"])]
    assert labels == ["1", "0"]
