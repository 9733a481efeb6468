"""Defaults chosen from the data: the one place where a run's unset keys get values that fit
what was loaded, each with its reason.

When training starts and the data is prepared, :func:`choose_defaults` fills what the user
left to tfpilot:

* ``model.name: auto`` (the default) -- a model for the data's kind. Text: a bag of word or
  character n-grams into a linear softmax (one hidden layer for short texts of a spaced script;
  tf-idf, Naive-Bayes weights for two classes), the
  strongest and fastest text model of the zoo on IMDB and on Chinese hotel reviews
  (``docs/benchmarks.md``, ``bench/cjk_text.py``), with its training recipe (epochs, batch,
  learning rate) for any of those keys the user did not set. Images: by size and colour
  (:func:`image_recipe`): ``mnist_cnn`` for digit-sized grayscale images, ``cifar_cnn_bn``
  for CIFAR-sized colour ones, ``mini_resnet`` (a small residual CNN with BatchNorm) above.
  A table trained by one Trainer: ``multitask`` (``tfpilot train`` on a table trains the
  leaderboard of :mod:`tfpilot.training.leaderboard` instead).
* ``features.inputs[<text column>].encoder`` of a table's neural model, unless given
  (:func:`table_text_encoder`): the text default's linear bag of n-grams, fed straight into the
  combiner -- character 1- to 5-grams inside words for short texts (names, titles), where word
  pieces carry the class; characters for unspaced scripts; long texts keep the small n-gram MLP.
* ``model.params.tokenize`` of a text model, unless given: "chars" when most letters are
  of a script written without spaces (Chinese, Japanese, Thai, ...), else "words"
  (:func:`tfpilot.data.text.profile_texts`).

Before any image file is decoded, :func:`choose_before_loading` reads the file list and a
sample of image headers (:func:`~tfpilot.data.image_probe.probe_images_of`) and chooses
``data.image_size`` (:func:`choose_image_size`: at most :data:`MAX_SIDE` px on the longer
side for a CNN trained from scratch, the aspect ratio kept; also for a table's image columns)
and the image model of an image folder or CSV, then makes the memory plan
(:mod:`tfpilot.training.memory_plan`), which may shrink what was left to tfpilot or stop with
the numbers.

Nothing the user set is changed: a key counts as set when the YAML, a flag or ``--set`` gave
it (pydantic's ``model_fields_set``). Each choice is logged and recorded with its reason in
the resolved config's ``chosen`` (``config.yaml`` of the run), which names the chosen values
themselves, so ``tfpilot train RUN/config.yaml`` repeats the run without choosing again.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="reviews.csv")  # doctest: +SKIP
    >>> cfg, data = choose_defaults(cfg, prepare_data(cfg.data))  # doctest: +SKIP
    >>> cfg.model.name, cfg.chosen["model.name"]  # doctest: +SKIP
    ('ngram_mlp', 'text (5,436 texts, median 86 characters / 1 words, 99% of letters Chinese): ...')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from tfpilot.config import Config
from tfpilot.config.schema import AUTO_MODEL

log = logging.getLogger(__name__)

#: The image model of ``model.name: auto`` for folders of up to :data:`LARGE_FOLDER` training
#: images, and its params: a small residual CNN with BatchNorm (a strided stem, so its cost
#: hardly grows with the image size; global pooling, so its parameters do not).
IMAGE_MODEL = "mini_resnet"
IMAGE_PARAMS: dict[str, Any] = {}
#: ... and above that: the deeper residual network of the zoo.
LARGE_IMAGE_MODEL = "resnet"
LARGE_FOLDER = 50_000
#: Images are decoded at most this large (the longer side, px) for a CNN trained from scratch
#: (images this small or smaller keep their size): mini_resnet trains on 2,000 images of 64x48
#: in about 23 CPU seconds on the AVX2-only EPYC kind, 35 at 96x72 (docs/bench/defaults.md).
MAX_SIDE = 64
#: Models trained on a pretrained backbone's native input: at most this large.
TRANSFER_SIDE = 224
TRANSFER_MODELS = frozenset({"mobilenet_v2", "efficientnet_b0", "resnet50", "vgg16"})
#: The text model of ``model.name: auto``.
TEXT_MODEL = "ngram_mlp"
#: The table model of ``model.name: auto`` when one Trainer trains one model (``tfpilot train``
#: trains the leaderboard instead: :mod:`tfpilot.training.leaderboard`).
TABLE_MODEL = "multitask"
#: A table's text column is "short" (names, titles) when its median text has at most this many
#: words: its encoder is a linear bag of character n-grams inside words (:func:`table_text_encoder`).
TABLE_SHORT_TEXT_WORDS = 12
#: ... and at least this many training texts (fewer: the small n-gram MLP encoder; :func:`table_text_encoder`).
TABLE_TEXT_MIN_ROWS = 1_000
#: The text default's learning rate (:func:`text_recipe`); a table's linear text encoder learns at it.
TEXT_LEARNING_RATE = 0.02
#: Vocabulary of a table's linear text encoder: its n-gram vector goes into the combiner's first
#: Dense (fashion-9k's 6.8k product names hold ~18k character 1- to 5-grams).
TABLE_TEXT_VOCAB = 50_000


@dataclass(frozen=True)
class Choice:
    """One key chosen from the data.

    Attributes:
        key: the dotted config key (``model.name``, ``train.epochs``, ...).
        value: its value.
        reason: why, in words.
    """

    key: str
    value: Any
    reason: str


#: Texts of a spaced script with at most this median count of words get a hidden layer (:func:`text_recipe`).
SHORT_TEXT_WORDS = 40
#: Its width.
SHORT_TEXT_UNITS = 64


def text_recipe(profile: Any, num_classes: int, batch_size: int | None = None
                ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The default text model's params and training keys for a corpus, and why.

    A bag of 1- to 3-grams (sublinear tf-idf, L2-normalised; Naive-Bayes log-count ratios for
    two classes): words for spaced scripts, characters for scripts written without spaces.
    Into a linear softmax, except for short texts of a spaced script (a median of at most
    :data:`SHORT_TEXT_WORDS` words: messages, titles), whose few n-grams each a linear model
    fits to the training labels (train accuracy 1.0 on SMS spam): those get one hidden layer of
    :data:`SHORT_TEXT_UNITS` with dropout 0.5 (validation accuracy on SMS spam, 3 splits: 0.9833
    against the linear model's 0.9770; on IMDB's long reviews it is no better and ~10x slower
    per step; on Chinese hotel reviews, characters, 0.8924 against 0.8964). Small corpora take
    more epochs (the same number of optimizer steps as IMDB's recipe, at least).

    Args:
        profile: the training texts' :class:`~tfpilot.data.text.TextProfile`.
        num_classes: classes of the label.
        batch_size: the batch size the user set (the epochs follow it); None: the recipe's 512.

    Returns:
        ``(model params, {dotted train key: value}, reason)``.

    Example:
        >>> from tfpilot.data.text import TextProfile
        >>> params, train, why = text_recipe(TextProfile(5436, 86.0, 1.0, 0.99, "Chinese"), 2)
        >>> params["tokenize"], params["naive_bayes"], train["train.epochs"]
        ('chars', True, 8)
    """
    chars = profile.tokenize == "chars"
    short = not chars and profile.median_words <= SHORT_TEXT_WORDS
    params = {
        "vocab_size": 200_000, "ngrams": 3, "output_mode": "tf_idf", "sublinear_tf": True, "normalize": True,
        "naive_bayes": num_classes == 2, "hidden_units": [SHORT_TEXT_UNITS] if short else [],
        "tokenize": profile.tokenize,
    }
    if short:
        params["dropout"] = 0.5
    batch = batch_size or 512
    steps_per_epoch = max(1, -(-profile.texts // batch))
    epochs = int(min(20, max(2, -(-80 // steps_per_epoch))))  # >= ~80 steps: IMDB's 2 epochs of 46
    train = {"train.epochs": epochs, "train.batch_size": batch, "train.optimizer.learning_rate": TEXT_LEARNING_RATE,
             "train.callbacks.early_stopping.patience": 2}
    grams = "character" if chars else "word"
    nb = ", Naive-Bayes weighted" if num_classes == 2 else ""
    head = (f"one hidden layer of {SHORT_TEXT_UNITS} (dropout 0.5: short texts, a median of "
            f"{profile.median_words:.0f} words <= {SHORT_TEXT_WORDS})" if short else "a linear model")
    reason = (f"text ({profile.describe()}): {head} on tf-idf of {grams} 1- to 3-grams{nb} -- the "
              "strongest text model of the zoo for fewer than ~100k texts (IMDB: 91.7% against 84.8% for the "
              "LSTM, 86.8% for the transformer; docs/benchmarks.md) and seconds per epoch on a CPU")
    return params, train, reason


def _is_set(config: Config, dotted: str) -> bool:
    """Whether the user gave ``dotted`` (YAML, a flag or ``--set``), not its default."""
    *path, last = dotted.split(".")
    node: Any = config
    for part in path:
        if part not in node.model_fields_set:
            return False
        node = getattr(node, part)
    return last in node.model_fields_set


def table_text_encoder(profile: Any, learning_rate: float | str | None = 1e-3) -> tuple[dict[str, Any], str]:
    """The encoder of a table's text column (``features.inputs[].encoder``) for its texts, and why.

    At least :data:`TABLE_TEXT_MIN_ROWS` training texts, short ones of a spaced script (at most
    :data:`TABLE_SHORT_TEXT_WORDS` words, median): the text
    default's linear model on sublinear, L2-normalised tf-idf of character 1- to 5-grams inside
    words (scikit-learn's ``char_wb``), with no hidden layer, so the n-gram vector goes straight
    into the combiner (the ``linear`` table model is then a linear text classifier beside the
    other columns). Scripts written without spaces: character 1- to 3-grams, as the text default.
    The linear encoders scale their n-gram vector (``input_scale``) by the text default's
    learning rate over the run's: under Adam the weights on the text then learn at the text
    default's rate (0.02) while the image encoder keeps the table's (1e-3 by default) -- at one
    rate for both, the text weights learn 20 times too slowly and the image encoder overfits first.
    Longer texts, and fewer than :data:`TABLE_TEXT_MIN_ROWS` texts of any kind, keep the small
    n-gram MLP encoder (:data:`~tfpilot.models.encoders.DEFAULT_TEXT_PARAMS`).

    Args:
        profile: the column's training texts' :class:`~tfpilot.data.text.TextProfile`.
        learning_rate: the run's ``train.optimizer.learning_rate`` ("auto", or an optimizer other
            than Adam's family, whose steps follow the gradient's scale: pass None -- no scale).

    Returns:
        ``(encoder settings, reason)``: ``{"model": "ngram_mlp", "params": {...}}``.

    Example:
        >>> from tfpilot.data.text import TextProfile
        >>> enc, why = table_text_encoder(TextProfile(6759, 38.0, 6.0, 0.0, "spaced"))
        >>> p = enc["params"]
        >>> p["tokenize"], p["ngrams"], p["hidden_units"], p["input_scale"]
        ('char_wb', 5, [], 20.0)
        >>> table_text_encoder(TextProfile(8000, 900.0, 160.0, 0.0, "spaced"))[0]["params"]["tokenize"]
        'words'
        >>> table_text_encoder(TextProfile(235, 15.0, 2.0, 0.0, "spaced"))[0]["params"]["hidden_units"]  # auto-mpg
        [64]
    """
    from tfpilot.models.encoders import DEFAULT_TEXT_PARAMS

    scale = round(TEXT_LEARNING_RATE / learning_rate, 4) if isinstance(learning_rate, (int, float)) else 1.0
    linear = {"vocab_size": TABLE_TEXT_VOCAB, "output_mode": "tf_idf", "sublinear_tf": True, "normalize": True,
              "hidden_units": [], "input_scale": scale}
    rate = (f"; the n-gram vector scaled by {scale:g} (the text default's learning rate {TEXT_LEARNING_RATE} over the "
            f"run's {learning_rate}), so under Adam its weights learn at the text default's rate") if scale != 1 else ""
    what = f"text column ({profile.describe()})"
    small_mlp = {"model": TEXT_MODEL, "params": {**DEFAULT_TEXT_PARAMS[TEXT_MODEL], "ngrams": 2,
                                                 "tokenize": profile.tokenize}}
    if profile.texts < TABLE_TEXT_MIN_ROWS:
        return small_mlp, (
            f"{what}: fewer than {TABLE_TEXT_MIN_ROWS:,} training texts, too few for a linear bag of n-grams at the "
            "text default's rate (auto-mpg's 235 car names: validation MAE 4.05 against 2.04, mean of 3 splits): "
            f"{'character' if profile.tokenize == 'chars' else 'word'} 1- and 2-grams into a small MLP (the table "
            "model's text encoder)")
    if profile.tokenize == "chars":
        return {"model": TEXT_MODEL, "params": {**linear, "ngrams": 3, "tokenize": "chars"}}, (
            f"{what}: a linear bag of character 1- to 3-grams (tf-idf), the text default for a script written "
            f"without spaces, into the combiner{rate}")
    if profile.median_words <= TABLE_SHORT_TEXT_WORDS:
        return {"model": TEXT_MODEL, "params": {**linear, "ngrams": 5, "tokenize": "char_wb"}}, (
            f"{what}: short texts (median <= {TABLE_SHORT_TEXT_WORDS} words), a linear bag of character 1- to 5-grams "
            "inside words (sublinear tf-idf, L2-normalised) into the combiner -- on fashion-9k's product names "
            "char_wb 1-5 with a linear classifier scores 0.982 on validation against 0.966 for word 1-2 grams "
            f"(docs/bench/mm.md){rate}")
    return small_mlp, (
        f"{what}: long texts, word 1- and 2-grams into a small MLP (the table model's text encoder)")


def _table_choices(config: Config, data: Any) -> list[Choice]:
    """A table's: ``model.name`` when auto (one Trainer: the neural table model) and the encoder
    of each text column that names none (:func:`table_text_encoder`)."""
    from tfpilot.data.text import profile_texts
    from tfpilot.spec import column_key

    choices = []
    if config.model.name == AUTO_MODEL:
        choices.append(Choice("model.name", TABLE_MODEL, "a table, trained as one model: the neural table model "
                              "(`tfpilot train` with model.name auto trains the leaderboard of table models and "
                              "their ensemble, training/leaderboard.py)"))
    kinds = {c.key: c.kind for c in data.spec.inputs}
    for feat in config.features.inputs or []:
        key = column_key(feat.name)
        if kinds.get(key) != "text" or feat.encoder.model is not None or feat.encoder.params:
            continue
        profile = profile_texts(data.splits["train"].inputs[key])
        opt = config.train.optimizer
        encoder, reason = table_text_encoder(profile, opt.learning_rate if opt.name.startswith("adam") else None)
        choices.append(Choice(f"features.inputs[{feat.name}].encoder", encoder, reason))
    return choices


def _choices(config: Config, data: Any) -> list[Choice]:
    """What to choose for ``config`` on ``data`` (see the module docstring)."""
    if config.features is not None:  # a table model: its columns are chosen by the table code
        return _table_choices(config, data)
    spec = data.input_spec
    profile = None
    if spec.kind == "text":
        from tfpilot.data.text import profile_texts

        profile = profile_texts(data.splits["train"].x)
        log.info("text profile of the training split: %s", profile.describe())
    if config.model.name != AUTO_MODEL:
        return _tokenize_choice(config, config.model.name, profile)
    if profile is None:
        name, params, reason = image_recipe(len(data.splits["train"]), spec.image_size, spec.channels)
        return [Choice("model.name", name, reason),
                *[Choice(f"model.params.{k}", v, f"the {name} recipe for images") for k, v in params.items()
                  if k not in config.model.params]]
    return _text_model_choices(config, profile, data.num_classes)


def image_recipe(train_images: int, size: tuple[int, int], channels: int) -> tuple[str, dict[str, Any], str]:
    """The default image model (trained from scratch) for a dataset, its params, and why.

    Args:
        train_images: images of the training split.
        size: (height, width) they are decoded to.
        channels: 1 or 3.

    Example:
        >>> image_recipe(1800, (96, 128), 3)[0], image_recipe(60_000, (28, 28), 1)[0]
        ('mini_resnet', 'mnist_cnn')
    """
    side = max(size)
    what = f"image data ({train_images:,} training images of {size[0]}x{size[1]}x{channels})"
    if side <= 32 and channels == 1:
        return "mnist_cnn", {}, (f"{what}: mnist_cnn, seed 004's CNN for digit-sized grayscale images (99% on "
                                 "MNIST in seconds an epoch)")
    if side <= 32:
        return "cifar_cnn_bn", {}, (f"{what}: cifar_cnn_bn, a small CNN with BatchNorm and global pooling for "
                                    "CIFAR-sized images")
    return IMAGE_MODEL, dict(IMAGE_PARAMS), (
        f"{what}: {IMAGE_MODEL}, a small residual CNN with BatchNorm (about 1.2M parameters at any image size: "
        "a stride-4 stem and global pooling keep its cost per image low on a CPU)")


def choose_image_size(probe: Any, model: str) -> tuple[tuple[int, int], str]:
    """The size to decode a dataset's images to (before any is decoded), and why.

    Images whose longer side is at most :data:`MAX_SIDE` px keep their (most common) size; larger
    ones are scaled to a longer side of :data:`MAX_SIDE` (:data:`TRANSFER_SIDE` for a
    pretrained backbone), keeping the most common aspect ratio.

    Args:
        probe: the dataset's :class:`~tfpilot.data.image_probe.ImageProbe`.
        model: the model chosen or named (``auto``: one trained from scratch).

    Example:
        >>> from collections import Counter
        >>> from tfpilot.data.image_probe import ImageProbe
        >>> choose_image_size(ImageProbe(2000, 6, Counter({(768, 1024): 90}), 3), "auto")[0]
        (48, 64)
        >>> choose_image_size(ImageProbe(9000, 10, Counter({(32, 32): 90}), 3), "auto")[0]
        (32, 32)
    """
    from tfpilot.training.memory_plan import scaled_size

    common = probe.common_size
    sizes = f"{len(probe.sizes)} sizes" if len(probe.sizes) > 1 else "one size"
    seen = f"{probe.describe()}; {sizes} in a sample of {sum(probe.sizes.values())} headers"
    transfer = model in TRANSFER_MODELS
    cap = TRANSFER_SIDE if transfer else MAX_SIDE
    if max(common) <= cap:
        return (int(common[0]), int(common[1])), f"{seen}: the most common size, {common[0]}x{common[1]}, kept"
    size = scaled_size(common, cap)
    why = (f"the native input of a pretrained {model}" if transfer else
           f"at most {cap} px on the longer side for a CNN trained from scratch: larger photos cost time and memory "
           "(mini_resnet: ~1.5x the CPU time at 96 px, ~2.5x at 128 px)")
    odd = "" if len(probe.sizes) == 1 else " (images of another aspect ratio are stretched to it)"
    return size, (f"{seen}: {size[0]}x{size[1]}, {why}; the most common aspect ratio "
                  f"({common[0]}x{common[1]}) kept{odd}")


def _text_model_choices(config: Config, profile: Any, num_classes: int) -> list[Choice]:
    """``model.name: auto`` on text: :func:`text_recipe`, less the keys the user gave."""
    batch = config.train.batch_size if _is_set(config, "train.batch_size") else None
    params, train, reason = text_recipe(profile, num_classes, batch)
    choices = [Choice("model.name", TEXT_MODEL, reason)]
    for key, value in params.items():
        if key not in config.model.params:
            why = _tokenize_reason(profile) if key == "tokenize" else f"the {TEXT_MODEL} recipe for text"
            choices.append(Choice(f"model.params.{key}", value, why))
    steps = -(-profile.texts // train["train.batch_size"])
    for key, value in train.items():
        if not _is_set(config, key):
            why = f"the {TEXT_MODEL} recipe for {profile.texts:,} training texts"
            if key == "train.epochs":
                why += f" ({steps} steps per epoch: at least ~80 steps, as IMDB's 2 epochs of 46, at most 20)"
            choices.append(Choice(key, value, why))
    return choices


def _tokenize_choice(config: Config, name: str, profile: Any) -> list[Choice]:
    """A named text model's ``tokenize``, from the texts, unless given (or the model takes none)."""
    from tfpilot.registry import MODELS

    if profile is None or "tokenize" in config.model.params or "tokenize" not in (MODELS.info(name).params or ()):
        return []
    return [Choice("model.params.tokenize", profile.tokenize, _tokenize_reason(profile))]


def _tokenize_reason(profile: Any) -> str:
    if profile.tokenize == "chars":
        return (f"{profile.unspaced_share:.0%} of the letters are {profile.script}, written without spaces between "
                "words: one token per character")
    return f"{1 - profile.unspaced_share:.0%} of the letters are of scripts that space their words: split on spaces"


def choose_defaults(config: Config, data: Any) -> tuple[Config, Any]:
    """``config`` with the keys it leaves to tfpilot chosen from ``data`` (logged and recorded
    in ``config.chosen``); validated again, so the model's params are checked against the
    model chosen. Neither argument changes.

    Args:
        config: the run config.
        data: the prepared data (:class:`~tfpilot.data.PreparedData` or a table's, whose resolved
            ``features`` the config takes first).

    Returns:
        The resolved config (``config`` itself when nothing was left to choose), and the data
        (a table's a copy with the resolved ``features``: its ``model_args`` build the encoders
        chosen).

    Raises:
        ConfigError: a given key does not fit the model chosen (e.g. ``model.params`` the
            chosen model does not take).
    """
    if data.features is not None:
        config = config.model_copy(update={"features": data.features})
    resolved = _apply(config, _choices(config, data))
    if data.features is not None and resolved.features != data.features:
        data = replace(data, features=resolved.features)
    return resolved, data


def _set_key(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted ``key`` in a config tree; ``features.inputs[<name>].<rest>`` names an input column."""
    from tfpilot.config.loader import set_path

    _, bracket, rest = key.partition("[")
    if not bracket:
        set_path(tree, key.split("."), value)
        return
    name, _, tail = rest.partition("].")
    column = next(i for i in tree["features"]["inputs"] if i["name"] == name)
    set_path(column, tail.split("."), value)


def _apply(config: Config, choices: list[Choice]) -> Config:
    """``config`` with ``choices`` set, logged and recorded in ``chosen``; validated again."""
    if not choices:
        return config
    from tfpilot.config.loader import validate_tree

    tree = config.model_dump(mode="json")
    chosen = dict(config.chosen)
    for c in choices:
        _set_key(tree, c.key, c.value)
        chosen[c.key] = f"{chosen[c.key]}; then {c.reason}" if c.key in chosen else c.reason
        log.info("chose %s = %s: %s", c.key, c.value, c.reason)
    tree["chosen"] = chosen
    return validate_tree(tree)


def choose_before_loading(config: Config) -> Config:
    """The image keys a run leaves to tfpilot, chosen before any image is decoded, and the
    memory plan (:mod:`tfpilot.training.memory_plan`).

    From the dataset's file list and a sample of image headers
    (:func:`~tfpilot.data.image_probe.probe_images_of`): ``data.image_size``
    (:func:`choose_image_size`) and, for ``model.name: auto`` on an image folder or CSV, the
    model (:func:`image_recipe`); then the memory plan, which may shrink the image size, the
    batch size or the in-memory cache of what was left to tfpilot, or stop the run with a
    :class:`~tfpilot.training.memory_plan.MemoryBudgetError`. Data without image files (built-in
    arrays, text) is returned as it is.

    Args:
        config: the run config.

    Raises:
        MemoryBudgetError: the run does not fit the machine's memory.
    """
    from tfpilot.data.image_probe import probe_images_of
    from tfpilot.training.memory_plan import plan_memory

    probes = probe_images_of(config)
    if not probes:
        return config
    for p in probes:
        log.info("images: %s", p.describe())
    choices: list[Choice] = []
    classifier = config.features is None
    if classifier and config.model.name == AUTO_MODEL:
        p = probes[0]
        size, _ = choose_image_size(p, AUTO_MODEL)
        channels = {"grayscale": 1, "rgb": 3}.get(config.data.color_mode, p.channels)
        shape = tuple(config.data.image_size) if _is_set(config, "data.image_size") else size
        name, params, reason = image_recipe(p.train_images or p.images, shape, channels)
        choices.append(Choice("model.name", name, reason))
        choices += [Choice(f"model.params.{k}", v, f"the {name} recipe for images") for k, v in params.items()
                    if k not in config.model.params]
    size_chosen, batch_chosen = not config.data.image_size, not _is_set(config, "train.batch_size")
    if size_chosen:
        model = choices[0].value if choices else config.model.name
        largest = max(probes, key=lambda q: max(q.common_size))
        size, reason = choose_image_size(largest, model)
        choices.append(Choice("data.image_size", list(size), reason))
    config = _apply(config, choices)
    changes, _ = plan_memory(config, probes, size_chosen=size_chosen, batch_chosen=batch_chosen)
    return _apply(config, [Choice(k, v, why) for k, (v, why) in changes.items()])
