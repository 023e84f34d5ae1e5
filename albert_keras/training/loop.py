"""The one training loop behind `pretrain` and `finetune`.

`TrainingSettings` groups what every run needs (batch, steps, schedule, optimizer, precision,
strategy, checkpoints, logging); `TrainingLoop` turns it into a strategy, a compiled model with its
optimizer, step-exact checkpoints with resume, and a sequence of `fit` calls whose epochs end on
the evaluation interval. The entry points differ only in their model, data, loss and callbacks.
"""

import dataclasses
import math
import os
import sys
import warnings

from albert_keras.errors import AlbertInputError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# "auto": mixed_bfloat16 where the accelerator has bfloat16 units (TPU, NVIDIA compute capability
# >= 8.0), float32 elsewhere (CPU included: see `resolve_precision`).
PRECISION_CHOICES = ("auto", *PRECISIONS)
# The automatic steps per execution on GPU/TPU is the largest divisor of the log, checkpoint and
# evaluation intervals up to this many steps (one host round trip per execution).
MAX_AUTO_STEPS_PER_EXECUTION = 100
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


@dataclasses.dataclass
class TrainingSettings:
    """How to train: everything but the model, the data and the loss.

    Args:
        output_dir: receives `checkpoints/` and `logs/` (TensorBoard), plus what the entry point
            writes (a pretrained directory, `summary.json`).
        global_batch_size: examples per optimizer step over all replicas and accumulation steps.
        num_train_steps: optimizer steps (the schedule decays to 0 here).
        learning_rate: peak learning rate.
        num_warmup_steps: linear warmup steps; default `warmup_fraction * num_train_steps`.
        warmup_fraction: warmup share when `num_warmup_steps` is None (pretraining's official
            3125/125000 = 2.5%; fine-tuning's 10%).
        optimizer: `"lamb"` or `"adamw"` (decay skipped for LayerNorm and biases in both).
        weight_decay_rate: decoupled weight decay (official 0.01).
        precision: `"auto"` (mixed_bfloat16 on a TPU or an NVIDIA GPU of compute capability >= 8.0,
            else float32), `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"` (dynamic loss
            scaling).
        xla: compile steps with XLA; default on for GPU/TPU, off on CPU (where it measured slower).
        checkpoint_every: checkpoint interval in steps.
        keep_checkpoints: complete checkpoints kept.
        eval_every: evaluation interval in steps (default `checkpoint_every`).
        gradient_accumulation_steps: micro-batches per optimizer step.
        strategy: `auto`, `default`, `one-device`, `mirrored`, `multi-worker` or `tpu`.
        tpu: TPU name/address for the `tpu` strategy.
        seed: weight initialization and data-order seed.
        log_every: TensorBoard interval in steps.
        verbose: Keras progress output (`"auto"`, 0, 1, 2).
        steps_per_execution: `fit` batches run per call into the compiled step function (one host
            round trip each); None: 1 on CPU, on GPU/TPU the largest divisor of the log,
            checkpoint and evaluation intervals up to 100 steps. The intervals are rounded up to
            multiples of it (with a message).

    Example:
    ```python
    settings = TrainingSettings("runs/base", global_batch_size=256, num_train_steps=10000)
    settings.validate()
    ```
    """

    output_dir: str
    global_batch_size: int = 64
    num_train_steps: int = 10000
    learning_rate: float = 0.00176
    num_warmup_steps: int = None
    warmup_fraction: float = 3125 / 125000
    optimizer: str = "lamb"
    weight_decay_rate: float = 0.01
    precision: str = "auto"
    xla: bool = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    eval_every: int = None
    gradient_accumulation_steps: int = 1
    strategy: str = "auto"
    tpu: str = None
    seed: int = 12345
    log_every: int = 100
    verbose: object = "auto"
    steps_per_execution: int = None

    def validate(self):
        """Check the settings and fill in the derived defaults; returns `self`."""
        if self.precision not in PRECISION_CHOICES:
            raise AlbertInputError(
                f"--precision: unknown {self.precision!r}; choose one of {', '.join(PRECISION_CHOICES)}"
            )
        if self.steps_per_execution is not None and int(self.steps_per_execution) < 1:
            raise AlbertInputError(f"--steps-per-execution must be positive, got {self.steps_per_execution}")
        for name in ("global_batch_size", "num_train_steps"):
            value = getattr(self, name)
            if value is None or int(value) < 1:
                raise AlbertInputError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if float(self.learning_rate) <= 0:
            raise AlbertInputError(f"--learning-rate must be positive, got {self.learning_rate}")
        self.gradient_accumulation_steps = max(int(self.gradient_accumulation_steps or 1), 1)
        if self.global_batch_size % self.gradient_accumulation_steps:
            raise AlbertInputError(
                f"--global-batch-size {self.global_batch_size} is not divisible by "
                f"--gradient-accumulation-steps {self.gradient_accumulation_steps}"
            )
        if self.num_warmup_steps is None:
            self.num_warmup_steps = int(round(self.num_train_steps * self.warmup_fraction))
        self.checkpoint_every = int(self.checkpoint_every or self.num_train_steps)
        self.eval_every = int(self.eval_every or self.checkpoint_every)
        self.output_dir = os.fspath(self.output_dir)
        return self

    @property
    def micro_batch_size(self):
        """Examples per `fit` batch (one accumulation micro-batch), all replicas together."""
        return self.global_batch_size // self.gradient_accumulation_steps

    @property
    def dtype_policy(self):
        """The Keras dtype policy name for model construction, None for float32."""
        if self.precision == "auto":
            raise ValueError("precision 'auto' is resolved by TrainingLoop; call resolve_precision first")
        return None if self.precision == "float32" else self.precision


def resolve_precision(precision, strategy=None):
    """The precision `"auto"` stands for on this machine; other values are returned unchanged.

    `mixed_bfloat16` on a TPU strategy or when every visible GPU is an NVIDIA GPU of compute
    capability >= 8.0 (Ampere and later: bfloat16 tensor cores); `float32` otherwise. On CPU
    float32 stays the default even where the CPU has bfloat16 instructions: mixed bfloat16 changes
    the numerics of a run, so there it is asked for explicitly.

    Example:
    ```python
    resolve_precision("auto")  # "float32" on a CPU-only machine
    ```
    """
    if precision != "auto":
        return precision
    import tensorflow as tf

    if strategy is not None and isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus]
        if all(capability and tuple(capability) >= (8, 0) for capability in capabilities):
            return "mixed_bfloat16"
    return "float32"


def auto_steps_per_execution(intervals, accelerator, batches_per_step=1, limit=MAX_AUTO_STEPS_PER_EXECUTION):
    """The default steps per execution (in `fit` batches): 1 on CPU.

    On an accelerator, the largest divisor of the intervals' greatest common divisor that is at
    most `limit` steps, so every interval stays a multiple of it and nothing needs rounding.

    Example:
    >>> auto_steps_per_execution([100, 1000, 1000], accelerator=True)
    100
    >>> auto_steps_per_execution([100, 1000], accelerator=False)
    1
    """
    if not accelerator:
        return 1
    common = 0
    for interval in intervals:
        common = math.gcd(common, int(interval))
    best = max(d for d in range(1, min(common, limit) + 1) if common % d == 0) if common else 1
    return best * max(int(batches_per_step), 1)


def align_intervals(settings, steps_per_execution, name="train"):
    """Round the log, checkpoint and evaluation intervals up to whole executions.

    Keras calls the batch callbacks once per execution of `steps_per_execution` batches, so a
    boundary inside an execution could only be seen at its end; the intervals are therefore
    rounded up to multiples of `steps_per_execution` batches (in optimizer steps, with gradient
    accumulation), with a message on stderr. Returns the list of messages.

    Example:
    ```python
    settings = TrainingSettings("runs/x", log_every=30, checkpoint_every=1000).validate()
    align_intervals(settings, 100)  # log_every becomes 100
    ```
    """
    accumulation = settings.gradient_accumulation_steps
    unit = math.lcm(int(steps_per_execution), accumulation) // accumulation  # steps per whole execution
    messages = []
    for field in ("log_every", "checkpoint_every", "eval_every"):
        value = int(getattr(settings, field))
        if value % unit:
            rounded = -(-value // unit) * unit
            setattr(settings, field, rounded)
            messages.append(
                f"{name}: --{field.replace('_', '-')} {value} rounded up to {rounded}, a multiple of the "
                f"{unit} steps run per execution (--steps-per-execution {steps_per_execution})"
            )
    for message in messages:
        print(message, file=sys.stderr)
    return messages


def epoch_segments(start, total, period):
    """Split steps [start, total) into `fit` calls whose epochs end on multiples of `period`.

    Returns `(initial_epoch, epochs, steps_per_epoch)` triples (epochs counted in `period`s, so
    Keras' progress bar and validation line up with the evaluation interval across restarts).

    Example:
    ```python
    epoch_segments(150, 400, 100)  # [(1, 2, 50), (2, 4, 100)]
    ```
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


class TrainingLoop:
    """Strategy, optimizer, checkpoints and resume for one training run.

    Usage is three calls: `build` (inside the strategy's scope: the model, the optimizer, compile,
    restore the newest checkpoint), `fit` (the evaluation-interval segments from the restored step
    to `num_train_steps`), `finish` (the final checkpoint). `name` prefixes messages.

    Args:
        settings: a `TrainingSettings`.
        fingerprint: dict of what makes a run the same run (data files, batch, seed, ...); a
            checkpoint made with another fingerprint is refused instead of resumed.
        name: the entry point's name for messages (`"pretrain"`, `"finetune"`).

    Example:
    ```python
    loop = TrainingLoop(TrainingSettings("runs/x", num_train_steps=100).validate(), {"seed": 1})
    model = loop.build(lambda: make_model(), compile_kwargs={"loss": "mse"})
    history = loop.fit(lambda skip: dataset.skip(skip))
    loop.finish()
    ```
    """

    def __init__(self, settings, fingerprint, name="train"):
        import keras
        import tensorflow as tf

        from albert_keras.training.strategy import is_chief
        from albert_keras.training.strategy import resolve_strategy

        self.settings = settings.validate()
        self.name = name
        self.strategy = resolve_strategy(settings.strategy, tpu=settings.tpu)
        self.chief = is_chief(self.strategy)
        accelerator = bool(tf.config.list_physical_devices("GPU")) or isinstance(
            self.strategy, tf.distribute.TPUStrategy
        )
        if settings.xla is None:
            settings.xla = accelerator
        settings.precision = resolve_precision(settings.precision, self.strategy)
        if settings.steps_per_execution is None:
            settings.steps_per_execution = auto_steps_per_execution(
                [settings.log_every, settings.checkpoint_every, settings.eval_every], accelerator,
                settings.gradient_accumulation_steps,
            )
        settings.steps_per_execution = int(settings.steps_per_execution)
        align_intervals(settings, settings.steps_per_execution, name)
        self.fingerprint = {
            "global_batch_size": int(settings.global_batch_size),
            "gradient_accumulation_steps": settings.gradient_accumulation_steps,
            "seed": int(settings.seed),
            "optimizer": settings.optimizer,
            "precision": settings.precision,
            **fingerprint,
        }
        self.model = None
        self.start_step = 0
        self.restored_state = None  # the restored checkpoint's state.json (None on a fresh start)
        self.checkpoint_callback = None
        keras.utils.set_random_seed(settings.seed)

    @property
    def checkpoint_dir(self):
        return os.path.join(self.settings.output_dir, CHECKPOINT_DIR)

    @property
    def log_dir(self):
        """TensorBoard directory of the chief; None on the other workers."""
        return os.path.join(self.settings.output_dir, LOG_DIR) if self.chief else None

    def build(self, build_model, compile_kwargs=None):
        """Build, compile and restore the model; returns it.

        Args:
            build_model: no-argument function returning the (uncompiled) Keras model; called
                inside the strategy's scope with the precision's dtype policy in effect.
            compile_kwargs: extra `compile` arguments (loss, metrics); the optimizer is the loop's.
        """
        import keras

        from albert_keras.training.checkpointing import StepCheckpointCallback
        from albert_keras.training.checkpointing import StepCheckpointer
        from albert_keras.training.optimization import create_optimizer

        s = self.settings
        with self.strategy.scope():
            model = build_model()
            optimizer = create_optimizer(
                s.optimizer,
                s.learning_rate,
                num_train_steps=s.num_train_steps,
                num_warmup_steps=s.num_warmup_steps,
                weight_decay_rate=s.weight_decay_rate,
                gradient_accumulation_steps=s.gradient_accumulation_steps,
            )
            if s.precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            model.compile(
                optimizer=optimizer, jit_compile=bool(s.xla), steps_per_execution=s.steps_per_execution,
                **(compile_kwargs or {}),
            )
            optimizer.build(model.trainable_variables)
        self.model = model
        checkpointer = StepCheckpointer(self.checkpoint_dir, model, optimizer, keep=s.keep_checkpoints, is_chief=self.chief)
        state = checkpointer.restore_latest()
        self.restored_state = state
        if state is not None:
            recorded = state.get("run", {})
            changed = [key for key, value in self.fingerprint.items() if recorded.get(key) != value]
            if changed:
                raise AlbertInputError(
                    f"{checkpointer.latest()[1]}: the checkpoint was made with other {', '.join(changed)}; "
                    "rerun with the original settings or use a new output directory"
                )
            self.start_step = int(state["step"])
            if int(model.optimizer.iterations.numpy()) != self.start_step:
                raise AlbertInputError(f"{checkpointer.latest()[1]}: optimizer step does not match state.json")
            print(f"{self.name}: resuming from step {self.start_step} ({checkpointer.latest()[1]})", file=sys.stderr)
            if self.start_step >= s.num_train_steps:
                print(
                    f"{self.name}: the checkpoint already reached --num-train-steps {s.num_train_steps}; nothing to "
                    "train (raise --num-train-steps to continue)",
                    file=sys.stderr,
                )
        self.checkpoint_callback = StepCheckpointCallback(
            checkpointer,
            s.checkpoint_every,
            batches_per_step=s.gradient_accumulation_steps,
            final_step=s.num_train_steps,
            extra_state={"run": self.fingerprint},
            entry_point=self.name,
            check_every=min(s.log_every, s.checkpoint_every),
        )
        self.checkpoint_callback.last_saved = self.start_step
        return model

    @property
    def step(self):
        """The optimizer step the model is at."""
        return int(self.model.optimizer.iterations.numpy())

    def fit(self, make_dataset, validation_data=None, callbacks=(), validation_steps=None):
        """Train from the restored step to `num_train_steps`, evaluating every `eval_every` steps.

        Args:
            make_dataset: function of `skip_batches` (the `fit` batches already trained on)
                returning the dataset (or distributed dataset) to continue from; called once per
                segment so each starts exactly where the model is.
            validation_data: passed to `fit` (finite; evaluated at the end of every interval).
            callbacks: extra Keras callbacks (after the checkpoint callback).
            validation_steps: batches per evaluation (give it for a dataset of unknown length:
                see `albert_keras.data.batches.count_global_batches`).

        Returns:
            The last logs of the last `fit` (`{name: value}`; `val_*` for validation). A callback
            that stops training ends it; calling `fit` again goes on from the model's step.
        """
        from albert_keras.training.host_sync import DeferredLogsCallbackList

        s = self.settings
        history_logs = {}
        # From the step the model is at: the restored one, or the one a rollback went back to.
        for initial_epoch, epochs, steps in epoch_segments(self.step, s.num_train_steps, s.eval_every):
            consumed = self.step * s.gradient_accumulation_steps
            batches = steps * s.gradient_accumulation_steps
            self._set_steps_per_execution(math.gcd(s.steps_per_execution, batches))
            callback_list = DeferredLogsCallbackList(
                [self.checkpoint_callback, *callbacks], add_history=True, add_progbar=s.verbose != 0,
                verbose=s.verbose, epochs=epochs, steps=batches, model=self.model,
            )
            with warnings.catch_warnings():
                # A finite evaluation set is by design; Keras warns each time it reaches its end.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                history = self.model.fit(
                    make_dataset(consumed),
                    initial_epoch=initial_epoch,
                    epochs=epochs,
                    steps_per_epoch=batches,
                    validation_data=validation_data,
                    validation_steps=validation_steps,
                    callbacks=callback_list,
                    shuffle=False,  # input pipelines shuffle with their own seed
                    verbose=s.verbose,
                )
            history_logs = {key: values[-1] for key, values in history.history.items()}
            if getattr(self.model, "stop_training", False):
                break
        return history_logs

    def _set_steps_per_execution(self, steps):
        # Keras runs whole executions, past the end of an epoch if its length is not a multiple
        # (the input repeats): a run's last, shorter segment gets a divisor of its length, and
        # the step function is traced again for it.
        if self.model.steps_per_execution != steps:
            self.model.steps_per_execution = steps
            self.model.train_function = None

    def finish(self):
        """Write the final checkpoint if the last step has none; returns the final step."""
        final_step = self.step
        if self.checkpoint_callback.last_saved != final_step:
            self.checkpoint_callback.save(final_step)
        return final_step
