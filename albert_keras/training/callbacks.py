"""`PretrainingLogger`: TensorBoard scalars and throughput for `pretrain`."""

import time

import keras


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


class PretrainingLogger(keras.callbacks.Callback):
    """Writes step scalars to TensorBoard and tracks examples per second.

    Every `every_steps` optimizer steps it writes the logged losses and accuracies (the running
    means Keras reports), the learning rate and the examples per second since the previous write,
    under `log_dir/train`; validation results go under `log_dir/eval`. Only the chief should be
    given a `log_dir`; with `log_dir=None` it only measures throughput.

    Args:
        log_dir: TensorBoard directory or None.
        global_batch_size: examples per optimizer step.
        every_steps: write interval in optimizer steps.

    Example:
    ```python
    logger = PretrainingLogger("run/logs", global_batch_size=256, every_steps=100)
    model.fit(data, steps_per_epoch=1000, callbacks=[logger])
    logger.examples_per_second
    ```
    """

    def __init__(self, log_dir, global_batch_size, every_steps=100):
        super().__init__()
        import tensorflow as tf

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
        self._mark = (time.perf_counter(), self._step())
        self._run_start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.seconds += time.perf_counter() - self._run_start

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def _learning_rate(self):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf

        step = self._step()
        self.last_logs = dict(logs or {})
        start_time, start_step = self._mark
        if step - start_step < self.every_steps:
            return
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
            write_scalar("learning_rate", self._learning_rate(), step)
            write_scalar("examples_per_second", rate, step)
        self._train_writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

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
