import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from tests.representations.conftest import run_cli

TEXT = "The [MASK] statement returns a [MASK]."


def test_literal_mask_is_not_a_mask_for_the_official_tokenizer(spm_model_path):
    """Why fill-mask splits on "[MASK]": normalized and tokenized whole, it never gives MASK_ID."""
    from albert_keras.tokenization.sentencepiece import MASK_ID
    from albert_keras.tokenization.sentencepiece import encode_for_albert
    from albert_keras.tokenization.sentencepiece import load_sentencepiece

    sp = load_sentencepiece(spm_model_path)
    assert MASK_ID not in encode_for_albert(sp, TEXT)
    assert MASK_ID not in encode_for_albert(sp, TEXT, lowercase=False)


def test_mask_token_ids_put_mask_id_between_the_tokenized_parts(spm_model_path):
    from albert_keras.representations.fill_mask import mask_token_ids
    from albert_keras.tokenization.sentencepiece import MASK_ID
    from albert_keras.tokenization.sentencepiece import encode_for_albert
    from albert_keras.tokenization.sentencepiece import load_sentencepiece

    sp = load_sentencepiece(spm_model_path)
    ids, positions = mask_token_ids(sp, TEXT)
    first, second = encode_for_albert(sp, "The"), encode_for_albert(sp, "statement returns a")
    assert ids == [2, *first, MASK_ID, *second, MASK_ID, *encode_for_albert(sp, "."), 3]
    assert [ids[p] for p in positions] == [MASK_ID, MASK_ID]


def test_fill_mask_ranks_the_mlm_heads_probabilities(pretrainer_dir):
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.representations.fill_mask import fill_mask
    from albert_keras.representations.fill_mask import mask_token_ids
    from albert_keras.tokenization.sentencepiece import load_sentencepiece

    results = fill_mask(pretrainer_dir, TEXT, top_k=4)
    assert len(results) == 2 and all(len(r) == 4 for r in results)
    # Against the full distribution from the pretrainer's head, computed here.
    sp = load_sentencepiece(f"{pretrainer_dir}/spiece.model")
    ids, positions = mask_token_ids(sp, TEXT)
    model = load_pretrained(pretrainer_dir)
    logits = np.asarray(model([np.array([ids]), np.ones([1, len(ids)]), np.zeros([1, len(ids)]),
                               np.array([positions])])["mlm_logits"])[0]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    for guesses, row in zip(results, probabilities):
        assert [g["token_id"] for g in guesses] == list(np.argsort(-row, kind="stable")[:4])
        np.testing.assert_allclose([g["probability"] for g in guesses], np.sort(row)[::-1][:4], rtol=1e-5)
        assert all(g["piece"] == sp.id_to_piece(g["token_id"]) for g in guesses)


def test_fill_mask_errors(pretrainer_dir, encoder_dir):
    from albert_keras.representations.fill_mask import fill_mask

    with pytest.raises(AlbertInputError, match="no masked-LM head"):
        fill_mask(encoder_dir, TEXT)
    with pytest.raises(AlbertInputError, match=r"no \[MASK\]"):
        fill_mask(pretrainer_dir, "Nothing to fill here.")


def test_fill_mask_cli(pretrainer_dir, encoder_dir):
    code, out, _ = run_cli("fill-mask", "--model", pretrainer_dir, "The [MASK] statement returns a value.", "-k", "3")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert len(rows) == 3 and all(0.0 < float(row[0]) <= 1.0 for row in rows)
    code, _, err = run_cli("fill-mask", "--model", encoder_dir, "The [MASK] statement.")
    assert code == 2 and "no masked-LM head" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("fill-mask", "--model", pretrainer_dir, "no mask here")
    assert code == 2 and "[MASK]" in err


def test_a_pretrainer_taught_one_sentence_fills_its_mask(spm_model_path, tmp_path):
    """End to end: masked-LM training on `[CLS] the for statement loops. [SEP]` with "for" masked at
    the position `mask_token_ids` gives; fill-mask then puts "▁for" first."""
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.modeling.pretrainer import AlbertPretrainer
    from albert_keras.representations.fill_mask import fill_mask
    from albert_keras.representations.fill_mask import mask_token_ids
    from albert_keras.tokenization.sentencepiece import load_sentencepiece
    from tests.representations.conftest import TINY

    sp = load_sentencepiece(spm_model_path)
    ids, positions = mask_token_ids(sp, "The [MASK] statement loops.")
    target = sp.piece_to_id("\u2581for")
    assert sp.id_to_piece(target) == "\u2581for"
    keras.utils.set_random_seed(0)
    model = AlbertPretrainer(AlbertEncoder(AlbertConfig(**{**TINY, "hidden_dropout_prob": 0.0,
                                                           "attention_probs_dropout_prob": 0.0})))
    batch = {
        "input_ids": np.array([ids] * 8, np.int32), "input_mask": np.ones([8, len(ids)], np.int32),
        "segment_ids": np.zeros([8, len(ids)], np.int32), "masked_lm_positions": np.array([positions] * 8, np.int32),
        "masked_lm_ids": np.full([8, 1], target, np.int32), "masked_lm_weights": np.ones([8, 1], np.float32),
        "next_sentence_labels": np.zeros([8], np.int32),
    }
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(batch, batch_size=8, epochs=30, verbose=0)
    save_pretrained(model, tmp_path / "taught", spm_model=str(spm_model_path))
    guesses = fill_mask(tmp_path / "taught", "The [MASK] statement loops.", top_k=3)[0]
    assert guesses[0]["piece"] == "\u2581for" and guesses[0]["probability"] > 0.5
