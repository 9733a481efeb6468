"""Validation-only evidence for the leaderboard's next candidate (issue 26, docs/bench/refit.md).

On the splits of a finished ``bench/tables.py`` invocation (``--bench`` = its ``--out``), this trains
YDF gradient-boosted variants through tfpilot's one fit path (:class:`~tfpilot.training.Trainer`,
each run's own resolved config with another ``model``), saves their validation predictions beside
the bench run's candidates' (``dump``), and scores sets of them as Caruana ensembles honestly on
val: weights fitted on one half of the validation rows and scored on the other half, both ways,
over 5 random halvings (``score``). The test rows are never read.

Usage::

    PYTHONPATH=src nice -n 5 .venv/bin/python bench/refit_lever.py fit --bench /tmp/refit-bench/mel-auto \\
        --table melbourne --seeds 0 1 2 --variants rank1 rank1_b rank1_s05 bfg --out /tmp/refit-lever/melbourne
    PYTHONPATH=src .venv/bin/python bench/refit_lever.py dump --bench /tmp/refit-bench/mel-auto --table auto_mpg \\
        --seeds 0 1 2 3 4 --out /tmp/refit-lever/auto_mpg
    PYTHONPATH=src .venv/bin/python bench/refit_lever.py score --table melbourne --seeds 0 1 2 \\
        --out /tmp/refit-lever/melbourne --combos rank1+bfg rank1_s05+rank1+bfg
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

TARGETS = {"melbourne": "Price", "auto_mpg": "mpg"}
CANDIDATES = ("multitask", "linear", "ydf_gbt_rank1", "ydf_gbt_bfg")


def variants() -> dict[str, tuple[dict, int]]:
    """Variant name -> (ydf_gbt params, train.seed)."""
    from tfpilot.training.leaderboard import BENCHMARK_RANK1, BEST_FIRST

    return {
        "rank1": (BENCHMARK_RANK1, 42), "rank1_b": (BENCHMARK_RANK1, 7),
        "rank1_s05": ({**BENCHMARK_RANK1, "shrinkage": 0.05, "num_trees": 1000}, 42),
        "rank1_300": ({**BENCHMARK_RANK1, "num_trees": 300, "early_stopping": "NONE"}, 42),
        "rank1_minloss": ({**BENCHMARK_RANK1, "early_stopping": "MIN_LOSS_FINAL"}, 42),
        "bfg": (BEST_FIRST, 42),
    }


def fit(bench: Path, table: str, seeds: list[int], names: list[str], out: Path) -> None:
    """Train each variant on each seed's train rows; save its validation predictions and figures."""
    from tfpilot.config import load_config
    from tfpilot.config.loader import validate_tree
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.training import Trainer

    target, known = TARGETS[table], variants()
    state = out / "results.json"
    results = json.loads(state.read_text()) if state.is_file() else {}
    for seed in seeds:
        base = load_config(bench / table / f"seed{seed}" / "config.yaml").model_dump(mode="json")
        for name in names:
            params, train_seed = known[name]
            tree = json.loads(json.dumps(base))
            tree["model"] = {"name": "ydf_gbt", "params": dict(params)}
            tree["train"].update(seed=train_seed, refit=True, preset="fast", time_limit=None, candidates=None)
            tree["output"] = {**tree["output"], "run_dir": str(out / f"s{seed}-{name}"), "overwrite": True}
            tree["chosen"] = {}
            cpu, wall = time.process_time(), time.perf_counter()
            trainer = Trainer(validate_tree(tree)).fit()
            val = trainer.data_.splits["val"]
            pred = np.asarray(predict_heads(trainer.model_, val, trainer.data_.spec, 256)[target]).reshape(-1)
            np.save(out / f"s{seed}-{name}-val.npy", pred)
            np.save(out / f"s{seed}-val-y.npy", np.asarray(val.targets[target]).reshape(-1))
            heads = trainer.run_.metrics["val"]["heads"][target]
            results[f"{seed}/{name}"] = {"val_rmse": heads["rmse"], "val_mae": heads["mae"],
                                         "fit_s": trainer.run_.metrics["train_seconds"],
                                         "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
            print(seed, name, results[f"{seed}/{name}"], flush=True)
            state.write_text(json.dumps(results, indent=1))


def dump(bench: Path, table: str, seeds: list[int], out: Path) -> None:
    """The validation predictions of the bench run's own candidates (their first fits), as ``c_<name>``."""
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.evaluation.predictions import table_run_data
    from tfpilot.runs import Run

    target = TARGETS[table]
    for seed in seeds:
        for name in CANDIDATES:
            run = Run(bench / table / f"seed{seed}" / "candidates" / name)
            data = table_run_data(run)
            pred = np.asarray(predict_heads(run.load_model(), data.splits["val"], data.spec, 256)[target]).reshape(-1)
            np.save(out / f"s{seed}-c_{name}-val.npy", pred)
            np.save(out / f"s{seed}-val-y.npy", np.asarray(data.splits["val"].targets[target]).reshape(-1))


def score(table: str, seeds: list[int], out: Path, combos: list[str], repeats: int = 5) -> None:
    """Each set's Caruana ensemble, weights fitted on half of val and scored on the other half."""
    from tfpilot.training.ensemble import caruana_weights

    target = TARGETS[table]
    for combo in combos:
        names, rmse, mae = combo.split("+"), [], []
        for seed in seeds:
            y = np.load(out / f"s{seed}-val-y.npy")
            preds = [np.load(out / f"s{seed}-{n}-val.npy") for n in names]
            se, ae = np.zeros(len(y)), np.zeros(len(y))
            for rep in range(repeats):
                idx = np.random.default_rng(rep).permutation(len(y))
                halves = (idx[: len(y) // 2], idx[len(y) // 2:])
                for a, b in (halves, halves[::-1]):
                    w, _ = caruana_weights([{target: p[a]} for p in preds], {target: y[a]}, {target: "number"})
                    pred = sum(wi * p[b] for wi, p in zip(w, preds))
                    se[b] += (pred - y[b]) ** 2 / repeats
                    ae[b] += np.abs(pred - y[b]) / repeats
            rmse.append(float(np.sqrt(se.mean())))
            mae.append(float(ae.mean()))
        print(f"{combo:50s} val RMSE {np.mean(rmse):.5g} ({' '.join(f'{v:.4g}' for v in rmse)})  "
              f"val MAE {np.mean(mae):.5g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["fit", "dump", "score"])
    ap.add_argument("--bench", type=Path)
    ap.add_argument("--table", choices=list(TARGETS), required=True)
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--variants", nargs="+", default=["rank1", "rank1_b", "rank1_s05", "bfg"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--combos", nargs="+", default=[], help="score: sets of variants, e.g. rank1+bfg")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "fit":
        fit(args.bench, args.table, args.seeds, args.variants, args.out)
    elif args.step == "dump":
        dump(args.bench, args.table, args.seeds, args.out)
    else:
        score(args.table, args.seeds, args.out, args.combos)


if __name__ == "__main__":
    main()
