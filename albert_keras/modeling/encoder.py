"""`AlbertEncoder`: factorized embeddings and cross-layer-shared transformer blocks."""

import os

import keras
from keras_hub.layers import PositionEmbedding
from keras_hub.layers import TransformerEncoder

from albert_keras.compat import set_attention_probs_dropout
from albert_keras.config import AlbertConfig
from albert_keras.modeling.activations import get_activation
from albert_keras.modeling.fusion import check_fuse
from albert_keras.modeling.fusion import fuse_layer_norm
from albert_keras.modeling.fusion import fuse_transformer_block
from albert_keras.modeling.pretrained import PretrainedMixin


def albert_initializer(config):
    """The official initializer: truncated normal with `initializer_range` as stddev."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def block_arguments(config, initializer, dtype):
    """The keras-hub arguments of one ALBERT block (post-LayerNorm, epsilon 1e-12), encoder or decoder.

    `initializer` is one instance shared by a model's blocks, as Keras draws each use of it anew.
    """
    return {
        "intermediate_dim": config.intermediate_size,
        "num_heads": config.num_attention_heads,
        "dropout": config.hidden_dropout_prob,
        "activation": get_activation(config.hidden_act),
        "layer_norm_epsilon": 1e-12,
        "kernel_initializer": initializer,
        "normalize_first": False,
        "dtype": dtype,
    }


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertEncoder(PretrainedMixin, keras.Model):
    """The ALBERT encoder network (Lan et al., 2019), as published.

    Embeddings are factorized: tokens, positions and segments are embedded at width
    `embedding_size` (E), summed, layer-normalized (epsilon 1e-12), dropped out, then projected to
    `hidden_size` (H) by a dense layer. The transformer stack applies `num_hidden_layers` layers, but
    holds only `num_hidden_groups x inner_group_num` distinct blocks: each (group, inner group) pair
    is ONE `keras_hub.layers.TransformerEncoder` instance (post-LayerNorm, tanh GELU), called for
    every layer of its group, and layer `l` uses group `int(l * G / L)`. The pooler is a dense layer
    with tanh on the first token.

    Sub-layer names and order equal `keras_hub.models.AlbertBackbone`'s, so
    `encoder.set_weights(backbone.get_weights())` (and the reverse) gives identical outputs.

    Args:
        config: an `AlbertConfig`, or anything `AlbertConfig.resolve` accepts (a preset name such as
            `"albert-base-v2"`, a JSON path, a dict of official keys), or a pretrained directory,
            whose encoder weights are then loaded (an error if it has none).
        output_encoder_outputs: also return `encoder_outputs`, a list with the output of every
            transformer block applied (`num_hidden_layers x inner_group_num` tensors).
        dtype: a dtype or `keras.DTypePolicy` such as `"mixed_bfloat16"`; outputs are float32
            whatever the policy.
        fuse: compute the blocks' feed-forward matmuls, LayerNorms and bfloat16 attention in forms
            TensorFlow's oneDNN fuses on CPU (`albert_keras.modeling.fusion`). `"auto"` (default)
            decides on every call: fused for inference on the CPU, Keras' own code in training,
            under XLA (`jit_compile=True`) and on GPU/TPU. `True` fuses wherever it runs (the
            LayerNorm and attention forms still only at inference); `False` keeps every Keras and
            keras-hub layer's own class. The weights are the same either way.

    Inputs: a dict with int32 `token_ids`, `segment_ids` and `padding_mask`, each `[batch, seq]`.
    Outputs: a dict with `sequence_output` `[batch, seq, H]` and `pooled_output` `[batch, H]`.

    Example:
    ```python
    import numpy as np
    from albert_keras import AlbertConfig, AlbertEncoder

    config = AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    encoder = AlbertEncoder(config)
    outputs = encoder({
        "token_ids": np.array([[2, 10, 11, 3, 0]], "int32"),
        "segment_ids": np.zeros((1, 5), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0]], "int32"),
    })
    outputs["pooled_output"].shape  # (1, 16)
    ```
    """

    def __init__(self, config, output_encoder_outputs=False, dtype=None, fuse="auto", **kwargs):
        fuse = check_fuse(fuse)
        # A directory holds trained weights: building random ones from its config would lose them.
        weights_dir = None
        if not isinstance(config, (AlbertConfig, dict)) and os.path.isdir(os.fspath(config)):
            weights_dir = os.fspath(config)
        config = AlbertConfig.resolve(config)
        initializer = albert_initializer(config)

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=config.vocab_size,
            output_dim=config.embedding_size,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=config.max_position_embeddings,
            initializer=initializer,
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=config.type_vocab_size,
            output_dim=config.embedding_size,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            config.hidden_dropout_prob, dtype=dtype, name="embeddings_dropout"
        )
        self.embeddings_projection = keras.layers.Dense(
            config.hidden_size,
            kernel_initializer=initializer,
            dtype=dtype,
            name="embedding_projection",
        )
        self.transformer_layers = [
            [
                TransformerEncoder(**block_arguments(config, initializer, dtype), name=f"group_{group}_inner_layer_{inner}")
                for inner in range(config.inner_group_num)
            ]
            for group in range(config.num_hidden_groups)
        ]
        self.pooled_dense = keras.layers.Dense(
            config.hidden_size,
            kernel_initializer=initializer,
            activation="tanh",
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")

        tokens = self.token_embedding(token_ids)
        x = self.embeddings_add(
            (tokens, self.position_embedding(tokens), self.segment_embedding(segment_ids))
        )
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        x = self.embeddings_projection(x)
        encoder_outputs = []
        for layer_index in range(config.num_hidden_layers):
            for block in self.transformer_layers[config.group_of_layer(layer_index)]:
                x = block(x, padding_mask=padding_mask)
                encoder_outputs.append(x)
        pooled = self.pooled_dense(x[:, 0, :])

        def as_float32(tensor):
            return keras.ops.cast(tensor, "float32")

        outputs = {"sequence_output": as_float32(x), "pooled_output": as_float32(pooled)}
        if output_encoder_outputs:
            outputs["encoder_outputs"] = [as_float32(t) for t in encoder_outputs]
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
            outputs=outputs,
            dtype=dtype,
            **kwargs,
        )
        # The functional constructor does not keep `dtype`; heads built on this encoder read it.
        if dtype is not None:
            self.dtype_policy = dtype

        # keras-hub's TransformerEncoder has one dropout rate for attention probabilities and the
        # residual branches; ALBERT configs may set them apart, so the attention-probability
        # dropout (a weightless layer) is set to the config's value after the blocks are built.
        # Swapped after the functional build, which made the blocks' sub-layers (same weights).
        fuse_layer_norm(self.embeddings_layer_norm, fuse)
        for group in self.transformer_layers:
            for block in group:
                if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
                    set_attention_probs_dropout(block, config.attention_probs_dropout_prob)
                fuse_transformer_block(block, fuse)

        self.config = config
        self.output_encoder_outputs = output_encoder_outputs
        self.fuse = fuse
        if weights_dir is not None:
            from albert_keras.modeling.pretrained import load_encoder_weights

            load_encoder_weights(self, weights_dir)

    @property
    def albert_config(self):
        return self.config

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "config": self.config.to_dict(),
            "output_encoder_outputs": self.output_encoder_outputs,
            "fuse": self.fuse,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)
