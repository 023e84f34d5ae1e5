"""Model Garden checkpoints; runs only with the optional `official` extra (tf-models-official)."""

import glob
import json
import os

import numpy as np
import pytest

from albert_keras.convert import common
from albert_keras.convert import official
from albert_keras.convert.model_garden import from_model_garden
from albert_keras.errors import AlbertInputError
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config

networks = pytest.importorskip("official.nlp.modeling.networks", reason="needs the `official` extra")

LENGTH = 10


def _inputs():
    ids = np.array([[2, 7, 9, 3, 11, 12, 3, 0, 0, 0], [2, 5, 6, 8, 3, 13, 14, 15, 16, 3]], "int32")
    segments = np.array([[0, 0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]], "int32")
    mask = (ids > 0).astype("int32")
    return ids, segments, mask


def _config(**overrides):
    return tiny_config(num_hidden_layers=3, num_hidden_groups=1, inner_group_num=1, **overrides)


def _mg_encoder(config):
    from official.modeling import activations

    return networks.AlbertEncoder(
        vocab_size=config.vocab_size, embedding_width=config.embedding_size, hidden_size=config.hidden_size,
        num_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
        intermediate_size=config.intermediate_size, activation=activations.gelu, dropout_rate=0.0,
        attention_dropout_rate=0.0, dict_outputs=True,
    )


def _mg_outputs(mg_encoder):
    ids, segments, mask = _inputs()
    return mg_encoder([ids, mask, segments])  # Model Garden's input order.


def _compare(ours, mg_outputs):
    ids, segments, mask = _inputs()
    got = ours({"token_ids": ids, "segment_ids": segments, "padding_mask": mask})
    real = mask.astype(bool)
    np.testing.assert_allclose(np.asarray(got["sequence_output"])[real],
                               np.asarray(mg_outputs["sequence_output"])[real], atol=1e-5)
    np.testing.assert_allclose(np.asarray(got["pooled_output"]), np.asarray(mg_outputs["pooled_output"]), atol=1e-5)


def test_model_garden_encoder_checkpoint(tmp_path):
    import tensorflow as tf

    from albert_keras.modeling.pretrained import load_pretrained

    config = _config()
    encoder = _mg_encoder(config)
    rng = np.random.default_rng(0)
    encoder.set_weights([0.2 * rng.standard_normal(w.shape).astype("float32") for w in encoder.get_weights()])
    tf.train.Checkpoint(encoder=encoder).write(str(tmp_path / "ckpt" / "bert_model.ckpt"))
    config.to_json_file(tmp_path / "ckpt" / "albert_config.json")

    ours = load_pretrained(from_model_garden(tmp_path / "ckpt" / "bert_model.ckpt", tmp_path / "out"))
    assert type(ours).__name__ == "AlbertEncoder"
    _compare(ours, _mg_outputs(encoder))


def test_same_tf1_weights_as_model_garden_converter(tmp_path):
    """Our reading of a TF1 checkpoint and Model Garden's own TF1 -> TF2 converter agree."""
    import tensorflow as tf
    from official.legacy.albert import configs
    from official.nlp.tools import tf2_albert_encoder_checkpoint_converter as converter

    from albert_keras.modeling.pretrained import load_pretrained

    config = _config()
    variables = common.canonical_to_foreign(random_canonical(config, seed=9, parts=("encoder",)), official.RULES, config)
    tf1 = tmp_path / "tf1"
    tf1.mkdir()
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=str(tf1 / "model.ckpt-best"), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    config.to_json_file(tf1 / "albert_config.json")
    os.makedirs(tmp_path / "tf2" / "temp_v1")  # The converter writes its scratch copy there.
    converter.convert_checkpoint(configs.AlbertConfig.from_json_file(str(tf1 / "albert_config.json")),
                                 str(tmp_path / "tf2" / "bert_model.ckpt"), str(tf1 / "model.ckpt-best"), "encoder")

    (written,) = glob.glob(str(tmp_path / "tf2" / "bert_model.ckpt*.index"))  # save() adds a "-N" suffix.
    mg = _mg_encoder(config)
    tf.train.Checkpoint(encoder=mg).read(written[: -len(".index")]).assert_existing_objects_matched()
    _compare(load_pretrained(official.from_official(tf1, tmp_path / "ours")), _mg_outputs(mg))
    with open(tf1 / "albert_config.json") as f:
        assert json.load(f)["num_hidden_groups"] == 1


def test_multi_group_config_is_refused(tmp_path):
    os.makedirs(tmp_path / "ckpt")
    _config().to_json_file(tmp_path / "ckpt" / "albert_config.json")
    with pytest.raises(AlbertInputError, match="one shared block"):
        from_model_garden(tmp_path / "ckpt", tmp_path / "out", config=tiny_config())


def test_model_garden_pretrainer_checkpoint_keeps_the_mlm_head(tmp_path):
    import tensorflow as tf
    from official.modeling import activations
    from official.nlp.modeling import models

    from albert_keras.modeling.pretrained import load_pretrained

    config = _config()
    pretrainer = models.BertPretrainerV2(encoder_network=_mg_encoder(config), mlm_activation=activations.gelu)
    ids, segments, mask = _inputs()
    positions = np.array([[1, 2, 4], [3, 5, 9]], "int32")
    inputs = dict(input_word_ids=ids, input_mask=mask, input_type_ids=segments, masked_lm_positions=positions)
    pretrainer(inputs)
    rng = np.random.default_rng(1)
    pretrainer.set_weights([0.2 * rng.standard_normal(w.shape).astype("float32") for w in pretrainer.get_weights()])
    # As the Model Garden converter's `--converted_model=pretrainer` writes it.
    tf.train.Checkpoint(encoder=pretrainer).write(str(tmp_path / "ckpt" / "model.ckpt"))
    config.to_json_file(tmp_path / "ckpt" / "albert_config.json")

    ours = load_pretrained(from_model_garden(tmp_path / "ckpt", tmp_path / "out"))
    assert type(ours).__name__ == "AlbertPretrainer"
    got = ours({"input_ids": ids, "input_mask": mask, "segment_ids": segments, "masked_lm_positions": positions})
    np.testing.assert_allclose(np.asarray(got["mlm_logits"]), np.asarray(pretrainer(inputs)["mlm_logits"]), atol=1e-5)
