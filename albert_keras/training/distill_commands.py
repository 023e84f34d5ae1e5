"""`albert-keras distill`: a fine-tuned classifier teacher -> a smaller student (`training/distill.py`).

TensorFlow is imported only when the command runs.
"""

from albert_keras.cli_args import add_batch_size
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_quiet
from albert_keras.training.finetune_commands import _add_reading_flags
from albert_keras.training.finetune_commands import _header


def register(subparsers):
    parser = add_command(
        subparsers, "distill",
        help="distil a fine-tuned classifier into a smaller student (soft targets at a temperature + labels)",
        description=(
            "Train STUDENT (an AlbertConfig JSON file, or a pretrained directory with the teacher's vocabulary) on "
            "the teacher's softened outputs and the training file's labels; --transfer adds unlabelled texts the "
            "teacher labels. Writes OUTPUT/pretrained (a fine-tuned directory: the teacher's labels and tokenizer, "
            "the student with the best validation accuracy) and OUTPUT/summary.json."
        ),
    )
    parser.add_argument("--teacher", required=True, help="the fine-tuned classification directory (OUTPUT/pretrained of finetune)")
    parser.add_argument("--student", required=True,
                        help="an AlbertConfig JSON file, a preset name (the teacher's vocabulary) or a pretrained directory")
    parser.add_argument("--student-init", choices=("random", "teacher"), default="random",
                        help="a config's or preset's starting weights: random, or the teacher's truncated to the "
                        "student's sizes (each weight's leading slice: first hidden units, heads, positions)")
    parser.add_argument("--train", required=True, help="labelled training file (the teacher's columns unless given)")
    parser.add_argument("--validation", required=True, help="labelled validation file: the best student is kept")
    parser.add_argument("--transfer", default=None, help="unlabelled texts, one a line, labelled by the teacher")
    add_output(parser, "run directory: OUTPUT/pretrained is the student")
    _add_reading_flags(parser)
    parser.add_argument("--temperature", type=float, default=2.0, help="softmax temperature of the soft targets")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the label loss (1: labels only)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate")
    add_batch_size(parser, 32)
    parser.add_argument("--seed", type=int, default=0)
    add_quiet(parser)
    parser.set_defaults(func=run)


def run(args):
    from albert_keras.training.distill import distill

    options = {"text_column": args.text_column, "pair_column": args.pair_column, "label_column": args.label_column,
               "header": _header(args), "format": args.format}
    distill(
        args.teacher, args.student, args.train, args.validation, args.output, temperature=args.temperature,
        alpha=args.alpha, transfer=args.transfer, epochs=args.epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, seed=args.seed, options=options, student_init=args.student_init,
        verbose=not args.quiet,
    )
    return 0
