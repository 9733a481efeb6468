"""Ensembles: one Keras model that averages the class probabilities of several runs' models,
or the heads of several table models with weights chosen on validation (Caruana's ensemble
selection: :func:`caruana_weights`, :func:`build_table_ensemble`, used by
:mod:`tfpilot.training.leaderboard`).

``ensemble(run_dirs, out_dir)`` checks that the members agree (classes, input, test
split), wires ``raw input -> each member -> Average -> probabilities`` into one functional
model and writes a complete run directory, so ``tfpilot evaluate / predict / export /
report`` treat it like any run. Seed 001 §5.3's ``build_ensemble`` re-applied the members'
layers to a new input; here each member stays a nested model (renamed ``member_0``,
``member_1``, ...) and the saved model loads with ``safe_mode=True``.

Example:
    >>> from tfpilot.training.ensemble import ensemble
    >>> run = ensemble(["runs/cnn-seed1", "runs/cnn-seed2"], "runs/cnn-ensemble")  # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP
    0.9915
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot import runs as rundir
from tfpilot.config import load_config
from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import AlreadyExistsError, NotFoundError, UserError
from tfpilot.runs import ENSEMBLE, Run, write_json

#: The ensemble's own record in its run directory: its members and their scores.


def _load_members(run_dirs: Sequence[str | Path]) -> list[Run]:
    if len(run_dirs) < 2:
        raise UserError(f"an ensemble needs at least 2 runs, got {len(run_dirs)}")
    runs = [Run(p) for p in run_dirs]
    seen: dict[Path, int] = {}
    for i, run in enumerate(runs):
        if not run.finished:
            raise NotFoundError(f"{run.path} is not a finished tfpilot run (it needs model.keras and metrics.json)")
        key = run.path.resolve()
        if key in seen:
            raise UserError(f"run {run.path} is listed twice (members {seen[key]} and {i}): list each run once")
        seen[key] = i
    return runs


def check_members(runs: Sequence[Run], allow_different_splits: bool = False) -> None:
    """Raise ValueError unless the runs share class names, input spec and test examples.

    Args:
        runs: the member runs; the first is the reference.
        allow_different_splits: accept members whose test splits differ (then a member
            may have trained on examples the ensemble is tested on).
    """
    first = runs[0]
    names, spec = first.class_names, first.labels["input"]
    for run in runs[1:]:
        if run.class_names != names:
            raise UserError(
                f"{run.path} has classes {run.class_names}, but {first.path} has {names}: "
                "ensemble members must be trained on the same classes, in the same order"
            )
        if run.labels["input"] != spec:
            raise UserError(
                f"{run.path} takes input {run.labels['input']}, but {first.path} takes {spec}: "
                "ensemble members must take the same input (train them at the same data.image_size / color_mode)"
            )
    if allow_different_splits:
        return
    test = _test_ids(first)
    for run in runs[1:]:
        if _test_ids(run) != test:
            raise UserError(
                f"{run.path} was tested on other examples than {first.path} (split.json differs): a member may "
                "have trained on the ensemble's test examples. Train the members with the same data settings "
                "(data.split_seed, test_split, test_limit), or pass allow_different_splits=True "
                "(--allow-different-splits) if you know the test sets are disjoint from every training set."
            )


def _test_ids(run: Run) -> Any:
    path = run.file(rundir.SPLIT)
    if not path.is_file():
        return None
    ids = json.loads(path.read_text(encoding="utf-8")).get("splits", {}).get("test")
    return None if ids is None else sorted(map(str, ids))


def build_ensemble(models: Sequence[Any], name: str = "ensemble") -> Any:
    """``raw input -> each model -> Average`` as one functional Keras model.

    The models are renamed ``member_0``, ``member_1``, ... (their own names may clash)
    and nested unchanged, so their weights are shared, not copied.

    Args:
        models: Keras models with the same input and the same output width.
        name: the ensemble model's name.

    Example:
        >>> model = build_ensemble([run1.load_model(), run2.load_model()])  # doctest: +SKIP
        >>> [layer.name for layer in model.layers]  # doctest: +SKIP
        ['image', 'member_0', 'member_1', 'average']
    """
    import keras

    first = models[0].inputs[0]
    widths = {tuple(m.outputs[0].shape[1:]) for m in models}
    if len(widths) != 1:
        raise UserError(f"the members' outputs differ in shape ({sorted(widths)}): they cannot be averaged")
    for m in models[1:]:
        x = m.inputs[0]
        if tuple(x.shape[1:]) != tuple(first.shape[1:]) or x.dtype != first.dtype:
            raise UserError(f"model {m.name!r} takes {x.dtype}{tuple(x.shape[1:])}, the first takes "
                            f"{first.dtype}{tuple(first.shape[1:])}: ensemble members must take the same input")
    inputs = keras.Input(shape=tuple(first.shape[1:]), dtype=first.dtype, name=first.name)
    outputs = []
    for i, m in enumerate(models):
        m.name = f"member_{i}"
        outputs.append(m(inputs))
    average = keras.layers.Average(name="average", dtype="float32")(outputs)
    return keras.Model(inputs, average, name=name)


#: Rounds of Caruana's ensemble selection (AutoGluon's default is 25 too).
CARUANA_ROUNDS = 25


def head_loss(kind: str, y: np.ndarray, out: np.ndarray) -> float:
    """The loss ensemble selection minimises on one head: log loss of a class head's probabilities
    (a binary head's P(classes[1])), RMSE of a number head's values.

    Example:
        >>> round(head_loss("number", np.array([1.0, 3.0]), np.array([1.0, 1.0])), 4)
        1.4142
        >>> round(head_loss("binary", np.array([1, 0]), np.array([0.9, 0.2])), 4)
        0.1643
    """
    out = np.asarray(out, np.float64)
    if kind == "number":
        return float(np.sqrt(np.mean((out.reshape(-1) - np.asarray(y, np.float64).reshape(-1)) ** 2)))
    y = np.asarray(y).astype(np.int64).reshape(-1)
    probs = np.stack([1.0 - out.reshape(-1), out.reshape(-1)], axis=1) if kind == "binary" else out
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return float(-np.mean(np.log(picked)))


def caruana_weights(outputs: Sequence[dict[str, np.ndarray]], targets: dict[str, np.ndarray],
                    kinds: dict[str, str], rounds: int = CARUANA_ROUNDS) -> tuple[np.ndarray, list[float]]:
    """Caruana et al.'s ensemble selection (2004), as AutoGluon does it: greedy forward selection
    with replacement. Each round adds the member whose addition gives the lowest loss of the
    running average; a member's weight is the share of rounds that picked it.

    The loss of several heads is the sum of each head's :func:`head_loss` divided by the best
    single member's on that head, so heads in different units count alike. Ties go to the
    earlier member. Call it on validation outputs only.

    Args:
        outputs: per member, head key -> its outputs on the same rows.
        targets: head key -> the true class ids / values of those rows.
        kinds: head key -> "category", "binary" or "number".
        rounds: selection rounds (weights are multiples of 1 / rounds).

    Returns:
        ``(weights, losses)``: one weight per member (summing to 1) and the ensemble's loss after
        each round.

    Example:
        >>> y = {"v": np.array([0.0, 2.0])}
        >>> w, _ = caruana_weights([{"v": np.array([1.0, 1.0])}, {"v": np.array([-1.0, 3.0])}], y, {"v": "number"})
        >>> w.tolist()
        [0.52, 0.48]
    """
    if not outputs:
        raise ValueError("ensemble selection needs at least one member")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    keys = list(kinds)
    scale = {k: min(head_loss(kinds[k], targets[k], o[k]) for o in outputs) or 1.0 for k in keys}

    def loss(out: dict[str, np.ndarray]) -> float:
        return sum(head_loss(kinds[k], targets[k], out[k]) / scale[k] for k in keys)

    counts = np.zeros(len(outputs))
    total: dict[str, np.ndarray] = {k: np.zeros_like(np.asarray(outputs[0][k], np.float64)) for k in keys}
    history: list[float] = []
    for r in range(rounds):
        trials = [loss({k: (total[k] + np.asarray(o[k], np.float64)) / (r + 1) for k in keys}) for o in outputs]
        best = int(np.argmin(trials))
        counts[best] += 1
        total = {k: total[k] + np.asarray(outputs[best][k], np.float64) for k in keys}
        history.append(float(trials[best]))
    return counts / rounds, history


def build_table_ensemble(models: Sequence[Any], weights: Sequence[float], name: str = "ensemble") -> Any:
    """``named raw inputs -> each member -> a weighted average per head`` as one functional model
    with the members' named heads, so it evaluates, exports and serves as a single table model.

    Members of weight 0 are left out. Each member stays a nested model (renamed ``member_<i>``,
    its weights shared); each head ends in a :class:`~tfpilot.models.ensemble_layers.WeightedAverage`
    named by the head's key (class probabilities, a binary head's P(classes[1]) and numbers are
    averaged alike).

    Args:
        models: trained table models with the same named inputs and heads.
        weights: one weight per model (normalised to sum to 1).
        name: the ensemble model's name.

    Raises:
        UserError: the members' inputs or heads differ.

    Example:
        >>> model = build_table_ensemble([gbt.model_, nn.model_], [0.6, 0.4])  # doctest: +SKIP
        >>> sorted(model.output)  # doctest: +SKIP
        ['price']
    """
    import keras

    from tfpilot.models.ensemble_layers import WeightedAverage

    if len(models) != len(weights):
        raise ValueError(f"{len(models)} models but {len(weights)} weights")
    kept = [(i, m, float(w)) for i, (m, w) in enumerate(zip(models, weights)) if w > 0]
    if not kept:
        raise UserError("every ensemble weight is 0: nothing to ensemble")
    first = kept[0][1]
    if not isinstance(first.input, dict) or not isinstance(first.output, dict):
        raise UserError(f"{first.name!r} is not a table model (named inputs and heads): use build_ensemble")
    shapes = {k: (tuple(t.shape[1:]), t.dtype) for k, t in first.input.items()}
    heads = {k: tuple(t.shape[1:]) for k, t in first.output.items()}
    for _, m, _ in kept[1:]:
        theirs = {k: (tuple(t.shape[1:]), t.dtype) for k, t in m.input.items()}
        if theirs != shapes or {k: tuple(t.shape[1:]) for k, t in m.output.items()} != heads:
            raise UserError(f"{m.name!r} takes or predicts other columns than {first.name!r}: ensemble members "
                            "must be trained on the same table with the same features")
    inputs = {k: keras.Input(shape=shape, dtype=dtype, name=k) for k, (shape, dtype) in shapes.items()}
    outs = []
    for i, m, _ in kept:
        m.name = f"member_{i}"
        outs.append(m(inputs))
    average = [w for _, _, w in kept]
    outputs = {k: WeightedAverage(average, name=k)([o[k] for o in outs]) for k in heads}
    return keras.Model(inputs, outputs, name=name)


def _split_probabilities(ensemble_model: Any, dataset: Any) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Labels, each member's probabilities and the ensemble's, over a batched ``(x, y)``
    dataset, in one pass of the ensemble's own graph."""
    import keras

    from tfpilot.metrics import to_probabilities

    member_outputs = ensemble_model.get_layer("average").input
    probe = keras.Model(ensemble_model.inputs, [*member_outputs, ensemble_model.outputs[0]])
    ys: list[np.ndarray] = []
    outs: list[list[np.ndarray]] = [[] for _ in range(len(member_outputs) + 1)]
    for x, y in dataset:
        for store, value in zip(outs, probe(x, training=False)):
            store.append(np.asarray(value))
        y = np.asarray(y)
        ys.append(y.argmax(axis=1) if y.ndim == 2 else y)
    probs = [to_probabilities(np.concatenate(o)) for o in outs]
    return np.concatenate(ys).astype(np.int64), probs[:-1], probs[-1]


def evaluate_members(ensemble_model: Any, run: Run, data_dir: str | Path | None = None,
                     batch_size: int = EVAL_BATCH) -> dict[str, dict[str, Any]]:
    """Metrics of the ensemble and of each member on the recorded val and test splits of ``run``.

    The examples are ``run``'s split.json members and the pipeline is the Trainer's (same
    inference pipeline, batch size, top-k), so the numbers compare with the members' own
    ``metrics.json``.

    Returns:
        ``{split: {"ensemble": metrics, "members": [metrics, ...]}}``.

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
    """
    from tfpilot.data import load_run_data, make_pipeline
    from tfpilot.metrics import classification_metrics

    cfg = load_config(run.config_file)
    data = load_run_data(run, data_dir=data_dir, splits=["val", "test"])
    spec = data.input_spec
    decode = spec.decode_target()
    out: dict[str, dict[str, Any]] = {}
    for split in ("val", "test"):
        if split not in data.splits or not len(data.splits[split]):
            continue
        ds = make_pipeline(data.splits[split], max(cfg.train.batch_size, batch_size), training=False,
                           seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer, **decode)
        y, member_probs, probs = _split_probabilities(ensemble_model, ds)
        out[split] = {
            "ensemble": classification_metrics(y, probs, data.class_names, k=cfg.train.top_k),
            "members": [classification_metrics(y, p, data.class_names, k=cfg.train.top_k) for p in member_probs],
        }
    return out


def ensemble(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    allow_different_splits: bool = False,
    data_dir: str | Path | None = None,
) -> Run:
    """Average the probabilities of finished runs; write the ensemble as a run directory.

    ``out_dir`` gets model.keras (the ensemble), labels.json (+ the members),
    config.yaml / split.json / data_report.json (the first member's: the ensemble is
    evaluated on its data), env.json, metrics.json (val/test metrics computed like the
    Trainer's) and ensemble.json (the members, their val/test accuracy on the same
    examples, the ensemble's, and the best member's).

    Args:
        run_dirs: two or more finished runs with the same classes, input and test split.
        out_dir: the ensemble's run directory.
        overwrite: replace a finished run already in ``out_dir``.
        allow_different_splits: accept members tested on different examples.
        data_dir: where to look for the dataset first (default: the first member's config).

    Raises:
        ValueError: fewer than 2 runs, a run listed twice, or members that disagree.
        FileNotFoundError: a run directory that holds no finished run.
        FileExistsError: ``out_dir`` holds a finished run and ``overwrite`` is False.

    Example:
        >>> run = ensemble(["runs/a", "runs/b"], "runs/a+b")  # doctest: +SKIP
        >>> json.loads((run.path / "ensemble.json").read_text())["test_accuracy"]  # doctest: +SKIP
        0.9921
    """
    from tfpilot.training.environment import environment

    runs = _load_members(run_dirs)
    check_members(runs, allow_different_splits=allow_different_splits)
    out = Run(out_dir)
    if out.path.resolve() in {r.path.resolve() for r in runs}:
        raise UserError(f"the ensemble's directory {out.path} is one of its members: choose a new --out")
    if out.finished and not overwrite:
        raise AlreadyExistsError(f"{out.path} already holds a finished run. Choose another --out, or overwrite it.")
    first = runs[0]
    model = build_ensemble([r.load_model() for r in runs])
    scores = evaluate_members(model, first, data_dir=data_dir)  # fails before anything is written
    out.path.mkdir(parents=True, exist_ok=True)
    model.save(out.model_path)

    for name in (rundir.CONFIG, rundir.SPLIT, rundir.DATA_REPORT):
        if first.file(name).is_file():
            shutil.copyfile(first.file(name), out.file(name))
    member_paths = [str(r.path.resolve()) for r in runs]
    labels = dict(first.labels)
    labels.update(model="ensemble", members=member_paths)
    write_json(out.file(rundir.LABELS), labels)
    member_metrics = [r.metrics for r in runs]
    precision = member_metrics[0].get("precision", "float32")
    write_json(out.file(rundir.ENV), environment(precision, load_config(first.config_file).train.seed))

    members = []
    for i, (r, m) in enumerate(zip(runs, member_metrics)):
        entry: dict[str, Any] = {"run": member_paths[i], "model": r.labels.get("model"),
                                 "seed": load_config(r.config_file).train.seed, "params": m.get("params")}
        for split, result in scores.items():
            entry[f"{split}_accuracy"] = result["members"][i]["accuracy"]
        members.append(entry)
    record: dict[str, Any] = {"method": "mean of the members' class probabilities", "members": members}
    for split, result in scores.items():
        record[f"{split}_accuracy"] = result["ensemble"]["accuracy"]
        record[f"best_member_{split}_accuracy"] = max(mm["accuracy"] for mm in result["members"])
    write_json(out.file(ENSEMBLE), record)

    metrics: dict[str, Any] = {
        "train_seconds": round(sum(float(m.get("train_seconds", 0.0)) for m in member_metrics), 3),
        "precision": precision,
        "params": int(model.count_params()),
        "ensemble_of": len(runs),
        **{split: result["ensemble"] for split, result in scores.items()},
    }
    write_json(out.file(rundir.METRICS), metrics)
    return out
