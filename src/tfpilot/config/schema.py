"""The typed configuration schema: the single source of truth for a run.

Every section forbids unknown keys, so a typo fails before any work starts. A resolved
:class:`Config` is saved as ``config.yaml`` in every run directory; ``tfpilot train
RUN/config.yaml`` reproduces the run from it alone.

Example:
    >>> from tfpilot.config import Config
    >>> cfg = Config.model_validate({"data": {"dataset": "digits"}, "train": {"epochs": 2}})
    >>> cfg.model.name, cfg.train.epochs
    ('mnist_cnn', 2)
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tfpilot.registry import MODELS, OPTIMIZERS, SCHEDULES, check_params


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, assignments re-validate."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(Section):
    """Training-time augmentation (Keras preprocessing layers in the tf.data pipeline).

    Applied to the training split only, never to validation/test data or the saved model.
    """

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "none"
    rotation: float = Field(0.0, ge=0, le=1, description="Max rotation as a fraction of a full turn.")
    zoom: float = Field(0.0, ge=0, lt=1, description="Max zoom in/out as a fraction of the size.")
    translation: float = Field(0.0, ge=0, lt=1, description="Max shift as a fraction of the size.")
    contrast: float = Field(0.0, ge=0, lt=1)
    brightness: float = Field(0.0, ge=0, lt=1)
    randaugment: bool = Field(False, description="Keras' RandAugment (RGB images).")
    mixup: float = Field(0.0, ge=0, description="MixUp alpha (0: off); labels become soft.")
    cutmix: float = Field(0.0, ge=0, description="CutMix alpha (0: off); labels become soft.")

    @property
    def enabled(self) -> bool:
        return (self.flip != "none" or self.randaugment or
                any(v > 0 for v in (self.rotation, self.zoom, self.translation, self.contrast,
                                    self.brightness, self.mixup, self.cutmix)))

    @property
    def mixes_labels(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0


class DataConfig(Section):
    """Where the data comes from and how it is split and fed."""

    dataset: str = Field(
        "mnist",
        description="A registered dataset name (`tfpilot datasets`), an image folder, "
        "an archive (.tar.gz/.zip) of one, or a CSV of path,label.",
    )
    data_dir: Path | None = Field(None, description="Looked in first for dataset files.")
    image_size: tuple[int, int] | None = Field(
        None, description="(height, width) images are resized to; default: the dataset's size."
    )
    color_mode: Literal["auto", "grayscale", "rgb"] = "auto"
    val_split: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Fraction held out for validation; default 0.1 of train, or 0.2 of all "
        "data when the source has no test split (70/20/10).",
    )
    test_split: float = Field(
        0.1, ge=0.0, lt=1.0, description="Fraction held out for test when there is no test split."
    )
    split_seed: int = 42
    train_limit: int | None = Field(None, gt=0, description="Use at most this many train examples.")
    test_limit: int | None = Field(None, gt=0, description="Use at most this many test examples.")
    cache: Literal["auto", "memory", "none"] = "auto"
    cache_max_gb: float = Field(4.0, gt=0, description="`auto` caches decoded data up to this size.")
    shuffle_buffer: int = Field(60_000, gt=0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    balanced_sampling: bool = Field(
        False, description="Draw training batches with every class equally likely (oversampling rare ones)."
    )
    text_column: str | int | None = Field(
        None,
        description="Text tables (CSV/TSV/JSONL): the column with the text, by name or 0-based index; "
        "default: the first of text, review, sentence, ... (without a header: the longest column).",
    )
    label_column: str | int | None = Field(
        None,
        description="Text tables: the column with the label; default: the first of label, sentiment, "
        "category, ... (without a header: the other column).",
    )
    header: bool | None = Field(None, description="CSV/TSV: does the first row name the columns? Default: guessed.")
    text_format: Literal["auto", "csv", "tsv", "jsonl", "json"] = Field(
        "auto", description="Text tables: the file format; auto = from the extension, else sniffed from the content."
    )

    @model_validator(mode="after")
    def _check_fractions(self) -> DataConfig:
        if (self.val_split or 0.0) + self.test_split >= 1.0:
            raise ValueError(
                f"val_split ({self.val_split}) + test_split ({self.test_split}) must leave some "
                "data for training (sum < 1)"
            )
        return self

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] <= 0 or v[1] <= 0):
            raise ValueError(f"image_size must be two positive integers (height, width), got {v}")
        return v


class ModelConfig(Section):
    """Which registered model to build, and its keyword arguments."""

    name: str = Field("mnist_cnn", description="A registered model (`tfpilot models`).")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the model builder.")

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        MODELS.entry(v)  # raises with a did-you-mean message
        return v

    @model_validator(mode="after")
    def _known_params(self) -> ModelConfig:
        check_params(MODELS, self.name, self.params, skip=("input_spec", "num_classes"))
        return self


class OptimizerConfig(Section):
    name: str = "adam"
    learning_rate: float | Literal["auto"] = Field(
        1e-3, description="A positive number, or auto: run the LR range test (`tfpilot lr-find`) first."
    )
    weight_decay: float | None = Field(None, ge=0)
    momentum: float | None = Field(
        None, ge=0, lt=1, description="SGD (default 0.9) and RMSprop (default 0.0) only."
    )
    nesterov: bool = False
    clipnorm: float | None = Field(None, gt=0)
    clipvalue: float | None = Field(None, gt=0)
    gradient_accumulation_steps: int | None = Field(
        None, ge=2, description="Apply the summed gradients every N batches (a N-times larger effective batch)."
    )
    ema: bool = Field(False, description="Keep an exponential moving average of the weights; evaluate/save it.")
    ema_momentum: float = Field(0.99, gt=0, lt=1)

    @field_validator("learning_rate")
    @classmethod
    def _positive_lr(cls, v: float | str) -> float | str:
        if not isinstance(v, str) and v <= 0:
            raise ValueError(f"learning_rate must be > 0 or 'auto', got {v}")
        return v

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        OPTIMIZERS.entry(v)
        return v


class ScheduleConfig(Section):
    name: str = "constant"
    warmup_epochs: float = Field(0.0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Final LR as a fraction of the peak.")
    decay_rate: float = Field(0.96, gt=0, le=1, description="exponential: factor per epoch.")
    step_epochs: int = Field(10, gt=0, description="step: epochs between drops.")
    step_factor: float = Field(0.5, gt=0, le=1, description="step: factor per drop.")
    cycle_epochs: float = Field(1.0, gt=0, description="cosine_restarts: length of the first cycle.")
    cycle_mult: float = Field(2.0, ge=1, description="cosine_restarts: each cycle is this much longer.")
    peak_mult: float = Field(0.5, gt=0, le=1, description="cosine_restarts: each cycle's peak LR factor.")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        SCHEDULES.entry(v)
        return v


class EarlyStoppingConfig(Section):
    enabled: bool = True
    monitor: str = "val_loss"
    patience: int = Field(5, ge=0)
    restore_best_weights: bool = True


class ReduceLRConfig(Section):
    enabled: bool = False
    monitor: str = "val_loss"
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(2, ge=0)
    min_lr: float = Field(1e-6, ge=0)


class CallbacksConfig(Section):
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    reduce_lr_on_plateau: ReduceLRConfig = Field(default_factory=ReduceLRConfig)
    checkpoint: bool = Field(True, description="Keep the best model (by val_accuracy) in checkpoints/.")
    backup: bool = Field(True, description="BackupAndRestore: resume after a crash.")
    csv_logger: bool = True
    tensorboard: bool = True
    terminate_on_nan: bool = True
    progress: Literal["rich", "keras", "none"] = "rich"


class RegularizationConfig(Section):
    """Weight penalties added to every Dense/Conv kernel of the model."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


class FineTuneConfig(Section):
    """Stage 2 of transfer learning: unfreeze part of the backbone and train on at a lower LR.

    Stage 1 (``train.epochs``) trains the new head with the backbone frozen; BatchNorm
    layers stay in inference mode in both stages.
    """

    enabled: bool = False
    epochs: int = Field(5, gt=0, description="Extra epochs of stage 2.")
    unfreeze_layers: int | None = Field(20, gt=0, description="Unfreeze the top N backbone layers ...")
    from_layer: str | None = Field(None, description="... or every backbone layer from this one on.")
    learning_rate_factor: float = Field(0.1, gt=0, le=1, description="Stage-2 LR = stage-1 LR x this.")


class TrainConfig(Section):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    label_mode: Literal["auto", "sparse", "one_hot"] = Field(
        "auto", description="Label encoding fed to the loss; auto = sparse integer labels."
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "auto"
    jit_compile: Literal["auto"] | bool = Field(
        "auto", description="XLA compilation of the train step: auto (Keras' choice), true or false."
    )
    seed: int = 42
    deterministic: bool = False
    top_k: int = Field(5, gt=0, description="k of the top-k accuracy metric.")
    steps_per_epoch: int | None = Field(None, gt=0)
    class_weight: Literal["none", "auto"] | dict[str, float] = Field(
        "none", description="auto: inverse class frequency; or {class name: weight}."
    )
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    fine_tune: FineTuneConfig = Field(default_factory=FineTuneConfig)
    loop: Literal["fit", "custom"] = Field(
        "fit", description="custom: the same run through a GradientTape + tf.function train step."
    )
    steps_per_execution: int = Field(
        1, gt=0, description="Train steps run per call into the graph; >1 cuts per-step overhead on small models."
    )

    @model_validator(mode="after")
    def _plateau_needs_constant_lr(self) -> TrainConfig:
        if self.callbacks.reduce_lr_on_plateau.enabled and self.schedule.name != "constant":
            raise ValueError(
                f"train.callbacks.reduce_lr_on_plateau cannot change the learning rate while "
                f"train.schedule.name is {self.schedule.name!r}: use schedule 'constant' or "
                "disable reduce_lr_on_plateau"
            )
        return self


class OutputConfig(Section):
    run_dir: Path | None = Field(None, description="Where the run is written; default runs/<model>-<dataset>-<time>.")
    runs_root: Path = Path("runs")
    overwrite: bool = Field(False, description="Allow writing into a run directory that holds a finished run.")


class Config(Section):
    """A whole run: data, model, train and output sections."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @property
    def one_hot_labels(self) -> bool:
        """Whether the loss gets one-hot labels: asked for, or needed by label smoothing or
        by MixUp/CutMix (soft labels)."""
        t = self.train
        return t.label_mode == "one_hot" or t.label_smoothing > 0 or self.data.augment.mixes_labels

    @model_validator(mode="after")
    def _fine_tuning_needs_a_pretrained_backbone(self) -> Config:
        if not self.train.fine_tune.enabled:
            return self
        takes_weights = "weights" in inspect.signature(MODELS.get(self.model.name)).parameters
        if not takes_weights:
            raise ValueError(
                f"train.fine_tune needs a transfer-learning model with a pretrained backbone; "
                f"{self.model.name!r} has none (see `tfpilot models`: mobilenet_v2, efficientnet_b0, ...)"
            )
        if str(self.model.params.get("weights", "imagenet")).lower() in ("none", "null"):
            raise ValueError(
                "train.fine_tune with model.params.weights=none: a backbone without pretrained weights trains "
                "whole from the start, so there is nothing to fine-tune. Use weights: imagenet or a weights file, "
                "or disable train.fine_tune"
            )
        return self
