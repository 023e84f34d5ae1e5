"""The end of a training run, the same for `pretrain` and `finetune`.

Both entry points end alike: the loop's final checkpoint is written (`TrainingLoop.finish`), the
summary starts with the same fields (steps, resume point, seconds, strategy, replicas, precision),
the chief writes the result as a pretrained directory and then `summary.json` (atomically, last:
a run whose summary exists is finished), and every worker prints one line with the result. Only
what the summary adds and how the result is saved differ; they come in as arguments.
"""

import json
import os
import sys

from albert_keras import io_utils

PRETRAINED_DIR = "pretrained"
SUMMARY_FILE = "summary.json"


def run_summary(loop, final_step, seconds, **fields):
    """The summary fields every run has, followed by the entry point's own `fields`.

    Args:
        loop: the run's `TrainingLoop` (after `fit`).
        final_step: the step the run ended at (`TrainingLoop.finish()`).
        seconds: the training time of this run.
        **fields: what the entry point adds (`train`, `eval`, `best`, ...).

    Example:
    ```python
    summary = run_summary(loop, loop.finish(), 12.5, train={"loss": 0.4})
    summary["steps_this_run"]  # final step minus the step the run resumed from
    ```
    """
    return {
        "step": final_step,
        "steps_this_run": final_step - loop.start_step,
        "resumed_from": loop.start_step,
        "seconds": round(seconds, 3),
        "strategy": type(loop.strategy).__name__,
        "replicas": loop.strategy.num_replicas_in_sync,
        "precision": loop.settings.precision,
        "pretrained_dir": os.path.join(loop.settings.output_dir, PRETRAINED_DIR),
        **fields,
    }


def end_run(loop, summary, save_result, result_line):
    """Write the run's result and `summary.json` (the chief only), print the one-line result.

    Args:
        loop: the run's `TrainingLoop`.
        summary: the summary dict (`run_summary(...)`); its `pretrained_dir` is where the result goes.
        save_result: function of the result directory that writes the pretrained directory there
            (atomically: nothing half-written under the final name); called on the chief only.
        result_line: the result after `"{name}: step {step}/{num_train_steps}"` (for example
            `" in 12.5s, loss 0.41"`); the line ends with where the result went.

    Returns:
        `summary`.

    Example:
    ```python
    end_run(loop, summary, lambda directory: model.save_pretrained(directory), f" in {seconds:.1f}s")
    # stderr: pretrain: step 100/100 in 12.5s; wrote runs/x/pretrained
    ```
    """
    settings = loop.settings
    result_dir = summary["pretrained_dir"]
    if loop.chief:
        save_result(result_dir)
        # Written last: a run directory with a summary is a finished run (`finetune --seeds` resumes on it).
        with io_utils.atomic_write(os.path.join(settings.output_dir, SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    print(
        f"{loop.name}: step {summary['step']}/{settings.num_train_steps}{result_line}"
        + (f"; wrote {result_dir}" if loop.chief else " (not the chief: nothing written)"),
        file=sys.stderr,
    )
    return summary
