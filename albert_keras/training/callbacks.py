"""Callbacks for `pretrain`: `PretrainingLogger` (TensorBoard scalars and throughput) and
`CollapseWatch` (warns when the representations collapse)."""

import math
import sys
import time

import keras
import numpy as np


def write_scalar(name, value, step):
    """Write a TensorBoard scalar to the default summary writer.

    `tf.summary.scalar` needs the `tensorboard` package at run time; this writes the same event
    (a float32 tensor tagged for the "scalars" plugin) with TensorFlow's own summary op, so logs
    are written whether or not TensorBoard is installed.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    ).SerializeToString()
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


def write_text(name, text, step):
    """Write a TensorBoard text summary (the "text" plugin's event), without needing `tensorboard`."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
    ).SerializeToString()
    tf.summary.write(name, tf.constant(str(text)), step=step, metadata=metadata)


class PretrainingLogger(keras.callbacks.Callback):
    """Writes step scalars to TensorBoard and tracks examples per second.

    Every `every_steps` optimizer steps it writes the logged losses and accuracies (the running
    means Keras reports), the learning rate and the examples per second since the previous write,
    under `log_dir/train`; validation results go under `log_dir/eval`. Only the chief should be
    given a `log_dir`; with `log_dir=None` it only measures throughput. Steps are counted on the
    host and the logs read from the device only at the write interval (`host_sync`), so the step
    loop is not synchronized in between; `every_steps` should be a multiple of the steps per
    execution (`TrainingLoop` rounds it).

    Args:
        log_dir: TensorBoard directory or None.
        global_batch_size: examples per optimizer step.
        every_steps: write interval in optimizer steps.
        batches_per_step: `fit` batches per optimizer step (gradient accumulation).

    Example:
    ```python
    logger = PretrainingLogger("run/logs", global_batch_size=256, every_steps=100)
    model.fit(data, steps_per_epoch=1000, callbacks=[logger])
    logger.examples_per_second
    ```
    """

    defers_logs = True  # see host_sync.DeferredLogsCallbackList

    def __init__(self, log_dir, global_batch_size, every_steps=100, batches_per_step=1):
        super().__init__()
        import tensorflow as tf

        from albert_keras.training.host_sync import StepCounter

        self.counter = StepCounter(batches_per_step)

        self.global_batch_size = int(global_batch_size)
        self.every_steps = max(int(every_steps), 1)
        self._train_writer = tf.summary.create_file_writer(f"{log_dir}/train") if log_dir else None
        self._eval_writer = tf.summary.create_file_writer(f"{log_dir}/eval") if log_dir else None
        self._mark = None  # (time, step) of the last write
        self.steps_trained = 0
        self.seconds = 0.0
        self.last_logs = {}
        self.last_eval_logs = {}
        # Throughput accumulators live across `fit` calls (one per evaluation interval), and must
        # exist when no `fit` runs at all (a resumed run that had already reached its last step).
        self._rate_seconds = 0.0
        self._rate_examples = 0
        self._first_seconds = 0.0
        self._first_examples = 0
        self._first_interval = True

    @property
    def examples_per_second(self):
        """Examples per second over this run's steps, first (tracing) interval excluded."""
        if self._rate_seconds:
            return self._rate_examples / self._rate_seconds
        # A run too short for a second interval: the first one (with tracing) is all there is.
        return self._first_examples / self._first_seconds if self._first_seconds else 0.0

    def on_train_begin(self, logs=None):
        from albert_keras.training.host_sync import to_host

        # The one device read of a `fit` call; afterwards the steps are counted.
        self.counter.begin(to_host(self.model.optimizer.iterations, reader="logger_begin"))
        self._mark = (time.perf_counter(), self.counter.step)
        self._run_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.counter.epoch_begin()

    def on_train_end(self, logs=None):
        self.seconds += time.perf_counter() - self._run_start

    def _step(self):
        return self.counter.step

    def _learning_rate(self):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        return optimizer.learning_rate

    def on_train_batch_end(self, batch, logs=None):
        from albert_keras.training.host_sync import to_host

        step = self.counter.batch_end(batch)
        self.last_logs = dict(logs or {})  # still on the device: read only at the interval
        start_time, start_step = self._mark
        if step - start_step < self.every_steps or not self.counter.step_done:
            return
        # Reading the logs waits for the device, so the time below is the steps' real end.
        values = to_host({**self.last_logs, "learning_rate": self._learning_rate()}, reader="logger")
        learning_rate = values.pop("learning_rate")
        self.last_logs = values
        now = time.perf_counter()
        done = step - start_step
        self.steps_trained += done
        rate = done * self.global_batch_size / max(now - start_time, 1e-9)
        if self._first_interval:
            self._first_interval = False  # holds the trace / compile time
            self._first_seconds = now - start_time
            self._first_examples = done * self.global_batch_size
        else:
            self._rate_seconds += now - start_time
            self._rate_examples += done * self.global_batch_size
        self._mark = (now, step)
        if self._train_writer is None:
            return
        with self._train_writer.as_default(step=step):
            for name, value in self.last_logs.items():
                write_scalar(name, value, step)
            write_scalar("learning_rate", learning_rate, step)
            write_scalar("examples_per_second", rate, step)
        self._train_writer.flush()

    def write_event(self, step, scalars, text=None, tag="divergence/rollback"):
        """Write `scalars` (`{name: value}`) and an optional text `tag` at `step` under `log_dir/train`.

        Example:
        ```python
        logger.write_event(900, {"divergence/learning_rate_scale": 0.5}, "rolled back to step 600")
        ```
        """
        if self._train_writer is None:
            return
        with self._train_writer.as_default(step=step):
            for name, value in scalars.items():
                write_scalar(name, value, step)
            if text:
                write_text(tag, text, step)
        self._train_writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        eval_logs = {k[len("val_") :]: v for k, v in (logs or {}).items() if k.startswith("val_")}
        if not eval_logs:
            return
        self.last_eval_logs = eval_logs
        if self._eval_writer is None:
            return
        step = self._step()
        with self._eval_writer.as_default(step=step):
            for name, value in eval_logs.items():
                write_scalar(name, value, step)
        self._eval_writer.flush()


def representation_spread(vectors, mask):
    """How different the token vectors are: RMS distance to their mean over their RMS norm.

    Args:
        vectors: `[batch, seq, hidden]` token vectors.
        mask: `[batch, seq]`, 1 for real tokens.

    Returns:
        A float in [0, 1]: about 1 for unrelated vectors, 0 when every token has the same vector.

    Example:
    >>> v = np.ones((2, 3, 4)); float(representation_spread(v, np.ones((2, 3))))
    0.0
    """
    tokens = np.asarray(vectors, np.float64)[np.asarray(mask).astype(bool)]
    if len(tokens) < 2:
        return 1.0
    centered = tokens - tokens.mean(axis=0)
    norm = np.sqrt(np.mean(np.sum(tokens**2, axis=-1)))
    return float(np.sqrt(np.mean(np.sum(centered**2, axis=-1))) / max(norm, 1e-12))


def top_prediction_share(mlm_logits, weights):
    """The share of the (weighted) masked positions whose top prediction is the most common one.

    Returns `(share, piece_id)`: 1.0 when the masked LM predicts one piece everywhere.

    Example:
    >>> logits = np.zeros((1, 2, 5)); logits[..., 3] = 1.0
    >>> top_prediction_share(logits, np.ones((1, 2)))
    (1.0, 3)
    """
    predictions = np.argmax(np.asarray(mlm_logits), axis=-1)[np.asarray(weights) > 0]
    if not len(predictions):
        return 0.0, -1
    ids, counts = np.unique(predictions, return_counts=True)
    best = int(np.argmax(counts))
    return float(counts[best] / len(predictions)), int(ids[best])


class CollapseWatch(keras.callbacks.Callback):
    """Warns when pretraining collapses: every token gets the same vector, or the MLM predicts one piece.

    A collapsed model can still report a normal-looking loss (the masked LM falls back to the
    pieces' unigram frequencies, the SOP head to chance), so every `every_steps` optimizer steps
    this runs the model on a fixed probe batch and measures two things:

    - the token vectors' spread (`representation_spread`: RMS distance of the real tokens'
      `sequence_output` vectors to their mean, over their RMS norm; about 1 when healthy). Below
      `spread_threshold` the tokens are indistinguishable.
    - the share of masked positions whose top MLM prediction is one and the same piece
      (`top_prediction_share`). Early in every run the masked LM predicts mostly the most frequent
      pieces, so this counts only after warmup, and only when `patience` checks in a row are at or
      above `top_share_threshold` (and well above the labels' own share of that piece): the
      masked LM is not reading the context.

    Each kind is reported once, with the step and the likely cause, on stderr, in `warnings`
    (which `pretrain` copies into `summary.json`) and as TensorBoard text `collapse/warning`;
    both measures are TensorBoard scalars (`collapse/token_spread`, `collapse/top_prediction_share`)
    under `log_dir/train`. Between checks it does no work and no host synchronization: steps are
    counted from the batches seen, not read from the optimizer.

    Args:
        probe: a batch in the official pretraining schema (dict of arrays; `AlbertPretrainer`'s
            inputs, `masked_lm_ids` and `masked_lm_weights`).
        every_steps: check interval in optimizer steps.
        log_dir: TensorBoard directory or None.
        learning_rate: the peak learning rate (named in the warning).
        num_warmup_steps: warmup steps (named in the warning; the one-piece check waits for them).
        batches_per_step: `fit` batches per optimizer step (gradient accumulation).
        spread_threshold: spread below which the representations count as collapsed.
        top_share_threshold: top-prediction share at or above which the MLM counts as collapsed.
        patience: consecutive post-warmup checks the MLM must stay collapsed before the warning.
        verbose: print warnings on stderr.

    Example:
    ```python
    watch = CollapseWatch(probe_batch, every_steps=100, learning_rate=1e-3, num_warmup_steps=100)
    pretrainer.fit(data, steps_per_epoch=1000, callbacks=[watch])
    watch.warnings  # [] when healthy
    ```
    """

    defers_logs = True  # it never reads the logs (see host_sync.DeferredLogsCallbackList)

    def __init__(self, probe, every_steps=100, log_dir=None, learning_rate=None, num_warmup_steps=0,
                 batches_per_step=1, spread_threshold=0.01, top_share_threshold=0.9, patience=3, verbose=True):
        super().__init__()
        import tensorflow as tf

        self.probe = {name: np.asarray(value) for name, value in probe.items()}
        self.every_steps = max(int(every_steps), 1)
        self.learning_rate = learning_rate
        self.num_warmup_steps = int(num_warmup_steps or 0)
        from albert_keras.training.host_sync import StepCounter

        self.counter = StepCounter(batches_per_step)
        self.spread_threshold = float(spread_threshold)
        self.top_share_threshold = float(top_share_threshold)
        self.patience = max(int(patience), 1)
        self._one_piece_checks = 0
        self.verbose = verbose
        self._writer = tf.summary.create_file_writer(f"{log_dir}/train") if log_dir else None
        self.warnings = []
        self.history = []  # (step, spread, top share) of every check
        self._reported = set()
        self._last_checked = None

    def on_train_begin(self, logs=None):
        from albert_keras.training.host_sync import to_host

        # One read per `fit` call; afterwards steps are counted from the batches.
        self.counter.begin(to_host(self.model.optimizer.iterations, reader="collapse_begin"))
        if self._last_checked is None:
            self._last_checked = self.counter.step

    def on_epoch_begin(self, epoch, logs=None):
        self.counter.epoch_begin()

    def on_train_batch_end(self, batch, logs=None):
        step = self.counter.batch_end(batch)
        if step - self._last_checked >= self.every_steps:
            self._last_checked = step
            self.check(step)

    def rewind(self, step):
        """The model is back at `step` (a rollback): count the next check from there."""
        self._last_checked = int(step)

    def measure(self):
        """Run the model on the probe: returns `(spread, top_share, top_piece, label_share)`."""
        p = self.probe
        encoded = self.model.encoder(
            {"token_ids": p["input_ids"], "segment_ids": p["segment_ids"], "padding_mask": p["input_mask"]},
            training=False,
        )
        sequence = encoded["sequence_output"]
        logits = self.model.masked_lm_head(sequence, mask_positions=p["masked_lm_positions"])
        spread = representation_spread(keras.ops.convert_to_numpy(sequence), p["input_mask"])
        weights = p["masked_lm_weights"]
        share, piece = top_prediction_share(keras.ops.convert_to_numpy(logits), weights)
        labels = p["masked_lm_ids"][weights > 0]
        label_share = float(np.mean(labels == piece)) if len(labels) else 0.0
        return spread, share, piece, label_share

    def _cause(self):
        lr = f" ({self.learning_rate:.3g})" if self.learning_rate else ""
        return (
            f"likely cause: learning rate too high{lr} or warmup too short ({self.num_warmup_steps} steps); "
            "lower --learning-rate (e.g. by half) or raise --num-warmup-steps"
        )

    def check(self, step):
        """Measure at `step` and warn if collapsed; returns the new warnings."""
        spread, share, piece, label_share = self.measure()
        self.history.append((step, round(spread, 6), round(share, 4)))
        found = []
        if spread < self.spread_threshold and "representations" not in self._reported:
            found.append((
                "representations",
                f"step {step}: representation collapse: the token vectors of the probe batch spread only "
                f"{spread:.2g} of their norm (threshold {self.spread_threshold:g}): every token looks the same; "
                + self._cause(),
            ))
        one_piece = step >= self.num_warmup_steps and share >= self.top_share_threshold and share > 2 * label_share
        self._one_piece_checks = self._one_piece_checks + 1 if one_piece else 0
        if self._one_piece_checks >= self.patience and "masked_lm" not in self._reported:
            found.append((
                "masked_lm",
                f"step {step}: masked-LM collapse: piece id {piece} is the top prediction at {share:.0%} of the "
                f"masked positions (it is {label_share:.0%} of the labels), {self._one_piece_checks} checks in a "
                "row after warmup; " + self._cause(),
            ))
        for kind, message in found:
            self._reported.add(kind)
            self.warnings.append(message)
            if self.verbose:
                print(f"\nWARNING pretrain: {message}", file=sys.stderr, flush=True)
        if self._writer is not None:
            with self._writer.as_default(step=step):
                write_scalar("collapse/token_spread", spread, step)
                write_scalar("collapse/top_prediction_share", share, step)
                for _, message in found:
                    write_text("collapse/warning", message, step)
            self._writer.flush()
        return [message for _, message in found]


class DivergenceWatch(keras.callbacks.Callback):
    """Says, with the step, when training diverges, and stops or asks for a rollback if told to.

    Two rules, judged every `every_steps` steps after `min_step` (the warmup):

    - collapse: the mean of a training accuracy over the last `window` intervals falls below
      `drop` times the best such mean so far (once the best has reached `min_best`). A TF2 GPU
      run lost masked-LM accuracy from 0.45 to 0.06 at step 136k with no warning
      (ALBERT-TF2.0 #21); the loss alone hides such a collapse among the usual noise.
    - loss spike: the interval's mean loss is not finite, or above `loss_spike` times the median
      of the (up to 10) interval means before it (a spike does not enter that median).

    Keras logs a running mean since the epoch began, so an interval mean is recovered from two
    running means (`(m_t * t - m_s * s) / (t - s)`). Given the run's `PretrainingLogger` as
    `source`, it uses the logs that logger has just read at its interval and adds no device read
    of its own; alone, it reads the values itself every `every_steps` steps.

    With `"warn"` or `"stop"` it fires once. With `"rollback"` it stops the current `fit` and
    leaves the event in `pending`; whoever runs the training (`pretrain`) restores a checkpoint
    from before the window that fired (`rollback_before`), lowers the learning rate, calls
    `rolled_back(step)` and goes on; the watch then judges again and may fire again.

    Args:
        metric: the logged accuracy to watch (pretraining: `"masked_lm_accuracy"`).
        every_steps: the interval, in optimizer steps.
        window: intervals averaged before comparing (one noisy interval is not a collapse).
        drop: the fraction of the best below which the run counts as diverged (0.5: "lost more
            than half").
        min_best: the best must reach this before a drop counts (accuracy near 0 at the start
            is noise, not a collapse).
        min_step: steps before which nothing is judged (the learning-rate warmup).
        on_divergence: `"warn"` (say so, go on), `"stop"` (say so and stop training) or
            `"rollback"` (say so, stop this `fit` and set `pending`).
        batches_per_step: `fit` batches per optimizer step (gradient accumulation).
        verbose: print the message (the chief only).
        source: a `PretrainingLogger` listed before this callback, or None.
        loss_spike: the loss-spike factor (None: no loss rule).
        loss_metric: the logged loss the spike rule watches.

    Attributes:
        event: None, or the first event: `{"step", "reason", "value", "action", ...}` (a collapse
            adds `best` and `best_step`, a spike `median`).
        events: every event, in order.
        pending: the event a rollback is waiting for, or None.

    Example:
    ```python
    watch = DivergenceWatch("masked_lm_accuracy", every_steps=100, on_divergence="stop")
    model.fit(data, steps_per_epoch=1000, callbacks=[watch])
    watch.event  # None, or {"step": 1300, "reason": "accuracy collapse", "value": 0.06, "best": 0.45, ...}
    ```
    """

    ACTIONS = ("warn", "stop", "rollback")
    MEDIAN_OF = 10  # interval means behind the loss-spike median
    defers_logs = True  # reads the logs at its interval only (see host_sync.DeferredLogsCallbackList)

    def __init__(self, metric="masked_lm_accuracy", every_steps=100, window=3, drop=0.5, min_best=0.1, min_step=0,
                 on_divergence="warn", batches_per_step=1, verbose=True, source=None, loss_spike=2.0,
                 loss_metric="loss"):
        super().__init__()
        if on_divergence not in self.ACTIONS:
            from albert_keras.errors import AlbertInputError

            raise AlbertInputError(f"--on-divergence {on_divergence}: give one of {', '.join(self.ACTIONS)}")
        self.metric = metric
        self.every_steps = max(1, int(every_steps))
        self.window = max(1, int(window))
        self.min_step = int(min_step)
        self.drop = float(drop)
        self.min_best = float(min_best)
        self.on_divergence = on_divergence
        self.batches_per_step = max(1, int(batches_per_step))
        self.verbose = verbose
        self.source = source
        self.loss_spike = None if loss_spike is None else float(loss_spike)
        self.loss_metric = loss_metric
        self.counter = None if source is not None else _step_counter(self.batches_per_step)
        self.events = []
        self.pending = None
        self.best = None  # (value, step)
        self.history = []  # (step, interval mean of the accuracy)
        self.loss_history = []  # (step, interval mean of the loss)
        self._recent = []  # the last `window` accuracy interval means
        self._judged_losses = []  # (step, loss) of the last MEDIAN_OF intervals judged normal
        self._mark = (0, {})  # (batches this epoch, running means) at the last reading

    @property
    def event(self):
        return self.events[0] if self.events else None

    def on_train_begin(self, logs=None):
        if self.counter is not None:
            from albert_keras.training.host_sync import to_host

            self.counter.begin(to_host(self.model.optimizer.iterations, reader="divergence_begin"))

    def on_epoch_begin(self, epoch, logs=None):
        self._mark = (0, {})
        if self.counter is not None:
            self.counter.epoch_begin()

    def _watching(self):
        return self.pending is None and (self.on_divergence == "rollback" or not self.events)

    def on_train_batch_end(self, batch, logs=None):
        if self.counter is not None:
            self.counter.batch_end(batch)
        if not self._watching() or not logs or self.metric not in logs:
            return
        batches = batch + 1
        if batches - self._mark[0] < self.every_steps * self.batches_per_step:
            return
        names = [self.metric] + ([self.loss_metric] if self.loss_spike and self.loss_metric in logs else [])
        if self.source is not None:
            # Host floats only in a batch where the logger has just read them; else wait for one.
            means = {name: self.source.last_logs.get(name) for name in names}
            if not isinstance(means[self.metric], float):
                return
            step = self.source.counter.step
        else:
            from albert_keras.training.host_sync import to_host

            means = to_host({name: logs[name] for name in names}, reader="divergence")
            step = self.counter.step
        seen, previous = self._mark
        values = {name: (mean * batches - previous.get(name, 0.0) * seen) / (batches - seen)
                  for name, mean in means.items() if isinstance(mean, float)}
        self._mark = (batches, means)
        self.check(step, values[self.metric], loss=values.get(self.loss_metric))

    def check(self, step, value, loss=None):
        """Record the interval means at `step`; fire if the loss spiked or the accuracy collapsed.

        Nothing is judged while a rollback is pending, nor after the one event of `warn`/`stop`.
        """
        if not self._watching():
            return
        self.history.append((step, round(value, 6)))
        found = None
        if loss is not None:
            self.loss_history.append((step, round(loss, 6) if math.isfinite(loss) else str(loss)))
            earlier = [value for _, value in self._judged_losses]
            median = float(np.median(earlier)) if len(earlier) >= self.window else None
            if step > self.min_step and median is not None and not loss <= self.loss_spike * median:
                found = {"reason": "loss spike", "value": round(loss, 6) if math.isfinite(loss) else None,
                         "median": round(median, 6)}
                said = (f"loss {loss:.4f} over the last {self.every_steps} steps, above {self.loss_spike:g} x the "
                        f"median {median:.4f} of the intervals before it" if math.isfinite(loss) else
                        f"loss {loss} over the last {self.every_steps} steps")
            else:
                self._judged_losses = (self._judged_losses + [(step, loss)])[-self.MEDIAN_OF:]
        self._recent = (self._recent + [value])[-self.window:]
        if len(self._recent) == self.window and step > self.min_step:
            mean = sum(self._recent) / self.window
            if self.best is None or mean > self.best[0]:
                self.best = (mean, step)
            elif found is None and self.best[0] >= self.min_best and mean < self.drop * self.best[0]:
                best, best_step = self.best
                found = {"reason": "accuracy collapse", "value": round(mean, 6), "best": round(best, 6),
                         "best_step": best_step}
                said = (f"{self.metric} {mean:.4f} over the last {self.window * self.every_steps} steps, down from its "
                        f"best {best:.4f} at step {best_step} (below {self.drop:g} x best)")
        if found is not None:
            self.fire(step, found, said)

    def fire(self, step, found, said):
        """Record a divergence at `step` (`found`: the event's fields, `said`: what happened) and act."""
        event = {"step": step, **found, "action": self.on_divergence}
        self.events.append(event)
        if self.on_divergence == "rollback":
            self.pending = event
        if self.verbose:
            action = {
                "stop": "stopping (--on-divergence stop)",
                "rollback": "rolling back (--on-divergence rollback)",
                "warn": "going on (--on-divergence stop ends such a run, rollback restores an earlier checkpoint "
                        "with a lower learning rate)",
            }[self.on_divergence]
            print(f"divergence: step {step}: {said}; {action}", file=sys.stderr)
        if self.on_divergence != "warn" and self.model is not None:
            self.model.stop_training = True

    def rollback_before(self, event):
        """The newest step a rollback for `event` may restore: before the `window` intervals that
        ended at its step (the intervals the judgement averaged may already hold the divergence's start).

        Example:
        ```python
        DivergenceWatch(every_steps=100).rollback_before({"step": 1300})  # 1000
        ```
        """
        return int(event["step"]) - self.window * self.every_steps

    def rolled_back(self, step):
        """The model is back at `step`: forget the intervals after it and watch again."""
        self.pending = None
        self._recent = []
        self._judged_losses = [(s, loss) for s, loss in self._judged_losses if s <= step]


def _step_counter(batches_per_step):
    from albert_keras.training.host_sync import StepCounter

    return StepCounter(batches_per_step=batches_per_step)
