"""`albert-keras finetune`, `evaluate` and `predict`: thin wrappers over
`albert_keras.training.finetune.finetune` and the task's `evaluate` / `predict`.

The `--task` choices come from `albert_keras.tasks.registry.TASKS`; a task may add its own flags
with `FinetuneTask.add_arguments(parser)` (its options arrive by dest name); they are listed in one
group per task, on `finetune`, `evaluate` and `predict`. `evaluate` and `predict` read the task, its
label list, its column flags and its task flags from the fine-tuned directory's `finetune.json`, so
`--model DIR --data FILE` is enough; flags given override them. Input files go through
`albert_keras.text_files` first (bad bytes, header-only files: one line). TensorFlow is imported
inside the run functions only.
"""

import json
import os
import sys

from albert_keras.cli_args import add_alias
from albert_keras.cli_args import add_batch_size
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_max_seq_length
from albert_keras.cli_args import add_model
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import deprecation
from albert_keras.cli_args import keras_verbose
from albert_keras.errors import AlbertInputError
from albert_keras.training.commands import add_precision_flags
from albert_keras.training.commands import add_strategy_flags
from albert_keras.training.commands import training_precision

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
    add_batch_size(parser, 32, help="examples per model call")
    add_max_seq_length(parser, None, "packed sequence length (default: the fine-tuned model's)")
    _add_reading_flags(parser)
    parser.add_argument("--glue-task", default=None, help="override the stored GLUE task")
    _add_task_arguments(parser)


def _recipe_names():
    from albert_keras.training.recipes import recipe_names

    return recipe_names()


def _task_names():
    from albert_keras.tasks.registry import task_names

    return task_names()


class _TaskGroup:
    """What a task's `add_arguments` sees: one argument group titled with the task, so `--help`
    lists task flags by task (a group the task makes itself folds into it).

    A flag two tasks both take (`--turn-separator`: translation and response selection) is added
    once, by the first task in name order; `shared` holds the option strings already added.
    """

    def __init__(self, parser, name, shared):
        self.group = parser.add_argument_group(f"--task {name}")
        self.shared = shared

    def add_argument(self, *args, **kwargs):
        options = [a for a in args if a.startswith("-")]
        if options and all(option in self.shared for option in options):
            return self.shared[options[0]]
        action = self.group.add_argument(*args, **kwargs)
        self.shared.update(dict.fromkeys(options, action))
        return action

    def add_argument_group(self, *args, **kwargs):
        return self

    def add_mutually_exclusive_group(self, **kwargs):
        return self.group.add_mutually_exclusive_group(**kwargs)


def _add_task_arguments(parser):
    import importlib

    from albert_keras.tasks.registry import TASKS

    shared = {}
    for name in sorted(TASKS):
        module_name, attribute = TASKS[name].split(":")
        # A task that does not import must fail loudly, not lose its flags (the CLI's rule too).
        cls = getattr(importlib.import_module(module_name), attribute)
        hook = getattr(cls, "add_arguments", None)
        if hook is not None:
            hook(_TaskGroup(parser, name, shared))


def register(subparsers):
    parser = add_command(
        subparsers,
        "finetune",
        help="fine-tune a pretrained directory on labelled text (classification, regression, multiple choice, ...)",
        description=(
            "Fine-tune from a pretrained directory on a CSV/TSV/JSONL file (or a GLUE task directory), evaluating "
            "the validation file with the task's official metric every --eval-every steps, keeping the best "
            "model. Writes OUTPUT/pretrained (head, labels, spiece.model, tokenizer.json: ready for "
            "`albert-keras export`), OUTPUT/evaluations.jsonl and OUTPUT/summary.json. Rerun the same command to "
            "resume after a crash."
        ),
    )
    parser.add_argument("--task", required=True, choices=_task_names())
    parser.add_argument("--glue-task", default=None, help="read a GLUE task's layout, labels and metric (e.g. sst-2, mrpc, sts-b)")
    add_model(parser, "the model to start from", aliases=("--init",))
    parser.add_argument("--from-scratch", action="store_true",
                        help="accept a --model whose weights were never trained (as built: LayerNorm gammas 1, biases "
                             "0); without it such a directory is refused")
    parser.add_argument("--train", required=True, help="training file (or GLUE task directory)")
    parser.add_argument("--validation", default=None, help="validation file (or GLUE task directory)")
    add_output(parser, "run directory: OUTPUT/pretrained is the fine-tuned model", old=("--output-dir",))
    _add_reading_flags(parser)
    parser.add_argument("--labels", default=None, help="comma-separated label list (default: the training file's labels, sorted)")
    # Defaults are None here and filled in `run_finetune`, so a flag given explicitly wins over --recipe.
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training file (default 3)")
    parser.add_argument("--num-train-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    add_batch_size(parser, None, help="examples per step, all replicas together (default 32)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate (default 2e-5; official 1e-5..5e-5)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="warmup: a fraction of the steps (< 1) or a number of steps (default 0.1)")
    parser.add_argument("--recipe", default=None, choices=_recipe_names(),
                        help="the ALBERT paper's GLUE settings for a task (google-research/ALBERT run_glue.sh: "
                             "learning rate, batch, steps, warmup; dropout 0.1); explicit flags override them")
    parser.add_argument("--reinit-pooler", action="store_true",
                        help="re-initialize the pooler dense before fine-tuning (Mosbach et al. 2021, Zhang et al. "
                             "2021: steadier small-data runs)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="N runs with seeds --seed, --seed+1, ...; each judged against the validation set's "
                             "trivial baseline; mean, std and best reported; the best run's model kept "
                             "(OUTPUT/runs/seed-S hold the runs)")
    parser.add_argument("--restart-degenerate", type=int, default=0, metavar="K",
                        help="replace up to K degenerate runs (not above the trivial baseline) with runs on the next "
                             "seeds")
    parser.add_argument("--optimizer", choices=("adamw", "lamb"), default="adamw")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="decoupled weight decay (not on LayerNorm/bias)")
    add_max_seq_length(parser, 128, "packed sequence length")
    parser.add_argument("--eval-every", type=int, default=None, help="validation interval in steps (default: one epoch)")
    add_alias(parser, "--validation-every", "--eval-every", "eval_every", type=int)
    parser.add_argument("--patience", type=int, default=None, help="stop after this many evaluations without improvement")
    parser.add_argument("--seed", type=int, default=12345)
    add_precision_flags(parser, "validation and checkpoint")
    add_strategy_flags(parser, "TPU name or grpc:// address")
    add_quiet(parser, old_verbose=True)
    _add_task_arguments(parser)
    parser.set_defaults(func=run_finetune)

    evaluate = add_command(
        subparsers, "evaluate", help="score a fine-tuned model on a labelled file; prints one JSON object of metrics",
    )
    add_model(evaluate, "the fine-tuned model")
    evaluate.add_argument("--data", required=True, help="labelled file (same layout as the training file by default)")
    _add_scoring_flags(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    predict = add_command(
        subparsers, "predict", help="label a file with a fine-tuned model; writes JSONL (label, probabilities per label)",
        description="A .txt input is one text a line; CSV/TSV/JSONL inputs are read with the model's column flags "
        "(a label column is ignored).",
    )
    add_model(predict, "the fine-tuned model")
    predict.add_argument("--input", required=True, help="file of texts: .txt one text a line, or CSV/TSV/JSONL")
    add_output(predict, "JSONL file, one record per input example")
    _add_scoring_flags(predict)
    predict.set_defaults(func=run_predict)


def _options(args, exclude=()):
    # `_required_*` and the like are the parser's bookkeeping, not task options.
    return {key: value for key, value in vars(args).items()
            if key not in ("func", "command", *exclude) and not key.startswith("_")}


# Tasks whose files are read by column (tasks.readers): the header-only and .txt rules apply.
COLUMN_TASKS = ("classification", "regression", "multiple-choice")


def _header(args, stored=None):
    """Whether CSV/TSV inputs have a header: the flag, the stored option, else "unless every column is an index"."""
    if args.header is not None:
        return args.header
    if stored is not None:
        return stored
    given = [c for c in (args.text_column, args.pair_column, args.label_column) if c is not None]
    return False if given and all(isinstance(c, int) for c in given) else None


def _check_input(path, task, args, stored_options=None):
    """Refuse, in one line, an input file no task reader should see; warn about a .txt read as TSV."""
    from albert_keras.text_files import check_table
    from albert_keras.text_files import check_utf8

    if path is None:
        return
    stored_options = stored_options or {}
    if task not in COLUMN_TASKS:
        check_utf8(path)  # the task reads its own layout (CoNLL, SQuAD JSON, ...)
        return
    fmt = args.format or stored_options.get("format")
    if fmt is None and os.path.splitext(path)[1].lower() == ".txt" and os.path.isfile(path):
        # The one rule is "a .txt file is one text a line"; labelled .txt files were read as TSV.
        deprecation(f"{path}: a labelled .txt file read as TSV", "a .tsv name or --format tsv")
        fmt = "tsv"
    check_table(path, format=fmt, header=_header(args, stored_options.get("header")))


def run_finetune(args):
    from albert_keras.training.finetune import DEFAULTS
    from albert_keras.training.finetune import finetune
    from albert_keras.training.seeds import finetune_seeds

    _check_input(args.train, args.task, args)
    _check_input(args.validation, args.task, args)
    task_options = _options(args)  # every flag by dest name: what the task reads its files with
    # TrainingSettings fields: only what the command line states goes in; the rest comes from
    # --recipe, else the fine-tuning defaults.
    overrides = {}
    if args.warmup is not None:
        if args.warmup < 1:
            overrides["warmup_fraction"] = args.warmup
        else:
            overrides["num_warmup_steps"] = int(args.warmup)
    if args.num_train_steps is not None:
        overrides["num_train_steps"] = args.num_train_steps
    if args.batch_size is not None:
        overrides["global_batch_size"] = args.batch_size
    if args.learning_rate is not None:
        overrides["learning_rate"] = args.learning_rate
    if args.recipe is None:
        overrides.setdefault("global_batch_size", DEFAULTS["global_batch_size"])
        overrides.setdefault("learning_rate", DEFAULTS["learning_rate"])
    epochs = None if args.num_train_steps else args.epochs
    # What one run and `--seeds N` runs both take.
    finetune_arguments = dict(
        options=task_options, epochs=epochs, patience=args.patience, reinit_pooler_weights=args.reinit_pooler,
        recipe=args.recipe, optimizer=args.optimizer, weight_decay_rate=args.weight_decay, eval_every=args.eval_every,
        precision=training_precision(args.precision), strategy=args.strategy, tpu=args.tpu,
        steps_per_execution=args.steps_per_execution, verbose=keras_verbose(args), **overrides,
    )
    if args.seeds != 1 or args.restart_degenerate:
        finetune_seeds(args.task, args.model, args.train, args.validation, output_dir=args.output, seeds=args.seeds,
                       restart_degenerate=args.restart_degenerate, seed=args.seed, **finetune_arguments)
    else:
        finetune(args.task, args.model, args.train, args.validation, output_dir=args.output, seed=args.seed,
                 **finetune_arguments)
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
    record = read_task_file(args.model)
    _check_input(args.data, record["task"], args, record.get("options"))
    metrics = evaluate_directory(args.model, args.data, args, batch_size=args.batch_size)
    print(json.dumps(metrics, sort_keys=True))
    return 0


def _lines_as_jsonl(path, args, stored_options, directory):
    """A one-text-a-line `.txt` input as a JSONL file the task reads (its `text` field)."""
    from albert_keras.text_files import read_lines

    pair = args.pair_column if args.pair_column is not None else stored_options.get("pair_column")
    if pair is not None:
        raise AlbertInputError(f"{path}: a .txt file holds one text a line, but the model reads sentence pairs; "
                               "give a CSV/TSV/JSONL file with both columns")
    converted = os.path.join(directory, "input.jsonl")
    with open(converted, "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in read_lines(path))
    args.format, args.text_column, args.label_column = "jsonl", "text", None
    return converted


def run_predict(args):
    import tempfile

    from albert_keras.text_files import LINES
    from albert_keras.text_files import text_format

    record = read_task_file(args.model)
    stored = record.get("options") or {}
    with tempfile.TemporaryDirectory() as scratch:
        path = args.input
        # Only single-text tasks can take a text a line (multiple choice needs its choice columns).
        if record["task"] in ("classification", "regression") and text_format(path, args.format) == LINES:
            path = _lines_as_jsonl(path, args, stored, scratch)
        else:
            _check_input(path, record["task"], args, stored)
        count = predict_directory(args.model, path, args.output, args, batch_size=args.batch_size)
    print(f"albert-keras predict: wrote {count} predictions to {args.output}", file=sys.stderr)
    return 0
