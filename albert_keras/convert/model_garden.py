"""TF2 checkpoints of tf-models-official's `AlbertEncoder` (Model Garden, and TF-Hub's ALBERT v2).

These are object-based checkpoints (`tf.train.Checkpoint(encoder=model)`, as written by
`official/nlp/tools/tf2_albert_encoder_checkpoint_converter.py`), whose keys follow the Keras object
graph (`encoder/layer_with_weights-4/...`) and so depend on layer order. Each variable's name at
save time (`transformer/self_attention/query/kernel`) is recorded in the checkpoint's object
graph too; the mapping below is written against those names, which do not depend on order.

Model Garden's encoder has one shared transformer block (`num_hidden_groups == inner_group_num
== 1`), a projection only when E != H, and already stores attention kernels per head. Its
pretrainer (`BertPretrainerV2`, `--converted_model=pretrainer`) adds the MLM head
(`cls/predictions/...`); it has no SOP head.
"""

import os
import re

from albert_keras.convert import common
from albert_keras.convert.common import Rule
from albert_keras.convert.official import CheckpointArrays
from albert_keras.errors import AlbertInputError

_OURS = "group_0_inner_layer_0/"

RULES = (
    Rule("token_embedding/embeddings", "word_embeddings/embeddings"),
    Rule("position_embedding/embeddings", "position_embedding/embeddings"),
    Rule("segment_embedding/embeddings", "type_embeddings/embeddings"),
    Rule("embeddings_layer_norm/gamma", "embeddings/layer_norm/gamma"),
    Rule("embeddings_layer_norm/beta", "embeddings/layer_norm/beta"),
    Rule("embedding_projection/kernel", "embedding_projection/kernel"),
    Rule("embedding_projection/bias", "embedding_projection/bias"),
    *(
        Rule(f"{_OURS}self_attention_layer/{proj}/{kind}", f"transformer/self_attention/{proj}/{kind}")
        for proj in ("query", "key", "value", "attention_output")
        for kind in ("kernel", "bias")
    ),
    Rule(f"{_OURS}self_attention_layer_norm/gamma", "transformer/self_attention_layer_norm/gamma"),
    Rule(f"{_OURS}self_attention_layer_norm/beta", "transformer/self_attention_layer_norm/beta"),
    Rule(f"{_OURS}feedforward_intermediate_dense/kernel", "transformer/intermediate/kernel"),
    Rule(f"{_OURS}feedforward_intermediate_dense/bias", "transformer/intermediate/bias"),
    Rule(f"{_OURS}feedforward_output_dense/kernel", "transformer/output/kernel"),
    Rule(f"{_OURS}feedforward_output_dense/bias", "transformer/output/bias"),
    Rule(f"{_OURS}feedforward_layer_norm/gamma", "transformer/output_layer_norm/gamma"),
    Rule(f"{_OURS}feedforward_layer_norm/beta", "transformer/output_layer_norm/beta"),
    Rule("pooled_dense/kernel", "pooler_transform/kernel"),
    Rule("pooled_dense/bias", "pooler_transform/bias"),
    Rule("mlm/intermediate_dense/kernel", "cls/predictions/transform/dense/kernel"),
    Rule("mlm/intermediate_dense/bias", "cls/predictions/transform/dense/bias"),
    Rule("mlm/intermediate_layer_norm/gamma", "cls/predictions/transform/LayerNorm/gamma"),
    Rule("mlm/intermediate_layer_norm/beta", "cls/predictions/transform/LayerNorm/beta"),
    Rule("mlm/output_bias", "cls/predictions/output_bias/bias"),
)

# tf_keras makes layer names unique per process (`transformer_1`); the first path element may
# carry such a suffix, and the MLM head may sit under `bert/`.
_UNIQUIFIED = re.compile(r"^([A-Za-z]+(?:_[A-Za-z]+)*)_\d+(/|$)")


def _normalize(full_name):
    name = full_name[:-2] if full_name.endswith(":0") else full_name
    if name.startswith("bert/cls/"):
        name = name[len("bert/"):]
    return _UNIQUIFIED.sub(r"\1\2", name)


class ObjectCheckpointArrays(CheckpointArrays):
    """A lazy mapping over an object-based checkpoint, keyed by each variable's saved name."""

    kind = "object-based checkpoint"

    def _index(self, shapes):
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(self._reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        slot_keys = set()
        for node in graph.nodes:
            for slot in node.slot_variables:
                for attribute in graph.nodes[slot.slot_variable_node_id].attributes:
                    slot_keys.add(attribute.checkpoint_key)
        names = {}
        self.skipped = []
        for node in graph.nodes:
            for attribute in node.attributes:
                key = attribute.checkpoint_key
                if key not in shapes or attribute.name != "VARIABLE_VALUE":
                    continue
                if key in slot_keys or key.startswith(("optimizer/", "save_counter/")) or "/.OPTIMIZER_SLOT/" in key:
                    self.skipped.append(key)
                    continue
                name = _normalize(attribute.full_name or key)
                if name in names:
                    raise AlbertInputError(f"{self.prefix}: two variables are both named '{name}'")
                names[name] = (key, tuple(shapes[key]))
        return names


def _is_counter(name):
    return name in ("global_step", "iter", "step") or name.endswith(("/iter", "/iterations", "learning_rate"))


def read_model_garden(source, config=None, spm_model=None):
    """Read a Model Garden ALBERT checkpoint into canonical weights.

    Returns:
        `(config, canonical weights, spm path or None, None, do_lower_case or None)`.
    """
    from albert_keras.convert.official import _vocabulary_in
    from albert_keras.convert.official import find_checkpoint

    source = os.fspath(source)
    if os.path.isdir(source):
        prefix, directory = None, source
    elif os.path.exists(source + ".index"):
        prefix, directory = source, os.path.dirname(source) or "."
    else:
        raise AlbertInputError(f"{source}: neither a directory nor a checkpoint prefix")
    if config is None:
        path = os.path.join(directory, "albert_config.json")
        if not os.path.isfile(path):
            raise AlbertInputError(f"{directory}: albert_config.json not found (pass --config)")
        config = path
    config, do_lower_case = common.read_config_with_casing(config)
    if config.num_hidden_groups != 1 or config.inner_group_num != 1:
        raise AlbertInputError(
            f"{source}: Model Garden's AlbertEncoder has one shared block; the config asks for "
            f"num_hidden_groups={config.num_hidden_groups}, inner_group_num={config.inner_group_num}"
        )
    arrays = ObjectCheckpointArrays(prefix or find_checkpoint(directory))
    optional = ()
    if config.embedding_size == config.hidden_size and "embedding_projection/kernel" not in arrays.keys():
        optional = ("embedding_projection/kernel", "embedding_projection/bias")
    canonical = common.foreign_to_canonical(
        arrays, RULES, config, arrays.prefix, optional_parts=("mlm",), ignore=_is_counter, optional_names=optional
    )
    if optional:
        canonical.update(common.identity_projection(config))
    return config, canonical, spm_model or _vocabulary_in(directory), None, do_lower_case


def from_model_garden(source, output, config=None, spm_model=None, lowercase=None, overwrite=False):
    """Convert a Model Garden (tf-models-official) ALBERT checkpoint to a pretrained directory.

    Args:
        source: a checkpoint prefix or a directory with one (and, unless `config` is given, an
            `albert_config.json`).
        output: the pretrained directory to write: an encoder, or an `AlbertPretrainer` whose MLM
            head is copied and whose SOP head starts fresh when the checkpoint is a pretrainer's.
        config: optional config (path, preset name or `AlbertConfig`).
        spm_model: optional SentencePiece model to carry over.
        lowercase: the tokenizer's casing; default: the config's `do_lower_case`, else True.
        overwrite: replace a non-empty `output`.

    Returns:
        the output directory.

    Example:
    ```python
    from_model_garden("albert_en_base/bert_model.ckpt", "albert_base", config="albert-base-v2")
    ```
    """
    common.check_output(output, overwrite)
    config_, canonical, spm, task, do_lower_case = read_model_garden(source, config, spm_model)
    settings = common.casing_settings(lowercase, do_lower_case, os.fspath(source), "albert_config.json do_lower_case")
    return common.write_pretrained(config_, canonical, output, os.fspath(source), spm, overwrite, task,
                                   tokenizer_settings=settings)
