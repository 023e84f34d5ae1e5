import numpy as np
import pytest

from albert_keras.config import AlbertConfig


def tiny_config(**overrides):
    values = dict(vocab_size=60, embedding_size=8, hidden_size=16, num_hidden_layers=4, num_hidden_groups=2,
                  inner_group_num=2, num_attention_heads=2, intermediate_size=24, max_position_embeddings=32)
    values.update(overrides)
    return AlbertConfig(**values)


def encoder_batch(batch=3, length=9, vocab=60, seed=0, pad_from=None):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    if pad_from is not None:
        mask[:, pad_from:] = 0
    token_ids = rng.integers(5, vocab, (batch, length)).astype("int32") * mask
    segment_ids = (np.arange(length)[None, :] >= length // 2).astype("int32").repeat(batch, 0) * mask
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": mask}


def pretraining_batch(batch=4, length=12, predictions=3, vocab=60, seed=0):
    rng = np.random.default_rng(seed)
    positions = np.stack([np.sort(rng.choice(np.arange(1, length - 1), predictions, replace=False)) for _ in range(batch)])
    weights = np.ones((batch, predictions), "float32")
    weights[:, -1] = 0.0
    positions[:, -1] = 0
    input_ids = rng.integers(5, vocab, (batch, length)).astype("int32")
    return {
        "input_ids": input_ids,
        "input_mask": np.ones((batch, length), "int32"),
        "segment_ids": (np.arange(length)[None, :] >= length // 2).astype("int32").repeat(batch, 0),
        "masked_lm_positions": positions.astype("int32"),
        "masked_lm_ids": (rng.integers(5, vocab, (batch, predictions)) * (weights > 0)).astype("int32"),
        "masked_lm_weights": weights,
        "next_sentence_labels": (np.arange(batch) % 2).astype("int32"),
    }


@pytest.fixture
def config():
    return tiny_config()
