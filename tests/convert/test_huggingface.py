import json
import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from albert_keras.convert import common
from albert_keras.convert import huggingface
from albert_keras.convert.huggingface import from_huggingface
from albert_keras.convert.huggingface import to_huggingface
from albert_keras.errors import AlbertInputError
from tests.conftest import SPM_VOCAB_SIZE
from tests.convert.conftest import HF_FIXTURE
from tests.convert.conftest import assert_matches_expected
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config


def _load(directory):
    from albert_keras.modeling.pretrained import load_pretrained

    return load_pretrained(directory)


def _hf_dir(path, config_values, tensors):
    path.mkdir()
    with open(path / "config.json", "w") as f:
        json.dump(config_values, f)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    return path


@pytest.fixture(scope="module")
def converted_fixture(tmp_path_factory):
    return from_huggingface(HF_FIXTURE, tmp_path_factory.mktemp("hf") / "converted")


def test_matches_hugging_face_outputs(converted_fixture):
    # A random AlbertForPreTraining (2 groups x 2 inner groups, gelu_new) and what it computed.
    model = _load(converted_fixture)
    assert type(model).__name__ == "AlbertPretrainer"
    assert model.encoder.config.hidden_act == "gelu"  # HF "gelu_new" is tanh GELU: our "gelu".
    assert_matches_expected(model, os.path.join(HF_FIXTURE, "expected.npz"))


def test_round_trip_ours_to_hf_to_ours_is_exact(tmp_path, spm_model_path):
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    config = tiny_config(hidden_act="gelu_exact", vocab_size=SPM_VOCAB_SIZE)
    model = AlbertPretrainer(AlbertEncoder(config))
    common.assign_weights(model, random_canonical(config, seed=5), "test")
    save_pretrained(model, tmp_path / "ours", spm_model=spm_model_path)

    to_huggingface(tmp_path / "ours", tmp_path / "hf")
    assert sorted(os.listdir(tmp_path / "hf")) == [
        "config.json", "model.safetensors", "spiece.model", "tokenizer_config.json"
    ]
    with open(tmp_path / "hf" / "tokenizer_config.json") as f:
        assert json.load(f)["do_lower_case"] is True
    with open(tmp_path / "hf" / "config.json") as f:
        hf_config = json.load(f)
    assert hf_config["hidden_act"] == "gelu" and hf_config["architectures"] == ["AlbertForPreTraining"]
    from_huggingface(tmp_path / "hf", tmp_path / "back")

    before = common.read_model_weights(model)
    after = common.read_model_weights(_load(tmp_path / "back"))
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype
        assert before[name].tobytes() == after[name].tobytes(), name
    assert _load(tmp_path / "back").encoder.config == config
    with open(spm_model_path, "rb") as a, open(tmp_path / "back" / "spiece.model", "rb") as b:
        assert a.read() == b.read()


def test_round_trip_hf_to_ours_to_hf_gives_the_same_tensors(converted_fixture, tmp_path):
    to_huggingface(converted_fixture, tmp_path / "hf")
    original = load_file(os.path.join(HF_FIXTURE, "model.safetensors"))
    written = load_file(tmp_path / "hf" / "model.safetensors")
    assert sorted(original) == sorted(written)
    for name in original:
        np.testing.assert_array_equal(written[name], original[name], err_msg=name)


def test_bare_albert_model_and_masked_lm_prefixes(tmp_path):
    state = load_file(os.path.join(HF_FIXTURE, "model.safetensors"))
    with open(os.path.join(HF_FIXTURE, "config.json")) as f:
        config_values = json.load(f)
    want = common.read_model_weights(_load(from_huggingface(HF_FIXTURE, tmp_path / "full")))

    # AlbertModel: no "albert." prefix, no heads.
    bare = {k[len("albert."):]: v for k, v in state.items() if k.startswith("albert.")}
    model = _load(from_huggingface(_hf_dir(tmp_path / "bare", dict(config_values, architectures=["AlbertModel"]), bare),
                                   tmp_path / "bare_out"))
    assert type(model).__name__ == "AlbertEncoder"
    got = common.read_model_weights(model)
    assert all(np.array_equal(got[k], want[k]) for k in got)

    # AlbertForMaskedLM: no pooler, no SOP head, the tied decoder tensors written out.
    masked = {k: v for k, v in state.items() if not k.startswith(("albert.pooler", "sop_classifier"))}
    masked["predictions.decoder.weight"] = state["albert.embeddings.word_embeddings.weight"]
    masked["predictions.decoder.bias"] = state["predictions.bias"]
    model = _load(from_huggingface(_hf_dir(tmp_path / "mlm", dict(config_values, architectures=["AlbertForMaskedLM"]),
                                           masked), tmp_path / "mlm_out"))
    assert type(model).__name__ == "AlbertPretrainer"
    got = common.read_model_weights(model)
    assert all(np.array_equal(got[k], want[k]) for k in want if not k.startswith(("sop/", "pooled_dense/")))


def test_sequence_classification_head(tmp_path):
    state = load_file(os.path.join(HF_FIXTURE, "model.safetensors"))
    with open(os.path.join(HF_FIXTURE, "config.json")) as f:
        config_values = json.load(f)
    encoder_state = {k: v for k, v in state.items() if k.startswith("albert.")}
    rng = np.random.default_rng(1)
    encoder_state["classifier.weight"] = rng.standard_normal((3, 32)).astype(np.float32)
    encoder_state["classifier.bias"] = rng.standard_normal(3).astype(np.float32)
    source = _hf_dir(tmp_path / "cls", dict(config_values, architectures=["AlbertForSequenceClassification"],
                                            classifier_dropout_prob=0.2), encoder_state)
    model = _load(from_huggingface(source, tmp_path / "ours"))
    assert type(model).__name__ == "AlbertClassifier"
    assert model.pretrained_arguments() == {"num_classes": 3, "dropout": 0.2}
    x = {"token_ids": np.array([[2, 7, 9, 3]], "int32"), "segment_ids": np.zeros((1, 4), "int32"),
         "padding_mask": np.ones((1, 4), "int32")}
    pooled = np.asarray(model.encoder(x)["pooled_output"])
    np.testing.assert_allclose(np.asarray(model(x)), pooled @ encoder_state["classifier.weight"].T
                               + encoder_state["classifier.bias"], atol=1e-5)
    to_huggingface(tmp_path / "ours", tmp_path / "back")
    back = load_file(tmp_path / "back" / "model.safetensors")
    assert sorted(back) == sorted(encoder_state)
    assert all(np.array_equal(back[k], encoder_state[k]) for k in back)


@pytest.mark.parametrize("hf, ours", [("gelu", "gelu_exact"), ("gelu_new", "gelu"), ("relu", "relu")])
def test_activation_names(hf, ours):
    values = {**huggingface.HF_DEFAULTS, "hidden_act": hf, "hidden_size": 64, "num_attention_heads": 4}
    config = huggingface.config_from_hf(values)
    assert config.hidden_act == ours
    assert huggingface.config_to_hf(config)["hidden_act"] == hf


@pytest.mark.parametrize(
    "change, match",
    [({"layer_norm_eps": 1e-5}, "layer_norm_eps"), ({"model_type": "bert"}, "model_type"),
     ({"hidden_act": "swish"}, "hidden_act"), ({"position_embedding_type": "relative_key"}, "position_embedding_type")],
)
def test_unsupported_configs(change, match):
    with pytest.raises(AlbertInputError, match=match):
        huggingface.config_from_hf({**huggingface.HF_DEFAULTS, **change}, "config.json")


def test_config_that_disagrees_with_the_weights_writes_nothing(tmp_path):
    source = tmp_path / "hf"
    shutil.copytree(HF_FIXTURE, source)
    with open(source / "config.json") as f:
        values = json.load(f)
    with open(source / "config.json", "w") as f:
        json.dump(dict(values, embedding_size=24, num_hidden_groups=1), f)
    with pytest.raises(AlbertInputError) as error:
        from_huggingface(source, tmp_path / "out")
    message = str(error.value)
    assert "albert.embeddings.word_embeddings.weight [100, 16] (config wants [100, 24])" in message
    assert "albert_layer_groups.1.albert_layers.0.ffn.weight" in message  # unexpected with 1 group
    assert not (tmp_path / "out").exists()


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path):
    try:
        import torch  # noqa: F401

        pytest.skip("torch is installed")
    except ImportError:
        pass
    source = tmp_path / "pt"
    source.mkdir()
    shutil.copyfile(os.path.join(HF_FIXTURE, "config.json"), source / "config.json")
    (source / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(AlbertInputError, match="needs torch"):
        from_huggingface(source, tmp_path / "out")


def test_transformers_loads_what_we_write(converted_fixture, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    to_huggingface(converted_fixture, tmp_path / "hf")
    model, info = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    expected = np.load(os.path.join(HF_FIXTURE, "expected.npz"))
    model.eval()
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(expected[k].astype("int64"))
                       for k in ("input_ids", "token_type_ids", "attention_mask")})
    np.testing.assert_allclose(out.sop_logits.numpy(), expected["sop_logits"], atol=1e-5)


def test_pytorch_bin_with_torch(converted_fixture, tmp_path):
    torch = pytest.importorskip("torch")
    source = tmp_path / "pt"
    source.mkdir()
    shutil.copyfile(os.path.join(HF_FIXTURE, "config.json"), source / "config.json")
    state = load_file(os.path.join(HF_FIXTURE, "model.safetensors"))
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, source / "pytorch_model.bin")
    got = common.read_model_weights(_load(from_huggingface(source, tmp_path / "out")))
    want = common.read_model_weights(_load(converted_fixture))
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_sharded_safetensors(tmp_path):
    state = load_file(os.path.join(HF_FIXTURE, "model.safetensors"))
    names = sorted(state)
    source = tmp_path / "sharded"
    source.mkdir()
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, source / file, metadata={"format": "pt"})
    with open(source / "model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": {k: file for file, keys in shards.items() for k in keys}}, f)
    got, _ = huggingface.read_state_dict(str(source))
    assert sorted(got) == names and all(np.array_equal(got[k], state[k]) for k in names)


@pytest.mark.parametrize("class_name, hf_class, arguments", [
    ("AlbertQuestionAnswerer", "AlbertForQuestionAnswering", {}),
    ("AlbertTokenClassifier", "AlbertForTokenClassification", {"num_classes": 5, "dropout": 0.1}),
])
def test_task_model_round_trip(tmp_path, class_name, hf_class, arguments):
    from albert_keras.modeling import task_models
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained

    config = tiny_config(num_hidden_groups=1, inner_group_num=1, num_hidden_layers=2)
    model = getattr(task_models, class_name)(AlbertEncoder(config), **arguments)
    units = arguments.get("num_classes", 2)
    common.assign_weights(model, random_canonical(config, seed=7, parts=("encoder", "task"), task_units=units), "test")
    save_pretrained(model, tmp_path / "ours")
    to_huggingface(tmp_path / "ours", tmp_path / "hf")
    with open(tmp_path / "hf" / "config.json") as f:
        assert json.load(f)["architectures"] == [hf_class]
    back = _load(from_huggingface(tmp_path / "hf", tmp_path / "back"))
    assert type(back).__name__ == class_name and back.pretrained_arguments() == arguments
    before, after = common.read_model_weights(model), common.read_model_weights(back)
    assert sorted(before) == sorted(after) and all(np.array_equal(before[k], after[k]) for k in before)


def test_tokenizer_config_casing_and_id2label_labels(tmp_path, caplog):
    from albert_keras.modeling.pretrained import read_model_description
    from albert_keras.modeling.pretrained import read_tokenizer_settings

    source = tmp_path / "hf"
    shutil.copytree(HF_FIXTURE, source)
    assert read_tokenizer_settings(from_huggingface(source, tmp_path / "default"))["lowercase"] is True
    (source / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "keep_accents": True}))
    with caplog.at_level("WARNING", logger="albert_keras"):
        cased = from_huggingface(source, tmp_path / "cased")
    assert read_tokenizer_settings(cased)["lowercase"] is False
    assert "keep_accents is true" in caplog.text
    (source / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": "no"}))
    with pytest.raises(AlbertInputError, match="'do_lower_case' must be true or false"):
        from_huggingface(source, tmp_path / "bad")
    assert not os.path.exists(tmp_path / "bad")

    # Named labels of a classifier come in as the model's labels and go back out as id2label.
    from albert_keras.convert.huggingface import hf_labels

    assert hf_labels({"id2label": {"0": "neg", "1": "pos"}}, 2) == ["neg", "pos"]
    assert hf_labels({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, 2) is None
    assert hf_labels({"id2label": {"0": "neg"}}, 2) is None
