"""`AlbertConfig`: the official `albert_config.json`, its presets and its validation."""

import dataclasses
import json
import os

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_write

# Activations the official code accepts (`modeling.get_activation`); "gelu" is the tanh form there.
KNOWN_ACTIVATIONS = ("gelu", "gelu_new", "gelu_exact", "relu", "tanh", "linear")

# Keys that released configs carry but `modeling.py` never reads: Google's, then those of brightmart's
# `*_google` configs (BERT's pooler settings and `directionality`; `ln_type` is checked below).
IGNORED_KEYS = ("net_structure_type", "gap_size", "num_memory_blocks", "down_scale_factor", "layers_to_keep",
                "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers",
                "pooler_size_per_head", "pooler_type", "ln_type")

_INT_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_hidden_groups",
    "num_attention_heads",
    "intermediate_size",
    "inner_group_num",
    "max_position_embeddings",
    "type_vocab_size",
)
_FLOAT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")
REQUIRED_KEYS = _INT_KEYS + ("hidden_act",) + _FLOAT_KEYS


@dataclasses.dataclass
class AlbertConfig:
    """The hyperparameters of an ALBERT model, with the official `albert_config.json` keys.

    Args:
        vocab_size: number of SentencePiece pieces (V).
        embedding_size: width of the factorized embeddings (E).
        hidden_size: width of the transformer (H); divisible by `num_attention_heads`.
        num_hidden_layers: number of layers applied (L); divisible by `num_hidden_groups`.
        num_hidden_groups: number of distinct parameter groups (G); layer `l` uses group
            `int(l * G / L)`.
        num_attention_heads: attention heads per block.
        intermediate_size: width of the feed-forward layer.
        inner_group_num: transformer blocks per group, each with its own weights.
        hidden_act: `"gelu"` (tanh approximation, as the official code), `"gelu_new"` (the same),
            `"gelu_exact"` (erf form), `"relu"`, `"tanh"` or `"linear"`.
        hidden_dropout_prob: dropout on embeddings and residual branches.
        attention_probs_dropout_prob: dropout on attention probabilities.
        max_position_embeddings: longest sequence the model accepts.
        type_vocab_size: number of segment ids.
        initializer_range: standard deviation of the truncated-normal initializers.

    Example:
    ```python
    config = AlbertConfig.from_preset("albert-base-v2")
    config.to_json_file("/tmp/albert_config.json")
    same = AlbertConfig.from_json_file("/tmp/albert_config.json")
    ```
    """

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    inner_group_num: int = 1
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    def __post_init__(self):
        self.validate()

    @property
    def head_size(self):
        return self.hidden_size // self.num_attention_heads

    def group_of_layer(self, layer_index):
        """The parameter group used by layer `layer_index`, as the official code computes it."""
        return int(layer_index / self.num_hidden_layers * self.num_hidden_groups)

    def validate(self, source="AlbertConfig"):
        """Raise `AlbertInputError` naming `source` and the key when a value is unusable."""
        for key in _INT_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise AlbertInputError(f"{source}: key '{key}' must be an integer, got {value!r}")
            if value <= 0:
                raise AlbertInputError(f"{source}: key '{key}' must be positive, got {value}")
        for key in _FLOAT_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AlbertInputError(f"{source}: key '{key}' must be a number, got {value!r}")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise AlbertInputError(f"{source}: key '{key}' must be in [0, 1), got {getattr(self, key)}")
        if self.initializer_range <= 0:
            raise AlbertInputError(f"{source}: key 'initializer_range' must be positive, got {self.initializer_range}")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in KNOWN_ACTIVATIONS:
            raise AlbertInputError(
                f"{source}: key 'hidden_act' is {self.hidden_act!r}; known activations: {', '.join(KNOWN_ACTIVATIONS)}"
            )
        if self.hidden_size % self.num_attention_heads:
            raise AlbertInputError(
                f"{source}: key 'hidden_size' ({self.hidden_size}) must be divisible by "
                f"'num_attention_heads' ({self.num_attention_heads})"
            )
        if self.num_hidden_layers % self.num_hidden_groups:
            raise AlbertInputError(
                f"{source}: key 'num_hidden_layers' ({self.num_hidden_layers}) must be divisible by "
                f"'num_hidden_groups' ({self.num_hidden_groups})"
            )

    # --- dict / JSON ---------------------------------------------------------------------------

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source="AlbertConfig"):
        """Build from a dict of official keys; unused released keys are ignored, others rejected."""
        if not isinstance(values, dict):
            raise AlbertInputError(f"{source}: expected a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in REQUIRED_KEYS if k not in values]
        if missing:
            raise AlbertInputError(f"{source}: missing key '{missing[0]}'" + (
                f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
        unknown = [k for k in values if k not in known and k not in IGNORED_KEYS]
        if unknown:
            raise AlbertInputError(f"{source}: unknown key '{unknown[0]}' (known keys: {', '.join(REQUIRED_KEYS)})")
        # brightmart's `ln_type` picks post-LN (ALBERT's) or pre-LN blocks; only the former is this model.
        if values.get("ln_type") not in (None, "postln"):
            raise AlbertInputError(
                f"{source}: key 'ln_type' is {values['ln_type']!r}; only 'postln' (ALBERT's layer-norm placement) "
                "is supported"
            )
        kwargs = {k: values[k] for k in known}
        # JSON has one number type: accept 1.0 for an int key, but not 1.5.
        for key in _INT_KEYS:
            value = kwargs[key]
            if isinstance(value, float) and value.is_integer():
                kwargs[key] = int(value)
        config = cls.__new__(cls)
        for key, value in kwargs.items():
            setattr(config, key, value)
        config.validate(source)
        return config

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path):
        """Write `albert_config.json` atomically."""
        with atomic_write(path, "w") as f:
            f.write(self.to_json_string())

    @classmethod
    def from_json_file(cls, path):
        """Read an official `albert_config.json`; errors name the file and the key."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise AlbertInputError(f"{path}: config file not found") from None
        except OSError as error:
            raise AlbertInputError(f"{path}: cannot read config ({error.strerror})") from None
        try:
            values = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise AlbertInputError(f"{path}: config is not UTF-8 text") from None
        except json.JSONDecodeError as error:
            raise AlbertInputError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        return cls.from_dict(values, source=path)

    # --- presets -------------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, name, **overrides):
        """One of the eight released configurations, e.g. `"albert-base-v2"`, with overrides."""
        if name not in PRESETS:
            raise AlbertInputError(f"unknown preset '{name}'; known presets: {', '.join(sorted(PRESETS))}")
        values = dict(PRESETS[name])
        values.update(overrides)
        return cls(**values)

    @classmethod
    def resolve(cls, spec):
        """An `AlbertConfig` from a config, a dict, a preset name, a JSON path or a pretrained dir."""
        if isinstance(spec, AlbertConfig):
            return spec
        if isinstance(spec, dict):
            return cls.from_dict(spec)
        spec = os.fspath(spec)
        if spec in PRESETS:
            return cls.from_preset(spec)
        if os.path.isdir(spec):
            return cls.from_json_file(os.path.join(spec, "albert_config.json"))
        if os.path.exists(spec) or spec.endswith(".json"):
            return cls.from_json_file(spec)
        raise AlbertInputError(
            f"'{spec}' is neither a preset ({', '.join(sorted(PRESETS))}), a JSON file nor a pretrained directory"
        )


def _preset(hidden, layers, heads, intermediate, dropout):
    return dict(
        vocab_size=30000,
        embedding_size=128,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_hidden_groups=1,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        inner_group_num=1,
        hidden_act="gelu",
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
    )


# Dropouts follow the released configs: v1 base/large/xlarge 0.1, v1 xxlarge and all v2 0.
PRESETS = {
    "albert-base-v1": _preset(768, 12, 12, 3072, 0.1),
    "albert-large-v1": _preset(1024, 24, 16, 4096, 0.1),
    "albert-xlarge-v1": _preset(2048, 24, 16, 8192, 0.1),
    "albert-xxlarge-v1": _preset(4096, 12, 64, 16384, 0.0),
    "albert-base-v2": _preset(768, 12, 12, 3072, 0.0),
    "albert-large-v2": _preset(1024, 24, 16, 4096, 0.0),
    "albert-xlarge-v2": _preset(2048, 24, 16, 8192, 0.0),
    "albert-xxlarge-v2": _preset(4096, 12, 64, 16384, 0.0),
}
