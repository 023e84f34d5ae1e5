"""End to end on TensorFlow's `ram://` filesystem (what `gs://` users get): create-data -> pretrain ->
resume -> export, with every input and output a `ram://` URL and nothing written locally."""

import json
import os
import uuid

import numpy as np
import pytest

from albert_keras import io_utils
from tests.training.conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def root():
    path = f"ram://albert-e2e-{uuid.uuid4().hex[:8]}"
    yield path
    io_utils.rmtree(path)


def _weights(directory):
    from albert_keras.modeling.pretrained import load_pretrained

    with io_utils.local_copy(directory) as local:
        return [np.asarray(w) for w in load_pretrained(local).get_weights()]


def test_create_data_pretrain_resume_export_on_ram(root, embedded_corpus_path, spm_model_path, tmp_path):
    import tensorflow as tf

    from albert_keras.data.create import create_pretraining_data
    from albert_keras.export.exporter import export_model
    from albert_keras.training.pretrain import pretrain

    text = open(embedded_corpus_path, encoding="utf-8").read()[:60000]
    with io_utils.atomic_write(f"{root}/corpus.txt", "w") as f:
        f.write(text)
    io_utils.copy(os.fspath(spm_model_path), f"{root}/spiece.model")
    with io_utils.atomic_write(f"{root}/albert_config.json", "w") as f:
        json.dump(TINY_CONFIG, f)
    local_files_before = set(os.listdir(tmp_path))

    manifest = create_pretraining_data([f"{root}/corpus.txt"], f"{root}/spiece.model", f"{root}/records",
                                       max_seq_length=32, max_predictions_per_seq=5, num_shards=2)
    assert io_utils.listdir(f"{root}/records") and manifest["statistics"]["instances"] > 16
    assert sorted(io_utils.listdir(f"{root}/records")) == ["manifest.json", "part-00000-of-00002.tfrecord",
                                                            "part-00001-of-00002.tfrecord"]
    # A rerun with the same inputs sees the finished output and does nothing.
    assert create_pretraining_data([f"{root}/corpus.txt"], f"{root}/spiece.model", f"{root}/records",
                                   max_seq_length=32, max_predictions_per_seq=5, num_shards=2) == manifest

    run = dict(config=f"{root}/albert_config.json", train_files=f"{root}/records", settings=f"{root}/run",
               global_batch_size=8, num_train_steps=4, checkpoint_every=2, num_warmup_steps=1, learning_rate=1e-3,
               spm_model=f"{root}/spiece.model", verbose=0, dynamic_masking=True)
    first = pretrain(**run)
    assert first["step"] == 4 and first["resumed_from"] == 0 and first["dynamic_masking"]
    checkpoints = f"{root}/run/checkpoints"
    assert io_utils.listdir(checkpoints) == ["ckpt-000000002", "ckpt-000000004"]
    uninterrupted = _weights(f"{root}/run/pretrained")
    # A crash after the step-2 checkpoint: the rerun resumes there and ends on the same weights.
    io_utils.rmtree(f"{checkpoints}/ckpt-000000004")
    io_utils.rmtree(f"{root}/run/pretrained")
    second = pretrain(**run)
    assert second["resumed_from"] == 2 and second["step"] == 4
    for a, b in zip(uninterrupted, _weights(f"{root}/run/pretrained")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    summary = json.loads(io_utils.read_bytes(f"{root}/run/summary.json"))
    assert summary["resumed_from"] == 2
    assert io_utils.exists(f"{root}/run/pretrained/spiece.model")

    version_dir = export_model(f"{root}/run/pretrained", f"{root}/export", version=1, signature="ids",
                               verbose=False)
    assert version_dir == f"{root}/export/1" and io_utils.exists(f"{version_dir}/saved_model.pb")
    with pytest.raises(FileExistsError):
        export_model(f"{root}/run/pretrained", f"{root}/export", version=1, signature="ids", verbose=False)
    # TensorFlow loads the SavedModel straight from the URL and serves the encoder's outputs.
    loaded = tf.saved_model.load(version_dir)
    function = loaded.signatures["serving_default"]
    ids = np.array([[2, 10, 11, 12, 3, 0]], "int32")
    inputs = {name: tf.constant(ids if "id" in name and "segment" not in name else
                                (ids > 0).astype("int32") if "mask" in name else np.zeros_like(ids))
              for name in function.structured_input_signature[1]}
    outputs = function(**inputs)
    assert all(np.isfinite(value.numpy()).all() for value in outputs.values())
    assert set(os.listdir(tmp_path)) == local_files_before  # nothing landed on the local disk
