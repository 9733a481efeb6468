"""The report of a table model: one self-contained HTML page (``RUN/report.html``), one section per head.

Sections: summary (every head's headline figures beside its baseline), training curves
(total and per-head losses), then per head -- category / binary: the confusion matrix and
per-class precision / recall / F1; number: predicted vs true and the residual histogram --
each with its worst rows (misclassified with the highest loss, or the largest errors) shown
with their image thumbnail, text and other inputs; then the data (schema, skipped rows)
and the resolved config.

Example:
    >>> from tfpilot.evaluation.table_report import table_report
    >>> table_report("runs/multitask-table")  # doctest: +SKIP
    PosixPath('runs/multitask-table/report.html')
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.evaluation import report_html as H
from tfpilot.runs import REPORT, Run

PLOTS = "plots"


def _save(fig: Any, folder: Path, name: str, alt: str) -> str:
    from tfpilot.plotting import to_png

    return H.img(to_png(fig, folder / f"{name}.png"), alt, css="plot")


def _row_cells(spec: Any, part: Any, i: int, max_text: int = 160) -> list[str]:
    """HTML cells of row ``i``'s inputs: image thumbnails, texts (cut), numbers, categories."""
    cells = []
    for c in spec.inputs:
        v = part.inputs[c.key][i]
        if c.kind == "image":
            if np.asarray(v).dtype == object:  # a path, not decoded in memory
                from PIL import Image

                with Image.open(str(v)) as im:
                    v = np.asarray(im.convert("RGB" if c.shape[2] == 3 else "L").resize((c.shape[1], c.shape[0])))
            cells.append(H.img(H.array_png(np.asarray(v)), c.name, width=64))
        elif c.kind == "number":
            cells.append("missing" if np.isnan(v) else H.fmt(float(v)))
        else:
            text = str(v)
            cells.append(H.esc(text if len(text) <= max_text else text[: max_text - 3] + "..."))
    return cells


def _worst_rows(spec: Any, head: Any, part: Any, out: np.ndarray, k: int) -> str:
    """The ``k`` rows the head gets most wrong, with their inputs."""
    y = part.targets[head.key]
    if head.kind == "number":
        err = np.abs(out - y)
        order = np.argsort(-err)[:k]
        shown = [(i, H.fmt(float(y[i])), H.fmt(float(out[i])), H.fmt(float(err[i]))) for i in order]
        cols = ["true", "predicted", "|error|"]
        title = f"Largest errors ({len(order)} rows)"
    else:
        from tfpilot.metrics.heads import as_probabilities

        probs = as_probabilities(head.kind, out)
        yi = y.astype(np.int64)
        pred = probs.argmax(1)
        loss = -np.log(np.clip(probs[np.arange(len(yi)), yi], 1e-7, 1.0))
        wrong = np.flatnonzero(pred != yi)
        order = wrong[np.argsort(-loss[wrong])][:k]
        shown = [(i, H.esc(head.classes[yi[i]]), H.esc(head.classes[pred[i]]), H.fmt(float(probs[i, pred[i]])))
                 for i in order]
        cols = ["true", "predicted", "confidence"]
        title = f"Misclassified rows with the highest loss ({len(order)} of {len(wrong)} wrong)"
    if not shown:
        return H.note("No wrong predictions on this split.")
    rows = [[f"row {int(part.ids[i]) + 1}", *_row_cells(spec, part, i), a, b, c] for i, a, b, c in shown]
    return f"<h3>{H.esc(title)}</h3>" + H.table(["row", *[c.name for c in spec.inputs], *cols], rows, raw=True)


def _head_section(spec: Any, head: Any, metrics: dict[str, Any], part: Any, out: np.ndarray, plots: Path,
                  k: int, baseline: float | None) -> str:
    from tfpilot.evaluation.plots import confusion_matrices
    from tfpilot.evaluation.regression_report import predicted_vs_true, residual_histogram

    m = metrics["heads"][head.name]
    if head.kind == "number":
        y = part.targets[head.key]
        body = (_save(predicted_vs_true(y, out, head.name, baseline), plots, f"{head.key}_scatter", "predicted vs true")
                + _save(residual_histogram(y, out, head.name), plots, f"{head.key}_residuals", "residuals"))
        body += H.key_values([(k_, m[k_]) for k_ in ("mae", "rmse", "r2", "mape", "max_error", "baseline",
                                                     "baseline_mae", "baseline_rmse") if k_ in m])
    else:
        cm = np.asarray(m["confusion_matrix"])
        body = _save(confusion_matrices(cm, head.classes), plots, f"{head.key}_confusion", "confusion matrix")
        rows = [[name, c["precision"], c["recall"], c["f1"], c["support"]] for name, c in m["per_class"].items()]
        body += H.table(["class", "precision", "recall", "F1", "support"], rows)
        body += H.key_values([("accuracy", m["accuracy"]), ("macro F1", m["macro_f1"]),
                              ("balanced accuracy", m["balanced_accuracy"]),
                              ("baseline accuracy (most frequent training class)", m.get("baseline_accuracy", ""))])
    body += _worst_rows(spec, head, part, out, k)
    return H.section(f"head-{head.key}", f"{head.name} ({head.kind})", body)


def table_report(run: str | Path | Run, split: str | None = None, model: Any = None, data: Any = None,
                 rows: int = 12, out: str | Path | None = None) -> Path:
    """Write ``RUN/report.html`` (and ``RUN/plots/*.png``) for a finished table run.

    Args:
        run: the run directory.
        split: the rows the report evaluates (default "test", else "val").
        model: the trained model when in memory (default: load ``model.keras``).
        data: the run's :class:`~tfpilot.data.table.TableData` when in memory (default: re-read the table).
        rows: how many worst rows each head shows.
        out: where to write the HTML (default ``RUN/report.html``).
    """
    from tfpilot.config import load_config
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.evaluation.regression_report import head_curves
    from tfpilot.evaluation.table_eval import table_run_data
    from tfpilot.metrics.heads import baselines, head_metrics, headline

    run = run if isinstance(run, Run) else Run(run)
    cfg = load_config(run.config_file)
    data = data if data is not None else table_run_data(run)
    split = split or ("test" if "test" in data.splits else "val")
    part = data.splits[split]
    spec = data.spec
    model = model if model is not None else run.load_model()
    outputs = predict_heads(model, part, spec)
    base = baselines(spec, data.splits["train"].targets)
    metrics = head_metrics(spec, part.targets, outputs, base, top_k=cfg.train.top_k)
    plots = run.path / PLOTS
    summary = H.table(["head", "kind", "figures"],
                      [[name, m["kind"], "  ".join(f"{k} {H.fmt(v)}" for k, v in headline(m).items())]
                       for name, m in metrics["heads"].items()])
    sections = [H.section("summary", "Summary", summary + H.key_values([
        ("rows evaluated", f"{len(part):,} ({split})"), ("inputs", ", ".join(f"{c.name} ({c.kind})" for c in spec.inputs)),
        ("train seconds", run.metrics.get("train_seconds", "")), ("precision", run.metrics.get("precision", ""))]))]
    nav = [("summary", "Summary")]
    history = run.history
    if history:
        sections.append(H.section("training", "Training curves",
                                  _save(head_curves(history, spec.output_keys), plots, "head_curves", "losses")))
        nav.append(("training", "Training curves"))
    for head in spec.outputs:
        b = base[head.key] if head.kind == "number" else None
        sections.append(_head_section(spec, head, metrics, part, outputs[head.key], plots, rows, b))
        nav.append((f"head-{head.key}", head.name))
    report = data.report.to_dict()
    skipped = report.get("skipped", [])[:50]
    body = H.key_values([("table", H.esc(data.source)), ("split sizes", H.esc(report.get("split_sizes"))),
                         ("rows skipped", len(report.get("skipped", [])))])
    body += "<h3>Schema</h3>" + H.table(["role", "column", "type", "why"],
                                        [[c.role, c.name, c.kind, c.how] for c in data.schema])
    if report.get("notes"):
        body += "<h3>Notes</h3>" + "".join(H.note(n) for n in report["notes"])
    if skipped:
        body += "<h3>Skipped rows</h3>" + H.table(["what", "why"], [[s["path"], s["reason"]] for s in skipped])
    sections.append(H.section("data", "Data", body))
    config = run.file("config.yaml").read_text(encoding="utf-8")
    sections.append(H.section("environment", "Config", f"<pre>{H.esc(config)}</pre>"))
    nav += [("data", "Data"), ("environment", "Config")]
    subtitle = f"{split}: {len(part):,} rows · run {run.path.name} · report written {datetime.now():%Y-%m-%d %H:%M}"
    path = Path(out) if out is not None else run.file(REPORT)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"multitask on {Path(cfg.data.dataset).name or cfg.data.dataset}"
    path.write_text(H.page(f"tfpilot report: {title}", subtitle, nav, sections), encoding="utf-8")
    return path
