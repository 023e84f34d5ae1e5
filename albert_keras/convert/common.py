"""Weight-mapping machinery shared by every foreign format.

Every converter goes through one intermediate form, the *canonical weights*: a flat dict from a
name to a NumPy array in Keras layout. The encoder names are exactly keras-hub `AlbertBackbone`'s
variable paths (`token_embedding/embeddings`, `group_0_inner_layer_0/self_attention_layer/query/kernel`,
...), the MLM head's are `mlm/...` and the SOP head's `sop/...`. A foreign format is then only a
table of `Rule`s (canonical name template, foreign name template, `Transform`), so each mapping
reads as data and runs both ways.
"""

import dataclasses
import logging
import os

import numpy as np

from albert_keras.errors import AlbertInputError

logger = logging.getLogger("albert_keras.convert")

MLM_PREFIX = "mlm/"
SOP_PREFIX = "sop/"
TASK_PREFIX = "task/"

# Our task models' output layer, by class: its attribute name. Its weights are `task/kernel`
# `[H, units]` and `task/bias` `[units]` in canonical form.
TASK_HEADS = {
    "AlbertClassifier": "output_dense",
    "AlbertTokenClassifier": "output_dense",
    "AlbertMultipleChoice": "output_dense",
    "AlbertQuestionAnswerer": "span_dense",
}


# --- transforms between a foreign array and the Keras layout ----------------------------------


@dataclasses.dataclass(frozen=True)
class Transform:
    """An exact, invertible re-layout of one tensor.

    Args:
        name: short name used in error messages.
        foreign_shape: maps the Keras shape to the shape the foreign format stores.
        to_keras: `(array, keras_shape) -> array` in Keras layout.
        from_keras: `(array, keras_shape) -> array` in the foreign layout.
    """

    name: str
    foreign_shape: object
    to_keras: object
    from_keras: object


COPY = Transform("copy", lambda k: tuple(k), lambda a, k: a, lambda a, k: a)
TRANSPOSE = Transform("transpose", lambda k: tuple(k)[::-1], lambda a, k: a.T, lambda a, k: a.T)
# Attention projections: Keras' MultiHeadAttention keeps the head axis apart (H,N,D), (N,D) and
# (N,D,H); TF1 and Hugging Face store them flattened to [H, N*D], [N*D] and [N*D, H].
HEADS_IN = Transform(
    "split heads",
    lambda k: (k[0], k[1] * k[2]),
    lambda a, k: a.reshape(k),
    lambda a, k: a.reshape(k[0], k[1] * k[2]),
)
HEADS_BIAS = Transform(
    "split heads",
    lambda k: (k[0] * k[1],),
    lambda a, k: a.reshape(k),
    lambda a, k: a.reshape(k[0] * k[1]),
)
HEADS_OUT = Transform(
    "split heads",
    lambda k: (k[0] * k[1], k[2]),
    lambda a, k: a.reshape(k),
    lambda a, k: a.reshape(k[0] * k[1], k[2]),
)
# PyTorch `Linear.weight` is [out, in]: transpose, then split the heads.
TRANSPOSE_HEADS_IN = Transform(
    "transpose + split heads",
    lambda k: (k[1] * k[2], k[0]),
    lambda a, k: a.T.reshape(k),
    lambda a, k: np.ascontiguousarray(a.reshape(k[0], k[1] * k[2]).T),
)
TRANSPOSE_HEADS_OUT = Transform(
    "transpose + split heads",
    lambda k: (k[2], k[0] * k[1]),
    lambda a, k: a.T.reshape(k),
    lambda a, k: np.ascontiguousarray(a.reshape(k[0] * k[1], k[2]).T),
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of a mapping table.

    Args:
        canonical: canonical name; may contain `{g}` (group) and `{i}` (inner group).
        foreign: the foreign name, same placeholders.
        transform: how the foreign array becomes the Keras one.
    """

    canonical: str
    foreign: str
    transform: Transform = COPY


# --- canonical names and shapes ---------------------------------------------------------------

_BLOCK = "group_{g}_inner_layer_{i}/"


def canonical_shapes(config, task_units=None):
    """Ordered dict `canonical name -> Keras shape` for the encoder and both pretraining heads.

    Args:
        config: an `AlbertConfig`.
        task_units: output width of a task model's head (`task/kernel`, `task/bias`), if any.

    Example:
    ```python
    shapes = canonical_shapes(AlbertConfig.from_preset("albert-base-v2"))
    shapes["group_0_inner_layer_0/self_attention_layer/query/kernel"]  # (768, 12, 64)
    ```
    """
    V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
    N, D, I = config.num_attention_heads, config.head_size, config.intermediate_size
    shapes = {
        "token_embedding/embeddings": (V, E),
        "position_embedding/embeddings": (config.max_position_embeddings, E),
        "segment_embedding/embeddings": (config.type_vocab_size, E),
        "embeddings_layer_norm/gamma": (E,),
        "embeddings_layer_norm/beta": (E,),
        "embedding_projection/kernel": (E, H),
        "embedding_projection/bias": (H,),
    }
    for g in range(config.num_hidden_groups):
        for i in range(config.inner_group_num):
            block = _BLOCK.format(g=g, i=i)
            for proj in ("query", "key", "value"):
                shapes[f"{block}self_attention_layer/{proj}/kernel"] = (H, N, D)
                shapes[f"{block}self_attention_layer/{proj}/bias"] = (N, D)
            shapes[f"{block}self_attention_layer/attention_output/kernel"] = (N, D, H)
            shapes[f"{block}self_attention_layer/attention_output/bias"] = (H,)
            shapes[f"{block}self_attention_layer_norm/gamma"] = (H,)
            shapes[f"{block}self_attention_layer_norm/beta"] = (H,)
            shapes[f"{block}feedforward_layer_norm/gamma"] = (H,)
            shapes[f"{block}feedforward_layer_norm/beta"] = (H,)
            shapes[f"{block}feedforward_intermediate_dense/kernel"] = (H, I)
            shapes[f"{block}feedforward_intermediate_dense/bias"] = (I,)
            shapes[f"{block}feedforward_output_dense/kernel"] = (I, H)
            shapes[f"{block}feedforward_output_dense/bias"] = (H,)
    shapes["pooled_dense/kernel"] = (H, H)
    shapes["pooled_dense/bias"] = (H,)
    shapes.update(
        {
            "mlm/intermediate_dense/kernel": (H, E),
            "mlm/intermediate_dense/bias": (E,),
            "mlm/intermediate_layer_norm/gamma": (E,),
            "mlm/intermediate_layer_norm/beta": (E,),
            "mlm/output_bias": (V,),
            "sop/kernel": (H, 2),
            "sop/bias": (2,),
        }
    )
    if task_units is not None:
        shapes["task/kernel"] = (H, task_units)
        shapes["task/bias"] = (task_units,)
    return shapes


def part_of(name):
    """`"encoder"`, `"mlm"`, `"sop"` or `"task"`: which model part a canonical name belongs to."""
    if name.startswith(MLM_PREFIX):
        return "mlm"
    if name.startswith(SOP_PREFIX):
        return "sop"
    if name.startswith(TASK_PREFIX):
        return "task"
    return "encoder"


def expand_rules(rules, config):
    """Expand `{g}`/`{i}` placeholders: a list of `(canonical, foreign, transform)`."""
    expanded = []
    for rule in rules:
        if "{g}" in rule.canonical or "{i}" in rule.canonical:
            for g in range(config.num_hidden_groups):
                for i in range(config.inner_group_num):
                    expanded.append(
                        (rule.canonical.format(g=g, i=i), rule.foreign.format(g=g, i=i), rule.transform)
                    )
        else:
            expanded.append((rule.canonical, rule.foreign, rule.transform))
    return expanded


# --- one error that lists every problem -------------------------------------------------------


class WeightProblems:
    """Collects missing / unexpected / mismatched names and raises them all in one error."""

    def __init__(self, source):
        self.source = source
        self.missing = []
        self.unexpected = []
        self.mismatched = []

    def __bool__(self):
        return bool(self.missing or self.unexpected or self.mismatched)

    def raise_if_any(self, hint=""):
        if not self:
            return
        parts = []
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} with the wrong shape: " + ", ".join(self.mismatched))
        if self.missing:
            parts.append(f"{len(self.missing)} missing: " + ", ".join(self.missing))
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected: " + ", ".join(self.unexpected))
        message = f"{self.source}: weights do not match the config; " + "; ".join(parts)
        if hint:
            message += f" ({hint})"
        raise AlbertInputError(message)


def _shape(array):
    return tuple(int(d) for d in np.shape(array))


def foreign_to_canonical(foreign, rules, config, source, optional_parts=("mlm", "sop", "task"), ignore=None,
                         optional_names=(), task_units=None):
    """Map a dict of foreign arrays to canonical weights, checking every name and shape.

    Args:
        foreign: dict `foreign name -> array` (or a callable-backed mapping; values are read lazily
            through `foreign[name]`, so a checkpoint reader can stand behind it).
        rules: the format's mapping table (`Rule`s).
        config: the `AlbertConfig` the weights must fit.
        source: file or directory named in errors.
        optional_parts: parts that may be absent as a whole (`"mlm"`, `"sop"`). A part that is
            partly present is an error listing what is missing.
        ignore: predicate on a foreign name for names that are skipped silently (optimizer slots).
        optional_names: canonical names that may be missing on their own (left to the caller).
        task_units: output width of the task head, when the rules map one.

    Returns:
        dict `canonical name -> np.ndarray` in Keras layout.

    Raises:
        AlbertInputError: listing every missing, unexpected and wrongly shaped name at once.
    """
    shapes = canonical_shapes(config, task_units)
    table = [row for row in expand_rules(rules, config) if row[0] in shapes]
    names = set(foreign.keys())
    problems = WeightProblems(source)
    present_parts = {part_of(c) for c, f, _ in table if f in names}
    canonical = {}
    used = set()
    for canonical_name, foreign_name, transform in table:
        part = part_of(canonical_name)
        if foreign_name not in names:
            if part in optional_parts and part not in present_parts:
                continue
            if canonical_name in optional_names:
                continue
            problems.missing.append(foreign_name)
            continue
        used.add(foreign_name)
        keras_shape = shapes[canonical_name]
        expected = tuple(transform.foreign_shape(keras_shape))
        got = tuple(foreign.shape_of(foreign_name)) if hasattr(foreign, "shape_of") else _shape(foreign[foreign_name])
        if got != expected:
            problems.mismatched.append(f"{foreign_name} {list(got)} (config wants {list(expected)})")
            continue
        canonical[canonical_name] = (foreign_name, transform, keras_shape)
    for name in sorted(names - used):
        if ignore is not None and ignore(name):
            continue
        problems.unexpected.append(name)
    problems.raise_if_any()
    return {c: np.asarray(t.to_keras(np.asarray(foreign[f]), k)) for c, (f, t, k) in canonical.items()}


def canonical_to_foreign(canonical, rules, config):
    """The inverse of `foreign_to_canonical`: dict `foreign name -> array` for the parts present."""
    task_units = canonical["task/bias"].shape[0] if "task/bias" in canonical else None
    shapes = canonical_shapes(config, task_units)
    out = {}
    for canonical_name, foreign_name, transform in expand_rules(rules, config):
        if canonical_name in canonical:
            out[foreign_name] = np.ascontiguousarray(
                transform.from_keras(np.asarray(canonical[canonical_name]), shapes[canonical_name])
            )
    return out


def identity_projection(config):
    """Kernel and bias of an E->H projection that changes nothing (E == H).

    TF1 and Model Garden create no projection when `embedding_size == hidden_size`; our encoder (like
    keras-hub's) always has one, so an identity matrix and zero bias reproduce the source exactly.
    """
    return {
        "embedding_projection/kernel": np.eye(config.embedding_size, dtype=np.float32),
        "embedding_projection/bias": np.zeros((config.hidden_size,), np.float32),
    }


# --- canonical weights <-> our Keras models ---------------------------------------------------


def _relative_path(layer, variable):
    """A variable's path below `layer` (`query/kernel` under `self_attention_layer`)."""
    path = variable.path
    layer_path = getattr(layer, "path", None) or layer.name
    if path.startswith(layer_path + "/"):
        return path[len(layer_path) + 1:]
    marker = layer.name + "/"
    if path.startswith(marker):
        return path[len(marker):]
    if "/" + marker in path:
        return path.split("/" + marker, 1)[1]
    return None


def layer_variables(layer, prefix, out):
    for variable in layer.weights:
        relative = _relative_path(layer, variable)
        if relative is None:
            continue  # A weight owned elsewhere, e.g. the MLM head's tied token embedding.
        out[prefix + relative] = variable


def model_variables(model):
    """Dict `canonical name -> keras.Variable` for an encoder, or a model holding `.encoder`.

    The encoder's sub-layers carry keras-hub `AlbertBackbone`'s names, so a variable's canonical
    name is its layer name plus its path inside that layer. A pretrainer adds its `masked_lm_head`
    (as `mlm/...`) and `sop_head` (as `sop/...`).
    """
    encoder = getattr(model, "encoder", model)
    out = {}
    for layer in encoder.layers:
        if layer.weights:
            layer_variables(layer, layer.name + "/", out)
    mlm = getattr(model, "masked_lm_head", None)
    if mlm is not None:
        layer_variables(mlm, MLM_PREFIX, out)
    sop = getattr(model, "sop_head", None)
    if sop is not None:
        layer_variables(sop, SOP_PREFIX, out)
    task = TASK_HEADS.get(type(model).__name__)
    if task is not None:
        layer_variables(getattr(model, task), TASK_PREFIX, out)
    return out


def read_model_weights(model):
    """Canonical weights (NumPy arrays) of one of our models."""
    return {name: np.asarray(variable.numpy()) for name, variable in model_variables(model).items()}


def assign_weights(model, canonical, source, allow_missing=()):
    """Assign canonical weights to `model`, after checking every name and shape.

    Args:
        model: an `AlbertEncoder` or a model with `.encoder` (and heads).
        canonical: dict `canonical name -> array`.
        source: named in the error.
        allow_missing: canonical names the model may keep as initialised (reported by the caller).

    Raises:
        AlbertInputError: listing every missing, unexpected and wrongly shaped name at once.
    """
    variables = model_variables(model)
    problems = WeightProblems(source)
    for name, variable in variables.items():
        if name not in canonical:
            if name not in allow_missing:
                problems.missing.append(name)
            continue
        if _shape(canonical[name]) != tuple(variable.shape):
            problems.mismatched.append(f"{name} {list(_shape(canonical[name]))} (model has {list(variable.shape)})")
    problems.unexpected.extend(sorted(set(canonical) - set(variables)))
    problems.raise_if_any()
    for name, variable in variables.items():
        if name in canonical:
            variable.assign(np.asarray(canonical[name], dtype=variable.dtype))


# --- building and writing our pretrained directory --------------------------------------------


def check_output(output, overwrite=False):
    """Fail before any work when `output` exists and is not empty (unless `overwrite`)."""
    output = os.fspath(output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise AlbertInputError(f"{output}: output exists and is not a directory")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise AlbertInputError(f"{output}: output directory exists and is not empty (use --overwrite)")


def build_model(config, parts, task=None):
    """Our model for the parts present.

    Args:
        config: the `AlbertConfig`.
        parts: set of parts present (`"mlm"`, `"sop"`, `"task"`).
        task: `(class name, arguments)` of a task model, e.g. `("AlbertClassifier", {"num_classes": 3})`.

    Returns:
        a task model when `task` is given, an `AlbertPretrainer` when a pretraining head is present,
        else an `AlbertEncoder`.
    """
    from albert_keras.modeling import task_models
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    encoder = AlbertEncoder(config)
    if task is not None:
        class_name, arguments = task
        return getattr(task_models, class_name)(encoder, **arguments)
    if parts & {"mlm", "sop"}:
        return AlbertPretrainer(encoder)
    return encoder


def read_config_with_casing(spec):
    """`(AlbertConfig, do_lower_case or None)` from a config spec that may carry `do_lower_case`.

    Some released `albert_config.json` files (and configs written for `run_classifier.py`) carry
    the tokenizer's `do_lower_case`; it is not a model hyperparameter, so it is taken out here and
    recorded in the pretrained directory's `tokenizer.json` instead.

    Example:
    ```python
    config, lowercase = read_config_with_casing("albert_base/albert_config.json")
    ```
    """
    import json

    from albert_keras.config import AlbertConfig

    if isinstance(spec, (str, os.PathLike)) and os.path.isfile(os.fspath(spec)):
        path = os.fspath(spec)
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, ValueError):
            values = None  # from_json_file gives the precise message
        if isinstance(values, dict) and "do_lower_case" in values:
            lowercase = values.pop("do_lower_case")
            if not isinstance(lowercase, bool):
                raise AlbertInputError(f"{path}: 'do_lower_case' must be true or false")
            return AlbertConfig.from_dict(values, source=path), lowercase
        return AlbertConfig.from_json_file(path), None
    return AlbertConfig.resolve(spec), None


def casing_settings(lowercase, found, source, what):
    """`tokenizer.json` settings: `lowercase` (the --cased/--uncased flag) wins over what the source says.

    Args:
        lowercase: the caller's override, or None.
        found: the casing the source records, or None (then the official default, lowercase).
        source: named in the warning when the override disagrees.
        what: where `found` was read, e.g. `"tokenizer_config.json do_lower_case"`.
    """
    if lowercase is None:
        return {"lowercase": True if found is None else bool(found)}
    if found is not None and bool(found) != bool(lowercase):
        logger.warning("%s: %s is %s; recording lowercase=%s as asked", source, what, found, bool(lowercase))
    return {"lowercase": bool(lowercase)}


def write_pretrained(config, canonical, output, source, spm_model=None, overwrite=False, task=None,
                     tokenizer_settings=None):
    """Build our model from canonical weights and write a pretrained directory atomically.

    When both pretraining heads are absent a bare encoder is written; when only one is present
    the other keeps its fresh initialisation, and a warning says so (likewise a missing pooler,
    which Hugging Face's `AlbertForMaskedLM` does not have).

    Args:
        config: the `AlbertConfig`.
        canonical: canonical weights.
        output: the pretrained directory to write.
        source: named in errors and warnings.
        spm_model: SentencePiece model to copy in, if any.
        overwrite: replace a non-empty `output`.
        task: `(class name, arguments)` for a task model (see `build_model`).
        tokenizer_settings: `tokenizer.json` to write (the source's casing), if known.

    Returns:
        the output directory.
    """
    from albert_keras.modeling.pretrained import save_pretrained

    parts = {part_of(name) for name in canonical}
    model = build_model(config, parts, task)
    shapes = canonical_shapes(config)
    fresh = {}
    if "pooled_dense/kernel" not in canonical:
        fresh["pooler"] = ["pooled_dense/kernel", "pooled_dense/bias"]
    if task is None and parts & {"mlm", "sop"}:
        for part, label in (("mlm", "MLM head"), ("sop", "SOP head")):
            if part not in parts:
                fresh[label] = [n for n in shapes if part_of(n) == part]
    assign_weights(model, canonical, source, allow_missing=[n for names in fresh.values() for n in names])
    if spm_model is not None:
        _check_vocabulary(spm_model, config, source)
    for label in fresh:
        logger.warning("%s: the source has no %s weights; they keep a fresh initialisation", source, label)
    save_pretrained(model, output, spm_model=spm_model, overwrite=overwrite, tokenizer_settings=tokenizer_settings)
    return os.fspath(output)


def _check_vocabulary(spm_model, config, source):
    """Refuse a vocabulary whose size differs from the embedding table's."""
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(spm_model)
    if vocabulary.vocabulary_size() != config.vocab_size:
        raise AlbertInputError(
            f"{vocabulary.name}: the vocabulary has {vocabulary.vocabulary_size()} tokens but the config's vocab_size "
            f"is {config.vocab_size}; they must come from the same model"
        )


def load_canonical(directory):
    """Read one of our pretrained directories.

    Returns:
        `(config, canonical weights, spm path or None, model)`.
    """
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import spm_model_path

    directory = os.fspath(directory)
    model = load_pretrained(directory)
    encoder = getattr(model, "encoder", model)
    return encoder.config, read_model_weights(model), spm_model_path(directory), model
