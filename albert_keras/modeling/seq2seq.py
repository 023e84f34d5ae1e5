"""`AlbertSeq2Seq`: an ALBERT encoder-decoder, warm-started from any pretrained directory.

Rothe, Narayan and Severyn (TACL 2020) warm-start both halves of a transformer encoder-decoder
from one BERT-style checkpoint and find that sharing the encoder's and decoder's weights loses
little; ALBERT's cross-layer sharing carried one step further. Here:

- the encoder is the directory's `AlbertEncoder`, unchanged;
- the decoder has one keras-hub `TransformerDecoder` block per (group, inner group) of the
  encoder, called for every layer of its group exactly as `AlbertEncoder` calls its blocks;
- each decoder block's self-attention, feed-forward and their LayerNorms start as copies of the
  encoder block's (or are the encoder block's own layers with `share_decoder=True`); its
  cross-attention starts fresh;
- the decoder embeds its tokens with the encoder's embedding layers (word, position, segment 0,
  LayerNorm, the factorized E -> H projection) and predicts with a keras-hub `MaskedLMHead` tied
  to the same word embeddings (H -> E dense, LayerNorm, embeddings transposed, a bias), which
  starts as the pretrainer's MLM head when the directory holds one. One vocabulary for both sides.

Decoder sequences are `[CLS] target [SEP]`: `[CLS]` starts every output and `[SEP]` ends it.
Generation (`generate`) reuses `keras_hub.samplers`; see `albert_keras.modeling.generation`.
"""

import logging
import os

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.layers import TransformerDecoder

from albert_keras import compat
from albert_keras.modeling.activations import get_activation
from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.encoder import albert_initializer
from albert_keras.modeling.encoder import block_arguments
from albert_keras.modeling.generation import GenerationMixin

SEQ2SEQ_INPUTS = ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")
DEFAULT_TARGET_LENGTH = 64

logger = logging.getLogger("albert_keras.modeling")


@keras.saving.register_keras_serializable(package="albert_keras")
class DecoderPositions(keras.layers.Layer):
    """`[batch, length]` int32 positions `0 .. length - 1` of a `[batch, length]` input: what
    `MaskedLMHead` gathers to predict at every decoder position.

    Example:
    ```python
    DecoderPositions()(np.zeros((2, 3), "int32"))  # [[0, 1, 2], [0, 1, 2]]
    ```
    """

    def call(self, token_ids):
        shape = keras.ops.shape(token_ids)
        return keras.ops.broadcast_to(keras.ops.expand_dims(keras.ops.arange(shape[1], dtype="int32"), 0), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def seq2seq_parameter_count(config, share_decoder=False):
    """The exact number of parameters of an `AlbertSeq2Seq` on an encoder with `config`.

    With V vocabulary, E embedding, H hidden and I intermediate sizes, and N = groups x inner
    groups distinct encoder blocks:

    - encoder: `AlbertEncoder(config).count_params()` (embeddings, projection, N blocks, pooler);
    - per decoder block, cross-attention and its LayerNorm: `4H^2 + 4H + 2H`;
    - per decoder block, unless `share_decoder`: self-attention and LayerNorm `4H^2 + 6H`, and
      feed-forward and LayerNorm `2HI + I + 3H`;
    - the output head (the word embeddings are the encoder's): `HE + E + 2E + V`.

    total = encoder + N(4H^2 + 6H) [+ N(4H^2 + 6H + 2HI + I + 3H)] + HE + 3E + V.

    Args:
        config: an `AlbertConfig`.
        share_decoder: whether the decoder's self-attention and feed-forward are the encoder's.

    Example:
    ```python
    seq2seq_parameter_count(AlbertConfig.resolve("albert-base-v2"), share_decoder=True)
    ```
    """
    V, E, H, I = config.vocab_size, config.embedding_size, config.hidden_size, config.intermediate_size
    N = config.num_hidden_groups * config.inner_group_num
    encoder = (V + config.max_position_embeddings + config.type_vocab_size) * E + 2 * E + E * H + H
    block = 4 * H * H + 4 * H + 2 * H + 2 * H * I + I + H + 2 * H
    encoder += N * block + H * H + H
    cross = 4 * H * H + 6 * H
    decoder = N * (cross if share_decoder else cross + block)
    return encoder + decoder + H * E + 3 * E + V


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertSeq2Seq(GenerationMixin, AlbertEncoderModel):
    """An encoder-decoder on an `AlbertEncoder`, its decoder's blocks shared across layers.

    The parameter count is `seq2seq_parameter_count(config, share_decoder)` (tested).

    Args:
        encoder: an `AlbertEncoder` (pretrained or not).
        share_decoder: the decoder blocks' self-attention, feed-forward and their LayerNorms are
            the encoder blocks' own layers (one set of weights for both halves); else copies.
        max_target_length: decoder positions (`[CLS]` + target pieces, the last one `[SEP]`):
            the training length and `generate`'s default maximum (default 64, at most
            `max_position_embeddings`).
        init_decoder_from_encoder: start the unshared decoder blocks as copies of the encoder's
            (Rothe et al.'s warm start); False keeps their random initialization.
        **kwargs: `keras.Model` arguments (`name`).

    Inputs: a dict with int32 `encoder_token_ids`, `encoder_padding_mask` `[batch, S]`,
    `decoder_token_ids`, `decoder_padding_mask` `[batch, T]` (keras-hub's Seq2SeqLM names).
    Output: float32 next-token logits `[batch, T, vocab]`.

    Example:
    ```python
    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.seq2seq import AlbertSeq2Seq

    encoder = AlbertEncoder(AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                                         num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=32))
    model = AlbertSeq2Seq(encoder, share_decoder=True, max_target_length=8)
    ids = np.array([[2, 10, 11, 3]], "int32")
    model({"encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids),
           "decoder_token_ids": ids, "decoder_padding_mask": np.ones_like(ids)}).shape  # (1, 4, 100)
    model.generate_ids(ids, np.ones_like(ids), max_length=6)  # lists of generated ids
    ```
    """

    def __init__(self, encoder, share_decoder=False, max_target_length=None, init_decoder_from_encoder=True,
                 **kwargs):
        config = encoder.config
        if max_target_length is None:
            max_target_length = min(DEFAULT_TARGET_LENGTH, config.max_position_embeddings)
        max_target_length = int(max_target_length)
        if not 2 <= max_target_length <= config.max_position_embeddings:
            raise ValueError(
                f"max_target_length must be in [2, max_position_embeddings={config.max_position_embeddings}], "
                f"got {max_target_length}"
            )
        initializer = albert_initializer(config)
        activation = get_activation(config.hidden_act)
        dtype = encoder.dtype_policy

        # === Layers ===
        self.encoder = encoder
        self.decoder_blocks = [
            [
                TransformerDecoder(**block_arguments(config, initializer, dtype), name=f"decoder_group_{group}_inner_layer_{inner}")
                for inner in range(config.inner_group_num)
            ]
            for group in range(config.num_hidden_groups)
        ]
        self.lm_head = MaskedLMHead(
            token_embedding=encoder.token_embedding,
            intermediate_activation=activation,
            layer_norm_epsilon=1e-12,
            kernel_initializer=initializer,
            dtype=dtype,
            name="lm_head",
        )
        self.decoder_positions = DecoderPositions(dtype="int32", name="decoder_positions")

        # === Functional model ===
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in SEQ2SEQ_INPUTS}
        encoded = encoder({
            "token_ids": inputs["encoder_token_ids"],
            "segment_ids": keras.ops.zeros_like(inputs["encoder_token_ids"]),
            "padding_mask": inputs["encoder_padding_mask"],
        })["sequence_output"]
        logits = self.decode(inputs["decoder_token_ids"], encoded, inputs["encoder_padding_mask"],
                             decoder_padding_mask=inputs["decoder_padding_mask"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        for group, encoder_group in zip(self.decoder_blocks, encoder.transformer_layers):
            for block, encoder_block in zip(group, encoder_group):
                if share_decoder:
                    compat.share_decoder_with_encoder(block, encoder_block)
                else:
                    if init_decoder_from_encoder:
                        _copy_encoder_block(block, encoder_block)
                    if config.attention_probs_dropout_prob != config.hidden_dropout_prob:
                        compat.set_attention_probs_dropout(block, config.attention_probs_dropout_prob)
        self.share_decoder = bool(share_decoder)
        self.max_target_length = max_target_length
        self._arguments = {"share_decoder": self.share_decoder, "max_target_length": max_target_length}

    # ------------------------------------------------------------------ the decoder

    def applied_blocks(self):
        """`[(block, block number)]` in the order the decoder applies them (one per layer and inner group)."""
        config = self.encoder.config
        order = []
        for layer_index in range(config.num_hidden_layers):
            group = config.group_of_layer(layer_index)
            for inner, block in enumerate(self.decoder_blocks[group]):
                order.append((block, group * config.inner_group_num + inner))
        return order

    def embed_decoder_tokens(self, token_ids, start_index=0, training=None):
        """The encoder's embedding path (word + position + segment 0, LayerNorm, E -> H) on decoder tokens.

        Args:
            token_ids: int32 `[batch, t]`.
            start_index: the position of the first token (generation with a cache).
            training: dropout on or off.
        """
        encoder = self.encoder
        tokens = encoder.token_embedding(token_ids)
        positions = encoder.position_embedding(tokens, start_index=start_index)
        segments = encoder.segment_embedding(keras.ops.zeros_like(token_ids))
        x = encoder.embeddings_add((tokens, positions, segments))
        x = encoder.embeddings_layer_norm(x)
        x = encoder.embeddings_dropout(x, training=training)
        return encoder.embeddings_projection(x)

    def logits(self, hidden, token_ids):
        """Float32 next-token logits `[batch, t, vocab]` from decoder states `[batch, t, H]`."""
        return keras.ops.cast(self.lm_head(hidden, mask_positions=self.decoder_positions(token_ids)), "float32")

    def decode(self, decoder_token_ids, encoder_output, encoder_padding_mask, decoder_padding_mask=None,
               training=None):
        """Teacher-forced decoding without a cache: logits at every position (causal self-attention).

        Args:
            decoder_token_ids: int32 `[batch, T]`, starting with `[CLS]`.
            encoder_output: the encoder's `sequence_output` `[batch, S, H]`.
            encoder_padding_mask: `[batch, S]`.
            decoder_padding_mask: optional `[batch, T]`.
            training: dropout on or off.
        """
        x = self.embed_decoder_tokens(decoder_token_ids, training=training)
        for block, _ in self.applied_blocks():
            x = block(x, encoder_output, decoder_padding_mask=decoder_padding_mask,
                      encoder_padding_mask=encoder_padding_mask, training=training)
        return self.logits(x, decoder_token_ids)

    def decode_with_cache(self, token_ids, encoder_output, encoder_padding_mask, self_cache, index, cross_cache,
                          fill_cross_cache=False):
        """Decode `token_ids` at positions `index ..` with the key/value caches.

        A block shared by several layers sees the same encoder output through the same weights,
        so its cross-attention keys and values are computed once per block, not once per layer.

        Args:
            token_ids: int32 `[batch, t]`.
            encoder_output: `[batch, S, H]`.
            encoder_padding_mask: `[batch, S]`.
            self_cache: `[batch, layers, 2, T, heads, head size]`, one slot per applied layer.
            index: the position of `token_ids[:, 0]`.
            cross_cache: `[batch, blocks, 2, S, heads, head size]`, one slot per distinct block.
            fill_cross_cache: compute the cross-attention cache (the first step) instead of reading it.

        Returns:
            `(logits [batch, t, vocab], self_cache, cross_cache)`.
        """
        x = self.embed_decoder_tokens(token_ids, start_index=index)
        self_caches, filled = [], {}
        for layer, (block, number) in enumerate(self.applied_blocks()):
            fill = fill_cross_cache and number not in filled
            cross = filled.get(number, cross_cache[:, number, ...])
            x, layer_cache, cross = block(
                x, encoder_output, encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=self_cache[:, layer, ...], self_attention_cache_update_index=index,
                cross_attention_cache=cross, cross_attention_cache_update_index=0 if fill else None,
            )
            self_caches.append(layer_cache)
            if fill_cross_cache:
                filled.setdefault(number, cross)
        if fill_cross_cache:
            cross_cache = keras.ops.stack([filled[n] for n in range(len(filled))], axis=1)
        return self.logits(x, token_ids), keras.ops.stack(self_caches, axis=1), cross_cache

    def encode(self, encoder_token_ids, encoder_padding_mask):
        """The encoder's `sequence_output` for source ids (segment 0), in inference mode."""
        return self.encoder({
            "token_ids": encoder_token_ids,
            "segment_ids": keras.ops.zeros_like(encoder_token_ids),
            "padding_mask": encoder_padding_mask,
        }, training=False)["sequence_output"]

    # ------------------------------------------------------------------ pretrained directories

    @classmethod
    def from_pretrained(cls, directory, dtype=None, source_length=None, **arguments):
        """Build from a pretrained directory: an encoder's, a pretrainer's (its MLM head becomes the
        output head) or a saved `AlbertSeq2Seq`'s (everything loads), with the directory's tokenizer.

        Args:
            directory: a pretrained directory.
            dtype: optional dtype policy.
            source_length: the preprocessor's source length (default: `tokenizer.json`, else 128).
            **arguments: `share_decoder`, `max_target_length`, `init_decoder_from_encoder`.

        Example:
        ```python
        model = AlbertSeq2Seq.from_pretrained("runs/pretrain/pretrained", max_target_length=32)
        model.generate(["a source sentence ."])
        ```
        """
        from albert_keras.modeling.pretrained import MODEL_WEIGHTS_FILE
        from albert_keras.modeling.pretrained import read_model_description

        model = super().from_pretrained(directory, dtype=dtype, **arguments)
        description = read_model_description(os.fspath(directory))
        if description["class"] == "AlbertPretrainer" and os.path.isfile(os.path.join(directory, MODEL_WEIGHTS_FILE)):
            from albert_keras.modeling.pretrainer import AlbertPretrainer

            pretrainer = AlbertPretrainer.from_pretrained(directory)
            for source, target in zip(pretrainer.masked_lm_head.weights, model.lm_head.weights):
                target.assign(source)
            logger.info("%s: the output head starts from the pretrainer's MLM head", directory)
        from albert_keras.modeling.generation import Seq2SeqPreprocessor

        model.preprocessor = Seq2SeqPreprocessor.from_directory(
            directory, source_length=source_length, target_length=model.max_target_length,
            max_positions=model.encoder.config.max_position_embeddings,
        )
        return model


def _copy_encoder_block(block, encoder_block):
    """Set a built decoder block's self-attention, feed-forward and their LayerNorms to an encoder block's values."""
    decoder_layers = compat.transformer_decoder_layers(block)
    encoder_layers = compat.transformer_block_layers(encoder_block)
    pairs = list(zip(compat.attention_projections(encoder_layers["attention"]),
                     compat.attention_projections(decoder_layers["self_attention"])))
    pairs += list(zip(encoder_layers["feedforward_dense"], decoder_layers["feedforward_dense"]))
    pairs += list(zip(encoder_layers["layer_norms"],
                      (decoder_layers["self_attention_layer_norm"], decoder_layers["feedforward_layer_norm"])))
    for source, target in pairs:
        target.set_weights(source.get_weights())
