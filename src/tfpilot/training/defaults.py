"""Defaults chosen from the data: the one place where a run's unset keys get values that fit
what was loaded, each with its reason.

When training starts and the data is prepared, :func:`choose_defaults` fills what the user
left to tfpilot:

* ``model.name: auto`` (the default) -- a model for the data's kind. Text: a bag of word or
  character n-grams into a linear softmax (tf-idf, Naive-Bayes weights for two classes), the
  strongest and fastest text model of the zoo on IMDB and on Chinese hotel reviews
  (``docs/benchmarks.md``, ``bench/cjk_text.py``), with its training recipe (epochs, batch,
  learning rate) for any of those keys the user did not set. Images: ``mnist_cnn``, the
  image default so far. A table trained by one Trainer: ``multitask`` (``tfpilot train`` on a
  table trains the leaderboard of :mod:`tfpilot.training.leaderboard` instead).
* ``model.params.tokenize`` of a text model, unless given: "chars" when most letters are
  of a script written without spaces (Chinese, Japanese, Thai, ...), else "words"
  (:func:`tfpilot.data.text.profile_texts`).

Nothing the user set is changed: a key counts as set when the YAML, a flag or ``--set`` gave
it (pydantic's ``model_fields_set``). Each choice is logged and recorded with its reason in
the resolved config's ``chosen`` (``config.yaml`` of the run), which names the chosen values
themselves, so ``tfpilot train RUN/config.yaml`` repeats the run without choosing again.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="reviews.csv")  # doctest: +SKIP
    >>> cfg = choose_defaults(cfg, prepare_data(cfg.data))  # doctest: +SKIP
    >>> cfg.model.name, cfg.chosen["model.name"]  # doctest: +SKIP
    ('ngram_mlp', 'text (5,436 texts, median 86 characters / 1 words, 99% of letters Chinese): ...')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tfpilot.config import Config
from tfpilot.config.schema import AUTO_MODEL

log = logging.getLogger(__name__)

#: The image model of ``model.name: auto`` (today's default; image models by data size later).
IMAGE_MODEL = "mnist_cnn"
#: The text model of ``model.name: auto``.
TEXT_MODEL = "ngram_mlp"
#: The table model of ``model.name: auto`` when one Trainer trains one model (``tfpilot train``
#: trains the leaderboard instead: :mod:`tfpilot.training.leaderboard`).
TABLE_MODEL = "multitask"


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


def text_recipe(profile: Any, num_classes: int, batch_size: int | None = None
                ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The default text model's params and training keys for a corpus, and why.

    A linear model over a bag of 1- to 3-grams (sublinear tf-idf, L2-normalised; Naive-Bayes
    log-count ratios for two classes): words for spaced scripts, characters for scripts
    written without spaces. Small corpora take more epochs (the same number of optimizer
    steps as IMDB's recipe, at least).

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
    params = {
        "vocab_size": 200_000, "ngrams": 3, "output_mode": "tf_idf", "sublinear_tf": True, "normalize": True,
        "naive_bayes": num_classes == 2, "hidden_units": [], "tokenize": profile.tokenize,
    }
    batch = batch_size or 512
    steps_per_epoch = max(1, -(-profile.texts // batch))
    epochs = int(min(20, max(2, -(-80 // steps_per_epoch))))  # >= ~80 steps: IMDB's 2 epochs of 46
    train = {"train.epochs": epochs, "train.batch_size": batch, "train.optimizer.learning_rate": 0.02,
             "train.callbacks.early_stopping.patience": 2}
    grams = "character" if chars else "word"
    nb = ", Naive-Bayes weighted" if num_classes == 2 else ""
    reason = (f"text ({profile.describe()}): a linear model on tf-idf of {grams} 1- to 3-grams{nb} -- the "
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


def _choices(config: Config, data: Any) -> list[Choice]:
    """What to choose for ``config`` on ``data`` (see the module docstring)."""
    if config.features is not None:  # a table model: its columns are chosen by the table code
        if config.model.name != AUTO_MODEL:
            return []
        return [Choice("model.name", TABLE_MODEL, "a table, trained as one model: the neural table model (`tfpilot "
                       "train` with model.name auto trains the leaderboard of table models and their ensemble, "
                       "training/leaderboard.py)")]
    spec = data.input_spec
    profile = None
    if spec.kind == "text":
        from tfpilot.data.text import profile_texts

        profile = profile_texts(data.splits["train"].x)
        log.info("text profile of the training split: %s", profile.describe())
    if config.model.name != AUTO_MODEL:
        return _tokenize_choice(config, config.model.name, profile)
    if profile is None:
        return [Choice("model.name", IMAGE_MODEL, f"{spec.kind} data: {IMAGE_MODEL}, the default image model (the "
                       "model is not yet chosen by image size and count)")]
    return _text_model_choices(config, profile, data.num_classes)


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


def choose_defaults(config: Config, data: Any) -> Config:
    """``config`` with the keys it leaves to tfpilot chosen from ``data`` (logged and recorded
    in ``config.chosen``); validated again, so the model's params are checked against the
    model chosen.

    Args:
        config: the run config.
        data: the prepared data (:class:`~tfpilot.data.PreparedData` or a table's).

    Returns:
        The resolved config (``config`` itself when nothing was left to choose).

    Raises:
        ConfigError: a given key does not fit the model chosen (e.g. ``model.params`` the
            chosen model does not take).
    """
    choices = _choices(config, data)
    if not choices:
        return config
    from tfpilot.config.loader import set_path, validate_tree

    tree = config.model_dump(mode="json")
    chosen = dict(config.chosen)
    for c in choices:
        set_path(tree, c.key.split("."), c.value)
        chosen[c.key] = c.reason
        log.info("chose %s = %s: %s", c.key, c.value, c.reason)
    tree["chosen"] = chosen
    return validate_tree(tree)
