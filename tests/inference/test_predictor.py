import io

import numpy as np
import pytest
from PIL import Image

from tfpilot.inference import InputError, Predictor
from tfpilot.models import create_model
from tfpilot.spec import InputSpec


@pytest.fixture(scope="module")
def predictor():
    model = create_model("mlp", InputSpec.image(8, 8, 1), 3, hidden_units=[4])
    return Predictor(model, ["a", "b", "c"], InputSpec.image(8, 8, 1))


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_every_input_kind_gives_the_same_answer(predictor, tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(_png(img))
    ref = predictor.predict_proba(img)
    rgb = np.repeat(img[..., None], 3, -1)
    for variant in (img[..., None], img[None, ..., None], [img], str(tmp_path / "x.png"), tmp_path / "x.png",
                    _png(img), Image.fromarray(img), rgb, Image.fromarray(rgb),
                    rgb.astype(np.float32), np.clip(rgb - 0.4, 0, None), img.astype(np.float32)[None]):
        # float pixels in 0-255 (rounded, not truncated) and gray RGB are the same image as the uint8 gray one
        np.testing.assert_array_equal(predictor.prepare(variant), img[None, ..., None])
        got = predictor.predict_proba(variant)
        assert got.shape == (1, 3)
        np.testing.assert_allclose(got, ref, atol=1e-6)


def test_other_sizes_are_resized(predictor):
    big = np.random.default_rng(1).integers(0, 255, (5, 32, 24, 3), dtype=np.uint8)
    out = predictor.predict(big, top_k=2)
    assert len(out) == 5 and len(out[0]["top_k"]) == 2
    assert out[0]["label"] == out[0]["top_k"][0]["label"]
    assert abs(sum(t["score"] for t in predictor.predict(big[:1], top_k=3)[0]["top_k"]) - 1) < 1e-5


def test_undecodable_bytes_name_the_input_without_tensorflow_internals(predictor, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(InputError) as err:
        predictor.predict_proba([_png(np.zeros((8, 8), np.uint8)), str(bad)])
    assert str(err.value) == (f"{bad}: not a decodable image (Unknown image file format. One of JPEG, JPEG XL, "
                              "PNG, GIF, BMP, WebP required); give a JPEG, PNG, BMP or GIF file")
    with pytest.raises(InputError, match=r"^item 0: not a decodable image \(Input is empty\); give a JPEG"):
        predictor.predict_proba(b"")


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"garbage", "not a decodable image"),
        (np.zeros((1, 8, 8, 2), np.uint8), "1, 3 or 4 channels"),
        (np.full((8, 8), 0.5), "scaled to \\[0, 1\\]"),
        (np.full((8, 8), 300.0), "within \\[0, 255\\]"),
        ("/no/such/file.png", "is not a file"),
        ([], "no inputs"),
    ],
)
def test_bad_inputs_say_what_is_wrong(predictor, bad, message):
    with pytest.raises(InputError, match=message):
        predictor.predict_proba(bad)


def test_a_ready_uint8_batch_is_taken_as_it_is(predictor):
    batch = np.random.default_rng(2).integers(0, 255, (4, 8, 8, 1), dtype=np.uint8)
    np.testing.assert_array_equal(predictor.prepare(batch), batch)
    assert predictor.prepare(batch[1]).shape == (1, 8, 8, 1)
    # the same probabilities as the per-image path (a list of (H, W) arrays)
    np.testing.assert_allclose(predictor.predict_proba(batch), predictor.predict_proba(list(batch[..., 0])), atol=1e-6)


def _table_predictor(seen: list) -> Predictor:
    """A model of an image, a number and a category input, with category, binary and number heads."""
    from tfpilot.spec import FeatureSpec, TableSpec

    spec = TableSpec((FeatureSpec("photo", "image", shape=(4, 4, 1)), FeatureSpec("size (cm)", "number"),
                      FeatureSpec("colour", "category", classes=("red", "blue"))),
                     (FeatureSpec("kind", "category", classes=("ant", "bee", "cat")),
                      FeatureSpec("sold", "binary", classes=("no", "yes")), FeatureSpec("price", "number")))

    def runner(batch):
        seen.append(batch)
        n = len(batch["photo"])
        return {"kind": np.tile([0.1, 0.7, 0.2], (n, 1)), "sold": np.full(n, 0.9), "price": batch["size__cm_"] * 2}

    return Predictor(None, (), spec, runner=runner, batch_size=2)


def test_a_classifier_is_the_one_input_one_head_case(predictor):
    assert predictor.is_classifier and predictor.spec.input_keys == ["images"]
    assert predictor.spec.outputs[0].classes == ("a", "b", "c") and predictor.class_names == ["a", "b", "c"]
    img = np.zeros((8, 8), np.uint8)
    raw = predictor.predict_raw([img, img])
    assert list(raw) == ["label"]
    np.testing.assert_allclose(raw["label"], predictor.predict_proba([img, img]))
    assert predictor.format(raw, top_k=1) == predictor.predict([img, img], top_k=1)


def test_rows_are_checked_per_input_kind_and_every_head_answered():
    seen: list = []
    table = _table_predictor(seen)
    rows = [{"photo": np.full((8, 8), 255, np.uint8), "size (cm)": "1.5", "colour": "red"},
            {"photo": np.zeros((4, 4, 3)), "size__cm_": None, "colour": "green"},
            {"photo": np.zeros((4, 4), np.uint8), "size (cm)": 3, "colour": 2.0}]
    out = table.predict(rows, top_k=2)
    assert [len(b["photo"]) for b in seen] == [2, 1]  # batch_size rows per call
    assert seen[0]["photo"].shape == (2, 4, 4, 1) and seen[0]["photo"].dtype == np.uint8
    assert int(seen[0]["photo"][0].min()) == 255  # resized, still white
    assert np.isnan(seen[0]["size__cm_"][1]) and seen[1]["colour"].tolist() == ["2"]
    assert table.oov_ == {"colour": 2}  # "green" and "2" were unseen in training
    assert out[0]["kind"]["label"] == "bee" and [t["label"] for t in out[0]["kind"]["top_k"]] == ["bee", "cat"]
    assert out[0]["sold"]["label"] == "yes" and out[0]["sold"]["score"] == pytest.approx(0.9)
    assert out[0]["price"] == 3.0 and out[2]["price"] == 6.0
    frame = table.predict_frame(rows)
    assert list(frame.columns) == ["kind", "kind_score", "sold", "sold_score", "price"]


def test_an_image_column_gets_the_classifiers_checks_named_by_row_and_column():
    table = _table_predictor([])
    with pytest.raises(InputError, match=r"^row 2, column 'photo': the pixels look scaled to \[0, 1\]"):
        table.predict([{"photo": np.zeros((4, 4), np.uint8), "size (cm)": 1, "colour": "red"},
                       {"photo": np.full((4, 4), 0.5), "size (cm)": 1, "colour": "red"}])
    with pytest.raises(InputError, match=r"^row 1, column 'size \(cm\)': expected a number; got 'big'"):
        table.predict({"photo": np.zeros((4, 4), np.uint8), "size (cm)": "big", "colour": "red"})
    with pytest.raises(InputError, match=r"row 1 has no column 'colour'"):
        table.predict({"photo": np.zeros((4, 4), np.uint8), "size (cm)": 1})


def test_table_predictor_is_the_predictor_under_its_old_name():
    import tfpilot.inference

    with pytest.warns(DeprecationWarning, match="TablePredictor is now tfpilot.inference.Predictor"):
        assert tfpilot.inference.TablePredictor is Predictor
