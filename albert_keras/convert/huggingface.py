"""Hugging Face transformers checkpoints: `config.json` + `model.safetensors` (or `pytorch_model.bin`).

Reading needs no torch: safetensors files are read with `safetensors.numpy`. `pytorch_model.bin` is
read only when torch is importable. Every `Linear.weight` is `[out, in]` in PyTorch and is
transposed; the attention projections are then split per head for Keras' `MultiHeadAttention`.

Activations: Hugging Face's `"gelu"` is the exact erf GELU and `"gelu_new"` the tanh approximation
the original ALBERT uses (see huggingface/transformers#2395). Ours follow the official
`albert_config.json`, where `"gelu"` means tanh and `"gelu_exact"` means erf. So reading maps HF
`"gelu"` -> our `"gelu_exact"` and HF `"gelu_new"`/`"gelu_pytorch_tanh"` -> our `"gelu"`; writing
maps our `"gelu"`/`"gelu_new"` -> HF `"gelu_new"` and our `"gelu_exact"` -> HF `"gelu"`.
"""

import json
import os

import numpy as np

from albert_keras.convert import common
from albert_keras.convert.common import COPY
from albert_keras.convert.common import HEADS_BIAS
from albert_keras.convert.common import TRANSPOSE
from albert_keras.convert.common import TRANSPOSE_HEADS_IN
from albert_keras.convert.common import TRANSPOSE_HEADS_OUT
from albert_keras.convert.common import Rule
from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import read_json_object

_BLOCK = "albert.encoder.albert_layer_groups.{g}.albert_layers.{i}."
_OURS = "group_{g}_inner_layer_{i}/"

# Names as in `AlbertForPreTraining`'s state dict; a bare `AlbertModel` lacks the `albert.` prefix.
RULES = (
    Rule("token_embedding/embeddings", "albert.embeddings.word_embeddings.weight"),
    Rule("position_embedding/embeddings", "albert.embeddings.position_embeddings.weight"),
    Rule("segment_embedding/embeddings", "albert.embeddings.token_type_embeddings.weight"),
    Rule("embeddings_layer_norm/gamma", "albert.embeddings.LayerNorm.weight"),
    Rule("embeddings_layer_norm/beta", "albert.embeddings.LayerNorm.bias"),
    Rule("embedding_projection/kernel", "albert.encoder.embedding_hidden_mapping_in.weight", TRANSPOSE),
    Rule("embedding_projection/bias", "albert.encoder.embedding_hidden_mapping_in.bias"),
    *(
        rule
        for proj in ("query", "key", "value")
        for rule in (
            Rule(f"{_OURS}self_attention_layer/{proj}/kernel", f"{_BLOCK}attention.{proj}.weight", TRANSPOSE_HEADS_IN),
            Rule(f"{_OURS}self_attention_layer/{proj}/bias", f"{_BLOCK}attention.{proj}.bias", HEADS_BIAS),
        )
    ),
    Rule(f"{_OURS}self_attention_layer/attention_output/kernel", f"{_BLOCK}attention.dense.weight", TRANSPOSE_HEADS_OUT),
    Rule(f"{_OURS}self_attention_layer/attention_output/bias", f"{_BLOCK}attention.dense.bias"),
    Rule(f"{_OURS}self_attention_layer_norm/gamma", f"{_BLOCK}attention.LayerNorm.weight"),
    Rule(f"{_OURS}self_attention_layer_norm/beta", f"{_BLOCK}attention.LayerNorm.bias"),
    Rule(f"{_OURS}feedforward_intermediate_dense/kernel", f"{_BLOCK}ffn.weight", TRANSPOSE),
    Rule(f"{_OURS}feedforward_intermediate_dense/bias", f"{_BLOCK}ffn.bias"),
    Rule(f"{_OURS}feedforward_output_dense/kernel", f"{_BLOCK}ffn_output.weight", TRANSPOSE),
    Rule(f"{_OURS}feedforward_output_dense/bias", f"{_BLOCK}ffn_output.bias"),
    Rule(f"{_OURS}feedforward_layer_norm/gamma", f"{_BLOCK}full_layer_layer_norm.weight"),
    Rule(f"{_OURS}feedforward_layer_norm/beta", f"{_BLOCK}full_layer_layer_norm.bias"),
    Rule("pooled_dense/kernel", "albert.pooler.weight", TRANSPOSE),
    Rule("pooled_dense/bias", "albert.pooler.bias"),
    Rule("mlm/intermediate_dense/kernel", "predictions.dense.weight", TRANSPOSE),
    Rule("mlm/intermediate_dense/bias", "predictions.dense.bias"),
    Rule("mlm/intermediate_layer_norm/gamma", "predictions.LayerNorm.weight"),
    Rule("mlm/intermediate_layer_norm/beta", "predictions.LayerNorm.bias"),
    Rule("mlm/output_bias", "predictions.bias"),
    Rule("sop/kernel", "sop_classifier.classifier.weight", TRANSPOSE),
    Rule("sop/bias", "sop_classifier.classifier.bias", COPY),
)
CLASSIFIER_RULES = (Rule("task/kernel", "classifier.weight", TRANSPOSE), Rule("task/bias", "classifier.bias"))
QA_RULES = (Rule("task/kernel", "qa_outputs.weight", TRANSPOSE), Rule("task/bias", "qa_outputs.bias"))

# HF task class -> (our class, the head's rules).
TASKS = {
    "AlbertForSequenceClassification": ("AlbertClassifier", CLASSIFIER_RULES),
    "AlbertForTokenClassification": ("AlbertTokenClassifier", CLASSIFIER_RULES),
    "AlbertForMultipleChoice": ("AlbertMultipleChoice", CLASSIFIER_RULES),
    "AlbertForQuestionAnswering": ("AlbertQuestionAnswerer", QA_RULES),
}
OUR_CLASS_TO_HF = {
    "AlbertEncoder": "AlbertModel",
    "AlbertPretrainer": "AlbertForPreTraining",
    **{ours: hf for hf, (ours, _) in TASKS.items()},
}

# Tied or derived tensors a state dict may carry: `predictions.decoder.*` are tied to the word
# embeddings and `predictions.bias`; `position_ids` is a buffer.
_DERIVED = ("predictions.decoder.weight", "predictions.decoder.bias", "albert.embeddings.position_ids")

ACTIVATIONS_FROM_HF = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}
ACTIVATIONS_TO_HF = {"gelu": "gelu_new", "gelu_new": "gelu_new", "gelu_exact": "gelu", "relu": "relu",
                     "tanh": "tanh", "linear": "linear"}

# transformers.AlbertConfig defaults (the xxlarge shape), for keys a config.json leaves out.
HF_DEFAULTS = dict(
    vocab_size=30000, embedding_size=128, hidden_size=4096, num_hidden_layers=12, num_hidden_groups=1,
    num_attention_heads=64, intermediate_size=16384, inner_group_num=1, hidden_act="gelu_new",
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512,
    type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, classifier_dropout_prob=0.1,
    position_embedding_type="absolute",
)
_CONFIG_KEYS = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_hidden_groups",
                "num_attention_heads", "intermediate_size", "inner_group_num", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range")


def config_from_hf(values, source="config.json"):
    """Our `AlbertConfig` from a Hugging Face `config.json` dict (activation names translated)."""
    from albert_keras.config import AlbertConfig

    if not isinstance(values, dict):
        raise AlbertInputError(f"{source}: expected a JSON object")
    if values.get("model_type", "albert") != "albert":
        raise AlbertInputError(f"{source}: model_type is {values['model_type']!r}, not 'albert'")
    merged = {**HF_DEFAULTS, **values}
    if merged["position_embedding_type"] != "absolute":
        raise AlbertInputError(
            f"{source}: key 'position_embedding_type' is {merged['position_embedding_type']!r}; only 'absolute' is supported"
        )
    if not isinstance(merged["layer_norm_eps"], (int, float)) or abs(merged["layer_norm_eps"] - 1e-12) > 1e-15:
        raise AlbertInputError(
            f"{source}: key 'layer_norm_eps' is {merged['layer_norm_eps']!r}; ALBERT (and this model) use 1e-12"
        )
    act = merged["hidden_act"]
    if act not in ACTIVATIONS_FROM_HF:
        raise AlbertInputError(
            f"{source}: key 'hidden_act' is {act!r}; supported: {', '.join(ACTIVATIONS_FROM_HF)}"
        )
    ours = {key: merged[key] for key in _CONFIG_KEYS}
    ours["hidden_act"] = ACTIVATIONS_FROM_HF[act]
    return AlbertConfig.from_dict(ours, source=source)


def config_to_hf(config, architecture="AlbertForPreTraining", **extra):
    """A Hugging Face `config.json` dict for our `AlbertConfig`."""
    values = {key: getattr(config, key) for key in _CONFIG_KEYS}
    values.update(
        architectures=[architecture],
        model_type="albert",
        hidden_act=ACTIVATIONS_TO_HF[config.hidden_act],
        layer_norm_eps=1e-12,
        classifier_dropout_prob=0.1,
        position_embedding_type="absolute",
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        torch_dtype="float32",
    )
    values.update(extra)
    return values


def _load_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own SafetensorError (and OSError).
        raise AlbertInputError(f"{path}: unreadable safetensors file ({error})") from None


def _load_torch(path):
    try:
        import torch
    except ImportError:
        raise AlbertInputError(
            f"{path}: reading pytorch_model.bin needs torch, which is not installed; install torch, or "
            "convert the checkpoint to model.safetensors first"
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AlbertInputError(f"{path}: unreadable PyTorch checkpoint ({error})") from None
    return {name: tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
            for name, tensor in state.items()}


def read_state_dict(directory):
    """All tensors of a Hugging Face model directory as NumPy arrays (sharded files included)."""
    single = os.path.join(directory, "model.safetensors")
    index = os.path.join(directory, "model.safetensors.index.json")
    torch_file = os.path.join(directory, "pytorch_model.bin")
    if os.path.isfile(single):
        return _load_safetensors(single), single
    if os.path.isfile(index):
        try:
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AlbertInputError(f"{index}: unreadable shard index ({error})") from None
        state = {}
        for shard in shards:
            state.update(_load_safetensors(os.path.join(directory, shard)))
        return state, index
    if os.path.isfile(torch_file):
        return _load_torch(torch_file), torch_file
    raise AlbertInputError(f"{directory}: no model.safetensors or pytorch_model.bin found")


def _normalize_names(state):
    """Give every key the `AlbertForPreTraining` form: a bare `AlbertModel` gains `albert.`."""
    if any(name.startswith("albert.") for name in state):
        return dict(state)
    heads = ("predictions.", "sop_classifier.", "classifier.", "qa_outputs.")
    return {name if name.startswith(heads) else "albert." + name: value for name, value in state.items()}


def read_huggingface(source, num_choices=None):
    """Read a Hugging Face ALBERT directory into canonical weights.

    Args:
        source: the model directory.
        num_choices: choices per example, for `AlbertForMultipleChoice`.

    Returns:
        `(config, canonical weights, vocabulary path or None, task or None, do_lower_case or None)`.

    Example:
    ```python
    config, canonical, vocabulary, task, lowercase = read_huggingface("albert_chinese_tiny")
    ```
    """
    source = os.fspath(source)
    if not os.path.isdir(source):
        raise AlbertInputError(f"{source}: not a Hugging Face model directory")
    config_path = os.path.join(source, "config.json")
    try:
        with open(config_path) as f:
            hf_config = json.load(f)
    except FileNotFoundError:
        raise AlbertInputError(f"{source}: config.json not found") from None
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{config_path}: unreadable config ({error})") from None
    config = config_from_hf(hf_config, config_path)
    state, weights_path = read_state_dict(source)
    state = _normalize_names(state)
    if "predictions.bias" not in state and "predictions.decoder.bias" in state:
        state["predictions.bias"] = state["predictions.decoder.bias"]

    architectures = hf_config.get("architectures") or []
    architecture = architectures[0] if architectures else None
    rules, task, task_units = list(RULES), None, None
    if architecture not in TASKS:
        if "qa_outputs.weight" in state:
            architecture = "AlbertForQuestionAnswering"
        elif "classifier.weight" in state:
            architecture = "AlbertForSequenceClassification"
    if architecture in TASKS:
        class_name, head_rules = TASKS[architecture]
        if head_rules[0].foreign not in state:
            raise AlbertInputError(f"{weights_path}: {architecture} checkpoint without '{head_rules[0].foreign}'")
        task_units = int(np.shape(state[head_rules[0].foreign])[0])
        rules += head_rules
        dropout = hf_config.get("classifier_dropout_prob", 0.1)
        if dropout is None:
            dropout = config.hidden_dropout_prob
        arguments = {
            "AlbertClassifier": {"num_classes": task_units, "dropout": dropout},
            "AlbertTokenClassifier": {"num_classes": task_units, "dropout": dropout},
            "AlbertQuestionAnswerer": {},
        }.get(class_name)
        labels = hf_labels(hf_config, task_units)
        if labels is not None and class_name in ("AlbertClassifier", "AlbertTokenClassifier"):
            arguments["labels"] = labels
        if class_name == "AlbertMultipleChoice":
            if num_choices is None:
                raise AlbertInputError(
                    f"{config_path}: AlbertForMultipleChoice does not record the number of choices; pass --num-choices"
                )
            arguments = {"num_choices": int(num_choices), "dropout": dropout}
        task = (class_name, arguments)
    canonical = common.foreign_to_canonical(
        state, rules, config, weights_path,
        ignore=lambda name: name in _DERIVED,
        optional_names=("pooled_dense/kernel", "pooled_dense/bias"),
        task_units=task_units,
    )
    from albert_keras.tokenization.vocabulary import vocabulary_path

    # `spiece.model` (AlbertTokenizer) or `vocab.txt` (the Chinese models' BertTokenizer).
    return config, canonical, vocabulary_path(source), task, hf_lowercase(source)


# transformers' AlbertTokenizer defaults.
HF_TOKENIZER_DEFAULTS = {"do_lower_case": True, "keep_accents": False}


def hf_lowercase(source):
    """The casing `tokenizer_config.json` records (`do_lower_case`), or None without that file.

    Our normalization always strips accents, as the official script does; a tokenizer that keeps
    them (`keep_accents: true`) is a warning, since that cannot be reproduced.

    Example:
    ```python
    hf_lowercase("albert-base-v2")  # True
    ```
    """
    path = os.path.join(os.fspath(source), "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    values = {**HF_TOKENIZER_DEFAULTS, **read_json_object(path, "tokenizer config")}
    if not isinstance(values["do_lower_case"], bool):
        raise AlbertInputError(f"{path}: 'do_lower_case' must be true or false")
    if values["keep_accents"]:
        common.logger.warning(
            "%s: keep_accents is true, but ALBERT's normalization (ours) always strips accents", path
        )
    # BertTokenizer (the Chinese models): the official FullTokenizer strips accents exactly when it
    # lowercases (BertTokenizer's `strip_accents: null`) and always splits CJK characters apart.
    strip = values.get("strip_accents")
    if strip is not None and bool(strip) != values["do_lower_case"]:
        common.logger.warning("%s: strip_accents is %s, but ALBERT's WordPiece path strips accents only when "
                              "lowercasing (do_lower_case %s)", path, strip, values["do_lower_case"])
    if values.get("tokenize_chinese_chars") is False:
        common.logger.warning("%s: tokenize_chinese_chars is false, but ALBERT always splits CJK characters", path)
    return values["do_lower_case"]


def hf_tokenizer_config(vocabulary, lowercase, max_length):
    """`tokenizer_config.json` for a vocabulary, so transformers tokenizes as we do.

    A SentencePiece vocabulary gets `AlbertTokenizer`; a WordPiece one `BertTokenizer` with
    `strip_accents: null` (accents go exactly when lowercasing, as in the official `FullTokenizer`)
    and `tokenize_chinese_chars: true`, its special tokens read from the vocabulary.

    Args:
        vocabulary: a `Vocabulary`.
        lowercase: the casing (`do_lower_case`).
        max_length: `model_max_length` (the position table's length).

    Example:
    ```python
    hf_tokenizer_config(load_vocabulary("vocab_chinese.txt"), True, 512)["tokenizer_class"]  # "BertTokenizer"
    ```
    """
    from albert_keras.tokenization.vocabulary import SENTENCEPIECE

    if vocabulary.kind == SENTENCEPIECE:
        return {**HF_TOKENIZER_DEFAULTS, "do_lower_case": lowercase, "remove_space": True,
                "tokenizer_class": "AlbertTokenizer"}
    special = {f"{name}_token": vocabulary.id_to_token(token_id) for name, token_id in vocabulary.special_ids.items()}
    return {"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase, "do_basic_tokenize": True,
            "tokenize_chinese_chars": True, "strip_accents": None, "never_split": None,
            "model_max_length": max_length, **special}


def hf_labels(hf_config, units):
    """Class names from `config.json`'s `id2label`, unless they are transformers' `LABEL_i` defaults."""
    id2label = hf_config.get("id2label")
    if not isinstance(id2label, dict) or len(id2label) != units:
        return None
    try:
        labels = [str(id2label[str(i)] if str(i) in id2label else id2label[i]) for i in range(units)]
    except KeyError:
        return None
    if labels == [f"LABEL_{i}" for i in range(units)] or len(set(labels)) != units:
        return None
    return labels


def from_huggingface(source, output, spm_model=None, num_choices=None, lowercase=None, overwrite=False):
    """Convert a Hugging Face ALBERT directory to a pretrained directory.

    Reads `AlbertModel`, `AlbertForPreTraining` and `AlbertForMaskedLM` checkpoints (an
    `AlbertPretrainer` is written when a head is present; a missing SOP head or pooler keeps a fresh
    initialisation, with a warning) and the task classes (`AlbertForSequenceClassification`,
    `...TokenClassification`, `...QuestionAnswering`, `...MultipleChoice`), which become the matching
    task model with its head. The vocabulary (`spiece.model`, or the Chinese models' `vocab.txt`
    for `BertTokenizer`) is carried over, with `tokenizer_config.json`'s `do_lower_case`.

    Args:
        source: directory with `config.json` and `model.safetensors` (or sharded safetensors, or
            `pytorch_model.bin` when torch is installed).
        output: the pretrained directory to write.
        spm_model: optional vocabulary overriding the directory's `spiece.model`/`vocab.txt`.
        num_choices: choices per example, needed for `AlbertForMultipleChoice` only.
        lowercase: the tokenizer's casing; default: `tokenizer_config.json`'s `do_lower_case`,
            else True. Recorded in `tokenizer.json`, so the exported model tokenizes the same way.
        overwrite: replace a non-empty `output`.

    Returns:
        the output directory.

    Example:
    ```python
    from_huggingface("albert-base-v2", "albert_base_v2_keras")
    ```
    """
    common.check_output(output, overwrite)
    config, canonical, spm, task, found = read_huggingface(source, num_choices=num_choices)
    settings = common.casing_settings(lowercase, found, os.fspath(source), "tokenizer_config.json do_lower_case")
    return common.write_pretrained(config, canonical, output, os.fspath(source), spm_model or spm, overwrite, task,
                                   tokenizer_settings=settings)


def to_huggingface(source, output, overwrite=False):
    """Write one of our pretrained directories in Hugging Face format.

    The output has `config.json`, `model.safetensors` and the vocabulary with a
    `tokenizer_config.json`: `spiece.model` for `AlbertTokenizer`, or (a Chinese WordPiece model)
    `vocab.txt` for `BertTokenizer`. An `AlbertPretrainer` becomes `AlbertForPreTraining`, a bare
    encoder `AlbertModel`, and each task model the matching `AlbertFor...` class. Tied tensors (`predictions.decoder.*`) are
    not written; transformers ties them when it loads.

    Args:
        source: a pretrained directory.
        output: the directory to write.
        overwrite: replace a non-empty `output`.

    Returns:
        the output directory.

    Example:
    ```python
    to_huggingface("albert_base_v2_keras", "albert_base_v2_hf")
    # transformers.AlbertForPreTraining.from_pretrained("albert_base_v2_hf")
    ```
    """
    from safetensors.numpy import save_file

    from albert_keras.io_utils import atomic_directory

    common.check_output(output, overwrite)
    config, canonical, spm, model = common.load_canonical(source)
    class_name = type(model).__name__
    architecture = OUR_CLASS_TO_HF[class_name]
    rules = list(RULES)
    extra = {}
    if class_name in ("AlbertClassifier", "AlbertTokenClassifier", "AlbertMultipleChoice", "AlbertQuestionAnswerer"):
        rules += list(TASKS[architecture][1])
        if class_name in ("AlbertClassifier", "AlbertTokenClassifier"):
            units = model.num_classes
            names = model.pretrained_arguments().get("labels") or [f"LABEL_{i}" for i in range(units)]
            extra = dict(num_labels=units, id2label={str(i): name for i, name in enumerate(names)},
                         label2id={name: i for i, name in enumerate(names)})
        if "dropout" in model.pretrained_arguments():
            extra["classifier_dropout_prob"] = model.pretrained_arguments()["dropout"]
    tensors = common.canonical_to_foreign(canonical, rules, config)
    if class_name == "AlbertEncoder":  # HF's AlbertModel keeps its names without the prefix.
        tensors = {name[len("albert."):]: value for name, value in tensors.items()}
    with atomic_directory(output, overwrite=overwrite) as tmp:
        vocabulary = None
        if spm is not None:
            from albert_keras.tokenization.vocabulary import load_vocabulary

            vocabulary = load_vocabulary(source)  # the casing comes from the directory's tokenizer.json
            # transformers reads these ids from config.json; BERT-Chinese's are not AlbertTokenizer's.
            extra.update(pad_token_id=vocabulary.pad_id, bos_token_id=vocabulary.cls_id,
                         eos_token_id=vocabulary.sep_id)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config_to_hf(config, architecture, **extra), f, indent=2, sort_keys=True)
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
                  os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        if vocabulary is not None:
            lines = vocabulary.data.rstrip(b"\n").count(b"\n") + 1
            if vocabulary.kind != "sentencepiece" and lines != vocabulary.vocabulary_size():
                # BertTokenizer numbers lines; the official reader numbers distinct tokens.
                common.logger.warning(
                    "%s: vocab.txt has %d lines but %d distinct tokens; BertTokenizer will number the tokens "
                    "after a repeated line differently", source, lines, vocabulary.vocabulary_size())
            vocabulary.save(tmp)  # spiece.model or vocab.txt: the names transformers' tokenizers look for
            with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
                json.dump(hf_tokenizer_config(vocabulary, vocabulary.lowercase, config.max_position_embeddings),
                          f, indent=2, sort_keys=True)
    return os.fspath(output)
