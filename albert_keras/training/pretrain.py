"""`pretrain`: ALBERT pretraining (MLM + SOP) with `fit`, under any tf.distribute strategy,
resumable at the exact step after a crash."""

import dataclasses
import os
import sys
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
             dynamic_masking=False, on_divergence="warn", rollback_lr_factor=0.5, max_rollbacks=3, callbacks=(),
             **overrides):
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
        on_divergence: what to do when the masked-LM accuracy collapses or the loss spikes
            (`callbacks.DivergenceWatch`; recorded in the summary's `divergence`): `"warn"`,
            `"stop"`, or `"rollback"`: restore the newest checkpoint from before the judged
            window, multiply the learning rate by `rollback_lr_factor` and go on (a non-finite
            loss rolls back too); each one is listed in the summary's `rollbacks` and the
            checkpoints' `state.json`, so a resumed run keeps the lowered rate.
        rollback_lr_factor: the learning-rate factor per rollback, in (0, 1).
        max_rollbacks: rollbacks allowed; the next divergence stops the run (a non-finite loss
            then raises `TrainingDivergedError`).
        callbacks: extra Keras callbacks, run after the run's own.
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
    if not 0 < float(rollback_lr_factor) < 1:
        raise AlbertInputError(f"--rollback-lr-factor must be between 0 and 1, got {rollback_lr_factor}")
    if int(max_rollbacks) < 0:
        raise AlbertInputError(f"--max-rollbacks must be 0 or more, got {max_rollbacks}")

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
    from albert_keras.training.checkpointing import TrainingDivergedError

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
    rollbacks = Rollbacks(loop, divergence, [logger, watch], rollback_lr_factor, max_rollbacks, settings.learning_rate)
    started = time.perf_counter()
    history_logs = {}
    while True:
        try:
            history_logs = loop.fit(
                lambda skip: inputs.distributed_batches(distribution, make_train, micro_batch, skip_batches=skip),
                validation_data=validation,
                validation_steps=validation_steps,
                callbacks=[logger, watch, divergence, *callbacks],
            )
        except TrainingDivergedError as error:
            # A non-finite loss: rolled back like a spike when asked to, else (or when it cannot) the error.
            if on_divergence != "rollback" or error.step is None:
                raise
            divergence.fire(error.step, {"reason": "non-finite loss", "value": None}, str(error).split(" at step")[0])
            if not rollbacks.roll_back(divergence.pending):
                raise
            continue
        if divergence.pending is None or not rollbacks.roll_back(divergence.pending):
            break
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
        rollbacks=rollbacks.records,
        learning_rate_scale=rollbacks.scale,
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


class Rollbacks:
    """`--on-divergence rollback`: back to a checkpoint from before the divergence, at a lower rate.

    Built after `TrainingLoop.build`: it takes over the learning-rate scale and the earlier
    rollbacks recorded in the restored checkpoint's `state.json` (a resumed run keeps its lowered
    rate) and puts them in every checkpoint it writes from then on.

    Args:
        loop: the built `TrainingLoop`.
        watch: the run's `DivergenceWatch` (its `rollback_before` names the newest step allowed).
        observers: callbacks told the step went back (`rewind`) or shown the event (`write_event`).
        factor: learning-rate factor per rollback.
        max_rollbacks: rollbacks allowed before a divergence stops the run.
        learning_rate: the peak learning rate (recorded times the scale).

    Example:
    ```python
    rollbacks = Rollbacks(loop, divergence_watch, [logger], factor=0.5, max_rollbacks=3, learning_rate=1e-3)
    if divergence_watch.pending and rollbacks.roll_back(divergence_watch.pending):
        loop.fit(...)  # goes on from the restored step at half the rate
    ```
    """

    def __init__(self, loop, watch, observers, factor, max_rollbacks, learning_rate):
        from albert_keras.training.optimization import set_learning_rate_scale

        self.loop = loop
        self.watch = watch
        self.observers = list(observers)
        self.factor = float(factor)
        self.max_rollbacks = int(max_rollbacks)
        self.learning_rate = float(learning_rate)
        state = loop.restored_state or {}
        self.scale = float(state.get("learning_rate_scale", 1.0))
        self.records = list(state.get("rollbacks", []))
        if self.scale != 1.0:
            set_learning_rate_scale(loop.model.optimizer, self.scale)
            self._say(f"pretrain: learning rate x{self.scale:g} after {len(self.records)} rollback(s), as the "
                      "checkpoint recorded")
        loop.checkpoint_callback.extra_state.update(learning_rate_scale=self.scale, rollbacks=self.records)

    def _say(self, message):
        if self.loop.chief:
            print(message, file=sys.stderr)

    def roll_back(self, event):
        """Act on `event` (a `DivergenceWatch` event); True when the model was rolled back."""
        from albert_keras.training.optimization import set_learning_rate_scale

        step, newest = event["step"], self.watch.rollback_before(event)
        callback = self.loop.checkpoint_callback
        restored = None
        if len(self.records) >= self.max_rollbacks:
            why = f"{len(self.records)} rollback(s) already (--max-rollbacks {self.max_rollbacks})"
        else:
            restored = callback.checkpointer.roll_back(newest)
            why = (f"no checkpoint at or before step {newest} (one window before it; checkpoints every "
                   f"{callback.every_steps} steps)")
        if restored is None:
            event["action"] = "stop"
            self._say(f"divergence: step {step}: cannot roll back: {why}; stopping")
            return False
        restored_step, path, _ = restored
        self.scale *= self.factor
        set_learning_rate_scale(self.loop.model.optimizer, self.scale)
        self.records.append({
            "step": step, "reason": event["reason"], "restored_step": restored_step,
            "learning_rate_scale": self.scale, "learning_rate": self.learning_rate * self.scale,
        })
        # The restored checkpoint's state.json gets the new scale at once (a resume from it keeps the
        # lower rate); every later checkpoint carries it in its extra state.
        callback.extra_state.update(learning_rate_scale=self.scale, rollbacks=self.records)
        callback.checkpointer.update_state(path, {"learning_rate_scale": self.scale, "rollbacks": self.records})
        callback.last_saved = restored_step
        self.watch.rolled_back(restored_step)
        message = (f"rolled back to step {restored_step} ({path}) after a {event['reason']} at step {step}; "
                   f"learning rate x{self.scale:g} (peak {self.learning_rate * self.scale:.3g}); rollback "
                   f"{len(self.records)} of at most {self.max_rollbacks}")
        for observer in self.observers:
            if hasattr(observer, "rewind"):
                observer.rewind(restored_step)
            if hasattr(observer, "write_event"):
                observer.write_event(step, {"divergence/learning_rate_scale": self.scale,
                                            "divergence/restored_step": restored_step}, message)
        self._say(f"pretrain: {message}")
        return True
