"""keras-hub presets: `AlbertBackbone` (+ `AlbertMaskedLM` / `AlbertTextClassifier` task) directories.

A keras-hub preset directory holds `config.json` (the serialized `AlbertBackbone`),
`model.weights.h5`, optionally `task.json` + `task.weights.h5` (a task model), `tokenizer.json`
and the SentencePiece model under `assets/tokenizer/vocabulary.spm`. keras-hub loads its own
presets, so reading goes through `keras_hub.models.Backbone.from_preset` / `Task.from_preset`, and
our encoder's sub-layers carry `AlbertBackbone`'s names, so weights move by name.

Differences worth knowing:

* `AlbertBackbone` has one `dropout` rate and always uses tanh GELU: converting ours to keras-hub
  refuses other activations and uses `hidden_dropout_prob` for both dropouts.
* keras-hub's `AlbertMaskedLM` head normalizes with LayerNorm epsilon 1e-5, ours (like every
  other implementation) with 1e-12; the weights carry over unchanged, the logits differ slightly.
* keras-hub has no SOP head: a preset with an MLM task becomes an `AlbertPretrainer` whose SOP head
  starts fresh (a warning says so).
"""

import json
import os

from albert_keras.convert import common
from albert_keras.errors import AlbertInputError

TOKENIZER_ASSET = os.path.join("assets", "tokenizer", "vocabulary.spm")


def config_from_backbone(backbone_config, source="config.json"):
    """Our `AlbertConfig` from an `AlbertBackbone` config dict."""
    from albert_keras.config import AlbertConfig

    try:
        values = dict(
            vocab_size=backbone_config["vocabulary_size"],
            embedding_size=backbone_config["embedding_dim"],
            hidden_size=backbone_config["hidden_dim"],
            num_hidden_layers=backbone_config["num_layers"],
            num_hidden_groups=backbone_config.get("num_groups", 1),
            num_attention_heads=backbone_config["num_heads"],
            intermediate_size=backbone_config["intermediate_dim"],
            inner_group_num=backbone_config.get("num_inner_repetitions", 1),
            hidden_act="gelu",
            hidden_dropout_prob=backbone_config.get("dropout", 0.0),
            attention_probs_dropout_prob=backbone_config.get("dropout", 0.0),
            max_position_embeddings=backbone_config.get("max_sequence_length", 512),
            type_vocab_size=backbone_config.get("num_segments", 2),
            initializer_range=0.02,
        )
    except KeyError as error:
        raise AlbertInputError(f"{source}: AlbertBackbone config lacks key {error}") from None
    return AlbertConfig.from_dict(values, source=source)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: not found (not a keras-hub preset directory?)") from None
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable JSON ({error})") from None


def _keras_hub_call(source, fn):
    """Run a keras-hub loader, turning its errors into one-line `AlbertInputError`s."""
    try:
        return fn()
    except AlbertInputError:
        raise
    except (ValueError, OSError, KeyError, TypeError) as error:
        text = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
        if len(text) > 400:
            text = text[:400] + " ..."
        raise AlbertInputError(f"{source}: keras-hub cannot load this preset ({text})") from None


def read_keras_hub(source):
    """Read a keras-hub ALBERT preset directory.

    Returns:
        `(config, canonical weights, spm path or None, task or None)`.
    """
    import keras_hub

    source = os.fspath(source)
    config_path = os.path.join(source, "config.json")
    described = _read_json(config_path)
    if not isinstance(described, dict) or described.get("class_name") != "AlbertBackbone":
        name = described.get("class_name") if isinstance(described, dict) else None
        raise AlbertInputError(f"{config_path}: class_name is {name!r}, not 'AlbertBackbone'")
    config = config_from_backbone(described.get("config", {}), config_path)

    task, task_model = None, None
    task_path = os.path.join(source, "task.json")
    if os.path.isfile(task_path) and os.path.isfile(os.path.join(source, "task.weights.h5")):
        task_class = _read_json(task_path).get("class_name")
        if task_class == "AlbertMaskedLM":
            task_model = _keras_hub_call(source, lambda: keras_hub.models.MaskedLM.from_preset(source, preprocessor=None))
        elif task_class in ("AlbertTextClassifier", "AlbertClassifier"):
            task_model = _keras_hub_call(
                source, lambda: keras_hub.models.TextClassifier.from_preset(source, preprocessor=None)
            )
        else:
            common.logger.warning("%s: task %r is not converted; reading the backbone only", task_path, task_class)
    backbone = task_model.backbone if task_model is not None else _keras_hub_call(
        source, lambda: keras_hub.models.Backbone.from_preset(source)
    )
    canonical = common.read_model_weights(backbone)
    if task_model is not None and hasattr(task_model, "masked_lm_head"):
        canonical.update(
            {name: v.numpy() for name, v in _head_variables(task_model.masked_lm_head, common.MLM_PREFIX).items()}
        )
        common.logger.warning(
            "%s: keras-hub's MLM head uses LayerNorm epsilon 1e-5, ours 1e-12; weights are copied as they are",
            source,
        )
    elif task_model is not None:
        canonical.update({name: v.numpy() for name, v in _head_variables(task_model.output_dense, common.TASK_PREFIX).items()})
        task = ("AlbertClassifier", {"num_classes": int(task_model.num_classes), "dropout": float(task_model.dropout)})

    spm = os.path.join(source, TOKENIZER_ASSET)
    return config, canonical, (spm if os.path.isfile(spm) else None), task, keras_hub_lowercase(source)


def keras_hub_lowercase(source):
    """The casing a preset's tokenizer applies: its config's `lowercase` if it has one, else False.

    keras-hub's `AlbertTokenizer` runs SentencePiece on the text as given (no lowercasing, unlike
    the official ALBERT tokenizer), so a converted preset records `lowercase: false` and tokenizes
    as it did in keras-hub.
    """
    path = os.path.join(os.fspath(source), "tokenizer.json")
    if not os.path.isfile(path):
        return None
    described = _read_json(path)
    config = described.get("config", {}) if isinstance(described, dict) else {}
    lowercase = config.get("lowercase") if isinstance(config, dict) else None
    if lowercase is None:
        common.logger.warning(
            "%s: keras-hub's AlbertTokenizer does not lowercase; recording lowercase=false so the model "
            "tokenizes as in keras-hub (pass --uncased to lowercase as the official ALBERT does)", path,
        )
        return False
    return bool(lowercase)


def _head_variables(layer, prefix):
    out = {}
    common.layer_variables(layer, prefix, out)
    return out


def from_keras_hub(source, output, spm_model=None, lowercase=None, overwrite=False):
    """Convert a keras-hub ALBERT preset directory to a pretrained directory.

    A backbone-only preset gives an encoder; an `AlbertMaskedLM` preset gives an `AlbertPretrainer`
    (MLM head copied, SOP head fresh); an `AlbertTextClassifier` preset gives an
    `AlbertClassifier`. The tokenizer's `vocabulary.spm` becomes `spiece.model`.

    Args:
        source: a local preset directory (as written by `save_to_preset`).
        output: the pretrained directory to write.
        spm_model: optional SentencePiece model overriding the preset's.
        lowercase: the tokenizer's casing; default: as the preset's tokenizer (keras-hub does not
            lowercase). Recorded in `tokenizer.json`.
        overwrite: replace a non-empty `output`.

    Returns:
        the output directory.

    Example:
    ```python
    keras_hub.models.AlbertBackbone(...).save_to_preset("/tmp/preset")
    from_keras_hub("/tmp/preset", "/tmp/albert_dir")
    ```
    """
    common.check_output(output, overwrite)
    config, canonical, spm, task, found = read_keras_hub(source)
    settings = common.casing_settings(lowercase, found, os.fspath(source), "the preset's tokenizer lowercase")
    return common.write_pretrained(config, canonical, output, os.fspath(source), spm_model or spm, overwrite, task,
                                   tokenizer_settings=settings)


def to_keras_hub(source, output=None, overwrite=False):
    """Build a `keras_hub.models.AlbertBackbone` from a pretrained directory (optionally as a preset).

    Args:
        source: a pretrained directory.
        output: optional preset directory to write with `save_to_preset`: the backbone, the
            tokenizer (when the source has `spiece.model`), and an `AlbertMaskedLM` task when the
            source is a pretrainer (its MLM head copied; keras-hub has no SOP head).
        overwrite: replace a non-empty `output`.

    Returns:
        the `AlbertBackbone`, with our encoder's weights.

    Example:
    ```python
    backbone = to_keras_hub("albert_base_v2_keras")
    outputs = backbone({"token_ids": ..., "segment_ids": ..., "padding_mask": ...})
    ```
    """
    import keras_hub

    from albert_keras.io_utils import atomic_directory

    if output is not None:
        common.check_output(output, overwrite)
    config, canonical, spm, model = common.load_canonical(source)
    if config.hidden_act not in ("gelu", "gelu_new"):
        raise AlbertInputError(
            f"{source}: hidden_act is {config.hidden_act!r}; keras-hub's AlbertBackbone only computes tanh GELU ('gelu')"
        )
    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
        common.logger.warning(
            "%s: keras-hub has one dropout rate; using hidden_dropout_prob=%s for attention too",
            source, config.hidden_dropout_prob,
        )
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        embedding_dim=config.embedding_size,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        num_groups=config.num_hidden_groups,
        num_inner_repetitions=config.inner_group_num,
        dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
    )
    encoder_weights = {k: v for k, v in canonical.items() if common.part_of(k) == "encoder"}
    common.assign_weights(backbone, encoder_weights, os.fspath(source))
    if output is None:
        return backbone
    with atomic_directory(output, overwrite=overwrite) as tmp:
        preprocessor = None
        if spm is not None:
            from albert_keras.modeling.pretrained import read_tokenizer_settings

            if read_tokenizer_settings(source)["lowercase"]:
                common.logger.warning(
                    "%s: the model expects lowercased text, but keras-hub's AlbertTokenizer does not lowercase; "
                    "lowercase text before the preset's tokenizer", source,
                )
            tokenizer = keras_hub.models.AlbertTokenizer(proto=spm)
            preprocessor = keras_hub.models.AlbertMaskedLMPreprocessor(tokenizer)
        if "mlm/output_bias" in canonical:
            masked_lm = keras_hub.models.AlbertMaskedLM(backbone, preprocessor=preprocessor)
            head = _head_variables(masked_lm.masked_lm_head, common.MLM_PREFIX)
            for name, variable in head.items():
                variable.assign(canonical[name])
            masked_lm.save_to_preset(tmp)
        else:
            backbone.save_to_preset(tmp)
            if preprocessor is not None:
                preprocessor.tokenizer.save_to_preset(tmp)
    return backbone
