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
        ["albert_config.json", "encoder.weights.h5", "model.json", "model.weights.h5", "spiece.model", "tokenizer.json"]
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
    # The tokenizer travels: from_pretrained then save_pretrained keeps spiece.model.
    with open(spm_model_path, "rb") as a, open(os.path.join(classifier_dir, "spiece.model"), "rb") as b:
        assert a.read() == b.read()
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


def test_settings_travel_through_from_pretrained_and_save_pretrained(tmp_path, spm_model_path):
    """spiece.model and tokenizer.json survive every load/save, for every kind of model."""
    keras.utils.set_random_seed(3)
    settings = {"lowercase": False, "sequence_length": 24}
    source = albert_keras.save_pretrained(
        AlbertPretrainer(AlbertEncoder(tiny_config())), tmp_path / "source", spm_model=spm_model_path,
        tokenizer_settings=settings,
    )
    spm_bytes = open(spm_model_path, "rb").read()
    loaders = {
        "encoder": lambda d: AlbertEncoder.from_pretrained(d),
        "pretrainer": lambda d: albert_keras.load_pretrained(d),
        "tagger": lambda d: AlbertTokenClassifier.from_pretrained(d, num_classes=2),
        "classifier": lambda d: AlbertClassifier.from_pretrained(d, labels=["no", "yes"]),
    }
    for name, load in loaders.items():
        out = load(source).save_pretrained(tmp_path / name)
        assert open(os.path.join(out, "spiece.model"), "rb").read() == spm_bytes, name
        assert albert_keras.modeling.pretrained.read_tokenizer_settings(out) == {**settings, "kind": "sentencepiece"}, name
        # ... and again from the copy, which must be just as complete.
        again = load(out).save_pretrained(tmp_path / (name + "_again"))
        assert albert_keras.modeling.pretrained.read_tokenizer_settings(again) == {**settings, "kind": "sentencepiece"}, name
    labels = albert_keras.modeling.pretrained.read_model_description(tmp_path / "classifier_again")["arguments"]
    assert labels["labels"] == ["no", "yes"]


def test_weightless_arguments_never_decide_whether_the_head_loads(tmp_path, caplog):
    keras.utils.set_random_seed(4)
    classifier = AlbertClassifier(AlbertEncoder(tiny_config()), num_classes=3, dropout=0.1)
    directory = classifier.save_pretrained(tmp_path / "classifier")
    x = encoder_batch()
    with caplog.at_level("WARNING", logger="albert_keras"):
        same_head = AlbertClassifier.from_pretrained(directory, num_classes=3, dropout=0.0)
    assert not caplog.records
    assert same_head.pretrained_arguments()["dropout"] == 0.0
    np.testing.assert_array_equal(same_head(x), classifier(x))

    # A head that cannot load says so, naming it; the encoder still loads.
    with caplog.at_level("WARNING", logger="albert_keras"):
        other = AlbertClassifier.from_pretrained(directory, num_classes=5)
    message = " ".join(r.getMessage() for r in caplog.records)
    hidden = tiny_config().hidden_size
    assert "AlbertClassifier head does not fit" in message
    assert f"logits/kernel [{hidden}, 3] saved, [{hidden}, 5] wanted" in message
    np.testing.assert_array_equal(other.encoder(x)["pooled_output"], classifier.encoder(x)["pooled_output"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="albert_keras"):
        AlbertTokenClassifier.from_pretrained(directory, num_classes=3)
    assert "holds an AlbertClassifier; its head is not used by AlbertTokenClassifier" in caplog.text


def test_encoder_built_from_a_directory_has_its_weights(tmp_path):
    keras.utils.set_random_seed(5)
    trained = AlbertEncoder(tiny_config())
    directory = trained.save_pretrained(tmp_path / "encoder")
    x = encoder_batch()
    np.testing.assert_array_equal(AlbertEncoder(directory)(x)["pooled_output"], trained(x)["pooled_output"])
    config_only = tmp_path / "config_only"
    config_only.mkdir()
    tiny_config().to_json_file(str(config_only / "albert_config.json"))
    with pytest.raises(AlbertInputError, match="no encoder.weights.h5 to load"):
        AlbertEncoder(str(config_only))
    # A config (or a JSON path) still builds a fresh encoder.
    assert AlbertEncoder(str(config_only / "albert_config.json")).config == tiny_config()


def test_fingerprint_names_every_defining_file(tmp_path, spm_model_path):
    from albert_keras.modeling.pretrained import pretrained_fingerprint

    directory = AlbertClassifier(AlbertEncoder(tiny_config()), num_classes=2).save_pretrained(
        tmp_path / "a", spm_model=spm_model_path
    )
    first = pretrained_fingerprint(directory)
    assert sorted(first["files"]) == sorted(
        ["albert_config.json", "encoder.weights.h5", "model.json", "model.weights.h5", "spiece.model", "tokenizer.json"]
    )
    import shutil

    copy = shutil.copytree(directory, tmp_path / "elsewhere" / "b")
    assert pretrained_fingerprint(copy) == first
    with open(os.path.join(copy, "model.json"), "a") as f:
        f.write(" ")
    assert pretrained_fingerprint(copy)["sha256"] != first["sha256"]
