"""`albert-keras pretrain`: a thin wrapper over `albert_keras.training.pretrain.pretrain`.

TensorFlow is imported inside the run function only, so `albert-keras --help` stays fast.
"""

from albert_keras.cli_args import AUTO_PRECISION_HELP
from albert_keras.cli_args import TRAINING_PRECISIONS
from albert_keras.cli_args import add_batch_size
from albert_keras.cli_args import add_command
from albert_keras.cli_args import add_max_seq_length
from albert_keras.cli_args import add_output
from albert_keras.cli_args import add_precision
from albert_keras.cli_args import add_quiet
from albert_keras.cli_args import add_vocab
from albert_keras.cli_args import add_alias
from albert_keras.cli_args import keras_verbose


def add_precision_flags(parser, intervals):
    """Add `--precision` and `--steps-per-execution`, the same for pretraining and fine-tuning.

    Args:
        parser: an `argparse` parser.
        intervals: the command's intervals that `--steps-per-execution` rounds, for its help
            (e.g. `"log, checkpoint and eval"`).

    Example:
    ```python
    parser = argparse.ArgumentParser()
    add_precision_flags(parser, "log and checkpoint")
    parser.parse_args(["--precision", "bfloat16"]).precision  # "bfloat16" (training_precision: mixed_bfloat16)
    ```
    """
    add_precision(parser, help=AUTO_PRECISION_HELP + "; training computes bfloat16/float16 as Keras mixed precision "
                  "(float32 weights)")
    parser.add_argument(
        "--steps-per-execution", type=int, default=None,
        help="batches per call into the compiled step (default: 1 on CPU; on GPU/TPU the largest divisor of the "
        f"{intervals} intervals up to 100); the intervals are rounded up to multiples of it",
    )


def add_strategy_flags(parser, tpu_help):
    """Add `--strategy` and `--tpu`, the same for pretraining and fine-tuning.

    Args:
        parser: an `argparse` parser.
        tpu_help: the `--tpu` help text.

    Example:
    ```python
    parser = argparse.ArgumentParser()
    add_strategy_flags(parser, "TPU name or grpc:// address")
    parser.parse_args([]).strategy  # "auto"
    ```
    """
    parser.add_argument(
        "--strategy", choices=("auto", "default", "one-device", "mirrored", "multi-worker", "tpu"), default="auto"
    )
    parser.add_argument("--tpu", default=None, help=tpu_help)


def training_precision(precision):
    """The Keras dtype policy name of a `--precision` value (`bfloat16` -> `mixed_bfloat16`).

    Example:
    ```python
    training_precision("float16")  # "mixed_float16"
    ```
    """
    return TRAINING_PRECISIONS[precision]


def register(subparsers):
    parser = add_command(
        subparsers,
        "pretrain",
        help="pretrain ALBERT (MLM + SOP) on TFRecords; rerun the same command to resume after a crash",
        description=(
            "Pretrain ALBERT with the official LAMB (or AdamW), warmup + linear decay and clipping, "
            "on one device, several GPUs, several workers (TF_CONFIG) or a TPU. Checkpoints every "
            "--checkpoint-every steps; rerunning the same command resumes at the exact step. Writes "
            "OUTPUT/pretrained (a pretrained directory), OUTPUT/logs (TensorBoard) and "
            "OUTPUT/summary.json."
        ),
    )
    parser.add_argument("--config", required=True, help="preset name, albert_config.json, or a pretrained directory to continue from")
    parser.add_argument("--train-files", required=True, help="TFRecord glob(s), comma-separated, or a create-data output directory")
    add_output(parser, "run directory: checkpoints, logs and the final pretrained directory go here",
               old=("--output-dir",))
    add_batch_size(parser, 64, help="examples per optimizer step, all replicas together (global)")
    parser.add_argument("--num-train-steps", type=int, default=10000, help="optimizer steps")
    parser.add_argument("--warmup", type=float, default=None,
                        help="linear warmup: a fraction of the steps (< 1) or a number of steps (default 0.025)")
    add_alias(parser, "--num-warmup-steps", "--warmup", "warmup", type=int)
    parser.add_argument("--learning-rate", type=float, default=0.00176, help="peak learning rate")
    parser.add_argument("--optimizer", choices=("lamb", "adamw"), default="lamb")
    add_precision_flags(parser, "log, checkpoint and eval")
    xla = parser.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="compile with XLA (default on GPU/TPU)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", default=None, help="do not compile with XLA (default on CPU)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="checkpoint interval in steps")
    parser.add_argument("--keep-checkpoints", type=int, default=3, help="complete checkpoints kept")
    parser.add_argument("--eval-files", default=None, help="TFRecord glob for evaluation")
    parser.add_argument("--eval-every", type=int, default=None, help="evaluation interval in steps (default: --checkpoint-every)")
    add_alias(parser, "--validation-every", "--eval-every", "eval_every", type=int)
    parser.add_argument("--eval-steps", type=int, default=100, help="evaluation batches per evaluation")
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1, help="micro-batches per optimizer step")
    add_strategy_flags(parser, "TPU name or grpc:// address (implies --strategy tpu under auto)")
    add_max_seq_length(parser, None, "expected record length (default: the records')")
    parser.add_argument("--seed", type=int, default=12345, help="initialization and data-order seed")
    parser.add_argument("--log-every", type=int, default=100, help="TensorBoard interval in steps")
    add_vocab(parser, "vocabulary to copy into the pretrained directory")
    parser.add_argument(
        "--dynamic-masking", action="store_true",
        help="draw new n-gram masks for every example each time it is read (default: the masks stored in the records)",
    )
    parser.add_argument(
        "--on-divergence", choices=("warn", "stop", "rollback"), default="warn",
        help="when the masked-LM accuracy over 3 x --log-every steps falls below half its best, or the loss over "
        "--log-every steps rises above 2 x the median of the 10 intervals before: say so once with the step (warn), "
        "also stop (stop), or restore the newest checkpoint from before those steps, multiply the learning rate by "
        "--rollback-lr-factor and go on (rollback; a NaN loss too); recorded in summary.json's divergence and "
        "rollbacks (default: %(default)s)",
    )
    parser.add_argument("--rollback-lr-factor", type=float, default=0.5,
                        help="learning-rate factor per rollback, kept on resume (default: %(default)s)")
    parser.add_argument("--max-rollbacks", type=int, default=3,
                        help="rollbacks allowed; the next divergence stops the run (default: %(default)s)")
    parser.add_argument(
        "--deterministic", action="store_true", help="enable TensorFlow's deterministic ops (bit-exact reruns, slower)"
    )
    add_quiet(parser, old_verbose=True)
    parser.set_defaults(func=run)


def warmup_steps(warmup, num_train_steps):
    """`--warmup` as steps: a fraction (< 1) of `num_train_steps`, else a number of steps; None passes.

    Example:
    ```python
    warmup_steps(0.1, 1000), warmup_steps(300, 1000)  # (100, 300)
    ```
    """
    if warmup is None:
        return None
    return int(round(warmup * num_train_steps)) if warmup < 1 else int(warmup)


def run(args):
    from albert_keras.training.checkpointing import TrainingDivergedError
    from albert_keras.training.pretrain import pretrain

    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    try:
        pretrain(
            config=args.config,
            train_files=args.train_files,
            settings=args.output,
            global_batch_size=args.batch_size,
            num_train_steps=args.num_train_steps,
            num_warmup_steps=warmup_steps(args.warmup, args.num_train_steps),
            learning_rate=args.learning_rate,
            optimizer=args.optimizer,
            precision=training_precision(args.precision),
            xla=args.xla,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoints=args.keep_checkpoints,
            eval_files=args.eval_files,
            eval_every=args.eval_every,
            eval_steps=args.eval_steps,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            strategy=args.strategy,
            tpu=args.tpu,
            max_seq_length=args.max_seq_length,
            seed=args.seed,
            log_every=args.log_every,
            spm_model=args.vocab,
            dynamic_masking=args.dynamic_masking,
            on_divergence=args.on_divergence,
            rollback_lr_factor=args.rollback_lr_factor,
            max_rollbacks=args.max_rollbacks,
            verbose=keras_verbose(args),
            steps_per_execution=args.steps_per_execution,
        )
    except TrainingDivergedError as error:
        import sys

        print(f"albert-keras pretrain: error: {error}", file=sys.stderr)
        return 1
    return 0
