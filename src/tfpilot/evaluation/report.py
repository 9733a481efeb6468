"""The evaluation report: one self-contained HTML page per run (``RUN/report.html``) plus
the plots as ``RUN/plots/*.png``, with the same parts for every head.

A category head gets a confusion matrix, per-class metrics, calibration (with ROC /
precision-recall for two classes), its misclassified examples and a sample of correct ones
(a classifier's with Grad-CAM for images, word importance for text; a table's with every
input of the row); a number head gets predicted vs true, the residuals and its largest
errors. A classifier (one head) has them as sections of their own; a table model has a
section per head. Around them: summary, training curves, the data report and the
environment. Images are embedded as base64 PNG and the CSS is inline: the page opens offline
and fetches nothing.

Example:
    >>> import tfpilot
    >>> path = tfpilot.report("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'report.html'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import load_config
from tfpilot.errors import NotFoundError
from tfpilot.evaluation import report_html as H
from tfpilot.evaluation.predictions import SplitPredictions, predict_split, split_metrics
from tfpilot.runs import REPORT, Run

log = logging.getLogger(__name__)

PLOTS = "plots"

#: (anchor, title) of every section of a classifier's report, in order; the browser test checks them all.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("training", "Training curves"),
    ("confusion", "Confusion matrix"),
    ("per-class", "Per-class metrics"),
    ("calibration", "Calibration"),
    ("misclassified", "Misclassified examples"),
    ("correct", "Correct predictions"),
    ("data", "Data"),
    ("environment", "Environment"),
)
TITLES = dict(SECTIONS)


class _Plots:
    """Saves figures under ``RUN/plots`` (named ``<prefix><name>.png``: a table head's carry its
    key) and returns them as embedded ``<img>`` tags."""

    def __init__(self, folder: Path, prefix: str = "") -> None:
        self.folder = folder
        self.prefix = prefix

    def save(self, fig: Any, name: str) -> bytes:
        """Write ``plots/<prefix><name>.png``; returns the PNG bytes."""
        from tfpilot.evaluation.plots import to_png

        return to_png(fig, self.folder / f"{self.prefix}{name}.png")

    def embed(self, fig: Any, name: str, alt: str) -> str:
        """Write ``plots/<name>.png`` and return it as an embedded ``<img>``."""
        return H.img(self.save(fig, name), alt, css="plot")


# -- sections -------------------------------------------------------------------------------
def _tiles(metrics: dict[str, Any], ece: float) -> str:
    items = [("accuracy", metrics["accuracy"]), ("loss", metrics["loss"]),
             (f"top-{metrics['top_k']} accuracy", metrics["top_k_accuracy"]), ("macro F1", metrics["macro_f1"]),
             ("balanced accuracy", metrics["balanced_accuracy"]), ("ECE", ece)]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="v">{v:.4f}</div><div class="k">{H.esc(k)}</div></div>' for k, v in items
    ) + "</div>"


def _sizes(sizes: dict[str, int]) -> str:
    order = sorted(sizes, key=lambda k: (("train", "val", "test").index(k) if k in ("train", "val", "test") else 3, k))
    return ", ".join(f"{k} {sizes[k]:,}" for k in order)


def _short_id(ident: str, parts: int = 3) -> str:
    """``…/test/frog/0938.jpg`` for a long file path; other identifiers as they are."""
    p = Path(ident)
    return ident if len(p.parts) <= parts + 1 else "…/" + "/".join(p.parts[-parts:])


def _hardware(env: dict[str, Any]) -> str:
    hw = env.get("hardware") or {}
    gpus = ", ".join(g.get("name", "?") for g in hw.get("gpus") or [])
    cpu = f"{hw.get('cpu', '?')} ({hw.get('cpu_count', '?')} cores)"
    return H.esc(f"{gpus} + {cpu}" if gpus else cpu)


#: How the summary's head table names a figure.
FIGURE_NAMES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "mape": "MAPE (%)", "baseline_mae": "baseline MAE",
                "accuracy": "accuracy", "macro_f1": "macro F1", "top_k_accuracy": "top-k accuracy",
                "baseline_accuracy": "baseline accuracy", "baseline_rmse": "baseline RMSE",
                "max_error": "max error", "baseline": "baseline (training mean)"}


def _heads_table(metrics: dict[str, Any]) -> str:
    """One row per head: its kind and a column per headline figure (beside its baseline's),
    written with thousands separators."""
    from tfpilot.metrics.heads import headline

    figures = {name: headline(m) for name, m in metrics["heads"].items()}
    columns = list(dict.fromkeys(k for f in figures.values() for k in f))
    rows = [[name, metrics["heads"][name]["kind"], *[f.get(k, "") for k in columns]] for name, f in figures.items()]
    return H.table(["head", "kind", *[FIGURE_NAMES.get(k, k) for k in columns]], rows, css="figures",
                   formatter=H.number)


def summary_section(run: Run, preds: SplitPredictions, metrics: dict[str, Any], env: dict[str, Any],
                    n_bins: int = 15) -> str:
    from tfpilot.evaluation.calibration import expected_calibration_error

    cfg = load_config(run.config_file)
    saved = _read(run, "metrics")
    sizes = (_read(run, "data_report").get("split_sizes") or {})
    train_s = saved.get("train_seconds")
    names = preds.class_names
    pairs = [
        ("dataset", H.esc(cfg.data.dataset)),
        ("classes", H.esc(f"{len(names)}: {', '.join(names[:20])}" + (" ..." if len(names) > 20 else "")))
        if preds.classifier else ("inputs", H.esc(", ".join(f"{c.name} ({c.kind})" for c in preds.spec.inputs))),
        ("split sizes", H.esc(_sizes(sizes) or "not recorded")),
        ("model", H.esc(cfg.model.name + (f" {cfg.model.params}" if cfg.model.params else ""))),
        ("parameters", saved.get("params", "not recorded")),
        ("precision", H.esc(saved.get("precision", env.get("precision", "not recorded")))),
        ("hardware", _hardware(env) if env else "not recorded"),
        ("training time", H.esc(f"{train_s:.1f} s over {saved.get('epochs_run', '?')} epoch(s)")
         if train_s is not None else "not recorded"),
        ("seed", env.get("seed", cfg.train.seed)),
        ("run directory", H.esc(run.path.resolve())),
    ]
    if "accuracy" in saved.get("val", {}):
        pairs.insert(6, ("validation accuracy", H.esc(f"{saved['val']['accuracy']:.4f}")))
    pairs[:0] = tta_lines(run, preds.split, metrics)
    if (saved.get("mode_gap") or {}).get("large"):
        pairs.insert(1, ("warning: train/inference gap", H.esc(_gap_line(saved["mode_gap"]) + "; see Training curves")))
    head = f"<p>Metrics on the <b>{H.esc(preds.split)}</b> split ({len(preds.rows):,} examples).</p>"
    figures = (_tiles(metrics, expected_calibration_error(preds.y_true, preds.probs, n_bins)) if preds.classifier
               else _heads_table(metrics))
    return H.section("summary", TITLES["summary"], head + figures + H.key_values(pairs))


#: A table run's candidates, trained on the same split (written by the leaderboard's trainer).
LEADERBOARD = "leaderboard.csv"


def _cell(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def leaderboard_section(run: Run) -> str:
    """``RUN/leaderboard.csv`` as a table of figures, or "" when the run has none.

    Example:
        >>> leaderboard_section(Run("runs/melbourne"))  # doctest: +SKIP
        '<section id="leaderboard"><h2>Leaderboard</h2>...'
    """
    import csv

    path = run.file(LEADERBOARD)
    if not path.is_file():
        return ""
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    body = H.table(header, [[_cell(v) for v in row] for row in rows], css="figures", formatter=H.number)
    intro = f"<p>Candidates trained on the same split ({H.esc(LEADERBOARD)}).</p>"
    return H.section("leaderboard", "Leaderboard", intro + body)


def tta_lines(run: Run, split: str, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary rows of a test-time-augmented evaluation of ``split`` (``tfpilot evaluate
    --tta``, saved in ``RUN/evaluations/<split>.json``), beside the plain accuracy of each
    category head; none without one."""
    tta = (run.evaluations.get(split) or {}).get("tta")
    if not tta:
        return []
    mode = tta["mode"]
    plain, augmented = (metrics["heads"], tta["heads"]) if "heads" in tta else ({"": metrics}, {"": tta})
    return [(f"accuracy with TTA ({mode})" + (f" of {name}" if name else ""),
             H.esc(f"{m['accuracy']:.4f} (plain {plain[name]['accuracy']:.4f}; from tfpilot evaluate --tta {mode})"))
            for name, m in augmented.items() if "accuracy" in m and name in plain]


def training_section(run: Run, preds: SplitPredictions, plots: _Plots) -> str:
    from tfpilot.evaluation.plots import training_curves

    history = run.history
    if not history:
        return H.section("training", TITLES["training"], H.note("No per-epoch history was recorded (history.csv)."))
    heads = () if preds.classifier else preds.spec.output_keys
    body = plots.embed(training_curves(history, heads), "training_curves", "training curves")
    last = history[-1]
    labels = {"learning_rate": "learning_rate (its first step's)"}
    rows = [[labels.get(k, k), f"{last[k]:.4g}"] for k in ("loss", "accuracy", "val_loss", "val_accuracy",
                                                         "learning_rate", "epoch_seconds") if k in last]
    body += f"<h3>Last epoch ({len(history)} run)</h3>" + H.table(["metric", "value"], rows)
    body += mode_gap_note(_read(run, "metrics").get("mode_gap"))
    return H.section("training", TITLES["training"], body)


def _gap_line(gap: dict[str, Any]) -> str:
    return (f"{gap['inference_mode_accuracy']:.1%} in inference mode vs {gap['training_mode_accuracy']:.1%} in "
            f"training mode on {gap['examples']:,} training examples (gap {100 * gap['gap']:.1f} points"
            + (", large)" if gap.get("large") else ")"))


def mode_gap_note(gap: dict[str, Any] | None) -> str:
    """The train/inference-mode check of metrics.json (``mode_gap``): accuracy of the final model
    in both modes on the same training examples, and what a large gap means.

    Example:
        >>> "large" in mode_gap_note({"examples": 8, "training_mode_accuracy": 0.9, "inference_mode_accuracy": 0.2,
        ...                           "gap": 0.7, "large": True, "message": "inference mode predicts worse"})
        True
    """
    if not gap:
        return ""
    body = "<h3>Training vs inference mode</h3><p>Accuracy of the kept model: " + H.esc(_gap_line(gap)) + ".</p>"
    if gap.get("large"):
        return body + f'<p class="warn" style="color:#b91c1c;font-weight:600">Warning: {H.esc(gap["message"])}</p>'
    return body + H.note("The model predicts as well in inference mode as in training mode.")


def confused_pairs(cm: np.ndarray, class_names: Sequence[str], k: int = 8) -> list[tuple[str, str, int, float]]:
    """The ``k`` largest off-diagonal cells: ``(true, predicted, count, share of the true class)``.

    Example:
        >>> confused_pairs(np.array([[5, 3], [1, 4]]), ["a", "b"], k=1)
        [('a', 'b', 3, 0.375)]
    """
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:k]
    rows = cm.sum(axis=1)
    out = []
    for flat in order:
        i, j = np.unravel_index(flat, cm.shape)
        if off[i, j] == 0:
            break
        out.append((class_names[i], class_names[j], int(off[i, j]), float(off[i, j] / rows[i])))
    return out


def confusion_part(metrics: dict[str, Any], class_names: Sequence[str], plots: _Plots) -> str:
    """A category head's confusion matrix and its most confused pairs."""
    from tfpilot.evaluation.plots import confusion_matrices

    cm = np.asarray(metrics["confusion_matrix"])
    name = "confusion" if plots.prefix else "confusion_matrix"
    body = plots.embed(confusion_matrices(cm, class_names), name, "confusion matrix")
    pairs = confused_pairs(cm, class_names)
    body += "<h3>Most confused pairs</h3>"
    body += H.table(["true", "predicted as", "count", "share of true class"],
                    [[t, p, n, f"{s:.1%}"] for t, p, n, s in pairs]) if pairs else H.note("No confusions.")
    return body


def per_class_part(metrics: dict[str, Any]) -> str:
    """A category head's per-class precision / recall / F1 with the averages (and its baseline)."""
    rows = [[name, m["precision"], m["recall"], m["f1"], m["support"]] for name, m in metrics["per_class"].items()]
    table = H.table(["class", "precision", "recall", "F1", "support"], rows)
    n = metrics["num_examples"]
    avg = "".join(
        f'<tr class="avg"><td>{label}</td><td class="num">{metrics[p + "_precision"]:.4f}</td>'
        f'<td class="num">{metrics[p + "_recall"]:.4f}</td><td class="num">{metrics[p + "_f1"]:.4f}</td>'
        f'<td class="num">{n:,}</td></tr>'
        for label, p in (("macro avg", "macro"), ("weighted avg", "weighted"))
    )
    table = table.replace("</tbody>", avg + "</tbody>")
    pairs = [("accuracy", metrics["accuracy"]), ("balanced accuracy", metrics["balanced_accuracy"]),
             (f"top-{metrics['top_k']} accuracy", metrics["top_k_accuracy"])]
    if "baseline_accuracy" in metrics:
        pairs.append(("baseline accuracy (most frequent training class)", metrics["baseline_accuracy"]))
    extra = H.key_values(pairs)
    return table + extra


def _bins_table(bins: Any) -> str:
    return H.table(["confidence bin", "examples", "mean confidence", "accuracy"],
                   [[f"({bins.edges[i]:.2f}, {bins.edges[i + 1]:.2f}]", int(c), bins.confidence[i], bins.accuracy[i]]
                    for i, c in enumerate(bins.counts) if c > 0])


def calibration_part(preds: SplitPredictions, n_bins: int, plots: _Plots, temperature: float | None = None) -> str:
    """A category head's reliability diagrams and bins, with ROC / precision-recall for two classes.

    Args:
        preds: the head's predictions (the model's, with its temperature when it has one).
        n_bins: confidence bins.
        plots: where the figures go.
        temperature: the head's fitted temperature (``train.calibration``), or None: then the
            diagram is the model's as trained, with how to calibrate it.
    """
    from tfpilot.evaluation.calibration import binary_curves, reliability_bins
    from tfpilot.evaluation.plots import binary_curves_figure, reliability_diagram
    from tfpilot.metrics.calibration import scale_probabilities

    after = reliability_bins(preds.y_true, preds.probs, n_bins)
    if temperature is None:
        text = (f"<p>Expected calibration error <b>{after.ece:.4f}</b> (maximum {after.mce:.4f}) over "
                f"{len(after.counts)} confidence bins: the example-weighted gap between how confident the model "
                "is and how often it is right. The model holds no fitted temperature: "
                "<code>tfpilot evaluate RUN --calibrate</code> fits one on the val split.</p>")
        body = '<div class="cols"><div>' + plots.embed(reliability_diagram(after), "reliability",
                                                       "reliability diagram")
        body += "</div><div>" + text + _bins_table(after) + "</div></div>"
    else:
        before = reliability_bins(preds.y_true, scale_probabilities(preds.probs, 1.0 / temperature), n_bins)
        direction = "softens over-confident" if temperature > 1 else "sharpens under-confident"
        text = (f"<p>A temperature of <b>{temperature:.4f}</b>, fitted on the validation split (NLL), divides "
                f"the head's logits: it {direction} probabilities; the predicted class never changes. Expected "
                f"calibration error over {len(after.counts)} confidence bins on {H.esc(preds.split)}: "
                f"<b>{before.ece:.4f}</b> before, <b>{after.ece:.4f}</b> after (maximum {before.mce:.4f} and "
                f"{after.mce:.4f}). Every export of the model carries the temperature.</p>")
        body = text + '<div class="cols">'
        for name, bins, title in (("reliability_before", before, "Before calibration"),
                                  ("reliability", after, f"After calibration (T = {temperature:.3f})")):
            body += (f'<div class="diagram" data-calibration="{name}">' + plots.embed(
                reliability_diagram(bins, title), name, f"reliability diagram, {title.lower()}") + "</div>")
        body += "</div><details><summary>Bins after calibration</summary>" + _bins_table(after) + "</details>"
    if len(preds.class_names) == 2:
        try:
            curves = binary_curves(preds.y_true, preds.probs, positive=1)
        except ValueError as exc:
            body += H.note(f"ROC and precision-recall curves: {exc}")
        else:
            positive = preds.class_names[1]
            body += "<h3>ROC and precision-recall</h3>" + plots.embed(
                binary_curves_figure(curves, positive), "roc_pr", "ROC and precision-recall curves")
            body += H.key_values([("ROC AUC", curves["roc"]["auc"]),
                                  ("average precision (PR AUC)", curves["pr"]["average_precision"])])
    return body


def _caption(preds: SplitPredictions, i: int) -> str:
    if preds.head.kind == "number":
        t, p = float(preds.y_true[i]), float(np.reshape(preds.outputs[preds.head.key], -1)[i])
        return (f'<div class="cap">true <b>{H.number(t)}</b> &middot; predicted <b>{H.number(p)}</b> &middot; '
                f"|error| {H.number(abs(p - t))}</div>")
    names = preds.class_names
    t, p = int(preds.y_true[i]), int(preds.y_pred[i])
    css = "good" if t == p else "bad"
    return (f'<div class="cap">true <b>{H.esc(names[t])}</b> &middot; predicted <b class="{css}">'
            f"{H.esc(names[p])}</b> ({preds.confidence[i]:.3f}) &middot; loss {preds.losses[i]:.3f}</div>")


def _id_html(ident: str) -> str:
    return f'<div class="id" title="{H.esc(ident)}">{H.esc(_short_id(ident))}</div>'


def _gradcam(model: Any, images: np.ndarray, class_index: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Heatmaps of ``class_index`` and a sentence saying what they show (or why there are none)."""
    from tfpilot.evaluation.gradcam import GradCAM

    try:
        cam = GradCAM(model)
        heat = cam.heatmaps(images, class_index=class_index)
    except ValueError as exc:
        return None, H.note(f"No Grad-CAM: {exc}")
    fh, fw = cam.feature_shape_
    return heat, (f"<p>Each input is followed by the Grad-CAM of the <b>predicted</b> class (layer "
                  f"<code>{H.esc('/'.join(cam.layer_path_))}</code>, a {fh}&times;{fw} feature map): red is "
                  "where the evidence for it was.</p>")


def image_gallery(preds: SplitPredictions, index: np.ndarray, model: Any, plots: _Plots, name: str) -> str:
    """Cards of input | Grad-CAM overlay with labels, confidence and loss; ``plots/<name>.png`` as a grid."""
    from tfpilot.evaluation.gradcam import overlay
    from tfpilot.evaluation.plots import image_grid

    images = preds.inputs(index)
    heat, head = _gradcam(model, images, preds.y_pred[index])
    overlays = [overlay(x, h) for x, h in zip(images, heat)] if heat is not None else None
    cards = []
    for n, (i, ident) in enumerate(zip(index, preds.ids(index))):
        pics = H.img(H.array_png(images[n]), "input")
        if overlays is not None:
            pics += H.img(H.array_png(overlays[n]), "Grad-CAM overlay")
        cards.append(f'<div class="card"><div class="pics">{pics}</div>{_caption(preds, int(i))}'
                     f"{_id_html(ident)}</div>")
    titles = [f"{preds.class_names[preds.y_true[i]]} -> {preds.class_names[preds.y_pred[i]]}" for i in index]
    plots.save(image_grid(overlays if overlays is not None else list(images), titles), name)
    return head + '<div class="gallery">' + "".join(cards) + "</div>"


def text_gallery(preds: SplitPredictions, index: np.ndarray, model: Any, max_words: int = 300) -> str:
    """Cards of reviews with the words that pushed the prediction shaded (occlusion)."""
    from tfpilot.evaluation.explain_text import explain_text

    cards = []
    for text, i, ident in zip(preds.inputs(index), index, preds.ids(index)):
        explanation = explain_text(model, text, class_index=int(preds.y_pred[i]), max_words=max_words)
        top = ", ".join(H.esc(w.text) for w in explanation.top(5, min_share=0.05)) or "(none)"
        cards.append(f'<div class="card">{_caption(preds, int(i))}<div class="cap">words for the prediction: '
                     f'{top}</div><div class="review">{explanation.to_html(max_chars=3000)}</div>'
                     f"{_id_html(ident)}</div>")
    legend = ('<p class="legend">Words are shaded by how much deleting them lowers the predicted class\'s '
              'probability: <span style="background:rgba(22,163,74,.5)">for the prediction</span> '
              '<span style="background:rgba(220,38,38,.5)">against it</span>.</p>')
    return legend + '<div class="gallery text">' + "".join(cards) + "</div>"


def row_gallery(preds: SplitPredictions, index: np.ndarray, max_text: int = 160) -> str:
    """Cards of table rows: their image inputs as thumbnails, the other inputs as text, and the head's figures."""
    values = {c.key: preds.inputs(index, c.key) for c in preds.spec.inputs}
    cards = []
    for n, (i, ident) in enumerate(zip(index, preds.ids(index))):
        pics = "".join(H.img(H.array_png(values[c.key][n]), c.name) for c in preds.spec.inputs if c.kind == "image")
        cells = [(c.name, values[c.key][n]) for c in preds.spec.inputs if c.kind != "image"]
        text = "<br>".join(f"{H.esc(k)}: " + (H.esc(str(v)[:max_text]) if isinstance(v, str) else
                                               H.number(float(v))) for k, v in cells)
        cards.append(f'<div class="card"><div class="pics">{pics}</div>{_caption(preds, int(i))}'
                     f'<div class="cap">{text}</div>{_id_html(ident)}</div>')
    return '<div class="gallery">' + "".join(cards) + "</div>"


def gallery(preds: SplitPredictions, index: np.ndarray, model: Any, plots: _Plots, name: str) -> str:
    """Cards for the examples at ``index``: a classifier's images with Grad-CAM or texts with word
    importance; a table model's rows with every input."""
    if len(index) == 0:
        return ""
    if not preds.classifier:
        return row_gallery(preds, index)
    if preds.spec.inputs[0].kind == "text":
        return text_gallery(preds, index, model)
    return image_gallery(preds, index, model, plots, name)


def misclassified_part(preds: SplitPredictions, model: Any, plots: _Plots, k: int) -> str:
    """The ``k`` misclassified examples of a category head with the highest loss."""
    wrong = np.flatnonzero(preds.y_pred != preds.y_true)
    index = wrong[np.argsort(-preds.losses[wrong], kind="stable")][:k]
    total = f"{len(preds.y_true):,} {H.esc(preds.split)} examples"
    if not len(index):
        return f"<p>None of the {total} is misclassified.</p>"
    return (f"<p>{len(wrong):,} of {total} are misclassified; the {len(index)} with the highest loss:</p>"
            + gallery(preds, index, model, plots, "misclassified"))


def correct_part(preds: SplitPredictions, model: Any, plots: _Plots, k: int, seed: int) -> str:
    """A seeded random sample of ``k`` examples a category head gets right."""
    right = np.flatnonzero(preds.y_pred == preds.y_true)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(right, size=min(k, len(right)), replace=False)) if len(right) else right
    head = f"<p>A random sample of {len(index)} correctly classified examples:</p>"
    body = (gallery(preds, index, model, plots, "correct") if len(index)
            else H.note("No example is classified correctly."))
    return head + body


def number_parts(preds: SplitPredictions, metrics: dict[str, Any], plots: _Plots, k: int) -> list[tuple[str, str]]:
    """A number head's parts: predicted vs true and the residuals, then its ``k`` largest errors."""
    from tfpilot.evaluation.plots import predicted_vs_true, residual_histogram

    y, out, name = preds.y_true, np.reshape(preds.outputs[preds.head.key], -1), preds.head.name
    body = (plots.embed(predicted_vs_true(y, out, name, metrics.get("baseline")), "scatter", "predicted vs true")
            + plots.embed(residual_histogram(y, out, name), "residuals", "residuals"))
    body += H.key_values([(FIGURE_NAMES.get(m, m.replace("_", " ")), metrics[m])
                          for m in ("mae", "rmse", "r2", "mape", "max_error", "baseline", "baseline_mae",
                                    "baseline_rmse") if m in metrics], formatter=H.number)
    index = np.argsort(-np.abs(out - y), kind="stable")[:k]
    return [("Predicted vs true", body), (f"Largest errors ({len(index)} rows)", rows_table(preds, index))]


def rows_table(preds: SplitPredictions, index: np.ndarray, max_text: int = 80) -> str:
    """A number head's rows at ``index`` as a table: the row, true and predicted values, the
    error, then every input (images as thumbnails); it scrolls sideways inside its section."""
    y, out = preds.y_true, np.reshape(preds.outputs[preds.head.key], -1)
    values = {c.key: preds.inputs(index, c.key) for c in preds.spec.inputs}

    def cell(c: Any, v: Any) -> str:
        if c.kind == "image":
            return H.img(H.array_png(v), c.name)
        if isinstance(v, str):
            text = v if len(v) <= max_text else v[: max_text - 1] + "…"
            return f'<span title="{H.esc(v)}">{H.esc(text)}</span>'
        return H.number(float(v))

    head = ["row", f"true {preds.head.name}", "predicted", "error (predicted − true)",
            *[c.name for c in preds.spec.inputs]]
    body = []
    for n, (i, ident) in enumerate(zip(index, preds.ids(index))):
        numbers = [y[i], out[i], out[i] - y[i]]
        cells = [f"<td>{H.esc(ident)}</td>", *[f'<td class="num">{H.number(float(v))}</td>' for v in numbers]]
        for c in preds.spec.inputs:
            v = values[c.key][n]
            css = "text" if c.kind == "text" else "num" if c.kind == "number" else ""
            cells.append(f'<td class="{css}">{cell(c, v)}</td>' if css else f"<td>{cell(c, v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{H.esc(h)}</th>" for h in head)
    return (f'<div class="scroll"><table class="rows"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}'
            "</tbody></table></div>")


def head_sections(preds: SplitPredictions, metrics: dict[str, Any], model: Any, plots: _Plots,
                  shown: tuple[int, int, int, int]) -> list[tuple[str, str, str]]:
    """``(anchor, title, body)`` of every head's parts: a classifier's as sections of their own,
    a table model's as one section per head.

    Args:
        shown: (misclassified, correct, calibration bins, seed) of :func:`report`.
    """
    wrong, right, n_bins, seed = shown

    from tfpilot.models.calibration import temperatures

    temps = temperatures(model)

    def parts(p: SplitPredictions, m: dict[str, Any], pl: _Plots) -> list[tuple[str, str]]:
        if p.head.kind == "number":
            return number_parts(p, m, pl, wrong)
        return [(TITLES["confusion"], confusion_part(m, p.class_names, pl)), (TITLES["per-class"], per_class_part(m)),
                (TITLES["calibration"], calibration_part(p, n_bins, pl, temps.get(p.head.key))),
                (TITLES["misclassified"], misclassified_part(p, model, pl, wrong)),
                (TITLES["correct"], correct_part(p, model, pl, right, seed))]

    if preds.classifier:
        return [(a, t, body) for (a, t), (_, body) in zip(SECTIONS[2:7], parts(preds, metrics, plots))]
    return [(f"head-{h.key}", f"{h.name} ({h.kind})",
             "".join(f"<h3>{H.esc(t)}</h3>{b}" for t, b in
                     parts(preds.at(h.key), metrics["heads"][h.name], _Plots(plots.folder, f"{h.key}_"))))
            for h in preds.spec.outputs]


def data_section(run: Run, preds: SplitPredictions, plots: _Plots) -> str:
    from tfpilot.evaluation.plots import class_balance

    report = _read(run, "data_report")
    if not report:
        return H.section("data", TITLES["data"], H.note("No data report was recorded (data_report.json)."))
    body = H.key_values([("dataset", H.esc(report.get("dataset", ""))), ("source", H.esc(report.get("source", ""))),
                         ("split sizes", H.esc(_sizes(report.get("split_sizes") or {}))),
                         ("skipped files", len(report.get("skipped") or []))])
    if report.get("class_counts"):
        body += plots.embed(class_balance(report["class_counts"]), "class_balance", "class balance")
    if report.get("empty_classes"):
        body += H.note("Empty classes: " + ", ".join(report["empty_classes"]))
    skipped = report.get("skipped") or []
    if skipped:
        body += f"<h3>Skipped files ({len(skipped):,})</h3>" + H.table(
            ["file", "reason"], [[s["path"], s["reason"]] for s in skipped[:50]])
        if len(skipped) > 50:
            body += H.note(f"... and {len(skipped) - 50:,} more (see data_report.json).")
    if report.get("notes"):
        body += "<h3>Notes</h3><ul>" + "".join(f"<li>{H.esc(n)}</li>" for n in report["notes"]) + "</ul>"
    if getattr(preds.data, "schema", None):  # a table: the resolved column types
        body += "<h3>Schema</h3>" + H.table(["role", "column", "type", "why"],
                                            [[c.role, c.name, c.kind, c.how] for c in preds.data.schema])
    return H.section("data", TITLES["data"], body)


def environment_section(run: Run, env: dict[str, Any]) -> str:
    body = ""
    if env:
        git = env.get("git") or {}
        body += H.key_values([
            ("python", H.esc(env.get("python", ""))),
            ("hardware", _hardware(env)),
            ("platform", H.esc((env.get("hardware") or {}).get("platform", ""))),
            ("bfloat16 CPU flags", H.esc(", ".join((env.get("hardware") or {}).get("cpu_bf16") or []) or "none")),
            ("git", H.esc(f"{git.get('commit', '')}{' (uncommitted changes)' if git.get('dirty') else ''}"
                          if git else "not a git checkout")),
            ("command", H.esc(" ".join(env.get("command") or []))),
        ])
        packages = env.get("packages") or {}
        body += "<h3>Packages</h3>" + H.table(["package", "version"],
                                              [[k, v] for k, v in packages.items() if v])
    else:
        body += H.note("No environment was recorded (env.json).")
    config = run.file("config.yaml").read_text(encoding="utf-8")
    body += f"<h3>Resolved config (config.yaml)</h3><pre>{H.esc(config)}</pre>"
    return H.section("environment", TITLES["environment"], body)


# -- the report -----------------------------------------------------------------------------
def _read(run: Run, what: str) -> dict[str, Any]:
    """``run.<what>`` (metrics, env, data_report), or {} when the file is missing."""
    try:
        return getattr(run, what)
    except FileNotFoundError:
        return {}


def report(
    run: str | Path | Run,
    split: str | None = None,
    model: Any = None,
    data: Any = None,
    misclassified: int = 16,
    correct: int = 8,
    n_bins: int = 15,
    seed: int = 0,
    out: str | Path | None = None,
) -> Path:
    """Write ``RUN/report.html`` (and ``RUN/plots/*.png``) for a finished run.

    Args:
        run: the run directory (or :class:`~tfpilot.training.Run`).
        split: the split the report evaluates; default "test" ("val" when the run has no test split).
        model: the trained model when already in memory (default: load ``model.keras``).
        data: the run's prepared data when already in memory (default: rebuilt from the config).
        misclassified: how many of the highest-loss misclassified examples to show.
        correct: how many correct predictions to show (a seeded random sample).
        n_bins: confidence bins of the reliability diagram.
        seed: seed of the correct-prediction sample.
        out: where to write the HTML (default ``RUN/report.html``).

    Returns:
        The path of the HTML file.

    Example:
        >>> from tfpilot.evaluation.report import report
        >>> report("runs/cifar_cnn-cifar10-20260101-120000")  # doctest: +SKIP
        PosixPath('runs/cifar_cnn-cifar10-20260101-120000/report.html')
    """
    run = run if isinstance(run, Run) else Run(run)
    if not run.finished or not run.file("labels.json").is_file():
        raise NotFoundError(f"{run.path} is not a finished tfpilot run (it needs model.keras, labels.json and "
                            "metrics.json): train it first with `tfpilot train`")
    if split is None:
        saved = _read(run, "metrics")
        split = "test" if "test" in saved or "val" not in saved else "val"
    model = model if model is not None else run.load_model()
    preds = predict_split(run, split, model=model, data=data)
    cfg = load_config(run.config_file)
    metrics = split_metrics(preds, cfg.train.top_k)
    env = _read(run, "env")
    plots = _Plots(run.path / PLOTS)
    heads = head_sections(preds, metrics, model, plots, (misclassified, correct, n_bins, seed))
    board = leaderboard_section(run)
    sections = [summary_section(run, preds, metrics, env, n_bins), *([board] if board else []),
                training_section(run, preds, plots),
                *[H.section(*part) for part in heads], data_section(run, preds, plots), environment_section(run, env)]
    title = f"{cfg.model.name} on {Path(cfg.data.dataset).name or cfg.data.dataset}"
    figure = f"{preds.split} accuracy {metrics['accuracy']:.4f} · " if preds.classifier else f"{preds.split}: "
    subtitle = (f"{figure}{len(preds.rows):,} examples · "
                f"run {run.path.name} · report written {datetime.now():%Y-%m-%d %H:%M}")
    path = Path(out) if out is not None else run.file(REPORT)
    path.parent.mkdir(parents=True, exist_ok=True)
    nav = [SECTIONS[0], *([("leaderboard", "Leaderboard")] if board else []), SECTIONS[1],
           *[(anchor, title) for anchor, title, _ in heads], *SECTIONS[7:]]
    path.write_text(H.page(f"tfpilot report: {title}", subtitle, nav, sections), encoding="utf-8")
    log.debug("report written to %s", path)
    return path



def report_after_training(trainer: Any, **kwargs: Any) -> Path | None:
    """The report of a :class:`~tfpilot.training.Trainer` that just finished (its model and data
    are reused from memory). A failure is logged, not raised: the trained run is kept and
    ``tfpilot report RUN`` can retry.

    Args:
        trainer: a fitted Trainer (``run_``, ``model_``, ``data_`` set).
        **kwargs: passed to :func:`report`.
    """
    try:
        return report(trainer.run_, model=trainer.model_, data=trainer.data_, **kwargs)
    except Exception as exc:  # noqa: BLE001 -- never lose a finished training run to a plot
        log.warning("the report could not be written (%s: %s); retry with `tfpilot report %s`",
                    type(exc).__name__, exc, trainer.run_.path)
        return None
