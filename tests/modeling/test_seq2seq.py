"""`AlbertSeq2Seq`: parameter counts, decoder sharing and warm start, cached decoding, directories."""

import keras
import numpy as np
import pytest

from albert_keras import compat
from albert_keras.modeling import AlbertEncoder
from albert_keras.modeling import AlbertPretrainer
from albert_keras.modeling import load_pretrained
from albert_keras.modeling import save_pretrained
from albert_keras.modeling.generation import detokenize
from albert_keras.modeling.seq2seq import AlbertSeq2Seq
from albert_keras.modeling.seq2seq import seq2seq_parameter_count
from albert_keras.tokenization.vocabulary import load_vocabulary
from tests.modeling.conftest import tiny_config

WORDS = ["the", "cat", "dog", "sees", "big", "red", "a", "bird", "runs", "."]


def write_vocab(directory):
    """A WordPiece vocabulary with ALBERT's special ids (0-4) and whole words."""
    path = directory / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    return path


def sources(batch=3, seed=0, length=7, vocab=60):
    """Packed sources of different lengths: `[CLS] ids [SEP] pad`."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, length), "int32")
    for row in range(batch):
        n = length - 2 - row
        ids[row, :n + 2] = [2] + list(rng.integers(5, vocab, n)) + [3]
    return ids, (ids > 0).astype("int32")


def model(share_decoder, seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    # A wide initializer so that random outputs depend on the source and on every earlier token.
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.5, **overrides)
    return AlbertSeq2Seq(AlbertEncoder(config), share_decoder=share_decoder, max_target_length=10)


@pytest.mark.parametrize("share_decoder", [True, False])
def test_parameter_count_is_the_stated_formula(share_decoder):
    config = tiny_config()
    built = AlbertSeq2Seq(AlbertEncoder(config), share_decoder=share_decoder)
    assert built.count_params() == seq2seq_parameter_count(config, share_decoder)
    # By hand for this config (V=60, E=8, H=16, I=24, N=4 blocks): the encoder, then the decoder.
    encoder = AlbertEncoder(config).count_params()
    cross, block = 4 * 16 * 16 + 6 * 16, 4 * 16 * 16 + 6 * 16 + 2 * 16 * 24 + 24 + 3 * 16
    head = 16 * 8 + 3 * 8 + 60
    assert built.count_params() == encoder + 4 * (cross + (0 if share_decoder else block)) + head


def test_albert_base_shared_decoder_adds_only_cross_attention_and_head():
    from albert_keras.config import AlbertConfig

    config = AlbertConfig.resolve("albert-base-v2")
    # 11,683,584 (the encoder as published) + 2,370,048 cross-attention + 128 x 768 + 3 x 128 + 30,000 head.
    assert seq2seq_parameter_count(config, share_decoder=True) == 11683584 + 4 * 768 * 768 + 6 * 768 + 98304 + 384 + 30000
    assert seq2seq_parameter_count(config, share_decoder=False) - seq2seq_parameter_count(config, True) == (
        4 * 768 * 768 + 6 * 768 + 2 * 768 * 3072 + 3072 + 3 * 768)


def test_shared_decoder_uses_the_encoders_variables_and_unshared_starts_as_a_copy():
    shared, copied = model(True), model(False)
    for built, same in ((shared, True), (copied, False)):
        encoder_block = built.encoder.transformer_layers[1][0]
        decoder = compat.transformer_decoder_layers(built.decoder_blocks[1][0])
        encoder = compat.transformer_block_layers(encoder_block)
        pairs = list(zip(compat.attention_projections(encoder["attention"]),
                         compat.attention_projections(decoder["self_attention"])))
        pairs.append((encoder["feedforward_dense"][0], decoder["feedforward_dense"][0]))
        pairs.append((encoder["layer_norms"][1], decoder["feedforward_layer_norm"]))
        for source, target in pairs:
            assert (source.weights[0] is target.weights[0]) == same
            np.testing.assert_array_equal(source.weights[0].numpy(), target.weights[0].numpy())
        # Cross-attention is always the decoder's own, and differs from the self-attention.
        cross = compat.attention_projections(decoder["cross_attention"])[0].weights[0]
        assert all(cross is not w for w in built.encoder.weights)
    # Training the unshared copy leaves the encoder's block alone.
    target = compat.transformer_decoder_layers(copied.decoder_blocks[0][0])["feedforward_dense"][1].weights[0]
    target.assign(target.numpy() + 1.0)
    source = compat.transformer_block_layers(copied.encoder.transformer_layers[0][0])["feedforward_dense"][1]
    assert not np.allclose(source.weights[0].numpy(), target.numpy())


@pytest.mark.parametrize("share_decoder", [True, False])
def test_cached_decoding_gives_the_uncached_tokens(share_decoder):
    built = model(share_decoder, seed=3)
    ids, mask = sources()
    for sampler in ("greedy", "beam"):
        cached = built.generate_ids(ids, mask, max_length=9, sampler=sampler, num_beams=3)
        uncached = built.generate_ids(ids, mask, max_length=9, sampler=sampler, num_beams=3, use_cache=False)
        assert cached == uncached
        assert len({tuple(row) for row in cached}) > 1, "rows should depend on their sources"


def test_beam_of_one_is_greedy_and_greedy_follows_the_teacher_forced_argmax():
    built = model(False, seed=5)
    ids, mask = sources(seed=1)
    greedy = built.generate_ids(ids, mask, max_length=9)
    assert built.generate_ids(ids, mask, max_length=9, sampler="beam", num_beams=1) == greedy
    # Feeding the greedy output back teacher-forced, the argmax at every step is the next token.
    for row, generated in enumerate(greedy):
        decoder = np.array([[2] + generated], "int32")
        logits = built({"encoder_token_ids": ids[row:row + 1], "encoder_padding_mask": mask[row:row + 1],
                        "decoder_token_ids": decoder, "decoder_padding_mask": np.ones_like(decoder)})
        logits = np.array(logits[0])
        logits[:, [0, 2, 4]] = -np.inf  # never generated: padding, [CLS], [MASK]
        expected = logits.argmax(-1).tolist()
        assert expected[:len(generated)] == generated


def test_random_samplers_are_seeded_and_stop_at_sep():
    built = model(True, seed=2)
    ids, mask = sources()
    first = built.generate_ids(ids, mask, max_length=9, sampler="top_k", top_k=5, seed=7)
    assert all(3 not in row and 0 not in row and len(row) <= 8 for row in first)
    top_p = built.generate_ids(ids, mask, max_length=9, sampler="top_p", top_p=0.5, seed=7)
    assert all(len(row) <= 8 for row in top_p)
    # The same settings reuse one sampler and its traced loop (a batch does not retrace).
    built.generate_ids(ids[:2], mask[:2], max_length=9, sampler="top_k", top_k=5, seed=7)
    assert len(built.__dict__["_generation_functions"]) == 2


def test_saved_and_loaded_as_a_pretrained_directory(tmp_path):
    vocab = write_vocab(tmp_path)
    config = tiny_config(vocab_size=5 + len(WORDS), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         initializer_range=0.5)
    keras.utils.set_random_seed(4)
    pretrainer = AlbertPretrainer(AlbertEncoder(config))
    save_pretrained(pretrainer, tmp_path / "pre", vocabulary=str(vocab))

    built = AlbertSeq2Seq.from_pretrained(tmp_path / "pre", max_target_length=8)
    for source, target in zip(pretrainer.masked_lm_head.weights, built.lm_head.weights):
        np.testing.assert_array_equal(source.numpy(), target.numpy())  # the MLM head is the output head
    text = ["the big cat sees a red bird .", "a dog runs ."]
    generated = built.generate(text, sampler="beam", num_beams=2)
    assert all(isinstance(t, str) for t in generated)

    built.save_pretrained(tmp_path / "s2s")
    again = load_pretrained(tmp_path / "s2s")
    assert isinstance(again, AlbertSeq2Seq) and again.max_target_length == 8 and not again.share_decoder
    again = AlbertSeq2Seq.from_pretrained(tmp_path / "s2s")
    assert again.generate(text, sampler="beam", num_beams=2) == generated
    for a, b in zip(built.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_detokenize_wordpiece_joins_pieces_and_cjk():
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "vocab.txt")
        with open(path, "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "我", "爱", "play", "##ing", "."]) + "\n")
        vocabulary = load_vocabulary(path)
    assert detokenize(vocabulary, [2, 5, 6, 7, 8, 9, 3]) == "我爱 playing ."
