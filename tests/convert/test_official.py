import json
import os
import shutil
import tarfile

import numpy as np
import pytest

from albert_keras.convert import common
from albert_keras.convert import official
from albert_keras.convert.official import from_official
from albert_keras.errors import AlbertInputError
from tests.conftest import SPM_VOCAB_SIZE
from tests.convert.conftest import OFFICIAL_FIXTURE
from tests.convert.conftest import assert_matches_expected
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config


def _load(directory):
    from albert_keras.modeling.pretrained import load_pretrained

    return load_pretrained(directory)


def _write_checkpoint(prefix, variables):
    """A name-based checkpoint with exactly these variables (what the TF1 Saver writes)."""
    import tensorflow as tf

    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )


@pytest.fixture(scope="module")
def converted_fixture(tmp_path_factory):
    return from_official(OFFICIAL_FIXTURE, tmp_path_factory.mktemp("official") / "converted")


def test_matches_hugging_face_loading_the_same_checkpoint(converted_fixture):
    # expected.npz holds what transformers computes after `load_tf_weights_in_albert` on this
    # checkpoint (3 groups x 2 inner groups, both heads, optimizer slots, global_step).
    model = _load(converted_fixture)
    assert type(model).__name__ == "AlbertPretrainer"
    assert model.encoder.config.num_hidden_groups == 3
    assert_matches_expected(model, os.path.join(OFFICIAL_FIXTURE, "expected.npz"))


def test_released_archive_layout(tmp_path, spm_model_100, converted_fixture):
    release = tmp_path / "albert_tiny"
    shutil.copytree(OFFICIAL_FIXTURE, release)
    os.remove(release / "expected.npz")
    shutil.copyfile(spm_model_100, release / "30k-clean.model")
    archive = tmp_path / "albert_tiny_v2.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(release, arcname="albert_tiny")
    out = from_official(archive, tmp_path / "out")
    with open(spm_model_100, "rb") as a, open(os.path.join(out, "spiece.model"), "rb") as b:
        assert a.read() == b.read()
    got = common.read_model_weights(_load(out))
    want = common.read_model_weights(_load(converted_fixture))
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_archive_with_an_escaping_member_writes_nothing(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(os.path.join(OFFICIAL_FIXTURE, "albert_config.json"), arcname="../albert_config.json")
    with pytest.raises(AlbertInputError, match="unsafe archive"):
        from_official(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_checkpoint_is_one_clear_error(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(OFFICIAL_FIXTURE, broken)
    data = broken / "model.ckpt-best.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(AlbertInputError, match="truncated or corrupt|unreadable checkpoint") as error:
        from_official(broken, tmp_path / "out")
    assert "model.ckpt-best" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_config_that_disagrees_with_the_weights(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(OFFICIAL_FIXTURE, broken)
    with open(broken / "albert_config.json") as f:
        values = json.load(f)
    values.update(intermediate_size=64, num_hidden_groups=2)
    with open(broken / "albert_config.json", "w") as f:
        json.dump(values, f)
    with pytest.raises(AlbertInputError) as error:
        from_official(broken, tmp_path / "out")
    message = str(error.value)
    assert "ffn_1/intermediate/dense/kernel [32, 37] (config wants [32, 64])" in message
    assert "unexpected: " in message and "group_2/inner_group_0" in message
    assert not (tmp_path / "out").exists()


def test_missing_and_unexpected_variables_are_all_listed(tmp_path):
    config = tiny_config()
    variables = common.canonical_to_foreign(random_canonical(config), official.RULES, config)
    del variables["cls/predictions/transform/LayerNorm/beta"]
    del variables["bert/embeddings/token_type_embeddings"]
    variables["bert/encoder/transformer/group_0/inner_group_0/attention_2/self/query/kernel"] = np.zeros((2, 2), np.float32)
    variables["global_step"] = np.zeros((), np.int64)
    variables["bert/pooler/dense/kernel/lamb_m"] = np.zeros((32, 32), np.float32)
    _write_checkpoint(tmp_path / "model.ckpt-7", variables)
    config.to_json_file(tmp_path / "albert_config.json")
    with pytest.raises(AlbertInputError) as error:
        from_official(tmp_path, tmp_path / "out")
    message = str(error.value)
    assert "2 missing: " in message and "bert/embeddings/token_type_embeddings" in message
    assert "cls/predictions/transform/LayerNorm/beta" in message
    assert "1 unexpected: " in message and "attention_2/self/query/kernel" in message
    assert not (tmp_path / "out").exists()


def test_no_projection_when_embedding_equals_hidden_size(tmp_path):
    # The official code creates `embedding_hidden_mapping_in` only when E != H.
    config = tiny_config(embedding_size=32, num_hidden_groups=1, inner_group_num=1)
    canonical = random_canonical(config, parts=("encoder",))
    variables = common.canonical_to_foreign(canonical, official.RULES, config)
    del variables["bert/encoder/embedding_hidden_mapping_in/kernel"]
    del variables["bert/encoder/embedding_hidden_mapping_in/bias"]
    _write_checkpoint(tmp_path / "model.ckpt-1", variables)
    config.to_json_file(tmp_path / "albert_config.json")
    model = _load(from_official(tmp_path, tmp_path / "out"))
    assert type(model).__name__ == "AlbertEncoder"
    got = common.read_model_weights(model)
    np.testing.assert_array_equal(got["embedding_projection/kernel"], np.eye(32, dtype=np.float32))
    np.testing.assert_array_equal(got["pooled_dense/kernel"], canonical["pooled_dense/kernel"])


def test_fine_tuned_classifier_checkpoint(tmp_path):
    # run_classifier.py stores its head at top level as output_weights [num_labels, H].
    config = tiny_config(num_hidden_groups=1, inner_group_num=1)
    variables = common.canonical_to_foreign(random_canonical(config, parts=("encoder",)), official.RULES, config)
    rng = np.random.default_rng(3)
    variables["output_weights"] = rng.standard_normal((3, 32)).astype(np.float32)
    variables["output_bias"] = rng.standard_normal(3).astype(np.float32)
    _write_checkpoint(tmp_path / "model.ckpt-100", variables)
    config.to_json_file(tmp_path / "albert_config.json")
    model = _load(from_official(tmp_path, tmp_path / "out"))
    assert type(model).__name__ == "AlbertClassifier" and model.num_classes == 3
    x = {"token_ids": np.array([[2, 7, 9, 3]], "int32"), "segment_ids": np.zeros((1, 4), "int32"),
         "padding_mask": np.ones((1, 4), "int32")}
    pooled = np.asarray(model.encoder(x)["pooled_output"])
    np.testing.assert_allclose(np.asarray(model(x)), pooled @ variables["output_weights"].T + variables["output_bias"],
                               atol=1e-5)


def test_existing_output_is_refused_before_any_work(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(AlbertInputError, match="not empty"):
        from_official(OFFICIAL_FIXTURE, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["keep.txt"]


def test_tf_hub_module_layout(tmp_path, spm_model_path):
    # TF-Hub ALBERT modules keep `module/`-prefixed variables in variables/ and the SentencePiece
    # model in assets/; they have no albert_config.json, so the config is passed.
    config = tiny_config(num_hidden_groups=1, inner_group_num=1, vocab_size=SPM_VOCAB_SIZE)
    canonical = random_canonical(config, parts=("encoder",))
    variables = common.canonical_to_foreign(canonical, official.RULES, config)
    (tmp_path / "hub" / "variables").mkdir(parents=True)
    (tmp_path / "hub" / "assets").mkdir()
    _write_checkpoint(tmp_path / "hub" / "variables" / "variables", {"module/" + k: v for k, v in variables.items()})
    shutil.copyfile(spm_model_path, tmp_path / "hub" / "assets" / "30k-clean.model")
    config.to_json_file(tmp_path / "albert_config.json")
    out = from_official(tmp_path / "hub", tmp_path / "out", config=tmp_path / "albert_config.json")
    got = common.read_model_weights(_load(out))
    assert all(np.array_equal(got[k], canonical[k]) for k in canonical)
    assert os.path.isfile(os.path.join(out, "spiece.model"))


def test_casing_comes_from_do_lower_case_or_the_flag(converted_fixture, tmp_path, caplog):
    from albert_keras.modeling.pretrained import read_tokenizer_settings

    # The released checkpoints are uncased; nothing says otherwise here.
    assert read_tokenizer_settings(converted_fixture)["lowercase"] is True
    source = tmp_path / "cased"
    shutil.copytree(OFFICIAL_FIXTURE, source)
    values = json.load(open(source / "albert_config.json"))
    json.dump({**values, "do_lower_case": False}, open(source / "albert_config.json", "w"))
    out = from_official(source, tmp_path / "out")
    assert read_tokenizer_settings(out)["lowercase"] is False
    assert _load(out).encoder.config == _load(converted_fixture).encoder.config  # not a model key
    with caplog.at_level("WARNING", logger="albert_keras"):
        flagged = from_official(source, tmp_path / "flagged", lowercase=True)
    assert read_tokenizer_settings(flagged)["lowercase"] is True
    assert "do_lower_case is False; recording lowercase=True as asked" in caplog.text
