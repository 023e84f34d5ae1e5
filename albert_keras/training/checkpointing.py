"""Step-exact, crash-safe training checkpoints.

A checkpoint is a directory `ckpt-<step>` holding every model variable (weights and the dropout
seed-generator states), every optimizer variable (iteration counter, moments, gradient
accumulators, loss scale) and `state.json` (the step, the number of batches the input pipeline
has delivered, the seed). It is written under a temporary name and renamed when complete, so a
`kill -9` at any moment leaves either the previous checkpoints or the new one, never a partial one
under a final name. Under multi-worker training every worker takes part in the write (the TF
recommendation, since a save may run collectives), but only the chief writes into the real
directory; the others write to a private temporary directory and delete it.

`keras.callbacks.BackupAndRestore` is not enough here: it restores mid-epoch weights but replays
the interrupted epoch from its first batch, does not record the data position, and races when
several workers share its directory.
"""

import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_directory
from albert_keras.io_utils import atomic_write

STATE_FILE = "state.json"
VARIABLES_PREFIX = "variables"
_CHECKPOINT_NAME = re.compile(r"^ckpt-(\d+)$")


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


class StepCheckpointer:
    """Saves and restores model + optimizer + data position at exact steps, keeping the last `keep`.

    Args:
        directory: where the `ckpt-<step>` directories live.
        model: the (built) Keras model.
        optimizer: its (built) optimizer.
        keep: how many complete checkpoints to keep.
        is_chief: whether this process writes to `directory` (see module docstring).

    Example:
    ```python
    checkpointer = StepCheckpointer("run/checkpoints", model, model.optimizer, keep=3)
    state = checkpointer.restore_latest()  # None on a fresh start
    checkpointer.save(step=100, batches_consumed=100)
    ```
    """

    def __init__(self, directory, model, optimizer, keep=3, is_chief=True):
        self.directory = os.fspath(directory)  # local or a URL (gs://...): all I/O goes through io_utils
        self.model = model
        self.optimizer = optimizer
        self.keep = max(int(keep), 1)
        self.is_chief = is_chief
        self._variables = {
            "model": [_tf_variable(v) for v in model.variables],
            "optimizer": [_tf_variable(v) for v in optimizer.variables],
        }
        self._checkpoint = tf.train.Checkpoint(
            model_variables=self._variables["model"], optimizer_variables=self._variables["optimizer"]
        )
        if self.is_chief:
            io_utils.makedirs(self.directory)
            self._remove_leftovers()

    # --- listing ------------------------------------------------------------------------------

    def checkpoints(self):
        """`(step, path)` of every complete checkpoint, oldest first."""
        if not io_utils.isdir(self.directory):
            return []
        found = []
        for name in io_utils.listdir(self.directory):
            match = _CHECKPOINT_NAME.match(name)
            path = os.path.join(self.directory, name)
            if match and io_utils.exists(os.path.join(path, STATE_FILE)):
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self):
        """`(step, path)` of the newest complete checkpoint, or None."""
        found = self.checkpoints()
        return found[-1] if found else None

    def _remove_leftovers(self):
        # Temporary directories of writes that a crash interrupted: never complete, never read.
        for name in io_utils.listdir(self.directory):
            if name.startswith(".ckpt-") and (name.endswith(".tmp") or name.endswith(".old")):
                io_utils.rmtree(os.path.join(self.directory, name))

    # --- save / restore -----------------------------------------------------------------------

    def _state(self, step, batches_consumed, extra):
        return {
            "format": "albert-keras-checkpoint-1",
            "step": int(step),
            "batches_consumed": int(batches_consumed),
            "num_model_variables": len(self._variables["model"]),
            "num_optimizer_variables": len(self._variables["optimizer"]),
            **(extra or {}),
        }

    def save(self, step, batches_consumed, extra=None):
        """Write `ckpt-<step>` atomically and prune old checkpoints; returns its path (chief)."""
        state = self._state(step, batches_consumed, extra)
        if not self.is_chief:
            scratch = tempfile.mkdtemp(prefix="albert-keras-ckpt-worker-")
            try:
                self._checkpoint.write(os.path.join(scratch, VARIABLES_PREFIX))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            return None
        path = os.path.join(self.directory, f"ckpt-{int(step):09d}")
        # The marker matters where directories cannot be renamed (object stores): state.json is
        # moved last, and `checkpoints()` only lists directories that have it.
        with atomic_directory(path, overwrite=True, marker=STATE_FILE) as tmp:
            self._checkpoint.write(os.path.join(tmp, VARIABLES_PREFIX))
            # state.json last: its presence marks the variables as complete even before the rename.
            with atomic_write(os.path.join(tmp, STATE_FILE), "w") as f:
                json.dump(state, f, indent=2, sort_keys=True)
        for _, old in self.checkpoints()[: -self.keep]:
            io_utils.rmtree(old)
        return path

    def restore(self, path):
        """Load the checkpoint at `path` into the model and optimizer; returns its state dict."""
        state_path = os.path.join(path, STATE_FILE)
        try:
            state = json.loads(io_utils.read_bytes(state_path).decode("utf-8"))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise AlbertInputError(f"{state_path}: unreadable checkpoint state ({error})") from None
        for key in ("model", "optimizer"):
            expected = state.get(f"num_{key}_variables")
            if expected != len(self._variables[key]):
                raise AlbertInputError(
                    f"{path}: checkpoint holds {expected} {key} variables, the current run has "
                    f"{len(self._variables[key])} (different config, optimizer or precision?); use a new output directory"
                )
        try:
            self._checkpoint.read(os.path.join(path, VARIABLES_PREFIX)).assert_consumed()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise AlbertInputError(f"{path}: checkpoint does not fit the model ({message})") from None
        return state

    def restore_latest(self):
        """Restore the newest complete checkpoint; returns its state, or None when there is none."""
        latest = self.latest()
        return None if latest is None else self.restore(latest[1])

    def update_state(self, path, values):
        """Merge `values` into the `state.json` of the checkpoint at `path` (chief only; atomic, so a
        process reading the checkpoint meanwhile sees the old or the new file, never a partial one).

        Example:
        ```python
        checkpointer.update_state("run/checkpoints/ckpt-000000600", {"learning_rate_scale": 0.5})
        ```
        """
        if not self.is_chief:
            return
        state_path = os.path.join(path, STATE_FILE)
        state = json.loads(io_utils.read_bytes(state_path).decode("utf-8"))
        state.update(values)
        with atomic_write(state_path, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)

    def roll_back(self, max_step):
        """Restore the newest complete checkpoint at or before `max_step` and delete the newer ones.

        The newer checkpoints hold the trajectory being abandoned: a later resume must not pick
        them up. Returns `(step, path, state)`, or None (nothing restored, nothing deleted) when
        no checkpoint is that old.

        Example:
        ```python
        checkpointer.roll_back(700)  # (600, "run/checkpoints/ckpt-000000600", {...}); ckpt-800.. gone
        ```
        """
        older = [(step, path) for step, path in self.checkpoints() if step <= max_step]
        if not older:
            return None
        step, path = older[-1]
        state = self.restore(path)
        if self.is_chief:
            for newer_step, newer in self.checkpoints():
                if newer_step > step:
                    io_utils.rmtree(newer)
        return step, path, state


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and what to try.

    Attributes:
        step: the step at which the non-finite loss was seen (None when unknown).
    """

    def __init__(self, message, step=None):
        super().__init__(message)
        self.step = step


# The warmup flag of each entry point's CLI (`albert-keras pretrain` / `albert-keras finetune`).
_WARMUP_FLAGS = {"pretrain": "--num-warmup-steps", "finetune": "--warmup"}


def divergence_advice(entry_point="pretrain"):
    """What to try after a diverged run, naming only flags that `albert-keras ENTRY_POINT` has.

    Gradients are always clipped to global norm 1.0 (`create_optimizer`), so clipping is not a
    flag to suggest.

    Example:
    ```python
    divergence_advice("finetune")  # "lower --learning-rate, raise --warmup, ..."
    ```
    """
    warmup = _WARMUP_FLAGS.get(entry_point, "--num-warmup-steps")
    return (
        f"lower --learning-rate, raise {warmup} (gradients are already clipped to global norm 1.0), "
        "or use --precision float32 or mixed_bfloat16 instead of mixed_float16"
    )


class StepCheckpointCallback(keras.callbacks.Callback):
    """Checks the loss and writes a `StepCheckpointer` checkpoint every `every_steps` optimizer steps.

    A non-finite loss raises `TrainingDivergedError` before anything is saved, so no checkpoint
    ever holds diverged weights. The data position saved is `step * batches_per_step` batches.
    Steps are counted on the host (`host_sync.StepCounter`) and the loss is read only every
    `check_every` steps and before each save, so the step loop never waits for the device in
    between (the loss Keras logs is the epoch's running mean: a NaN anywhere in the interval
    shows at its end).

    Args:
        checkpointer: a `StepCheckpointer`.
        every_steps: checkpoint interval in optimizer steps (0: only at the end).
        batches_per_step: input batches per optimizer step (gradient accumulation).
        final_step: the run's last step; always saved.
        extra_state: dict stored in every `state.json`.
        entry_point: `"pretrain"` or `"finetune"`: whose flags the divergence error names.
        check_every: loss check interval in steps (default `every_steps`).

    Example:
    ```python
    callback = StepCheckpointCallback(checkpointer, every_steps=1000, final_step=10000)
    model.fit(dataset, steps_per_epoch=10000, callbacks=[callback])
    ```
    """

    defers_logs = True  # see host_sync.DeferredLogsCallbackList

    def __init__(self, checkpointer, every_steps, batches_per_step=1, final_step=None, extra_state=None,
                 entry_point="pretrain", check_every=None):
        super().__init__()
        from albert_keras.training.host_sync import StepCounter

        self.entry_point = entry_point
        self.checkpointer = checkpointer
        self.every_steps = int(every_steps or 0)
        self.check_every = int(check_every or self.every_steps or 0)
        self.batches_per_step = int(batches_per_step)
        self.final_step = final_step
        self.extra_state = extra_state or {}
        self.last_saved = None
        self.counter = StepCounter(self.batches_per_step)
        self._last_step = 0

    def on_train_begin(self, logs=None):
        from albert_keras.training.host_sync import to_host

        # The one device read of a `fit` call; afterwards the steps are counted.
        self.counter.begin(to_host(self.model.optimizer.iterations, reader="checkpoint_begin"))
        self._last_step = self.counter.step

    def on_epoch_begin(self, epoch, logs=None):
        self.counter.epoch_begin()

    def on_train_batch_end(self, batch, logs=None):
        from albert_keras.training.host_sync import crossed
        from albert_keras.training.host_sync import to_host

        previous, step = self._last_step, self.counter.batch_end(batch)
        self._last_step = step
        if not self.counter.step_done:
            return  # with gradient accumulation, the step is only complete after its last micro-batch
        save = (crossed(previous, step, self.every_steps) or step == self.final_step) and step != self.last_saved
        if not (save or crossed(previous, step, self.check_every)):
            return
        loss = (logs or {}).get("loss")
        loss = None if loss is None else to_host(loss, reader="checkpoint")
        if loss is not None and not np.isfinite(loss):
            raise TrainingDivergedError(
                f"loss became {loss} at step {step}: {divergence_advice(self.entry_point)}; "
                f"the run can restart from the last checkpoint (step {self.last_saved or 0}; the loss is checked "
                f"every {self.check_every or self.every_steps} steps)", step=step,
            )
        if save:
            self.save(step)

    def save(self, step):
        self.checkpointer.save(step, step * self.batches_per_step, extra=self.extra_state)
        self.last_saved = step
