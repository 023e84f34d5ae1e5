import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import albert_keras
from albert_keras.errors import AlbertInputError
from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.pretrainer import AlbertPretrainer
from albert_keras.modeling.task_models import (
    AlbertClassifier,
    AlbertMultipleChoice,
    AlbertQuestionAnswerer,
    AlbertTokenClassifier,
)
from tests.modeling.conftest import encoder_batch, pretraining_batch, tiny_config


def _models():
    config = tiny_config()
    return {
        "encoder": AlbertEncoder(config),
        "pretrainer": AlbertPretrainer(AlbertEncoder(config)),
        "classifier": AlbertClassifier(AlbertEncoder(config), num_classes=3),
        "tagger": AlbertTokenClassifier(AlbertEncoder(config), num_classes=4),
        "qa": AlbertQuestionAnswerer(AlbertEncoder(config)),
        "choice": AlbertMultipleChoice(AlbertEncoder(config), num_choices=2),
    }


def _inputs(name):
    if name == "pretrainer":
        return pretraining_batch()
    batch = encoder_batch(batch=4, pad_from=7)
    if name == "choice":
        return {k: v.reshape(2, 2, -1) for k, v in batch.items()}
    return batch


def _flat(outputs):
    return [np.asarray(t) for t in keras.tree.flatten(outputs)]


def test_every_model_round_trips_through_a_keras_file_in_a_fresh_process(tmp_path):
    models = _models()
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}_inputs.npz", **_inputs(name))
        np.savez(tmp_path / f"{name}_expected.npz", *_flat(model(_inputs(name))))
    script = textwrap.dedent(
        f"""
        import sys, keras, numpy as np
        import albert_keras.modeling.task_models, albert_keras.modeling.pretrainer
        for name in {sorted(models)!r}:
            model = keras.saving.load_model(r"{tmp_path}/" + name + ".keras")
            inputs = dict(np.load(r"{tmp_path}/" + name + "_inputs.npz"))
            expected = np.load(r"{tmp_path}/" + name + "_expected.npz")
            got = [np.asarray(t) for t in keras.tree.flatten(model(inputs))]
            assert len(got) == len(expected.files), name
            for i, array in enumerate(got):
                np.testing.assert_allclose(array, expected["arr_%d" % i], atol=1e-6, err_msg=name)
            print("ok", name, type(model).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == len(models)


def test_pretrained_directory_round_trip_and_cross_class_loading(tmp_path, spm_model_path):
    keras.utils.set_random_seed(2)
    pretrainer = AlbertPretrainer(AlbertEncoder(tiny_config()))
    directory = pretrainer.save_pretrained(tmp_path / "pretrained", spm_model=spm_model_path)
    assert sorted(os.listdir(directory)) == sorted(
        ["albert_config.json", "encoder.weights.h5", "model.json", "model.weights.h5", "spiece.model"]
    )
    assert json.load(open(os.path.join(directory, "model.json")))["class"] == "AlbertPretrainer"

    reloaded = albert_keras.load_pretrained(directory)
    assert type(reloaded) is AlbertPretrainer
    batch = pretraining_batch()
    for a, b in zip(_flat(reloaded(batch)), _flat(pretrainer(batch))):
        np.testing.assert_array_equal(a, b)

    # A classifier starts from the pretrainer's encoder with a fresh head.
    classifier = AlbertClassifier.from_pretrained(directory, num_classes=2)
    x = encoder_batch()
    np.testing.assert_array_equal(classifier.encoder(x)["pooled_output"], pretrainer.encoder(x)["pooled_output"])
    classifier_dir = classifier.save_pretrained(tmp_path / "classifier")
    assert os.path.exists(os.path.join(classifier_dir, "spiece.model")) is False
    same = AlbertClassifier.from_pretrained(classifier_dir)
    np.testing.assert_array_equal(same(x), classifier(x))
    other_head = AlbertClassifier.from_pretrained(classifier_dir, num_classes=5)
    assert other_head(x).shape == (3, 5)

    encoder = AlbertEncoder.from_pretrained(classifier_dir, dtype="mixed_bfloat16")
    assert encoder.dtype_policy.name == "mixed_bfloat16"
    fresh_pretrainer = AlbertPretrainer.from_pretrained(classifier_dir)
    np.testing.assert_array_equal(fresh_pretrainer.encoder(x)["pooled_output"], classifier.encoder(x)["pooled_output"])


def test_bad_pretrained_directories_are_clear_errors(tmp_path):
    with pytest.raises(AlbertInputError, match="pretrained directory not found"):
        albert_keras.load_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlbertInputError, match="missing albert_config.json"):
        albert_keras.load_pretrained(tmp_path / "empty")
    directory = AlbertEncoder(tiny_config()).save_pretrained(tmp_path / "small")
    tiny_config(hidden_size=32).to_json_file(os.path.join(directory, "albert_config.json"))
    with pytest.raises(AlbertInputError, match="weights do not fit the model"):
        albert_keras.load_pretrained(directory)
