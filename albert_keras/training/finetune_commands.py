"""`albert-keras finetune`, `evaluate` and `predict`: thin wrappers over
`albert_keras.training.finetune.finetune` and the task's `evaluate` / `predict`.

The `--task` choices come from `albert_keras.tasks.registry.TASKS`; a task may add its own flags
with `FinetuneTask.add_arguments(parser)` (its options arrive by dest name). `evaluate` and
`predict` read the task, its label list and its column flags from the fine-tuned directory's
`finetune.json`, so `--model DIR --data FILE` is enough; column flags given override them.
TensorFlow is imported inside the run functions only.
"""

import json
import os
import sys

from albert_keras.errors import AlbertInputError
from albert_keras.training.commands import DefaultsFormatter
from albert_keras.training.commands import add_precision_flags
from albert_keras.training.commands import add_strategy_flags

TASK_FILE = "finetune.json"  # albert_keras.training.finetune.TASK_FILE (not imported: no TensorFlow here)


def _column(value):
    # Indices for files without a header, names otherwise.
    return int(value) if value.lstrip("-").isdigit() else value


def _add_reading_flags(parser):
    group = parser.add_argument_group("columns (names for CSV/TSV with a header and JSONL; 0-based indices otherwise)")
    group.add_argument("--text-column", type=_column, default=None, help="the text (default: 'text')")
    group.add_argument("--pair-column", type=_column, default=None, help="the second text of sentence pairs")
    group.add_argument("--label-column", type=_column, default=None, help="the label or target (default: 'label')")
    header = group.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="CSV/TSV files start with a header row (default: when the columns are names)")
    header.add_argument("--no-header", dest="header", action="store_false", default=None,
                        help="CSV/TSV files have no header row")
    group.add_argument("--format", choices=("csv", "tsv", "jsonl"), default=None, help="default: from the extension")


def _add_scoring_flags(parser):
    # evaluate and predict read a fine-tuned directory the same way.
    parser.add_argument("--batch-size", type=int, default=32)
    _add_reading_flags(parser)
    parser.add_argument("--glue-task", default=None, help="override the stored GLUE task")


def _task_names():
    from albert_keras.tasks.registry import task_names

    return task_names()


def _add_task_arguments(parser):
    import importlib

    from albert_keras.tasks.registry import TASKS

    for name in sorted(TASKS):
        module_name, attribute = TASKS[name].split(":")
        try:
            cls = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue
        hook = getattr(cls, "add_arguments", None)
        if hook is not None:
            hook(parser)


def register(subparsers):
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a pretrained directory on labelled text (classification, regression, multiple choice, ...)",
        description=(
            "Fine-tune from a pretrained directory on a CSV/TSV/JSONL file (or a GLUE task directory), evaluating "
            "the validation file with the task's official metric every --validation-every steps, keeping the best "
            "model. Writes OUTPUT/pretrained (head, labels, spiece.model, tokenizer.json: ready for "
            "`albert-keras export`), OUTPUT/evaluations.jsonl and OUTPUT/summary.json. Rerun the same command to "
            "resume after a crash."
        ),
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--task", required=True, choices=_task_names())
    parser.add_argument("--glue-task", default=None, help="read a GLUE task's layout, labels and metric (e.g. sst-2, mrpc, sts-b)")
    parser.add_argument("--init", required=True, help="the pretrained directory to start from")
    parser.add_argument("--train", required=True, help="training file (or GLUE task directory)")
    parser.add_argument("--validation", default=None, help="validation file (or GLUE task directory)")
    parser.add_argument("--output", required=True, help="output directory")
    _add_reading_flags(parser)
    parser.add_argument("--labels", default=None, help="comma-separated label list (default: the training file's labels, sorted)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the training file")
    parser.add_argument("--num-train-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step, all replicas together")
    parser.add_argument("--learning-rate", type=float, default=2e-5, help="peak learning rate (official 1e-5..5e-5)")
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup: a fraction of the steps (< 1) or a number of steps")
    parser.add_argument("--optimizer", choices=("adamw", "lamb"), default="adamw")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="decoupled weight decay (not on LayerNorm/bias)")
    parser.add_argument("--max-seq-length", type=int, default=128, help="packed sequence length")
    parser.add_argument("--validation-every", type=int, default=None, help="evaluation interval in steps (default: one epoch)")
    parser.add_argument("--patience", type=int, default=None, help="stop after this many evaluations without improvement")
    parser.add_argument("--seed", type=int, default=12345)
    add_precision_flags(parser, "validation and checkpoint")
    add_strategy_flags(parser, "TPU name or grpc:// address")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None, help="Keras progress output (default: auto)")
    _add_task_arguments(parser)
    parser.set_defaults(func=run_finetune)

    evaluate = subparsers.add_parser(
        "evaluate", help="score a fine-tuned directory on a labelled file; prints one JSON object of metrics",
        formatter_class=DefaultsFormatter,
    )
    evaluate.add_argument("--model", required=True, help="a fine-tuned directory (`finetune` OUTPUT/pretrained)")
    evaluate.add_argument("--data", required=True, help="labelled file (same layout as the training file by default)")
    _add_scoring_flags(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser(
        "predict", help="label a file with a fine-tuned directory; writes JSONL (label, probabilities per label)",
        formatter_class=DefaultsFormatter,
    )
    predict.add_argument("--model", required=True, help="a fine-tuned directory")
    predict.add_argument("--input", required=True, help="file of texts (a label column is ignored)")
    predict.add_argument("--output", required=True, help="JSONL output, one record per input example")
    _add_scoring_flags(predict)
    predict.set_defaults(func=run_predict)


def _options(args, exclude=()):
    return {key: value for key, value in vars(args).items() if key not in ("func", "command", *exclude)}


def run_finetune(args):
    from albert_keras.training.finetune import finetune

    options = _options(args)
    overrides = {}
    if args.warmup is not None:
        if args.warmup < 1:
            overrides["warmup_fraction"] = args.warmup
        else:
            overrides["num_warmup_steps"] = int(args.warmup)
    if args.num_train_steps is not None:
        overrides["num_train_steps"] = args.num_train_steps
    finetune(
        args.task, args.init, args.train, args.validation, args.output, options=options,
        epochs=None if args.num_train_steps else args.epochs, patience=args.patience,
        global_batch_size=args.batch_size, learning_rate=args.learning_rate, optimizer=args.optimizer,
        weight_decay_rate=args.weight_decay, eval_every=args.validation_every, seed=args.seed,
        precision=args.precision, strategy=args.strategy, tpu=args.tpu, steps_per_execution=args.steps_per_execution,
        verbose="auto" if args.verbose is None else args.verbose, **overrides,
    )
    return 0


def read_task_file(directory):
    """The `finetune.json` of a fine-tuned directory: `{"task", "options", "metadata"}`.

    Example:
    ```python
    read_task_file("runs/sentiment/pretrained")["metadata"]["labels"]  # ["negative", "positive"]
    ```
    """
    path = os.path.join(os.fspath(directory), TASK_FILE)
    if not os.path.isdir(directory):
        raise AlbertInputError(f"{directory}: model directory not found")
    if not os.path.isfile(path):
        raise AlbertInputError(f"{directory}: no {TASK_FILE}; not a directory written by `albert-keras finetune`")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable ({error})") from None
    for key in ("task", "metadata"):
        if key not in record:
            raise AlbertInputError(f"{path}: missing key {key!r}")
    return record


def load_finetuned(directory, args=None, labelled=True):
    """`(task, model, options, metadata)` of a fine-tuned directory; flags in `args` override the
    stored reading options.

    Example:
    ```python
    task, model, options, metadata = load_finetuned("runs/sentiment/pretrained")
    task.evaluate(model, task.read("dev.csv", options, metadata), options)
    ```
    """
    from albert_keras.tasks.registry import get_task

    record = read_task_file(directory)
    task = get_task(record["task"])
    options = dict(record.get("options") or {})
    if args is not None:
        options.update({k: v for k, v in _options(args).items() if v is not None})
    options["labelled"] = labelled
    metadata = record["metadata"]
    model = task.build_model(directory, metadata, options)
    return task, model, options, metadata


def evaluate_directory(directory, data, args=None, batch_size=32):
    """The task's metrics of a fine-tuned directory on a labelled file, as a dict.

    Example:
    ```python
    evaluate_directory("runs/sentiment/pretrained", "dev.csv")  # {"accuracy": 0.91, "f1": 0.9}
    ```
    """
    task, model, options, metadata = load_finetuned(directory, args)
    options["batch_size"] = batch_size
    return task.evaluate(model, task.read(data, options, metadata=metadata), options)


def predict_directory(directory, input_path, output_path, args=None, batch_size=32):
    """Write one JSON prediction record per example of `input_path` to `output_path`; returns the count.

    Example:
    ```python
    predict_directory("runs/sentiment/pretrained", "reviews.csv", "predictions.jsonl")
    ```
    """
    from albert_keras.io_utils import atomic_write

    task, model, options, metadata = load_finetuned(directory, args, labelled=False)
    options["batch_size"] = batch_size
    data = task.read(input_path, options, metadata=metadata)
    writer = getattr(task, "write_predictions", None)
    if writer is not None:  # a task with its own official files (question answering: predictions.json)
        return writer(task.predict(model, data, options), output_path, metadata)
    count = 0
    with atomic_write(output_path, "w") as f:
        for record in task.predict(model, data, options):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def run_evaluate(args):
    metrics = evaluate_directory(args.model, args.data, args, batch_size=args.batch_size)
    print(json.dumps(metrics, sort_keys=True))
    return 0


def run_predict(args):
    count = predict_directory(args.model, args.input, args.output, args, batch_size=args.batch_size)
    print(f"albert-keras predict: wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0
