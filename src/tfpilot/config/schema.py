"""The typed configuration schema: the single source of truth for a run.

Every section forbids unknown keys, so a typo fails before any work starts. A resolved
:class:`Config` is saved as ``config.yaml`` in every run directory; ``tfpilot train
RUN/config.yaml`` reproduces the run from it alone.

Example:
    >>> from tfpilot.config import Config
    >>> cfg = Config.model_validate({"data": {"dataset": "digits"}, "train": {"epochs": 2}})
    >>> cfg.model.name, cfg.train.epochs
    ('auto', 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tfpilot.config.features import FeaturesConfig
from tfpilot.config.tune import TuneConfig
from tfpilot.plugins import import_modules
from tfpilot.registry import MODELS, OPTIMIZERS, SCHEDULES, check_params, did_you_mean


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
    crop_padding: int = Field(
        0, ge=0, description="Reflect-pad by this many pixels, then crop a random window of the original size "
        "(a shift of up to that many pixels, whole pixels, no interpolation; 0: off).")
    contrast: float = Field(0.0, ge=0, lt=1)
    brightness: float = Field(0.0, ge=0, lt=1)
    randaugment: bool = Field(False, description="Keras' RandAugment (RGB images).")
    mixup: float = Field(0.0, ge=0, description="MixUp alpha (0: off); labels become soft.")
    cutmix: float = Field(0.0, ge=0, description="CutMix alpha (0: off); labels become soft.")

    @property
    def enabled(self) -> bool:
        return (self.flip != "none" or self.randaugment or
                any(v > 0 for v in (self.rotation, self.zoom, self.translation, self.crop_padding, self.contrast,
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
    decode_cache: bool = Field(
        True,
        description="Image folders and CSVs: keep the decoded images on disk (`$TFPILOT_CACHE_DIR/decoded`, "
        "at most `$TFPILOT_DECODE_CACHE_GB` GB, default 4, least recently used deleted first), keyed by every "
        "file's path, size and mtime and the decode target, so the next run on the same files decodes "
        "nothing; false decodes on every run and writes nothing.",
    )
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
    id_column: str | None = Field(
        None, description="Tables: split rows by a hash of this column's value (rows sharing an id share a split; "
        "the column is not an input) instead of by a hash of each row's content.")
    dedupe: Literal["warn", "drop", "off"] = Field(
        "warn", description="Evaluation examples that are exact copies of an example in an earlier split (train "
        "for val; train or val for test): warn in the log and data_report.json, drop them from val/test "
        "(recorded in split.json), or skip the check. `tfpilot inspect` finds near-duplicates too.")
    train_on_val: bool = Field(
        False, description="Tables: train on the validation rows too. The split is drawn as usual (the test rows stay "
        "the same) and split.json records train = train + val; nothing is left to stop early or calibrate on. The "
        "leaderboard's refit (train.refit) trains its chosen members so.")
    cv_fold: tuple[int, int] | None = Field(
        None, description="Tables: [i, k]: train on k-fold cross-validation fold i of train + val. The split is drawn "
        "as usual (the test rows stay the same); its train and val rows are dealt into k folds by a hash of each row's "
        "key, fold i is the validation split and the other folds train. The leaderboard's out-of-fold weights "
        "(train.cv_folds) train its candidates so.")
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
        if self.cv_fold is not None and self.train_on_val:
            raise ValueError("data.cv_fold trains on k-1 folds of train + val and data.train_on_val on all of them: "
                             "set one")
        return self

    @field_validator("cv_fold")
    @classmethod
    def _fold_of_folds(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not (v[1] >= 2 and 0 <= v[0] < v[1]):
            raise ValueError(f"data.cv_fold [i, k] is fold i of k folds (k >= 2, 0 <= i < k), got {list(v)}")
        return v

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] <= 0 or v[1] <= 0):
            raise ValueError(f"image_size must be two positive integers (height, width), got {v}")
        return v


#: ``model.name`` of a model chosen from the data when training starts
#: (:mod:`tfpilot.training.defaults`).
AUTO_MODEL = "auto"


class ModelConfig(Section):
    """Which registered model to build, and its keyword arguments."""

    name: str = Field(
        AUTO_MODEL, description="A registered model (`tfpilot models`), or auto: chosen from the data when "
        "training starts (the run's config.yaml names the model, and `chosen` says why).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the model builder (with name auto: checked "
        "against the model chosen).")

    @field_validator("name")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v != AUTO_MODEL:
            MODELS.info(v)  # raises with a did-you-mean message
        return v

    @model_validator(mode="after")
    def _known_params(self) -> ModelConfig:
        if self.name != AUTO_MODEL:
            check_params(MODELS, self.name, self.params, skip=("input_spec", "num_classes", "encoders"))
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
    ema: bool = Field(
        False, description="Keep an exponential moving average of the weights: validation each epoch, early "
        "stopping, the checkpoint and the saved model all use the EMA weights.")
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
        OPTIMIZERS.info(v)
        return v


class ScheduleConfig(Section):
    name: str = "constant"
    warmup_epochs: float | None = Field(
        None, ge=0, description="Linear warm-up epochs (every schedule); 0: none; unset: the schedule's "
                                "default (warmup_cosine 5% of training, one_cycle 25%, others none).")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine, warmup_cosine, cosine_restarts: the "
                                "lowest LR as a fraction of the peak.")
    decay_rate: float = Field(0.96, gt=0, le=1, description="exponential: factor per epoch.")
    step_epochs: int = Field(10, gt=0, description="step: epochs between drops.")
    step_factor: float = Field(0.5, gt=0, le=1, description="step: factor per drop.")
    cycle_epochs: float = Field(1.0, gt=0, description="cosine_restarts: length of the first cycle.")
    cycle_mult: float = Field(2.0, ge=1, description="cosine_restarts: each cycle is this much longer.")
    peak_mult: float = Field(0.5, gt=0, le=1, description="cosine_restarts: each cycle's peak LR factor.")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        SCHEDULES.info(v)
        return v

    @model_validator(mode="after")
    def _keys_the_schedule_reads(self) -> ScheduleConfig:
        """A key set away from its default that the chosen schedule does not read is an error
        (a schedule registered without ``keys=`` is not checked)."""
        reads = SCHEDULES.info(self.name).extra.get("keys")
        if reads is None:
            return self
        for key, spec in type(self).model_fields.items():
            if key == "name" or key in reads or getattr(self, key) == spec.default:
                continue
            users = [e.name for e in SCHEDULES.entries() if key in e.extra.get("keys", ())]
            raise ValueError(
                f"train.schedule.{key} is not read by schedule {self.name!r}; it is read by "
                f"{', '.join(users) or '(no schedule)'}. Remove the key or choose one of those schedules"
            )
        return self


class EarlyStoppingConfig(Section):
    """Stop when ``train.callbacks.monitor`` has not improved for ``patience`` epochs.

    (Its criterion is ``train.callbacks.monitor``, shared with the best-model checkpoint; an
    ``early_stopping.monitor`` key is read as that.)
    """

    enabled: bool = True
    patience: int = Field(5, ge=0)
    restore_best_weights: bool = Field(
        True, description="End with the weights of the best epoch by train.callbacks.monitor (so model.keras "
        "is checkpoints/best.keras), not the last epoch's.")


class ReduceLRConfig(Section):
    enabled: bool = False
    monitor: str = "val_loss"
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(2, ge=0)
    min_lr: float = Field(1e-6, ge=0)


class CallbacksConfig(Section):
    monitor: str = Field(
        "val_loss", pattern=r"^[A-Za-z0-9_]+$",
        description="The one criterion of the best epoch: early stopping (and the weights it restores) and "
        "checkpoints/best.keras both use it. A logged metric: val_loss, val_accuracy, val_top_k_accuracy, ...")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="Whether the monitor improves by going down or up; auto: up for names with "
        "accuracy/auc/f1/precision/recall, down otherwise.")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    reduce_lr_on_plateau: ReduceLRConfig = Field(default_factory=ReduceLRConfig)
    checkpoint: bool = Field(True, description="Keep the best epoch's model (by monitor) in checkpoints/best.keras.")
    backup: bool = Field(True, description="BackupAndRestore: resume after a crash.")
    csv_logger: bool = True
    tensorboard: bool = True
    terminate_on_nan: bool = True
    progress: Literal["rich", "keras", "none"] = "rich"

    @model_validator(mode="before")
    @classmethod
    def _early_stopping_monitor_is_the_monitor(cls, data: Any) -> Any:
        """``early_stopping.monitor`` (older configs) sets ``monitor``; both, disagreeing, is an error."""
        if not isinstance(data, dict) or not isinstance(data.get("early_stopping"), dict):
            return data
        es = dict(data["early_stopping"])
        if "monitor" not in es:
            return data
        legacy = es.pop("monitor")
        if "monitor" in data and data["monitor"] != legacy:
            raise ValueError(
                f"early_stopping.monitor ({legacy!r}) and monitor ({data['monitor']!r}) disagree: the best epoch has "
                "one criterion, used by early stopping and the best checkpoint alike; set train.callbacks.monitor only")
        return {**data, "early_stopping": es, "monitor": legacy}

    @property
    def monitor_mode(self) -> str:
        """``mode`` resolved: "min" or "max"."""
        if self.mode != "auto":
            return self.mode
        name = self.monitor.lower()
        return "max" if any(k in name for k in ("acc", "auc", "f1", "precision", "recall")) else "min"


class PreciseBNConfig(Section):
    """Precise BatchNorm: recompute BatchNormalization's moving mean and variance from training
    batches, instead of trusting Keras' moving average (momentum 0.99), which on small data
    (few steps per epoch) never approaches the batch statistics and breaks inference mode.

    Runs before each epoch's validation, on the weights being validated (the EMA weights with
    ``optimizer.ema``), so early stopping, the checkpoint and the saved model all keep
    statistics that match their weights. Training itself is unchanged. A no-op for models
    without trainable BatchNormalization layers.
    """

    enabled: bool = True
    examples: int = Field(
        4096, gt=0, description="Training examples (a fixed seeded sample, un-augmented, at the training batch "
        "size) the statistics are averaged over; the whole train split when it is smaller.")


class ModeGapConfig(Section):
    """After training: compare training-mode and inference-mode accuracy on the same training
    examples; a large gap is logged as a warning, recorded in metrics.json (``mode_gap``) and
    shown in the report."""

    enabled: bool = True
    threshold: float = Field(
        0.05, ge=0, le=1, description="The accuracy drop from training to inference mode that is reported as large.")
    examples: int = Field(2048, gt=0, description="Training examples compared (a fixed seeded sample).")


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


class LRScalingConfig(Section):
    """The learning-rate rule for batch sizes: ``lr x (batch_size / reference_batch_size) ** p``
    with p = 1 (linear, Goyal et al. 2017), 1/2 (sqrt) or 0 (none: the rate is used as given)."""

    rule: Literal["none", "linear", "sqrt"] = "none"
    reference_batch_size: int = Field(128, gt=0, description="The batch size the learning rate was tuned for.")

    def factor(self, batch_size: int) -> float:
        power = {"none": 0.0, "linear": 1.0, "sqrt": 0.5}[self.rule]
        return (batch_size / self.reference_batch_size) ** power


#: Examples per model call after training, unless ``train.eval_batch_size`` says otherwise.
EVAL_BATCH = 256
#: ``train.time_limit: auto``: each preset's budget for the whole leaderboard search, in seconds.
#: fast: with the process's start and the table's reading, a whole ``tfpilot train`` stays
#: within 5 minutes on any of the 2-core machines (melbourne-housing's search took 109-157 s on the
#: AVX512-BF16 kind, its forests most of it, so the budget binds only on slower CPUs).
PRESET_TIME_LIMITS = {"fast": 290.0, "best": 1800.0}


class TrainConfig(Section):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(128, gt=0)
    eval_batch_size: int | None = Field(
        None, gt=0, description="Examples per model call when the finished model is calibrated, evaluated and "
        "reported (then by tfpilot evaluate / report / export / verify and tfpilot.load). None: the larger of "
        "batch_size and 256; the memory plan sets batch_size where 256 images would not fit (large images, a large "
        "model).")
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
    class_head: str | None = Field(
        None, description="Table models: the category head that balanced sampling, class weights, label smoothing "
        "and one-hot labels act on (default: the only one; label smoothing: every category head).")
    regularization: RegularizationConfig = Field(default_factory=RegularizationConfig)
    fine_tune: FineTuneConfig = Field(default_factory=FineTuneConfig)
    loop: Literal["fit", "custom"] = Field(
        "fit", description="custom: the same run through a GradientTape + tf.function train step "
        "(the default, and the only loop, when train.distribute is not none)."
    )
    distribute: Literal["none", "auto", "mirrored", "multi_worker"] = Field(
        "none", description="tf.distribute strategy: mirrored over the local GPUs (or logical CPUs), "
        "multi_worker over the workers TF_CONFIG names (`tfpilot launch`), auto: mirrored with several "
        "GPUs. batch_size stays the global batch.")
    lr_scaling: LRScalingConfig = Field(default_factory=LRScalingConfig)
    worker_timeout_s: float = Field(
        120.0, gt=0, description="multi_worker: how long a worker waits for its peers at start before it fails.")
    steps_per_execution: int = Field(
        1, gt=0, description="Train steps run per call into the graph; >1 cuts per-step overhead on small models."
    )
    precise_bn: PreciseBNConfig = Field(default_factory=PreciseBNConfig)
    mode_gap: ModeGapConfig = Field(default_factory=ModeGapConfig)
    preset: Literal["fast", "best"] = Field(
        "fast", description="model.name auto on a table: the leaderboard's candidates and budgets. fast: the neural "
        "table model, a linear model and YDF gradient-boosted trees (minutes on 2 cores); best: also a random forest, "
        "YDF's benchmark_rank1 trees and more epochs.")
    time_limit: float | Literal["auto"] | None = Field(
        "auto", description="model.name auto on a table: seconds (or 90s, 10m, 1h) for the whole leaderboard "
        "search; each candidate gets a share of what is left in proportion to its expected fit time "
        "(train.candidates: equal shares), and candidates that no longer fit are cut short or skipped, the log says "
        "which. auto: the preset's "
        "budget (fast: 290 s, so that a whole tfpilot train takes at most 5 minutes on 2 cores; best: 30 min), "
        "twice that for a table with image columns. "
        "null: no limit.")
    candidates: dict[str, dict[str, Any]] | None = Field(
        None, description="model.name auto on a table: the leaderboard's candidates instead of the preset's, as "
        "{model name: model.params} (e.g. {ydf_gbt: {num_trees: 50}, linear: {}}).")
    refit: bool = Field(
        True, description="model.name auto on a table: once the ensemble's weights (and temperature) are chosen on "
        "validation, retrain each member with a weight > 0 on train + val for the epochs / trees its first fit kept; "
        "that ensemble is the run. The leaderboard keeps the first fits' out-of-sample figures. false: the ensemble of "
        "the first fits is the run.")
    cv_folds: int | Literal["auto"] = Field(
        "auto", description="model.name auto on a table: choose the ensemble's weights (and each member's refit "
        "length) on the out-of-fold predictions of this many cross-validation folds of train + val, each candidate "
        "trained once per fold (data.cv_fold), instead of on the validation split alone. 0: on the validation "
        "split. auto: 5 folds when the validation split has fewer than 500 rows (a choice on fewer rows is mostly "
        "noise) and train + val has at least 100 (20 a fold), else 0.")
    calibration: Literal["temperature", "none"] = Field(
        "temperature", description="After training, fit one temperature per category/binary head on the "
        "validation split (NLL) and keep it inside the saved model; argmax and the 0.5 threshold never move. "
        "none: leave the probabilities as trained.")

    @field_validator("time_limit", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        """``90``, ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds (``auto`` and null kept)."""
        v = parse_duration(v) if isinstance(v, str) and v != "auto" else v
        if isinstance(v, (int, float)) and not v > 0:
            raise ValueError(f"train.time_limit is a duration above 0 (or auto, or null: no limit), got {v}")
        return v

    @property
    def time_limit_s(self) -> float | None:
        """The search's budget in seconds: ``time_limit``, or for ``auto`` the preset's
        (:data:`PRESET_TIME_LIMITS`); None: no limit.

        Example:
            >>> TrainConfig().time_limit_s, TrainConfig(preset="best").time_limit_s
            (290.0, 1800.0)
            >>> TrainConfig(time_limit="10m").time_limit_s, TrainConfig(time_limit=None).time_limit_s
            (600.0, None)
        """
        return PRESET_TIME_LIMITS[self.preset] if self.time_limit == "auto" else self.time_limit

    @property
    def evaluation_batch(self) -> int:
        """``eval_batch_size``, else the larger of ``batch_size`` and :data:`EVAL_BATCH`.

        Example:
            >>> TrainConfig(batch_size=8).evaluation_batch, TrainConfig(eval_batch_size=8).evaluation_batch
            (256, 8)
        """
        return self.eval_batch_size or max(self.batch_size, EVAL_BATCH)

    @field_validator("cv_folds")
    @classmethod
    def _folds(cls, v: int | str) -> int | str:
        if v != "auto" and (v < 0 or v == 1):
            raise ValueError(f"train.cv_folds is a number of folds (2 or more), 0 (weigh on the validation split) or "
                             f"auto, got {v}")
        return v

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, v: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("train.candidates is empty: name at least one table model, or leave it unset")
        for name, params in v.items():
            if "table" not in MODELS.info(name).tags:
                raise ValueError(f"train.candidates: {name!r} is not a table model "
                                 f"({', '.join(MODELS.list(tag='table'))})")
            check_params(MODELS, name, params or {}, skip=("input_spec", "num_classes", "encoders"))
        return v

    @model_validator(mode="before")
    @classmethod
    def _distributed_runs_use_the_custom_loop(cls, data: Any) -> Any:
        """Keras 3's ``model.fit`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585):
        a distributed run trains through tfpilot's own step, so its loop defaults to custom and
        an explicit ``loop: fit`` is refused."""
        if not isinstance(data, dict) or data.get("distribute", "none") == "none":
            return data
        if data.get("loop") == "fit":
            raise ValueError(
                f"train.loop=fit cannot train with train.distribute={data['distribute']}: Keras 3's model.fit "
                "is broken under MultiWorkerMirroredStrategy (keras-team/keras#20585), so distributed runs "
                "use tfpilot's tf.distribute step. Drop train.loop or set it to custom"
            )
        return {**data, "loop": "custom"}

    @model_validator(mode="after")
    def _plateau_needs_constant_lr(self) -> TrainConfig:
        if not self.callbacks.reduce_lr_on_plateau.enabled:
            return self
        if self.schedule.name != "constant":
            raise ValueError(
                f"train.callbacks.reduce_lr_on_plateau cannot change the learning rate while "
                f"train.schedule.name is {self.schedule.name!r}: use schedule 'constant' or "
                "disable reduce_lr_on_plateau"
            )
        if self.schedule.warmup_epochs:
            raise ValueError(
                "train.callbacks.reduce_lr_on_plateau cannot change the learning rate of a warm-up schedule "
                f"(train.schedule.warmup_epochs={self.schedule.warmup_epochs}): drop warmup_epochs or "
                "disable reduce_lr_on_plateau"
            )
        return self


def parse_duration(text: str) -> float:
    """Seconds of a duration written as ``90``, ``90s``, ``10m`` or ``1.5h``.

    Example:
        >>> parse_duration("10m"), parse_duration("1.5h"), parse_duration("45")
        (600.0, 5400.0, 45.0)
    """
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write seconds (600), or 90s, 10m, 1.5h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class OutputConfig(Section):
    run_dir: Path | None = Field(None, description="Where the run is written; default runs/<model>-<dataset>-<time>.")
    runs_root: Path = Path("runs")
    overwrite: bool = Field(
        False, description="Discard the run (finished or not) already in run_dir and train a new one there.")
    resume_if_exists: bool = Field(
        False, description="run_dir holds an unfinished run: resume it (as `tfpilot resume`) instead of refusing.")

    @model_validator(mode="after")
    def _one_way_to_reuse(self) -> OutputConfig:
        if self.overwrite and self.resume_if_exists:
            raise ValueError("output.overwrite discards the run in run_dir, output.resume_if_exists continues it: "
                             "set one of them")
        return self


class Config(Section):
    """A whole run: data, model, train and output sections (and ``features`` for a table model)."""

    imports: list[str] = Field(
        default_factory=list, description="Modules imported before the rest of the config is read (and again by "
        "every later stage of the run), e.g. the module that registers your own loss, model or layers.")
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig | None = Field(
        None, description="Table models: input and output columns (see docs/techniques/multi_task.md).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    chosen: dict[str, str] = Field(
        default_factory=dict, description="Written by tfpilot: each key it chose from the data (model.name, "
        "model.params.tokenize, train.epochs, ...) and why. A record: the keys themselves hold the values, so "
        "editing this changes nothing.")
    tune: TuneConfig | None = Field(
        None, description="tfpilot tune: the search space and its settings (docs/tune.md); tfpilot train does not "
        "read it.")

    @model_validator(mode="before")
    @classmethod
    def _import_first(cls, data: Any) -> Any:
        """Import the modules of ``imports`` before any name of the config is looked up."""
        if isinstance(data, dict) and isinstance(data.get("imports"), list):
            import_modules([str(m) for m in data["imports"]], "imports")
        return data

    @model_validator(mode="after")
    def _model_fits_the_config(self) -> Config:
        """A table model needs a features section, a zoo classifier must not have one; the
        text-table column guesses and MixUp/CutMix have no meaning with ``features``."""
        tags = () if self.model.name == AUTO_MODEL else MODELS.info(self.model.name).tags
        t = self.train
        search = [k for k, on in (("preset", t.preset != "fast"), ("time_limit", t.time_limit not in ("auto", None)),
                                  ("candidates", t.candidates is not None), ("refit", not t.refit),
                                  ("cv_folds", t.cv_folds != "auto")) if on]
        if search and (self.features is None or self.model.name != AUTO_MODEL):
            raise ValueError(f"train.{', train.'.join(search)} set the leaderboard that model.name auto trains on a "
                             "table (a features section, --target); "
                             + (f"model.name {self.model.name!r} trains one model: unset them"
                                if self.model.name != AUTO_MODEL else "this config has no features section"))
        if self.features is None:
            if "table" in tags:
                raise ValueError(f"model {self.model.name!r} is a table model: give a features section with the "
                                 "output columns (tfpilot train --dataset TABLE --target COLUMN)")
            if self.train.class_head is not None:
                raise ValueError("train.class_head names a head of a table model: a classifier has one; remove it")
            if self.data.cv_fold is not None:
                raise ValueError("data.cv_fold deals a table's train and val rows into folds (a config with a "
                                 "features section); remove it")
            if self.data.train_on_val:
                raise ValueError("data.train_on_val folds a table's validation rows into its training split (a config "
                                 "with a features section); remove it")
            if self.data.id_column is not None:
                raise ValueError("data.id_column keys the split of a table's rows (a config with a features "
                                 "section); image folders are split by path and texts by content: remove it")
            return self
        if "table" not in tags and self.model.name != AUTO_MODEL:
            raise ValueError(f"a features section trains a table model; model {self.model.name!r} is a "
                             f"{'/'.join(tags) or 'image'} classifier. Use model.name: "
                             f"{' or '.join(MODELS.list(tag='table'))} (image and text models go in "
                             "features.inputs[].encoder.model)")
        d = self.data
        for key, value, fix in (("text_column", d.text_column, "name the text column in features.inputs"),
                                ("label_column", d.label_column, "name the target in features.outputs (--target)")):
            if value is not None:
                raise ValueError(f"data.{key} chooses the column of a text table; with a features section {fix}")
        if d.augment.mixes_labels:
            raise ValueError("data.augment.mixup/cutmix mix two rows' labels, but a table row's other columns "
                             "cannot be mixed: set them to 0 (the other augmentations apply to every image column)")
        outs, head = [o.name for o in self.features.outputs], self.train.class_head
        if d.id_column in outs:
            raise ValueError(f"data.id_column: {d.id_column!r} is an output; the id column keys the split and "
                             "must be another column")
        if head is not None and head not in outs:
            raise ValueError(f"train.class_head: no output {head!r}.{did_you_mean(head, outs)} The outputs: "
                             f"{', '.join(outs)}.")
        return self

    @property
    def one_hot_labels(self) -> bool:
        """Whether the loss gets one-hot labels: asked for, or needed by label smoothing or
        by MixUp/CutMix (soft labels)."""
        t = self.train
        return t.label_mode == "one_hot" or t.label_smoothing > 0 or self.data.augment.mixes_labels

    def _zoo_models(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(config key, zoo model, params)``: the model, or each table input's zoo encoder."""
        if self.features is None:
            return [("model", self.model.name, self.model.params)] if self.model.name != AUTO_MODEL else []
        return [(f"features.inputs[{i.name}].encoder", i.encoder.model, i.encoder.params)
                for i in self.features.inputs or [] if i.encoder.model]

    @model_validator(mode="after")
    def _fine_tuning_needs_a_pretrained_backbone(self) -> Config:
        if not self.train.fine_tune.enabled:
            return self
        transfer = [(where, params) for where, name, params in self._zoo_models()
                    if "weights" in (MODELS.info(name).params or ())]
        if not transfer:
            has_none = (f"{self.model.name!r} has none" if self.features is None else "no input of the table model "
                        f"({', '.join(i.name for i in self.features.inputs or []) or 'every column'}) has a transfer-"
                        "learning encoder: set features.inputs[].encoder.model of an image input to one")
            raise ValueError(f"train.fine_tune needs a transfer-learning model with a pretrained backbone; {has_none} "
                             "(see `tfpilot models`: mobilenet_v2, efficientnet_b0, ...)")
        for where, params in transfer:
            if str(params.get("weights", "imagenet")).lower() in ("none", "null"):
                raise ValueError(
                    f"train.fine_tune with {where}.params.weights=none: a backbone without pretrained weights trains "
                    "whole from the start, so there is nothing to fine-tune. Use weights: imagenet or a weights file, "
                    "or disable train.fine_tune"
                )
        return self
