"""``DIR/tune.html``: one self-contained page (inline PNGs, no scripts, nothing fetched) with
the trials table, the optimisation history, the learning curves the pruner saw, the parameter
importances (Optuna's evaluator) and parallel coordinates.

Example:
    >>> write_html(settings, space, study, Path("tune-out"))  # doctest: +SKIP
    PosixPath('tune-out/tune.html')
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from tfpilot.plotting import ACCENT, TRAIN, VAL, new_figure, to_png
from tfpilot.training.tune.settings import TuneSettings
from tfpilot.training.tune.space import SearchSpace

PAGE = "tune.html"
_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#111}"
          "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}"
          "th{background:#f3f4f6}.COMPLETE{color:#166534}.PRUNED{color:#9a3412}.FAIL{color:#991b1b}"
          "img{max-width:100%}h2{margin-top:1.6em}.note{color:#555}")
_STATE_COLOURS = {"COMPLETE": TRAIN, "PRUNED": VAL, "FAIL": "#991b1b"}


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(to_png(fig)).decode()}">'


def _history(study: Any, settings: TuneSettings) -> str:
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(7, 3.2)
    ax = fig.add_subplot()
    best, best_line = None, []
    better = max if settings.direction == "maximize" else min
    for t in study.trials:
        value = t.value if t.value is not None else (list(t.intermediate_values.values()) or [None])[-1]
        if value is not None:
            ax.scatter(t.number, value, color=_STATE_COLOURS.get(t.state.name, "#888"), s=22,
                       label=t.state.name.lower())
        if t.state.name == "COMPLETE":
            best = t.value if best is None else better(best, t.value)
        best_line.append(best)
    ax.step(range(len(best_line)), [math.nan if b is None else b for b in best_line], where="post", color=ACCENT,
            label="best so far")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(settings.metric)
    return _img(fig, "optimisation history")


def _curves(study: Any, settings: TuneSettings) -> str:
    fig = new_figure(7, 3.2)
    ax = fig.add_subplot()
    for t in study.trials:
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            ax.plot([s + 1 for s in steps], [t.intermediate_values[s] for s in steps],
                    color=_STATE_COLOURS.get(t.state.name, "#888"), alpha=0.7, marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel(settings.metric)
    ax.set_title("per-epoch values reported to the pruner (orange: pruned)", fontsize=9)
    return _img(fig, "learning curves")


def _importances(study: Any) -> str:
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or not complete[0].params:
        return '<p class="note">Importances need at least 2 complete trials.</p>'
    try:
        importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:  # e.g. every completed trial has the same params
        return f'<p class="note">No importances: {html.escape(str(exc))}</p>'
    fig = new_figure(7, 0.5 + 0.4 * len(importances))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color=TRAIN)
    ax.set_xlabel("importance (Optuna's default evaluator, PED-ANOVA; shares sum to 1)")
    return _img(fig, "parameter importances")


def _coordinate(space: SearchSpace, key: str, param: Any) -> float:
    """``param`` on a 0-1 axis: a range linearly (log for log_uniform), a choice by its index."""
    rng = space.ranges[key]
    if rng.kind == "choice":
        from tfpilot.training.tune.space import as_param

        options = [as_param(v) for v in rng.values]
        return options.index(param) / max(len(options) - 1, 1)
    low, high = rng.values
    if rng.kind == "log_uniform":
        return (math.log(param) - math.log(low)) / (math.log(high) - math.log(low))
    return (param - low) / (high - low)


def _parallel(study: Any, space: SearchSpace, settings: TuneSettings) -> str:
    from matplotlib import colormaps
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not trials:
        return '<p class="note">No complete trial yet.</p>'
    keys = list(space.ranges)
    values = [t.value for t in trials]
    low, high = min(values), max(values)
    fig = new_figure(max(5, 1.6 * (len(keys) + 1)), 3.6)
    ax = fig.add_subplot()
    cmap = colormaps["viridis"]
    for t in sorted(trials, key=lambda t: t.value if settings.direction == "maximize" else -t.value):
        ys = [_coordinate(space, k, t.params[k]) for k in keys]
        shade = (t.value - low) / (high - low) if high > low else 1.0
        shade = shade if settings.direction == "maximize" else 1 - shade
        ax.plot(range(len(keys) + 1), [*ys, shade], color=cmap(shade), alpha=0.8)
    ax.set_xticks(range(len(keys) + 1), [*keys, settings.metric], rotation=15, fontsize=8)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title(f"complete trials (colour: {settings.metric}, yellow = best)", fontsize=9)
    return _img(fig, "parallel coordinates")


def _table(study: Any, space: SearchSpace, settings: TuneSettings) -> str:
    keys = list(space.ranges)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["trial", "state", settings.metric, *keys, "epochs", "s", "run"])
    rows = []
    for t in study.trials:
        value = "" if t.value is None else f"{t.value:.4g}"
        cells = [str(t.number), t.state.name, value,
                 *(f"{p:.3g}" if isinstance(p, float) else str(p) for p in (t.params.get(k, "") for k in keys)),
                 str(len(t.intermediate_values)),
                 f"{t.duration.total_seconds():.0f}" if t.duration else "", t.user_attrs.get("run_dir", "")]
        rows.append(f'<tr class="{t.state.name}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_html(settings: TuneSettings, space: SearchSpace, study: Any, out_dir: Path) -> Path:
    """Write ``DIR/tune.html`` and return its path."""
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
    best = ""
    if states.get("COMPLETE"):
        b = study.best_trial
        best = (f"<p>Best: trial {b.number}, {html.escape(settings.metric)} = {b.value:.4g} "
                f"({settings.direction}); its config: <code>best.yaml</code>.</p>")
    body = [f"<h1>tfpilot tune: {html.escape(str(out_dir))}</h1>",
            f"<p>{len(study.trials)} trials ({summary}); pruner {settings.pruner}.</p>", best,
            "<h2>Optimisation history</h2>", _history(study, settings),
            "<h2>Learning curves</h2>", _curves(study, settings),
            "<h2>Parameter importances</h2>", _importances(study),
            "<h2>Parallel coordinates</h2>", _parallel(study, space, settings),
            "<h2>Trials</h2>", _table(study, space, settings)]
    path = out_dir / PAGE
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>tfpilot tune</title>"
                    f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>", encoding="utf-8")
    return path
