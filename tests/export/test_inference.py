"""Batch prediction: precision choice from CPU flags, length bucketing keeps order and values."""

import numpy as np
import pytest

from albert_keras.export.inference import Predictor
from albert_keras.export.inference import choose_precision
from albert_keras.export.inference import length_buckets
from albert_keras.export.inference import precision_cost
from tests.export.conftest import BAD_TEXTS


def test_precision_follows_cpu_flags(tmp_path):
    amx = tmp_path / "amx"
    amx.write_text("processor : 0\nflags : fpu sse avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor : 0\nflags : fpu sse avx2 fma\n")
    assert choose_precision("auto", str(amx))[0] == "bfloat16"
    assert choose_precision("auto", str(plain)) == (
        "float32",
        "CPU lacks amx_bf16/avx512_bf16 (bfloat16 would be emulated, slower)",
    )
    assert choose_precision("bfloat16", str(plain))[0] == "bfloat16"


def test_length_buckets_sort_and_cover():
    batches = length_buckets([5, 1, 9, 2, 7], batch_size=2)
    assert [list(b) for b in batches] == [[1, 3], [0, 4], [2]]


def test_bucketing_gives_the_same_outputs_in_the_same_order(tiny_models, spm_model_path, corpus_sentences):
    texts = corpus_sentences[:40] + [t.decode("utf-8", "replace") for t in BAD_TEXTS]
    predictor = Predictor(tiny_models["token_classifier"], spm_model_path, precision="float32")
    plain = predictor.predict(texts, batch_size=8, bucketing=False)
    bucketed = predictor.predict(texts, batch_size=8, bucketing=True)
    np.testing.assert_array_equal(plain["tag_ids"][:, :5], bucketed["tag_ids"][:, :5])
    np.testing.assert_allclose(plain["tag_probabilities"][:, :5], bucketed["tag_probabilities"][:, :5], atol=1e-5)
    single = predictor.predict(texts[3:4], batch_size=1)
    np.testing.assert_allclose(single["tag_probabilities"][0, :5], plain["tag_probabilities"][3, :5], atol=1e-5)


def test_bfloat16_cost_is_measured_and_small(tiny_models, spm_model_path, corpus_sentences):
    cost = precision_cost(tiny_models["classifier"], spm_model_path, corpus_sentences[:32])
    assert 0 < cost["max_diff"] < 0.05


def test_predictor_from_a_directory_tokenizes_as_it_records(tiny_models, spm_model_path, corpus_sentences, tmp_path):
    from albert_keras.errors import AlbertInputError
    from albert_keras.modeling.pretrained import save_pretrained

    directory = save_pretrained(tiny_models["classifier"], str(tmp_path / "cased"), spm_model=spm_model_path,
                                tokenizer_settings={"lowercase": False, "sequence_length": 16})
    predictor = Predictor.from_pretrained(directory, precision="float32")
    assert predictor.packer.lowercase is False and predictor.packer.sequence_length == 16
    texts = [s.upper() for s in corpus_sentences[:6]]
    want = Predictor(tiny_models["classifier"], spm_model_path, 16, precision="float32", lowercase=False)
    got = predictor.predict(texts)["probabilities"]
    np.testing.assert_allclose(got, want.predict(texts)["probabilities"], atol=1e-6)
    lowered = Predictor(tiny_models["classifier"], spm_model_path, 16, precision="float32", lowercase=True)
    import tensorflow as tf

    cased_ids = predictor.packer(tf.constant(texts))["token_ids"].numpy()
    assert cased_ids.tolist() != lowered.packer(tf.constant(texts))["token_ids"].numpy().tolist()
    bare = save_pretrained(tiny_models["classifier"], str(tmp_path / "bare"))
    with pytest.raises(AlbertInputError, match="no vocabulary"):
        Predictor.from_pretrained(bare)
