"""`finetune`: train a task model from a pretrained directory on labelled files, keep the best.

One generic loop for every `FinetuneTask` (`albert_keras.tasks`): the shared `TrainingLoop`
(strategy, AdamW or LAMB with linear warmup and decay, step-exact checkpoints and resume, mixed
precision) plus `FinetuneEvaluator`, which scores the validation file with the task's official
metric every `eval_every` steps, keeps the best model as a pretrained directory, stops early after
`patience` evaluations without improvement, and warns when every validation prediction is one
class (small-data fine-tuning's usual failure).

Output directory:
```
OUTPUT/
  pretrained/          the result (best by the validation metric, else the last step): head,
                       labels, spiece.model, tokenizer.json -> `albert-keras export`
  best/                the best model so far (while training; resume keeps it)
  evaluations.jsonl    one line per evaluation: {"step": ..., "metrics": {...}}
  checkpoints/ logs/   step checkpoints (resume) and TensorBoard
  summary.json
```
"""

import dataclasses
import json
import os
import shutil
import sys
import time
import warnings

from albert_keras.errors import AlbertInputError
from albert_keras.training.run_end import PRETRAINED_DIR  # noqa: F401 (the run directory's layout, re-exported)
from albert_keras.training.run_end import SUMMARY_FILE  # noqa: F401

BEST_DIR = "best"
EVALUATIONS_FILE = "evaluations.jsonl"
# In every fine-tuned directory: the task, how its files are read, and what it learned from the
# training file (labels, metrics), so `evaluate` / `predict` need only `--model DIR`.
TASK_FILE = "finetune.json"
READ_OPTIONS = ("text_column", "pair_column", "label_column", "header", "format", "glue_task", "max_seq_length")

# Fine-tuning defaults (official run_glue.sh: AdamW, 1e-5..5e-5, warmup ~10%, batch 32, 128 tokens).
DEFAULTS = {
    "learning_rate": 2e-5,
    "optimizer": "adamw",
    "warmup_fraction": 0.1,
    "global_batch_size": 32,
    "weight_decay_rate": 0.01,
}
DEFAULT_EPOCHS = 3
# Options that change what the model sees (a resumed run must match them); not the schedule.
FINGERPRINT_OPTIONS = ("text_column", "pair_column", "label_column", "header", "format", "labels", "glue_task",
                       "max_seq_length")


def _one_class_advice(step, label, num_classes):
    return (
        f"finetune: step {step}: every validation prediction is {label!r} (1 of {num_classes} classes); the model has "
        "not separated the classes yet. Likely fixes: a higher --learning-rate (small data and small models often "
        "need 1e-4..3e-4), more --epochs or steps, or a longer --warmup"
    )


def task_option_names(task):
    """The options a task's own flags set (`FinetuneTask.add_arguments`), saved with the model so
    `evaluate` / `predict` read its files the same way (e.g. token classification's `tag_column`).

    Example:
    ```python
    task_option_names(get_task("token-classification"))  # ("tag_column", "scheme")
    ```
    """
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    task.add_arguments(parser)
    return tuple(vars(parser.parse_args([])))


def check_init_directory(init_dir, vocabulary=None, from_scratch=False):
    """Refuse, in one line, a starting point that is not a usable pretrained directory.

    Checked before any model is built: the path exists and is a directory, it holds
    `albert_config.json` and `encoder.weights.h5`, its vocabulary (or `vocabulary`, when given)
    has exactly the config's `vocab_size` tokens (a config and a vocabulary of different models,
    google-research/albert #230, would otherwise train on the wrong embeddings without a word),
    and, unless `from_scratch`, it holds trained weights (`modeling.pretrained.untrained_weights`:
    a model saved as built would otherwise be fine-tuned from random weights, looking like a
    pretrained one). Remote paths (`gs://...`) are checked when they load.

    Args:
        init_dir: the `--model`/`--init` directory.
        vocabulary: an explicit vocabulary file overriding the directory's, or None.
        from_scratch: accept a directory of untrained weights (`--from-scratch`).

    Raises:
        AlbertInputError: naming the directory and what is wrong.

    Example:
    ```python
    check_init_directory("runs/base/pretrained")
    ```
    """
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.pretrained import CONFIG_FILE
    from albert_keras.modeling.pretrained import ENCODER_WEIGHTS_FILE
    from albert_keras.modeling.pretrained import untrained_weights
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import vocabulary_path

    init_dir = os.fspath(init_dir)
    if "://" in init_dir:
        return
    if not os.path.exists(init_dir):
        raise AlbertInputError(f"--model {init_dir}: no such directory")
    if not os.path.isdir(init_dir):
        raise AlbertInputError(f"--model {init_dir}: a file, not a pretrained directory")
    missing = [name for name in (CONFIG_FILE, ENCODER_WEIGHTS_FILE) if not os.path.isfile(os.path.join(init_dir, name))]
    if missing:
        raise AlbertInputError(f"--model {init_dir}: not a pretrained directory (no {' and no '.join(missing)}); give "
                               "one written by `albert-keras pretrain`, `finetune` or `convert`")
    config = AlbertConfig.from_json_file(os.path.join(init_dir, CONFIG_FILE))
    source = vocabulary or vocabulary_path(init_dir)
    size = None if source is None else load_vocabulary(source).vocabulary_size()
    if size is not None and size != config.vocab_size:
        raise AlbertInputError(
            f"--model {init_dir}: the vocabulary {os.path.basename(os.fspath(source))} has {size} tokens but "
            f"{CONFIG_FILE} says vocab_size {config.vocab_size}; they come from different models (a config and a "
            "vocabulary must be the same model's)"
        )
    untrained = None if from_scratch else untrained_weights(init_dir)
    if untrained:
        raise AlbertInputError(f"--model {init_dir}: holds no trained weights ({untrained}); pretrain it first, or "
                               "give --from-scratch to fine-tune from these random weights")


def describe_init(model, init_dir):
    """What a task model took from its starting directory: `{"dir", "encoder_restored", "head_restored",
    "head_fresh"}` (variable counts; the encoder always loads whole, the head when it fits).

    Example:
    ```python
    describe_init(task.build_model("runs/base/pretrained", metadata, {}), "runs/base/pretrained")
    # {"dir": ..., "encoder_restored": 25, "head_restored": 0, "head_fresh": 2}
    ```
    """
    from albert_keras.modeling.pretrained import HEAD_ATTRIBUTE

    # A task model holds its encoder as `.encoder`; a model without one is all encoder.
    encoder = {id(v) for v in getattr(model, "encoder", model).weights}
    head = [v for v in model.weights if id(v) not in encoder]
    restored = bool(getattr(model, HEAD_ATTRIBUTE, False))  # set by load_model_class
    return {"dir": os.fspath(init_dir), "encoder_restored": len(encoder),
            "head_restored": len(head) if restored else 0, "head_fresh": 0 if restored else len(head)}


def save_finetuned(model, directory, task, options, metadata):
    """Write `model` as a pretrained directory with its `finetune.json`, atomically."""
    from albert_keras.io_utils import atomic_directory

    record = {
        "task": task.name,
        "options": {key: options.get(key) for key in READ_OPTIONS + task_option_names(task)
                    if options.get(key) is not None},
        "metadata": metadata,
    }
    with atomic_directory(directory, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        with open(os.path.join(tmp, TASK_FILE), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
    return directory


def _read_evaluations(path):
    records = []
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    records.append(json.loads(line))
    return records


def _make_evaluator(task, validation, options, output_dir, primary, patience, chief, metadata):
    labels = metadata.get("labels")

    import keras

    class FinetuneEvaluator(keras.callbacks.Callback):
        """Official-metric evaluation at the end of every `fit` epoch (= every `eval_every` steps)."""

        def __init__(self):
            super().__init__()
            self.path = os.path.join(output_dir, EVALUATIONS_FILE)
            self.records = _read_evaluations(self.path)
            self.best = None
            self.since_best = 0
            for record in self.records:
                self._update(record)
            self.warned = False

        def _update(self, record):
            value = record["metrics"].get(primary)
            if value is not None and (self.best is None or value > self.best["metrics"][primary]):
                self.best = record
                self.since_best = 0
                return True
            self.since_best += 1
            return False

        @property
        def stopped(self):
            return bool(patience) and self.since_best >= patience

        def on_epoch_end(self, epoch, logs=None):
            step = int(self.model.optimizer.iterations.numpy())
            if self.records and self.records[-1]["step"] >= step:
                return
            metrics, predicted = task.evaluation(self.model, validation, options)
            record = {"step": step, "metrics": {k: round(float(v), 6) for k, v in metrics.items()}}
            improved = self._update(record)
            self.records.append(record)
            if logs is not None:
                logs.update({f"val_{k}": v for k, v in metrics.items()})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
            print(f"finetune: step {step}: validation {shown}" + (" (best)" if improved else ""), file=sys.stderr)
            if predicted is not None and len(predicted) > 1 and len(set(predicted.tolist())) == 1:
                label = labels[int(predicted[0])] if labels else int(predicted[0])
                record["one_class"] = label  # for the verdict on the run (training.baselines.judge)
                message = _one_class_advice(step, label, len(labels) if labels else "?")
                print(message, file=sys.stderr)
            if chief:
                if improved:
                    save_finetuned(self.model, os.path.join(output_dir, BEST_DIR), task, options, metadata)
                from albert_keras.io_utils import atomic_write

                with atomic_write(self.path, "w") as f:
                    f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in self.records)
            if self.stopped:
                print(f"finetune: no {primary} improvement in {patience} evaluations; stopping early", file=sys.stderr)
                self.model.stop_training = True

    return FinetuneEvaluator()


def reinit_pooler(model):
    """Re-initialize the encoder's pooler dense (`pooled_dense`) as a fresh layer: kernel from the
    config's truncated normal (`initializer_range`), bias zero.

    The pretrained pooler was trained for sentence order only; Mosbach et al. (ICLR 2021) and Zhang
    et al. ("Revisiting few-sample BERT fine-tuning", ICLR 2021) find a fresh one makes small-data
    fine-tuning more stable. Returns the number of variables re-initialized.

    Example:
    ```python
    reinit_pooler(task.build_model("runs/base/pretrained", metadata, {}))  # 2
    ```
    """
    import keras

    encoder = getattr(model, "encoder", model)
    pooler = getattr(encoder, "pooled_dense", None)
    if pooler is None:
        raise AlbertInputError(f"--reinit-pooler: the {type(model).__name__} has no pooler to re-initialize")
    # The encoder's own initializer (TruncatedNormal(initializer_range)), drawn anew.
    initializer = keras.initializers.get(pooler.kernel_initializer)
    pooler.kernel.assign(initializer(pooler.kernel.shape, dtype=pooler.kernel.dtype))
    if pooler.bias is not None:
        pooler.bias.assign(keras.ops.zeros(pooler.bias.shape, dtype=pooler.bias.dtype))
    return 2 if pooler.bias is not None else 1


def finetune(task, init_dir, train, validation=None, output_dir=None, options=None, epochs=None, patience=None,
             reinit_pooler_weights=False, recipe=None, settings=None, **overrides):
    """Fine-tune a pretrained directory on a task and write the result as a pretrained directory.

    Rerunning the same call after a crash resumes from the newest checkpoint (step-exact, with the
    evaluations and the best model so far).

    The run is six named steps, in this order: `resolve_run_settings` (flags, recipe and defaults
    -> `TrainingSettings`), `read_task_data` (every file read and checked, the step counts), then
    `check_init_directory`, `start_task_model` (strategy, model, optimizer, resume),
    `fit_with_evaluation` (`fit` with the evaluator and early stopping) and `end_finetune`
    (summary, result directory: `training.run_end`, shared with `pretrain`).

    Args:
        task: a `--task` name (`"classification"`, `"regression"`, `"multiple-choice"`, or any
            registered task) or a `FinetuneTask`.
        init_dir: the pretrained directory to start from (with `spiece.model` for text input).
        train: the training file (or a GLUE task directory with `options["glue_task"]`).
        validation: optional validation file: evaluated every `eval_every` steps; the best model
            by the task's primary metric is the result, and `patience` applies to it.
        output_dir: the run directory (`OUTPUT/pretrained` is the result); the other settings come
            from `overrides` over the fine-tuning `DEFAULTS` (AdamW at 2e-5, warmup 10%, batch
            32). A `TrainingSettings` is taken here too: its `output_dir` and every field, with
            `overrides` over them.
        options: the task's options (`text_column`, `pair_column`, `label_column`, `labels`,
            `glue_task`, `max_seq_length`, ...: the `albert-keras finetune` flags by dest name).
        epochs: passes over the training file (sets `num_train_steps`); default 3 unless
            `output_dir` is a `TrainingSettings` (whose `num_train_steps` then counts).
        patience: stop after this many evaluations without improvement (None: never).
        reinit_pooler_weights: re-initialize the pooler dense before training (`reinit_pooler`;
            not on resume, which restores the trained one).
        recipe: a GLUE recipe name (`training.recipes`: run_glue.sh's learning rate, batch, steps,
            warmup); `overrides` and an explicit `epochs` win over its values.
        settings: the former name of `output_dir` (deprecated: a `DeprecationWarning`).
        **overrides: `TrainingSettings` fields.

    Returns:
        A summary dict (also `OUTPUT/summary.json`): steps, final and best validation metrics,
        the result's directory, the validation set's trivial `baseline` and the verdict
        `degenerate` (None, or `{"step", "why"}` when the best score is not above the baseline;
        `training.baselines`).

    Example:
    ```python
    from albert_keras.training.finetune import finetune
    summary = finetune("classification", "runs/base/pretrained", "train.csv", "dev.csv", "runs/sentiment",
                       options={"text_column": "sentence", "label_column": "label"}, epochs=3,
                       learning_rate=3e-5)
    summary["pretrained_dir"]  # runs/sentiment/pretrained
    ```
    """
    from albert_keras.tasks.registry import get_task

    if settings is not None:
        warnings.warn("finetune(settings=...) is deprecated: pass output_dir= (a directory or a TrainingSettings)",
                      DeprecationWarning, stacklevel=2)
        if output_dir is not None:
            raise TypeError("finetune: give output_dir, not both output_dir and settings")
        output_dir = settings
    task = get_task(task) if isinstance(task, str) else task
    options = dict(options or {})
    init_dir = os.fspath(init_dir)

    run = resolve_run_settings(output_dir, recipe, epochs, overrides)
    data = read_task_data(task, train, validation, options, run, epochs)  # every check before any model
    check_init_directory(init_dir, options.get("vocab") or options.get("spm_model"),
                         from_scratch=options.get("from_scratch"))
    loop, model, init = start_task_model(task, init_dir, data, options, run.settings, reinit_pooler_weights)
    evaluator, logs, seconds = fit_with_evaluation(task, loop, model, data, options, patience, recipe)
    return end_finetune(task, loop, model, data, options, evaluator, logs, seconds, init, run,
                        reinit_pooler_weights)


@dataclasses.dataclass
class RunSettings:
    """What `resolve_run_settings` made of the arguments.

    Args:
        settings: the `TrainingSettings` (steps and intervals filled in by `read_task_data`).
        recipe: the recipe's name, or None.
        recipe_values: the recipe's values (for the summary), `{}` without one.
        steps_given: whether `num_train_steps` was given (by a `TrainingSettings` without
            `epochs`, an override, or the recipe) rather than counted from `epochs`.

    Example:
    ```python
    run = resolve_run_settings("runs/x", None, 3, {"learning_rate": 3e-5})
    run.settings.optimizer  # "adamw"
    ```
    """

    settings: object
    recipe: str = None
    recipe_values: dict = dataclasses.field(default_factory=dict)
    steps_given: bool = False


def resolve_run_settings(output_dir, recipe, epochs, overrides):
    """Step 1: the run's `TrainingSettings` from the output directory (or a `TrainingSettings`),
    a recipe's values and explicit `overrides`, over the fine-tuning `DEFAULTS`.

    An explicit override wins over the recipe; an explicit `epochs` drops the recipe's step count
    and an explicit `warmup_fraction` its warmup steps.

    Example:
    ```python
    resolve_run_settings("runs/rte", "rte", None, {}).settings.learning_rate  # run_glue.sh's RTE value
    ```
    """
    from albert_keras.training.loop import TrainingSettings

    recipe_values = {}
    if recipe is not None:
        from albert_keras.training.recipes import get_recipe

        recipe_values = get_recipe(recipe)
        # Dropout is the heads' own default (0.1, as the official classifier): recorded, not a setting.
        applied = {k: v for k, v in recipe_values.items() if k != "dropout"}
        if epochs is not None:
            applied.pop("num_train_steps")
        if "warmup_fraction" in overrides:
            applied.pop("num_warmup_steps")
        overrides = {**applied, **overrides}
    steps_given = "num_train_steps" in overrides
    if isinstance(output_dir, TrainingSettings):
        steps_given = steps_given or epochs is None
        settings = dataclasses.replace(output_dir, **overrides)
    else:
        if output_dir is None:
            raise AlbertInputError("finetune: give an output directory (output_dir)")
        settings = TrainingSettings(output_dir=os.fspath(output_dir), **{**DEFAULTS, **overrides})
    return RunSettings(settings, recipe, recipe_values, steps_given)


@dataclasses.dataclass
class FinetuneData:
    """The files of a run, read and checked by `read_task_data` before any model is built.

    Args:
        train: the training file's `TaskData`.
        validation: the validation file's `TaskData`, or None.
        count: training examples.
        primary: the metric that picks the best model.
        baseline: the validation set's trivial baseline (`training.baselines`), or None.

    Example:
    ```python
    data = read_task_data(task, "train.csv", "dev.csv", options, resolve_run_settings("runs/x", None, 3, {}), 3)
    data.metadata["labels"]  # ["negative", "positive"]
    ```
    """

    train: object
    validation: object
    count: int
    primary: str
    baseline: object = None

    @property
    def metadata(self):
        """What the model remembers of the training file (labels, metrics, ...)."""
        return self.train.metadata


def read_task_data(task, train, validation, options, run, epochs):
    """Step 2: read the training and validation files with the task's reader, then fill in the
    steps the run's settings count from them (`num_train_steps` from `epochs`, the evaluation and
    checkpoint intervals: one epoch by default) and validate the settings.

    Example:
    ```python
    data = read_task_data(task, "train.csv", None, {"text_column": "sentence"}, run, epochs=3)
    run.settings.num_train_steps  # 3 * (examples // batch)
    ```
    """
    from albert_keras.tasks.readers import example_count
    from albert_keras.training.baselines import trivial_baseline
    from albert_keras.training.loop import TrainingSettings

    settings = run.settings
    train_data = task.read(train, options)
    validation_data = task.read(validation, options, metadata=train_data.metadata) if validation else None
    count = example_count(train_data.examples)
    steps_per_epoch = max(1, count // int(settings.global_batch_size))
    if not run.steps_given:
        settings.num_train_steps = int(epochs or DEFAULT_EPOCHS) * steps_per_epoch
    if settings.eval_every is None:
        settings.eval_every = min(steps_per_epoch, settings.num_train_steps)
    if settings.checkpoint_every in (None, TrainingSettings.checkpoint_every):
        settings.checkpoint_every = settings.eval_every
    settings.validate()
    primary = (train_data.metadata.get("metrics") or [task.primary_metric])[0]
    baseline = trivial_baseline(task, validation_data, primary) if validation_data is not None else None
    return FinetuneData(train_data, validation_data, count, primary, baseline)


def start_task_model(task, init_dir, data, options, settings, reinit_pooler_weights=False):
    """Step 4: the `TrainingLoop` (strategy, precision, resume fingerprint) and the task model built
    from `init_dir`, compiled and restored from the newest checkpoint; returns
    `(loop, model, init)` with `init` from `describe_init` (and the pooler re-initialized when
    asked, on a fresh run only).

    Example:
    ```python
    loop, model, init = start_task_model(task, "runs/base/pretrained", data, options, run.settings)
    ```
    """
    from albert_keras.training.loop import TrainingLoop

    loop = TrainingLoop(
        settings,
        {"task": task.name, "init_dir": os.path.abspath(init_dir), "train": os.path.abspath(data.train.path),
         "options": {k: options.get(k) for k in FINGERPRINT_OPTIONS if options.get(k) is not None},
         "metadata": data.metadata},
        name="finetune",
    )
    model = loop.build(
        lambda: task.build_model(init_dir, data.metadata, options, dtype=settings.dtype_policy),
        compile_kwargs=task.compile_kwargs(data.metadata),
    )
    init = describe_init(model, init_dir)
    if reinit_pooler_weights and loop.start_step == 0:
        init["pooler_reinitialized"] = reinit_pooler(model)
        print(f"finetune: pooler re-initialized ({init['pooler_reinitialized']} variables)", file=sys.stderr)
    print(
        f"finetune: from {init_dir}: {init['encoder_restored']} encoder variables restored; "
        + (f"{init['head_restored']} head variables restored" if init["head_restored"] else
           f"{init['head_fresh']} head variables initialized fresh"),
        file=sys.stderr,
    )
    return loop, model, init


def fit_with_evaluation(task, loop, model, data, options, patience=None, recipe=None):
    """Step 5: `fit` from the restored step to the last, scoring the validation file every
    `eval_every` steps (`FinetuneEvaluator`: best model, early stopping) and always at the final
    step; writes the final checkpoint. Returns `(evaluator or None, last fit logs, seconds)`.

    Example:
    ```python
    evaluator, logs, seconds = fit_with_evaluation(task, loop, model, data, options, patience=3)
    ```
    """
    settings = loop.settings
    callbacks = []
    evaluator = None
    if data.validation is not None:
        evaluator = _make_evaluator(
            task, data.validation, {**options, "batch_size": settings.micro_batch_size}, settings.output_dir,
            data.primary, patience, loop.chief, data.metadata,
        )
        callbacks.append(evaluator)
    print(
        f"finetune: {task.name} on {data.count} examples, {settings.num_train_steps} steps of "
        f"{settings.global_batch_size} ({settings.optimizer} at {settings.learning_rate:g}, warmup "
        f"{settings.num_warmup_steps} steps, {settings.precision}, strategy {type(loop.strategy).__name__}"
        + (f", recipe {recipe} from google-research/ALBERT run_glue.sh)" if recipe else ")"),
        file=sys.stderr,
    )
    started = time.perf_counter()
    logs = {}
    if evaluator is None or not evaluator.stopped:
        logs = loop.fit(
            lambda skip: task.dataset(model, data.train, settings.micro_batch_size, shuffle=True, seed=settings.seed,
                                      repeat=True, options=options).skip(skip),
            callbacks=callbacks,
        )
    seconds = time.perf_counter() - started
    final_step = loop.finish()
    if evaluator is not None and (not evaluator.records or evaluator.records[-1]["step"] < final_step):
        evaluator.set_model(model)
        evaluator.on_epoch_end(None)  # the final step is always scored
    return evaluator, logs, seconds


def end_finetune(task, loop, model, data, options, evaluator, logs, seconds, init, run, reinit_pooler_weights=False):
    """Step 6: judge the run, then `training.run_end.end_run`: the result directory (the best
    model when there was a validation file, else the last) and `summary.json` on the chief, and
    the one-line result. Returns the summary.

    Example:
    ```python
    summary = end_finetune(task, loop, model, data, options, evaluator, logs, seconds, init, run)
    ```
    """
    from albert_keras.io_utils import atomic_directory
    from albert_keras.training.baselines import judge
    from albert_keras.training.run_end import end_run
    from albert_keras.training.run_end import run_summary

    settings = loop.settings
    primary = data.primary
    best = evaluator.best if evaluator is not None else None
    degenerate = judge(evaluator.records, data.baseline, primary) if evaluator is not None else None
    if degenerate is not None:
        print(f"finetune: DEGENERATE run (seed {settings.seed}): {degenerate['why']}", file=sys.stderr)
    summary = run_summary(
        loop, loop.step, seconds,
        task=task.name,
        examples=data.count,
        train={k: float(v) for k, v in logs.items() if not k.startswith("val_")},
        validation=evaluator.records[-1]["metrics"] if evaluator is not None and evaluator.records else {},
        best=best,
        primary_metric=primary,
        early_stopped=bool(evaluator is not None and evaluator.stopped),
        init=init,
        seed=int(settings.seed),
        settings={"learning_rate": settings.learning_rate, "global_batch_size": settings.global_batch_size,
                  "num_train_steps": settings.num_train_steps, "num_warmup_steps": settings.num_warmup_steps,
                  "optimizer": settings.optimizer, "weight_decay_rate": settings.weight_decay_rate,
                  "recipe": run.recipe, "recipe_values": run.recipe_values or None,
                  "reinit_pooler": bool(reinit_pooler_weights)},
        baseline=data.baseline,
        degenerate=degenerate,
    )

    def save_result(result_dir):
        best_dir = os.path.join(settings.output_dir, BEST_DIR)
        if best is not None and os.path.isdir(best_dir):
            with atomic_directory(result_dir, overwrite=True) as tmp:
                shutil.copytree(best_dir, tmp, dirs_exist_ok=True)
        else:
            save_finetuned(model, result_dir, task, options, data.metadata)

    shown = f", best {primary} {best['metrics'][primary]:.4f} at step {best['step']}" if best is not None else ""
    return end_run(loop, summary, save_result, f" in {seconds:.1f}s{shown}")
