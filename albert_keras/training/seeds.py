"""`finetune --seeds N`: several fine-tuning runs of one task, each judged, the best one kept.

Which seed works decides whether small-data ALBERT fine-tuning learns at all (Mosbach et al., ICLR
2021; we saw a tiny model learn sentence pairs with seeds 3 and 7 and stay at chance with the
default). `finetune_seeds` trains with seeds `seed, seed+1, ...`, judges each run against the
validation set's trivial baseline (`training.baselines`), retries a degenerate run with the next
seed up to `restart_degenerate` times, and reports the mean, standard deviation and best of the
primary metric.

Output directory:
```
OUTPUT/
  pretrained/            the best run's model (highest best validation score)
  runs/seed-S/           each run as `finetune` writes it (evaluations.jsonl, summary.json,
                         logs/); the model directories (pretrained/, best/, checkpoints/) are
                         removed from every run but the best once all runs are done
  summary.json           {"runs": [...], "mean", "std", "best", "degenerate", "baseline", ...}
```
Rerunning the same call after a crash resumes: a finished run (its summary.json written) is read
back, an unfinished one resumes from its checkpoint.
"""

import json
import os
import shutil
import statistics
import sys

from albert_keras.errors import AlbertInputError

RUNS_DIR = "runs"
SUMMARY_FILE = "summary.json"
# What a non-best run no longer needs once its scores are recorded.
MODEL_DIRS = ("pretrained", "best", "checkpoints")


def _run_summary(run_dir):
    path = os.path.join(run_dir, SUMMARY_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _best_value(summary):
    best = summary.get("best")
    return None if best is None else best["metrics"].get(summary["primary_metric"])


def finetune_seeds(task, init_dir, train, validation, output_dir, seeds=1, restart_degenerate=0, seed=12345,
                   **kwargs):
    """Fine-tune `seeds` times with seeds `seed, seed+1, ...`; judge each run; keep the best model.

    Args:
        task: a `--task` name or `FinetuneTask`.
        init_dir: the pretrained directory to start from.
        train: the training file.
        validation: the validation file (required: every run is judged on it).
        output_dir: the run directory (layout in the module docstring).
        seeds: how many runs count (N >= 1).
        restart_degenerate: how many degenerate runs may be replaced, in all, each by a run with
            the next unused seed (K >= 0). A degenerate run that is not replaced still counts.
        seed: the first seed.
        **kwargs: everything else `finetune` takes (`options`, `epochs`, `patience`,
            `reinit_pooler_weights`, `TrainingSettings` fields such as `learning_rate`).

    Returns:
        The summary dict (also `OUTPUT/summary.json`): `runs` (seed, step, best score, degenerate
        verdict, replaced or counted), `counted_seeds`, `mean`, `std` (sample standard deviation;
        0 for one run), `best` (`{"seed", "value", "step"}`), `degenerate` (the seeds judged so),
        `baseline`, `primary_metric` and `pretrained_dir`.

    Example:
    ```python
    from albert_keras.training.seeds import finetune_seeds
    summary = finetune_seeds("classification", "runs/base/pretrained", "train.csv", "dev.csv", "runs/sst",
                             seeds=3, restart_degenerate=2, learning_rate=3e-5)
    summary["mean"], summary["std"], summary["best"]["seed"]
    ```
    """
    from albert_keras.io_utils import atomic_directory
    from albert_keras.io_utils import atomic_write
    from albert_keras.training.finetune import PRETRAINED_DIR
    from albert_keras.training.finetune import finetune

    if validation is None:
        raise AlbertInputError("finetune --seeds/--restart-degenerate: give --validation (every run is judged on it)")
    if int(seeds) < 1:
        raise AlbertInputError(f"finetune --seeds {seeds}: give 1 or more runs")
    if int(restart_degenerate) < 0:
        raise AlbertInputError(f"finetune --restart-degenerate {restart_degenerate}: give 0 or more retries")
    if "settings" in kwargs:
        raise AlbertInputError("finetune_seeds: give TrainingSettings fields as keyword arguments, not settings")
    output_dir = os.fspath(output_dir)
    runs = []
    counted = []
    retries_left = int(restart_degenerate)
    next_seed = int(seed)
    while len(counted) < int(seeds):
        run_seed, next_seed = next_seed, next_seed + 1
        run_dir = os.path.join(output_dir, RUNS_DIR, f"seed-{run_seed}")
        summary = _run_summary(run_dir)
        if summary is None:  # written last: a run without one is new or resumes
            print(f"finetune: run {len(counted) + 1} of {seeds}: seed {run_seed} in {run_dir}", file=sys.stderr)
            summary = finetune(task, init_dir, train, validation, output_dir=run_dir, seed=run_seed, **kwargs)
        else:
            print(f"finetune: seed {run_seed}: finished earlier ({run_dir})", file=sys.stderr)
        degenerate = summary.get("degenerate")
        run = {"seed": run_seed, "dir": run_dir, "step": summary["step"], "value": _best_value(summary),
               "best_step": (summary.get("best") or {}).get("step"), "degenerate": degenerate, "replaced": False}
        runs.append(run)
        if degenerate is not None and retries_left > 0:
            retries_left -= 1
            run["replaced"] = True
            print(f"finetune: seed {run_seed} is degenerate at step {degenerate['step']}; retrying with seed "
                  f"{next_seed} ({retries_left} retries left)", file=sys.stderr)
            continue
        counted.append(run)

    primary = summary["primary_metric"]
    values = [run["value"] for run in counted if run["value"] is not None]
    scored = [run for run in runs if run["value"] is not None]
    best = max(scored, key=lambda run: run["value"]) if scored else runs[-1]
    result = {
        "task": summary["task"],
        "primary_metric": primary,
        "baseline": summary.get("baseline"),
        "runs": runs,
        "counted_seeds": [run["seed"] for run in counted],
        "mean": round(statistics.fmean(values), 6) if values else None,
        "std": round(statistics.stdev(values), 6) if len(values) > 1 else (0.0 if values else None),
        "best": {"seed": best["seed"], "value": best["value"], "step": best["best_step"], "dir": best["dir"]},
        "degenerate": [run["seed"] for run in runs if run["degenerate"] is not None],
        "pretrained_dir": os.path.join(output_dir, PRETRAINED_DIR),
    }
    best_model = os.path.join(best["dir"], PRETRAINED_DIR)
    if os.path.isdir(best_model):  # absent only when not the chief of a multi-worker run
        with atomic_directory(result["pretrained_dir"], overwrite=True) as tmp:
            shutil.copytree(best_model, tmp, dirs_exist_ok=True)
        # One model on disk, not N: the others' scores and logs stay, their weights go.
        for run in runs:
            if run is not best:
                for name in MODEL_DIRS:
                    shutil.rmtree(os.path.join(run["dir"], name), ignore_errors=True)
        with atomic_write(os.path.join(output_dir, SUMMARY_FILE), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
    shown = "n/a" if result["mean"] is None else f"{result['mean']:.4f} +- {result['std']:.4f}"
    best_shown = "n/a" if best["value"] is None else f"{best['value']:.4f}"
    print(f"finetune: {len(counted)} runs (seeds {result['counted_seeds']}): {primary} mean {shown}, best "
          f"{best_shown} (seed {best['seed']}); degenerate: {result['degenerate'] or 'none'}; wrote "
          f"{result['pretrained_dir']}", file=sys.stderr)
    return result
