"""Two-stage transfer learning through the Trainer: stage 2 unfreezes exactly what was asked."""

import keras
import pytest

from tfpilot.config import load_config
from tfpilot.models import create_model
from tfpilot.models.finetune import find_backbone
from tfpilot.models.transfer import save_backbone_weights
from tfpilot.spec import InputSpec
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer

PARAMS = {"alpha": 0.35, "image_size": 32, "dropout": 0.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    folder = make_image_folder(root / "shapes", per_class=8, size=32)
    donor = create_model("mobilenet_v2", InputSpec.image(32, 32, 3), 3, weights="none", **PARAMS)
    weights = save_backbone_weights(donor, root / "backbone.weights.h5")
    return folder, weights, root


@pytest.mark.parametrize("how", [
    # top-N through the trainer is slow; tests/models/test_transfer.py covers unfreeze(layers=N) itself
    pytest.param({"unfreeze_layers": 6}, marks=pytest.mark.slow),
    {"from_layer": "block_16_project", "unfreeze_layers": None},
])
def test_stage_two_unfreezes_exactly_the_requested_layers(setup, how):
    folder, weights, root = setup
    name = "n" if "from_layer" not in how or how["from_layer"] is None else "from"
    tree = tiny_config(folder, root / f"run-{name}-{how.get('unfreeze_layers')}", epochs=1, batch_size=8)
    tree["model"] = {"name": "mobilenet_v2", "params": {**PARAMS, "weights": str(weights)}}
    tree["train"]["fine_tune"] = {"enabled": True, "epochs": 1, **how}
    trainer = Trainer(load_config(tree)).fit()

    backbone = find_backbone(trainer.model_)
    trainable = [layer.name for layer in backbone.layers if layer.trainable and layer.trainable_weights]
    assert trainable == trainer.unfrozen_ and trainable
    assert not any(isinstance(layer, keras.layers.BatchNormalization) and layer.trainable for layer in backbone.layers)
    children = [layer.name for layer in backbone.layers]
    if "from_layer" in how and how["from_layer"]:
        start = children.index(how["from_layer"])
        assert all(children.index(n) >= start for n in trainable)
        assert "block_16_project" in trainable
    else:
        top = children[-6:]
        assert set(trainable) <= set(top)
    # two stages in one run: epochs 0 (head) and 1 (fine-tuning), with a 10x lower LR in stage 2
    rows = trainer.run_.history
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert rows[1]["learning_rate"] == pytest.approx(rows[0]["learning_rate"] * 0.1, rel=1e-3)


class _TrainableAtStageStart(keras.callbacks.Callback):
    """Records the ids of the model's trainable weights as each stage's fit begins."""

    def __init__(self):
        super().__init__()
        self.stages = []

    def on_train_begin(self, logs=None):
        self.stages.append({id(w) for w in self.model.trainable_weights})


def test_stage_two_unfreezes_the_top_of_every_transfer_encoder_of_a_table_model(setup):
    import csv

    from tfpilot.models.finetune import find_backbones
    from tfpilot.testing.table import make_table

    _, weights, root = setup
    (root / "table").mkdir()
    table = make_table(root / "table", rows=30, size=16)
    rows = list(csv.DictReader(table.open()))
    with table.open("w", newline="") as f:  # a second image column: the same pictures as "scan"
        writer = csv.DictWriter(f, [*rows[0], "scan"])
        writer.writeheader()
        writer.writerows({**r, "scan": r["photo"]} for r in rows)
    encoder = {"model": "mobilenet_v2", "params": {**PARAMS, "weights": str(weights)}}
    cfg = load_config({
        "data": {"dataset": str(table)},
        "features": {"inputs": [{"name": "photo", "encoder": encoder}, {"name": "scan", "encoder": encoder}, "size"],
                     "outputs": ["kind", "price"]},
        "model": {"name": "multitask", "params": {"hidden_units": [16]}},
        "train": {"epochs": 1, "batch_size": 8, "precision": "float32",
                  "fine_tune": {"enabled": True, "epochs": 1, "from_layer": "block_16_project",
                                "unfreeze_layers": None},
                  "callbacks": {"tensorboard": False, "progress": "none", "backup": False, "checkpoint": False}},
        "output": {"run_dir": str(root / "table-run")},
    })
    seen = _TrainableAtStageStart()
    trainer = Trainer(cfg, callbacks=[seen]).fit()

    backbones = find_backbones(trainer.model_)
    assert list(backbones) == ["photo_encoder", "scan_encoder"]
    every = {id(w) for b in backbones.values() for w in b.weights}
    opened = {}
    for owner, backbone in backbones.items():
        names = [layer.name for layer in backbone.layers]
        top = [layer for layer in backbone.layers[names.index("block_16_project"):]
               if not isinstance(layer, keras.layers.BatchNormalization)]
        opened[owner] = {id(w) for layer in top for w in layer.trainable_weights}
        assert opened[owner]
    stage1, stage2 = seen.stages
    assert not stage1 & every  # stage 1: every backbone frozen, the rest trains
    assert stage2 & every == opened["photo_encoder"] | opened["scan_encoder"]  # stage 2: the top of each
    assert stage2 - every == stage1
    assert len(trainer.unfrozen_) == 2 * len(set(trainer.unfrozen_))


def test_fine_tuning_a_table_model_without_a_transfer_encoder_names_its_inputs():
    from tfpilot.config import ConfigError

    tree = {"features": {"inputs": ["photo", "size"], "outputs": ["kind"]}, "train": {"fine_tune": {"enabled": True}}}
    with pytest.raises(ConfigError, match=r"no input of the table model \(photo, size\) has a transfer-learning enc"):
        load_config(tree)
    scratch = {"model": "mobilenet_v2", "params": {"weights": "none"}}
    tree["features"]["inputs"][0] = {"name": "photo", "encoder": scratch}
    with pytest.raises(ConfigError, match=r"features.inputs\[photo\].encoder.params.weights=none"):
        load_config(tree)
