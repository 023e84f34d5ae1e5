import keras
import keras_hub
import numpy as np
import pytest

from albert_keras.config import AlbertConfig
from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.pretrainer import AlbertPretrainer
from tests.modeling.conftest import encoder_batch, tiny_config

# Counted from the architecture (reference/official-albert.md §3.1), not from this code.
PARAMETER_COUNTS = {
    "albert-base-v2": (11_683_584, 11_813_810),
    "albert-large-v2": (17_683_968, 17_847_474),
    "albert-xlarge-v2": (58_724_864, 59_021_490),
    "albert-xxlarge-v2": (222_595_584, 223_158_450),
}


@pytest.mark.parametrize("preset", sorted(PARAMETER_COUNTS))
def test_exact_parameter_counts(preset):
    encoder_count, with_heads_count = PARAMETER_COUNTS[preset]
    encoder = AlbertEncoder(preset)
    assert encoder.count_params() == encoder_count
    assert AlbertPretrainer(encoder).count_params() == with_heads_count
    # One TransformerEncoder instance, however many layers: cross-layer sharing.
    blocks = [l for l in encoder.layers if isinstance(l, keras_hub.layers.TransformerEncoder)]
    assert len(blocks) == 1


def test_weights_do_not_grow_with_depth():
    counts = {layers: AlbertEncoder(tiny_config(num_hidden_layers=layers)).count_params() for layers in (2, 4, 8)}
    assert len(set(counts.values())) == 1
    more_groups = AlbertEncoder(tiny_config(num_hidden_layers=4, num_hidden_groups=4)).count_params()
    assert more_groups > counts[4]


def _backbone(config):
    return keras_hub.models.AlbertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
        embedding_dim=config.embedding_size, hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        num_groups=config.num_hidden_groups, num_inner_repetitions=config.inner_group_num,
        max_sequence_length=config.max_position_embeddings,
    )


def test_matches_keras_hub_backbone_both_ways(config):
    batch = encoder_batch(pad_from=7)
    encoder = AlbertEncoder(config)
    backbone = _backbone(config)
    backbone.set_weights(encoder.get_weights())
    ours, theirs = encoder(batch), backbone(batch)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5)
    other = _backbone(config)
    encoder.set_weights(other.get_weights())
    np.testing.assert_allclose(encoder(batch)["pooled_output"], other(batch)["pooled_output"], atol=1e-5)


def test_layers_use_groups_in_the_official_order(config):
    """Layer l must use group int(l * G / L): apply the blocks by hand and compare."""
    encoder = AlbertEncoder(config, output_encoder_outputs=True)
    batch = encoder_batch()
    outputs = encoder(batch)
    assert len(outputs["encoder_outputs"]) == config.num_hidden_layers * config.inner_group_num
    tokens = encoder.token_embedding(batch["token_ids"])
    x = encoder.embeddings_add((tokens, encoder.position_embedding(tokens), encoder.segment_embedding(batch["segment_ids"])))
    x = encoder.embeddings_projection(encoder.embeddings_layer_norm(x))
    for layer_index, group in enumerate([0, 0, 1, 1]):
        for inner, block in enumerate(encoder.transformer_layers[group]):
            x = block(x, padding_mask=batch["padding_mask"])
            np.testing.assert_allclose(outputs["encoder_outputs"][layer_index * 2 + inner], x, atol=1e-6)
    np.testing.assert_allclose(outputs["sequence_output"], x, atol=1e-6)


def test_padding_does_not_change_real_positions(config):
    encoder = AlbertEncoder(config)
    short = encoder_batch(length=7)
    padded = {k: np.pad(v, ((0, 0), (0, 5))) for k, v in short.items()}
    a, b = encoder(short), encoder(padded)
    np.testing.assert_allclose(a["sequence_output"], b["sequence_output"][:, :7], atol=1e-5)
    np.testing.assert_allclose(a["pooled_output"], b["pooled_output"], atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_outputs_are_float32(config, policy):
    encoder = AlbertEncoder(config, dtype=policy, output_encoder_outputs=True)
    reference = AlbertEncoder(config)
    encoder.set_weights(reference.get_weights())
    batch = encoder_batch()
    outputs = encoder(batch)
    assert all(t.dtype == "float32" for t in keras.tree.flatten(outputs))
    assert encoder.transformer_layers[0][0].compute_dtype == policy.split("_")[1]
    np.testing.assert_allclose(outputs["pooled_output"], reference(batch)["pooled_output"], atol=0.1)


def test_dropout_rates_follow_the_config():
    encoder = AlbertEncoder(tiny_config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.3))
    block = encoder.transformer_layers[0][0]
    assert block._self_attention_layer._dropout_layer.rate == 0.3
    assert block._feedforward_dropout.rate == 0.1
    batch = encoder_batch()
    np.testing.assert_allclose(encoder(batch)["sequence_output"], encoder(batch)["sequence_output"])
    assert not np.allclose(encoder(batch, training=True)["sequence_output"], encoder(batch)["sequence_output"])


# The config, `.keras` and pretrained-directory round trips: tests/modeling/test_round_trips.py.


def test_activation_names_map_to_the_official_functions():
    x = keras.ops.convert_to_tensor([-1.0, 0.5, 2.0])
    from albert_keras.modeling.activations import get_activation

    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(get_activation("gelu")(x), tanh_form, atol=1e-6)
    assert not np.allclose(get_activation("gelu_exact")(x), tanh_form, atol=1e-6)
    assert AlbertConfig.from_preset("albert-base-v2").hidden_act == "gelu"
