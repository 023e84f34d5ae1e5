import json
import os

import numpy as np
import pytest

from albert_keras.convert import common
from albert_keras.convert.keras_hub_preset import from_keras_hub
from albert_keras.convert.keras_hub_preset import to_keras_hub
from albert_keras.errors import AlbertInputError
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config

X = {
    "token_ids": np.array([[2, 7, 9, 3, 11, 3, 0, 0]], "int32"),
    "segment_ids": np.array([[0, 0, 0, 0, 1, 1, 0, 0]], "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 1, 0, 0]], "int32"),
}


def _load(directory):
    from albert_keras.modeling.pretrained import load_pretrained

    return load_pretrained(directory)


def _backbone(seed=0):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=100, num_layers=4, num_heads=2, embedding_dim=16, hidden_dim=32, intermediate_dim=37,
        num_groups=2, num_inner_repetitions=2, max_sequence_length=64,
    )
    # Random LayerNorm and bias values too, so that a swapped tensor cannot go unnoticed.
    for variable in backbone.weights:
        variable.assign(np.random.default_rng(seed).standard_normal(variable.shape).astype("float32") * 0.2)
    return backbone


def test_backbone_preset_with_tokenizer(tmp_path, spm_model_100):
    import keras_hub

    backbone = _backbone()
    backbone.save_to_preset(tmp_path / "preset")
    keras_hub.models.AlbertTokenizer(proto=str(spm_model_100)).save_to_preset(tmp_path / "preset")

    encoder = _load(from_keras_hub(tmp_path / "preset", tmp_path / "ours"))
    assert type(encoder).__name__ == "AlbertEncoder"
    assert encoder.config.num_hidden_groups == 2 and encoder.config.inner_group_num == 2
    ours, theirs = encoder(X), backbone(X)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(np.asarray(ours[key])[:, :6], np.asarray(theirs[key])[:, :6], atol=1e-5)
    with open(spm_model_100, "rb") as a, open(tmp_path / "ours" / "spiece.model", "rb") as b:
        assert a.read() == b.read()
    # keras-hub's tokenizer does not lowercase, so the converted directory records it cased.
    from albert_keras.modeling.pretrained import read_tokenizer_settings

    assert read_tokenizer_settings(tmp_path / "ours")["lowercase"] is False


def test_ours_to_keras_hub_masked_lm_preset_and_back(tmp_path, spm_model_100, caplog):
    import keras_hub

    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    config = tiny_config()
    model = AlbertPretrainer(AlbertEncoder(config))
    weights = random_canonical(config, seed=2)
    common.assign_weights(model, weights, "test")
    save_pretrained(model, tmp_path / "ours", spm_model=spm_model_100)

    with caplog.at_level("WARNING", logger="albert_keras"):
        backbone = to_keras_hub(tmp_path / "ours", tmp_path / "preset")
    assert "keras-hub's AlbertTokenizer does not lowercase" in caplog.text  # no silent loss of casing
    np.testing.assert_allclose(np.asarray(backbone(X)["pooled_output"]),
                               np.asarray(model.encoder(X)["pooled_output"]), atol=1e-5)
    masked_lm = keras_hub.models.MaskedLM.from_preset(str(tmp_path / "preset"))
    assert type(masked_lm).__name__ == "AlbertMaskedLM"
    np.testing.assert_array_equal(masked_lm.masked_lm_head.weights[0].numpy(), weights["mlm/output_bias"])

    back = _load(from_keras_hub(tmp_path / "preset", tmp_path / "back"))
    assert type(back).__name__ == "AlbertPretrainer"
    got = common.read_model_weights(back)
    for name in weights:
        if not name.startswith("sop/"):  # keras-hub has no SOP head.
            np.testing.assert_array_equal(got[name], weights[name], err_msg=name)
    assert os.path.isfile(tmp_path / "back" / "spiece.model")


def test_not_an_albert_preset(tmp_path):
    (tmp_path / "preset").mkdir()
    with open(tmp_path / "preset" / "config.json", "w") as f:
        json.dump({"class_name": "BertBackbone", "config": {}}, f)
    with pytest.raises(AlbertInputError, match="not 'AlbertBackbone'"):
        from_keras_hub(tmp_path / "preset", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_preset_whose_weights_disagree_with_its_config(tmp_path):
    _backbone().save_to_preset(tmp_path / "preset")
    with open(tmp_path / "preset" / "config.json") as f:
        described = json.load(f)
    described["config"]["intermediate_dim"] = 40
    with open(tmp_path / "preset" / "config.json", "w") as f:
        json.dump(described, f)
    with pytest.raises(AlbertInputError, match="preset"):
        from_keras_hub(tmp_path / "preset", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_keras_hub_cannot_express_exact_gelu(tmp_path):
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained

    save_pretrained(AlbertEncoder(tiny_config(hidden_act="gelu_exact")), tmp_path / "ours")
    with pytest.raises(AlbertInputError, match="tanh GELU"):
        to_keras_hub(tmp_path / "ours")


def test_text_classifier_preset(tmp_path):
    import keras_hub

    classifier = keras_hub.models.AlbertTextClassifier(_backbone(seed=4), num_classes=3, preprocessor=None, dropout=0.2)
    classifier.save_to_preset(tmp_path / "preset")
    model = _load(from_keras_hub(tmp_path / "preset", tmp_path / "ours"))
    assert type(model).__name__ == "AlbertClassifier"
    assert model.pretrained_arguments() == {"num_classes": 3, "dropout": 0.2}
    np.testing.assert_allclose(np.asarray(model(X)), np.asarray(classifier(X)), atol=1e-5)
