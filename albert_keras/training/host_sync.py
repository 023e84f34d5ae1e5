"""Reading device values on the host only at step boundaries.

On a GPU or TPU every `float(tensor)` or `.numpy()` in a batch callback waits for the device to
finish and copies the value back, which stalls the step loop (the next step cannot be queued
while Python waits). Keras' `CallbackList` converts every batch's logs to Python floats before
any callback sees them, so even a callback that looks at the logs once per thousand steps costs a
synchronization per batch. The training callbacks here therefore:

- count optimizer steps on the host (`StepCounter`) from the batch index Keras passes to
  `on_train_batch_end` (under `steps_per_execution` it is called once per execution with the
  index of the execution's last batch), reading `optimizer.iterations` once per `fit` call;
- read device values through `to_host`, only at their checkpoint / log / check boundaries;
  `HOST_READS` counts the reads per reader (tests assert there is none between boundaries);
- receive the logs unconverted from `DeferredLogsCallbackList` (callbacks that set
  `defers_logs = True`); other callbacks still get Keras' converted floats.
"""

import collections

import keras

from albert_keras.compat import BatchLogsCallbackList

# reader name -> number of `to_host` calls. Tests reset it and compare with the boundaries.
HOST_READS = collections.Counter()


def to_host(values, reader="unnamed"):
    """Copy device values to the host as Python floats (a dict, or one value); counts one read.

    Args:
        values: a tensor / scalar, or a flat dict of them.
        reader: who reads (the key in `HOST_READS`).

    Example:
    ```python
    import tensorflow as tf
    to_host({"loss": tf.constant(0.5)}, reader="example")  # {"loss": 0.5}
    ```
    """
    HOST_READS[reader] += 1
    if isinstance(values, dict):
        return {name: _as_float(value) for name, value in values.items()}
    return _as_float(values)


def _as_float(value):
    value = keras.ops.convert_to_numpy(value) if keras.ops.is_tensor(value) or hasattr(value, "numpy") else value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class StepCounter:
    """The optimizer step, counted on the host from Keras' batch indices.

    Call `begin(step)` in `on_train_begin` (the one device read of a `fit` call), `epoch_begin()`
    in `on_epoch_begin` and `batch_end(batch)` in `on_train_batch_end`; `step` is then the
    optimizer step after that batch and `step_done` whether that batch finished an optimizer
    step (with gradient accumulation, only every `batches_per_step`-th batch does).

    Args:
        batches_per_step: `fit` batches per optimizer step (gradient accumulation).

    Example:
    ```python
    counter = StepCounter(batches_per_step=2)
    counter.begin(10); counter.epoch_begin(); counter.batch_end(3)
    counter.step, counter.step_done  # (12, True)
    ```
    """

    def __init__(self, batches_per_step=1):
        self.batches_per_step = max(int(batches_per_step), 1)
        self.begin_step = 0
        self.batches = 0  # batches since `begin`
        self._epoch_start = 0

    def begin(self, step):
        self.begin_step = int(step)
        self.batches = 0
        self._epoch_start = 0

    def epoch_begin(self):
        self._epoch_start = self.batches

    def batch_end(self, batch):
        # `batch` is the index (in the epoch) of the last batch run: it jumps by
        # `steps_per_execution`, so count from it rather than adding one per call.
        self.batches = self._epoch_start + int(batch) + 1
        return self.step

    @property
    def step(self):
        return self.begin_step + self.batches // self.batches_per_step

    @property
    def step_done(self):
        return self.batches % self.batches_per_step == 0


def crossed(previous_step, step, every):
    """Whether an interval boundary (a multiple of `every`) lies in `(previous_step, step]`.

    Example:
    >>> crossed(95, 105, 100), crossed(100, 104, 100)
    (True, False)
    """
    return bool(every) and step // every > previous_step // every


class DeferredLogsCallbackList(BatchLogsCallbackList):
    """A `CallbackList` that hands batch logs over unconverted to callbacks with `defers_logs`.

    Keras' `CallbackList` converts every batch's logs to floats (a device-to-host copy per
    batch) before calling the callbacks. This one passes the logs as they come (tensors) to every
    callback whose `defers_logs` is True (they read them with `to_host` at their boundaries) and
    to Keras' progress bar (which averages tensors and converts only what it prints) and to
    callbacks without batch hooks (`History`); the others get the converted logs, converted at most
    once per batch, through `to_host` (counted as `keras_callbacks`). Batch callbacks run
    synchronously (a checkpoint must not be written while the next step updates the variables).
    What it relies on in Keras is fenced in `compat.BatchLogsCallbackList`.

    Build it with the arguments `fit` would use, and pass it as `fit(callbacks=...)`.

    Example:
    ```python
    callbacks = DeferredLogsCallbackList([checkpoint_callback], add_history=True, add_progbar=False,
                                         verbose=0, epochs=1, steps=100, model=model)
    model.fit(data, steps_per_epoch=100, callbacks=callbacks, verbose=0)
    ```
    """

    def convert_batch_logs(self, logs):
        return to_host(logs, reader="keras_callbacks")
