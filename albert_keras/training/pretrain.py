"""`pretrain`: ALBERT pretraining (MLM + SOP) with `fit`, under any tf.distribute strategy,
resumable at the exact step after a crash."""

import json
import os
import sys
import time
import warnings

from albert_keras.errors import AlbertInputError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
CHECKPOINT_DIR = "checkpoints"
PRETRAINED_DIR = "pretrained"
LOG_DIR = "logs"
SUMMARY_FILE = "summary.json"


def _build_model(config, init_from, precision):
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    dtype = None if precision == "float32" else precision
    if init_from:
        return AlbertPretrainer.from_pretrained(init_from, dtype=dtype)
    return AlbertPretrainer(AlbertEncoder(config, dtype=dtype))


def _segments(start, total, period):
    """Split steps [start, total) into `fit` calls whose epochs end on multiples of `period`.

    Returns `(initial_epoch, epochs, steps_per_epoch)` triples (epochs counted in `period`s, so
    Keras' progress bar and validation line up with the evaluation interval across restarts).
    """
    segments = []
    step = start
    if step % period and step < total:
        end = min((step // period + 1) * period, total)
        segments.append((step // period, step // period + 1, end - step))
        step = end
    full_end = (total // period) * period
    if full_end > step:
        segments.append((step // period, full_end // period, period))
        step = full_end
    if total > step:
        segments.append((step // period, step // period + 1, total - step))
    return segments


def pretrain(
    config,
    train_files,
    output_dir,
    global_batch_size=64,
    num_train_steps=10000,
    num_warmup_steps=None,
    learning_rate=0.00176,
    optimizer="lamb",
    precision="float32",
    xla=None,
    checkpoint_every=1000,
    keep_checkpoints=3,
    eval_files=None,
    eval_every=None,
    eval_steps=100,
    gradient_accumulation_steps=1,
    strategy="auto",
    tpu=None,
    max_seq_length=None,
    seed=12345,
    log_every=100,
    spm_model=None,
    verbose="auto",
):
    """Pretrain ALBERT on official-schema TFRecords and write a pretrained directory.

    Rerunning the same call after a crash (or preemption) resumes from the newest checkpoint in
    `output_dir/checkpoints` at the exact step and data position it recorded; the final weights
    equal an uninterrupted run's.

    Args:
        config: an `AlbertConfig`, a preset name, a JSON path, or a pretrained directory (whose
            weights then initialize the model: continued pretraining).
        train_files: TFRecord glob(s), comma-separated (`albert-keras create-data` output).
        output_dir: receives `checkpoints/`, `logs/` (TensorBoard), `pretrained/` and
            `summary.json`.
        global_batch_size: examples per optimizer step over all replicas and accumulation steps.
        num_train_steps: optimizer steps (the schedule decays to 0 here).
        num_warmup_steps: linear warmup steps (default: 2.5% of `num_train_steps`, the official
            3125/125000 ratio).
        learning_rate: peak learning rate (official 0.00176 at batch 4096).
        optimizer: `"lamb"` (official) or `"adamw"`.
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"` (with dynamic loss scaling).
        xla: compile steps with XLA; default on for GPU/TPU, off on CPU (where it measured slower).
        checkpoint_every: checkpoint interval in steps.
        keep_checkpoints: complete checkpoints kept.
        eval_files: optional TFRecord glob for evaluation.
        eval_every: evaluation interval in steps (default `checkpoint_every`).
        eval_steps: evaluation batches (of `global_batch_size`) per evaluation.
        gradient_accumulation_steps: micro-batches per optimizer step; each micro-batch holds
            `global_batch_size / gradient_accumulation_steps` examples.
        strategy: `auto`, `default`, `one-device`, `mirrored`, `multi-worker` or `tpu`.
        tpu: TPU name/address for the `tpu` strategy.
        max_seq_length: expected record length (default: the records').
        seed: weight initialization and data-order seed.
        log_every: TensorBoard interval in steps.
        spm_model: SentencePiece model copied into the pretrained directory.
        verbose: Keras progress output (`"auto"`, 0, 1, 2).

    Returns:
        A summary dict (also written to `output_dir/summary.json` by the chief).

    Example:
    ```python
    from albert_keras.training.pretrain import pretrain
    pretrain("albert-base-v2", "tfrecords/wiki/*.tfrecord", "runs/base", global_batch_size=256,
             num_train_steps=10000, num_warmup_steps=1000, precision="mixed_bfloat16")
    ```
    """
    from albert_keras.config import AlbertConfig

    # --- arguments and data: every check before any model is built ---------------------------
    if precision not in PRECISIONS:
        raise AlbertInputError(f"--precision: unknown {precision!r}; choose one of {', '.join(PRECISIONS)}")
    for name, value in (("global_batch_size", global_batch_size), ("num_train_steps", num_train_steps)):
        if int(value) < 1:
            raise AlbertInputError(f"--{name.replace('_', '-')} must be positive, got {value}")
    accumulation = max(int(gradient_accumulation_steps or 1), 1)
    if global_batch_size % accumulation:
        raise AlbertInputError(
            f"--global-batch-size {global_batch_size} is not divisible by --gradient-accumulation-steps {accumulation}"
        )
    if num_warmup_steps is None:
        num_warmup_steps = int(round(num_train_steps * 3125 / 125000))
    checkpoint_every = int(checkpoint_every or num_train_steps)
    eval_every = int(eval_every or checkpoint_every)
    init_from = None
    if isinstance(config, (str, os.PathLike)) and os.path.isdir(config):
        init_from = os.fspath(config)
    config = AlbertConfig.resolve(config)

    from albert_keras.training import inputs

    files = inputs.match_files(train_files)
    seq_length, predictions = inputs.inspect_records(
        files, config.vocab_size, max_seq_length=max_seq_length, max_position_embeddings=config.max_position_embeddings
    )
    eval_file_list = None
    if eval_files:
        eval_file_list = inputs.match_files(eval_files)
        eval_shape = inputs.inspect_records(
            eval_file_list, config.vocab_size, max_position_embeddings=config.max_position_embeddings
        )
        if eval_shape != (seq_length, predictions):
            raise AlbertInputError(
                f"{eval_file_list[0]}: evaluation records have length {eval_shape}, training records {(seq_length, predictions)}"
            )

    # --- strategy, model, optimizer -----------------------------------------------------------
    import keras
    import tensorflow as tf

    from albert_keras.training.callbacks import PretrainingLogger
    from albert_keras.training.checkpointing import StepCheckpointCallback
    from albert_keras.training.checkpointing import StepCheckpointer
    from albert_keras.training.optimization import create_optimizer
    from albert_keras.training.strategy import is_chief
    from albert_keras.training.strategy import resolve_strategy

    distribution = resolve_strategy(strategy, tpu=tpu)
    chief = is_chief(distribution)
    if xla is None:
        xla = bool(tf.config.list_physical_devices("GPU")) or isinstance(distribution, tf.distribute.TPUStrategy)
    micro_batch = global_batch_size // accumulation
    keras.utils.set_random_seed(seed)
    with distribution.scope():
        model = _build_model(config, init_from, precision)
        opt = create_optimizer(
            optimizer,
            learning_rate,
            num_train_steps=num_train_steps,
            num_warmup_steps=num_warmup_steps,
            gradient_accumulation_steps=accumulation,
        )
        if precision == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        model.compile(optimizer=opt, jit_compile=bool(xla))
        opt.build(model.trainable_variables)

    output_dir = os.fspath(output_dir)
    checkpointer = StepCheckpointer(
        os.path.join(output_dir, CHECKPOINT_DIR), model, opt, keep=keep_checkpoints, is_chief=chief
    )
    run = {
        "global_batch_size": int(global_batch_size),
        "gradient_accumulation_steps": accumulation,
        "seed": int(seed),
        "train_files": files,
        "optimizer": optimizer,
        "precision": precision,
    }
    start_step = 0
    state = checkpointer.restore_latest()
    if state is not None:
        changed = [key for key, value in run.items() if state.get("run", {}).get(key) != value]
        if changed:
            raise AlbertInputError(
                f"{checkpointer.latest()[1]}: the checkpoint was made with other {', '.join(changed)}; "
                "rerun with the original settings or use a new output directory"
            )
        start_step = int(state["step"])
        if int(model.optimizer.iterations.numpy()) != start_step:
            raise AlbertInputError(f"{checkpointer.latest()[1]}: optimizer step does not match state.json")
        print(f"pretrain: resuming from step {start_step} ({checkpointer.latest()[1]})", file=sys.stderr)
        if start_step >= num_train_steps:
            print(f"pretrain: the checkpoint already reached --num-train-steps {num_train_steps}; nothing to "
                  "train (raise --num-train-steps to continue)", file=sys.stderr)

    # --- data and callbacks -------------------------------------------------------------------
    def make_train():
        return inputs.global_batches(files, micro_batch, seq_length, predictions, seed=seed)

    validation = None
    if eval_file_list:
        validation = inputs.distributed_batches(
            distribution,
            lambda: inputs.global_batches(
                eval_file_list, micro_batch, seq_length, predictions, shuffle=False, repeat=False
            ).take(eval_steps),
            micro_batch,
        )

    checkpoint_callback = StepCheckpointCallback(
        checkpointer, checkpoint_every, batches_per_step=accumulation, final_step=num_train_steps, extra_state={"run": run}
    )
    checkpoint_callback.last_saved = start_step
    logger = PretrainingLogger(
        os.path.join(output_dir, LOG_DIR) if chief else None, global_batch_size, every_steps=min(log_every, checkpoint_every)
    )
    callbacks = [checkpoint_callback, logger]
    history_logs = {}
    started = time.perf_counter()
    for initial_epoch, epochs, steps in _segments(start_step, num_train_steps, eval_every):
        # Each segment starts where the model is: skip exactly the batches already trained on.
        consumed = int(model.optimizer.iterations.numpy()) * accumulation
        data = inputs.distributed_batches(distribution, make_train, micro_batch, skip_batches=consumed)
        with warnings.catch_warnings():
            # The evaluation set is finite by design (the same batches every time); Keras warns
            # each time it reaches its end.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = model.fit(
                data,
                initial_epoch=initial_epoch,
                epochs=epochs,
                steps_per_epoch=steps * accumulation,
                validation_data=validation,
                callbacks=callbacks,
                shuffle=False,  # the input pipeline shuffles, with its own seed
                verbose=verbose,
            )
        history_logs = {key: values[-1] for key, values in history.history.items()}
    elapsed = time.perf_counter() - started

    # --- outputs ------------------------------------------------------------------------------
    final_step = int(model.optimizer.iterations.numpy())
    if checkpoint_callback.last_saved != final_step:
        checkpoint_callback.save(final_step)
    pretrained_dir = os.path.join(output_dir, PRETRAINED_DIR)
    summary = {
        "step": final_step,
        "steps_this_run": final_step - start_step,
        "resumed_from": start_step,
        "seconds": round(elapsed, 3),
        "examples_per_second": round(
            logger.examples_per_second or (final_step - start_step) * global_batch_size / max(elapsed, 1e-9), 3
        ),
        "strategy": type(distribution).__name__,
        "replicas": distribution.num_replicas_in_sync,
        "precision": precision,
        "xla": bool(xla),
        "train": {k: float(v) for k, v in (history_logs or logger.last_logs).items() if not k.startswith("val_")},
        "eval": {k[4:]: float(v) for k, v in history_logs.items() if k.startswith("val_")},
        "pretrained_dir": pretrained_dir,
    }
    if chief:
        model.save_pretrained(pretrained_dir, spm_model=spm_model)
        from albert_keras.io_utils import atomic_write

        with atomic_write(os.path.join(output_dir, SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    train = summary["train"]
    print(
        f"pretrain: step {final_step}/{num_train_steps} ({summary['steps_this_run']} this run) in {elapsed:.1f}s, "
        f"{summary['examples_per_second']:.2f} examples/s, loss {train.get('loss', float('nan')):.4f}, "
        f"masked_lm_accuracy {train.get('masked_lm_accuracy', float('nan')):.4f}, "
        f"sentence_order_accuracy {train.get('sentence_order_accuracy', float('nan')):.4f}"
        + (f"; wrote {pretrained_dir}" if chief else " (not the chief: nothing written)"),
        file=sys.stderr,
    )
    return summary
