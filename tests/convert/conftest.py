"""Helpers shared by the conversion tests: the committed parity fixtures and a tiny config."""

import os

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
HF_FIXTURE = os.path.join(FIXTURES, "hf_tiny")
OFFICIAL_FIXTURE = os.path.join(FIXTURES, "official_tiny")
TOLERANCE = 1e-5


def tiny_config(**overrides):
    from albert_keras.config import AlbertConfig

    values = dict(vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=4, num_hidden_groups=2,
                  num_attention_heads=2, intermediate_size=37, inner_group_num=2, max_position_embeddings=64)
    values.update(overrides)
    return AlbertConfig(**values)


def model_outputs(model, expected):
    """Sequence/pooled output, MLM logits at every position and SOP logits of a pretrainer."""
    inputs = {
        "token_ids": expected["input_ids"],
        "segment_ids": expected["token_type_ids"],
        "padding_mask": expected["attention_mask"],
    }
    encoded = model.encoder(inputs)
    batch, length = expected["input_ids"].shape
    positions = np.tile(np.arange(length, dtype="int32"), (batch, 1))
    return {
        "sequence_output": np.asarray(encoded["sequence_output"]),
        "pooled_output": np.asarray(encoded["pooled_output"]),
        "mlm_logits": np.asarray(model.masked_lm_head(encoded["sequence_output"], mask_positions=positions)),
        "sop_logits": np.asarray(model.sop_head(encoded["pooled_output"])),
    }


def assert_matches_expected(model, expected_path):
    """Every output within 1e-5 of the reference; padded positions are not compared."""
    expected = np.load(expected_path)
    got = model_outputs(model, expected)
    real = expected["attention_mask"].astype(bool)
    for key in ("sequence_output", "mlm_logits"):
        np.testing.assert_allclose(got[key][real], expected[key][real], atol=TOLERANCE, rtol=0, err_msg=key)
    for key in ("pooled_output", "sop_logits"):
        np.testing.assert_allclose(got[key], expected[key], atol=TOLERANCE, rtol=0, err_msg=key)


def random_canonical(config, seed=0, parts=("encoder", "mlm", "sop"), task_units=None):
    """Random canonical weights for `config` (every tensor distinct, so a swap cannot hide)."""
    from albert_keras.convert.common import canonical_shapes
    from albert_keras.convert.common import part_of

    rng = np.random.default_rng(seed)
    return {
        name: rng.standard_normal(shape).astype(np.float32) * 0.2
        for name, shape in canonical_shapes(config, task_units).items()
        if part_of(name) in parts
    }


@pytest.fixture
def hf_fixture():
    return HF_FIXTURE


@pytest.fixture
def official_fixture():
    return OFFICIAL_FIXTURE


@pytest.fixture(scope="session")
def spm_model_100(embedded_corpus_path, tmp_path_factory):
    """A SentencePiece model with the committed fixtures' vocab_size (100): a vocabulary whose size
    differs from the config's is refused, so `spm_model_path` (1000 pieces) does not fit them."""
    from albert_keras.tokenization import train_sentencepiece

    return train_sentencepiece(embedded_corpus_path, tmp_path_factory.mktemp("spm100") / "spiece.model", vocab_size=100)
