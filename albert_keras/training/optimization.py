"""The official ALBERT optimizers (LAMB and AdamW) and learning-rate schedule, for Keras 3.

`keras.optimizers.Lamb` differs from google-research/ALBERT's `lamb_optimizer.py` in four ways that
change the trajectory (Adam bias correction, trust ratio on every variable, decoupled weight decay
applied outside the update, epsilon 1e-7), so `AlbertLamb` re-implements the official update in a
small subclass. Both optimizers also move global-norm clipping *after* the cross-replica gradient
sum: Keras clips each replica's partial gradient before the all-reduce, which under a
`tf.distribute` strategy is not the clipping of the global gradient that a single device computes
(`compat.SummedGradientClippingMixin`, which also evaluates the schedule at the update count).
"""

import re

import keras
import tensorflow as tf
from keras import ops

from albert_keras.compat import SummedGradientClippingMixin
from albert_keras.compat import optimizer_variable_index

# The official `exclude_from_weight_decay` list, matched with `re.search` against the Keras variable
# path (e.g. "albert_encoder/embeddings_layer_norm/gamma", ".../pooled_dense/bias").
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


@keras.saving.register_keras_serializable(package="albert_keras")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0, then polynomial decay to 0, exactly as `optimization.py` computes it.

    The decay counts from step 0, not from the end of warmup: right after warmup the rate is
    `learning_rate * (1 - num_warmup_steps / num_train_steps) ** power`, as in the official code.

    Args:
        learning_rate: peak (initial) learning rate.
        num_train_steps: step at which the rate reaches 0.
        num_warmup_steps: steps of linear warmup (0 disables warmup).
        power: polynomial power (1.0 = linear decay).
        start_warmup_step: step at which warmup starts (official `start_warmup_step`).
        scale: a factor on the whole schedule, held in a (non-trainable) variable so it can be
            changed during training without tracing the step again: `pretrain --on-divergence
            rollback` lowers it after each rollback (`set_learning_rate_scale`).

    Example:
    ```python
    schedule = WarmupPolynomialDecay(1e-3, num_train_steps=1000, num_warmup_steps=100)
    float(schedule(50))   # 5e-4
    float(schedule(100))  # 9e-4
    schedule.scale.assign(0.5); float(schedule(100))  # 4.5e-4
    ```
    """

    def __init__(self, learning_rate, num_train_steps, num_warmup_steps=0, power=1.0, start_warmup_step=0, scale=1.0):
        self.learning_rate = float(learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)
        self.power = float(power)
        self.start_warmup_step = int(start_warmup_step)
        # Not an optimizer variable: checkpoints keep their variable list; the scale travels in
        # the checkpoint's state.json instead (see `pretrain`).
        self.scale = keras.Variable(float(scale), trainable=False, dtype="float32", name="learning_rate_scale")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(max(self.num_train_steps, 1))
        decayed = self.learning_rate * ops.power(1.0 - ops.minimum(step, total) / total, self.power)
        if self.num_warmup_steps > 0:
            warmup_step = step - float(self.start_warmup_step)
            warmup = self.learning_rate * warmup_step / float(self.num_warmup_steps)
            decayed = ops.where(warmup_step < float(self.num_warmup_steps), warmup, decayed)
        # x * 1.0 is exact: an unscaled run computes the official rates bit for bit.
        return ops.multiply(decayed, ops.convert_to_tensor(self.scale))

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "power": self.power,
            "start_warmup_step": self.start_warmup_step,
            "scale": float(ops.convert_to_numpy(self.scale)),
        }


def learning_rate_scale(optimizer):
    """The factor on `optimizer`'s `WarmupPolynomialDecay` (1.0 for any other learning rate).

    Example:
    ```python
    learning_rate_scale(create_optimizer("lamb", 1e-3, 1000, 100))  # 1.0
    ```
    """
    from albert_keras.compat import learning_rate_schedule

    schedule = learning_rate_schedule(optimizer)
    return float(ops.convert_to_numpy(schedule.scale)) if isinstance(schedule, WarmupPolynomialDecay) else 1.0


def set_learning_rate_scale(optimizer, scale):
    """Multiply `optimizer`'s `WarmupPolynomialDecay` by `scale` from its next update on.

    The scale is a variable read inside the compiled step, so a running `fit` sees the new rate
    at once; nothing is traced again.

    Args:
        optimizer: an optimizer from `create_optimizer` (a `LossScaleOptimizer` around one too).
        scale: the factor (1.0: the schedule as given).

    Example:
    ```python
    set_learning_rate_scale(model.optimizer, 0.5)  # half the scheduled rate from now on
    ```
    """
    from albert_keras.compat import learning_rate_schedule

    schedule = learning_rate_schedule(optimizer)
    if not isinstance(schedule, WarmupPolynomialDecay):
        raise ValueError(f"the optimizer's learning rate is {schedule!r}, not a WarmupPolynomialDecay")
    schedule.scale.assign(float(scale))


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertLamb(SummedGradientClippingMixin, keras.optimizers.Optimizer):
    """LAMB as google-research/ALBERT's `lamb_optimizer.py` defines it.

    Per variable: `m = b1*m + (1-b1)*g`, `v = b2*v + (1-b2)*g^2`, `u = m / (sqrt(v) + eps)` (no
    bias correction); `u += weight_decay * w` unless the variable path matches
    `exclude_from_weight_decay`; `u *= ||w|| / ||u||` (when both are non-zero) unless the path
    matches `exclude_from_layer_adaptation`; `w -= lr * u`. With `global_clipnorm`, the summed
    (all-replica) gradient is clipped by its global norm, as `tf.clip_by_global_norm` in the
    official `optimization.py`.

    Args:
        learning_rate: float or a `LearningRateSchedule` (see `WarmupPolynomialDecay`). With
            `gradient_accumulation_steps`, the schedule sees optimizer updates, not micro-batches.
        beta_1: first-moment decay.
        beta_2: second-moment decay.
        epsilon: added to `sqrt(v)`.
        weight_decay_rate: decay folded into the update before the trust ratio.
        exclude_from_weight_decay: regexes (`re.search` on the variable path) of variables that get
            neither weight decay nor, by default, the trust ratio.
        exclude_from_layer_adaptation: regexes of variables without the trust ratio; defaults to
            `exclude_from_weight_decay`, as in the official code.
        layer_adaptation: apply the trust ratio at all (`False` gives the official AdamW).
        global_clipnorm: clip the summed gradient to this global norm (official: 1.0).
        **kwargs: other `keras.optimizers.Optimizer` arguments (e.g. `gradient_accumulation_steps`).

    Example:
    ```python
    optimizer = AlbertLamb(learning_rate=WarmupPolynomialDecay(1.76e-3, 10000, 1000), global_clipnorm=1.0)
    model.compile(optimizer=optimizer)
    ```
    """

    def __init__(
        self,
        learning_rate=0.00176,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        weight_decay_rate=0.01,
        exclude_from_weight_decay=DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
        exclude_from_layer_adaptation=None,
        layer_adaptation=True,
        global_clipnorm=None,
        name="albert_lamb",
        **kwargs,
    ):
        kwargs.pop("weight_decay", None)  # Folded into the update instead (see class docstring).
        super().__init__(learning_rate=learning_rate, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_decay_rate = weight_decay_rate
        self.exclude_from_weight_decay_patterns = list(exclude_from_weight_decay or ())
        if exclude_from_layer_adaptation is None:
            exclude_from_layer_adaptation = self.exclude_from_weight_decay_patterns
        self.exclude_from_layer_adaptation_patterns = list(exclude_from_layer_adaptation)
        self.layer_adaptation = layer_adaptation

    @staticmethod
    def _matches(patterns, path):
        return any(re.search(pattern, path) is not None for pattern in patterns)

    def uses_weight_decay(self, variable):
        """Whether `variable` (a Keras variable) gets weight decay."""
        return bool(self.weight_decay_rate) and not self._matches(
            self.exclude_from_weight_decay_patterns, variable.path
        )

    def uses_layer_adaptation(self, variable):
        """Whether `variable` (a Keras variable) gets the LAMB trust ratio."""
        return self.layer_adaptation and not self._matches(self.exclude_from_layer_adaptation_patterns, variable.path)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["m", "v"])
        # Decided once from the Keras paths: inside a distributed update `update_step` only sees
        # the per-device tf.Variable, whose name is not the Keras path.
        self._decay_flags = [self.uses_weight_decay(v) for v in var_list]
        self._adaptation_flags = [self.uses_layer_adaptation(v) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        index = optimizer_variable_index(self, variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        gradient = ops.cast(gradient, dtype)
        m = self._momentums[index]
        v = self._velocities[index]
        next_m = ops.add(ops.multiply(self.beta_1, m), ops.multiply(1.0 - self.beta_1, gradient))
        next_v = ops.add(ops.multiply(self.beta_2, v), ops.multiply(1.0 - self.beta_2, ops.square(gradient)))
        update = ops.divide(next_m, ops.add(ops.sqrt(next_v), self.epsilon))
        if self._decay_flags[index]:
            update = ops.add(update, ops.multiply(ops.cast(self.weight_decay_rate, dtype), variable))
        if self._adaptation_flags[index]:
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            u_norm = ops.sqrt(ops.sum(ops.square(update)))
            ratio = ops.where(
                ops.greater(w_norm, 0.0),
                ops.where(ops.greater(u_norm, 0.0), ops.divide(w_norm, ops.maximum(u_norm, 1e-30)), 1.0),
                1.0,
            )
            update = ops.multiply(ratio, update)
        self.assign(m, next_m)
        self.assign(v, next_v)
        self.assign_sub(variable, ops.multiply(lr, update))

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "weight_decay_rate": self.weight_decay_rate,
                "exclude_from_weight_decay": self.exclude_from_weight_decay_patterns,
                "exclude_from_layer_adaptation": self.exclude_from_layer_adaptation_patterns,
                "layer_adaptation": self.layer_adaptation,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertAdamW(AlbertLamb):
    """The official ALBERT AdamW: `AlbertLamb` without the trust ratio (and without bias correction).

    Args:
        learning_rate: float or a `LearningRateSchedule`.
        **kwargs: as `AlbertLamb` (except `layer_adaptation`).

    Example:
    ```python
    optimizer = AlbertAdamW(learning_rate=3e-5, global_clipnorm=1.0)
    ```
    """

    def __init__(self, learning_rate=0.00176, name="albert_adamw", **kwargs):
        kwargs["layer_adaptation"] = False
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)


OPTIMIZERS = {"lamb": AlbertLamb, "adamw": AlbertAdamW}


def create_optimizer(
    name="lamb",
    learning_rate=0.00176,
    num_train_steps=125000,
    num_warmup_steps=3125,
    weight_decay_rate=0.01,
    global_clipnorm=1.0,
    gradient_accumulation_steps=None,
    poly_power=1.0,
):
    """The optimizer `run_pretraining.py` builds: LAMB or AdamW, warmup + linear decay, clip 1.0.

    Args:
        name: `"lamb"` or `"adamw"`.
        learning_rate: peak learning rate.
        num_train_steps: optimizer updates until the rate reaches 0.
        num_warmup_steps: linear warmup updates.
        weight_decay_rate: official 0.01.
        global_clipnorm: official 1.0; `None` disables clipping.
        gradient_accumulation_steps: micro-batches per update (`None` or 1: no accumulation).
        poly_power: power of the decay.

    Example:
    ```python
    optimizer = create_optimizer("lamb", 1e-3, num_train_steps=1000, num_warmup_steps=100)
    ```
    """
    from albert_keras.errors import AlbertInputError

    if name not in OPTIMIZERS:
        raise AlbertInputError(f"optimizer: unknown {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, num_warmup_steps, power=poly_power)
    accumulation = gradient_accumulation_steps if gradient_accumulation_steps and gradient_accumulation_steps > 1 else None
    return OPTIMIZERS[name](
        learning_rate=schedule,
        weight_decay_rate=weight_decay_rate,
        global_clipnorm=global_clipnorm,
        gradient_accumulation_steps=accumulation,
    )
