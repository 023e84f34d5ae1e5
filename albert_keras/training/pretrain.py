"""`pretrain`: ALBERT pretraining (MLM + SOP) with `fit`, under any tf.distribute strategy,
resumable at the exact step after a crash."""

import dataclasses
import os
import time

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError
from albert_keras.training.run_end import PRETRAINED_DIR  # noqa: F401 (the run directory's layout, re-exported)
from albert_keras.training.run_end import SUMMARY_FILE  # noqa: F401


def _build_model(config, init_from, precision):
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    dtype = None if precision == "float32" else precision
    if init_from:
        return AlbertPretrainer.from_pretrained(init_from, dtype=dtype)
    return AlbertPretrainer(AlbertEncoder(config, dtype=dtype))


# Data, checkpoints, logs and summary.json go through gfile directly (a preempted run resumes from
# gs://); a remote config / initial directory / SentencePiece model is read from a local copy.
@io_utils.any_filesystem(inputs=("config", "spm_model"))
def pretrain(config, train_files, settings, eval_files=None, eval_steps=100, max_seq_length=None, spm_model=None,
             dynamic_masking=False, on_divergence="warn", **overrides):
    """Pretrain ALBERT on official-schema TFRecords and write a pretrained directory.

    Rerunning the same call after a crash (or preemption) resumes from the newest checkpoint in
    `output_dir/checkpoints` at the exact step and data position it recorded; the final weights
    equal an uninterrupted run's.

    Args:
        config: an `AlbertConfig`, a preset name, a JSON path, or a pretrained directory (whose
            weights then initialize the model: continued pretraining).
        train_files: TFRecord glob(s), comma-separated (`albert-keras create-data` output).
        settings: a `TrainingSettings` (see `albert_keras.training.loop`), or the output
            directory, with the other settings as keyword arguments (`overrides`). The output
            directory receives `checkpoints/`, `logs/` (TensorBoard), `pretrained/` and
            `summary.json`. Pretraining's defaults are the official ones: LAMB at 0.00176,
            warmup 2.5% of the steps.
        eval_files: optional TFRecord glob for evaluation (every `settings.eval_every` steps).
        eval_steps: evaluation batches (of `global_batch_size`) per evaluation.
        max_seq_length: expected record length (default: the records').
        spm_model: SentencePiece model copied into the pretrained directory.
        dynamic_masking: draw new masks for every example each time it is read (with the data's
            `masked_lm_prob`, `ngram`, `favor_shorter_ngram` and `do_whole_word_mask` from
            `manifest.json`), instead of the masks stored in the records (static masking, the
            official behaviour). Evaluation keeps the stored masks.
        on_divergence: `"warn"` or `"stop"` when the masked-LM accuracy collapses
            (`callbacks.DivergenceWatch`); recorded in the summary's `divergence`.
        **overrides: `TrainingSettings` fields, applied over `settings`.

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
    from albert_keras.training.loop import TrainingLoop
    from albert_keras.training.loop import TrainingSettings

    if isinstance(settings, TrainingSettings):
        settings = dataclasses.replace(settings, **overrides)
    else:
        settings = TrainingSettings(output_dir=os.fspath(settings), **overrides)
    settings.validate()

    # --- data: every check before any model is built -----------------------------------------
    init_from = None
    if isinstance(config, (str, os.PathLike)) and io_utils.isdir(config):
        init_from = os.fspath(config)
    config = AlbertConfig.resolve(config)

    from albert_keras.data import batches as inputs

    files = inputs.match_files(train_files)
    seq_length, predictions = inputs.inspect_records(
        files, config.vocab_size, max_seq_length=max_seq_length, max_position_embeddings=config.max_position_embeddings,
        require_token_boundary=dynamic_masking,
    )
    masking = {}
    if dynamic_masking:
        data_settings = inputs.manifest_settings(files)
        masking = dict(
            dynamic_masking=True, vocab_size=config.vocab_size,
            masked_lm_prob=float(data_settings.get("masked_lm_prob", 0.15)), ngram=int(data_settings.get("ngram", 3)),
            favor_shorter_ngram=bool(data_settings.get("favor_shorter_ngram", True)),
            do_whole_word_mask=bool(data_settings.get("do_whole_word_mask", True)),
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

    # --- strategy, model, optimizer, resume ---------------------------------------------------
    from albert_keras.training.callbacks import CollapseWatch
    from albert_keras.training.callbacks import DivergenceWatch
    from albert_keras.training.callbacks import PretrainingLogger

    fingerprint = {"train_files": files}
    if dynamic_masking:  # static-mask runs keep the fingerprint they always had
        fingerprint["dynamic_masking"] = True
    loop = TrainingLoop(settings, fingerprint, name="pretrain")
    distribution = loop.strategy
    model = loop.build(lambda: _build_model(config, init_from, settings.precision))
    start_step = loop.start_step
    micro_batch = settings.micro_batch_size

    # --- data and callbacks -------------------------------------------------------------------
    def make_train():
        return inputs.global_batches(files, micro_batch, seq_length, predictions, seed=settings.seed, **masking)

    validation = None
    validation_steps = None
    if eval_file_list:
        # Evaluation reads micro-batches (the global batch over the accumulation steps): count those.
        validation_steps = inputs.count_global_batches(eval_file_list, micro_batch, limit=eval_steps)
        if not validation_steps:
            raise AlbertInputError(
                f"{eval_file_list[0]}: the evaluation files hold fewer records than one global batch "
                f"({micro_batch} per evaluation step); give more evaluation records or a smaller --global-batch-size"
            )
        validation = inputs.distributed_batches(
            distribution,
            lambda: inputs.global_batches(
                eval_file_list, micro_batch, seq_length, predictions, shuffle=False, repeat=False
            ).take(eval_steps),
            micro_batch,
        )
    logger = PretrainingLogger(
        loop.log_dir, settings.global_batch_size, every_steps=min(settings.log_every, settings.checkpoint_every),
        batches_per_step=settings.gradient_accumulation_steps,
    )
    # A fixed probe batch (the first training records) for the collapse watch.
    probe = next(iter(inputs.global_batches(files, 8, seq_length, predictions, shuffle=False).take(1)))
    watch = CollapseWatch(
        {name: value.numpy() for name, value in probe.items()}, every_steps=settings.log_every, log_dir=loop.log_dir,
        learning_rate=settings.learning_rate, num_warmup_steps=settings.num_warmup_steps,
        batches_per_step=settings.gradient_accumulation_steps, verbose=loop.chief,
    )
    divergence = DivergenceWatch(every_steps=settings.log_every, min_step=settings.num_warmup_steps,
                                 on_divergence=on_divergence,
                                 batches_per_step=settings.gradient_accumulation_steps, verbose=loop.chief,
                                 source=logger)
    started = time.perf_counter()
    history_logs = loop.fit(
        lambda skip: inputs.distributed_batches(distribution, make_train, micro_batch, skip_batches=skip),
        validation_data=validation,
        validation_steps=validation_steps,
        callbacks=[logger, watch, divergence],
    )
    elapsed = time.perf_counter() - started

    # --- the end of the run (training.run_end, shared with finetune) --------------------------
    from albert_keras.training.run_end import end_run
    from albert_keras.training.run_end import run_summary

    final_step = loop.finish()
    train = {k: float(v) for k, v in (history_logs or logger.last_logs).items() if not k.startswith("val_")}
    summary = run_summary(
        loop, final_step, elapsed,
        examples_per_second=round(
            logger.examples_per_second
            or (final_step - start_step) * settings.global_batch_size / max(elapsed, 1e-9), 3
        ),
        xla=bool(settings.xla),
        dynamic_masking=bool(dynamic_masking),
        train=train,
        eval={k[4:]: float(v) for k, v in history_logs.items() if k.startswith("val_")},
        warnings=list(watch.warnings),
        collapse_watch=[list(check) for check in watch.history],
        divergence=divergence.event,
    )

    def save_result(pretrained_dir):
        if io_utils.is_url(pretrained_dir):
            # save_pretrained writes local files: write a local copy, then upload it.
            with io_utils.staged_directory(pretrained_dir, overwrite=True, marker="model.json") as local_dir:
                model.save_pretrained(local_dir, spm_model=spm_model)
        else:
            model.save_pretrained(pretrained_dir, spm_model=spm_model)

    return end_run(
        loop, summary, save_result,
        f" ({summary['steps_this_run']} this run) in {elapsed:.1f}s, "
        f"{summary['examples_per_second']:.2f} examples/s, loss {train.get('loss', float('nan')):.4f}, "
        f"masked_lm_accuracy {train.get('masked_lm_accuracy', float('nan')):.4f}, "
        f"sentence_order_accuracy {train.get('sentence_order_accuracy', float('nan')):.4f}",
    )
