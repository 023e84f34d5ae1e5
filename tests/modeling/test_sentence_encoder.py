"""`AlbertSentenceEncoder`: mean-pooled embeddings, the InfoNCE loss, round trips and export."""

import json

import numpy as np
import pytest

from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder
from tests.modeling.conftest import encoder_batch
from tests.modeling.conftest import tiny_config

SENTENCES = ["The for statement loops.", "A function returns a value.", "Import loads a module."]


def _numpy_mean_l2(sequence, mask):
    mean = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def test_embedding_is_the_masked_mean_and_ignores_padding():
    model = AlbertSentenceEncoder(AlbertEncoder(tiny_config()))
    batch = encoder_batch(pad_from=6)
    outputs = model(batch)
    sequence = np.asarray(model.encoder(batch)["sequence_output"])
    np.testing.assert_allclose(np.asarray(outputs["sentence_embedding"]),
                               _numpy_mean_l2(sequence, batch["padding_mask"]), atol=1e-5)
    trimmed = {k: v[:, :6] for k, v in batch.items()}
    np.testing.assert_allclose(np.asarray(model(trimmed)["sentence_embedding"]),
                               np.asarray(outputs["sentence_embedding"]), atol=1e-5)


def test_loss_is_infonce_over_in_batch_candidates():
    """Anchor b against all B x (G - 1) candidates, its own positive the target (triplets here)."""
    model = AlbertSentenceEncoder(AlbertEncoder(tiny_config()), temperature=0.1)
    flat = encoder_batch(batch=6, seed=3)  # 2 examples x 3 texts, b-major
    grouped = {k: v.reshape(2, 3, -1) for k, v in flat.items()}
    x, targets = model._flatten_groups(grouped)
    np.testing.assert_array_equal(np.asarray(targets), [0, 2])
    y_pred = model(x)
    loss = float(model.compute_loss(x, targets, y_pred))
    z = np.asarray(y_pred["sentence_embedding"]).reshape(2, 3, -1)
    logits = z[:, 0] @ z[:, 1:].reshape(4, -1).T / 0.1
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert loss == pytest.approx(-np.mean(log_softmax[[0, 1], [0, 2]]), rel=1e-5)


def test_fit_learns_to_find_each_sentences_pair():
    import keras

    keras.utils.set_random_seed(0)
    model = AlbertSentenceEncoder(AlbertEncoder(tiny_config(hidden_dropout_prob=0.1)))
    flat = encoder_batch(batch=16, seed=1)
    x = {k: np.repeat(v[:, None], 2, axis=1) for k, v in flat.items()}  # each sentence twice
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, batch_size=8, epochs=4, shuffle=False, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["contrastive_accuracy"][-1] > 0.5
    with pytest.raises(ValueError, match=r"\[batch, texts per example, tokens\]"):
        model._flatten_groups(flat)


def test_round_trip_keeps_class_temperature_weights_and_tokenizer(spm_model_path, tmp_path):
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import save_pretrained

    config = tiny_config(vocab_size=1000, num_hidden_layers=2, num_hidden_groups=1, inner_group_num=1)
    save_pretrained(AlbertEncoder(config), tmp_path / "init", spm_model=str(spm_model_path),
                    tokenizer_settings={"lowercase": True, "sequence_length": 24})
    model = AlbertSentenceEncoder.from_pretrained(tmp_path / "init", temperature=0.1)
    assert model.tokenizer.sequence_length == 24
    model.save_pretrained(tmp_path / "trained")
    again = load_pretrained(tmp_path / "trained")
    assert type(again).__name__ == "AlbertSentenceEncoder" and again.temperature == 0.1
    assert (tmp_path / "trained" / "spiece.model").read_bytes() == open(spm_model_path, "rb").read()
    reloaded = AlbertSentenceEncoder.from_pretrained(tmp_path / "trained")
    np.testing.assert_allclose(reloaded.encode(SENTENCES), model.encode(SENTENCES), atol=1e-6)


def test_exports_a_sentence_embedding_signature(spm_model_path, tmp_path):
    """The SimCSE result exports like an encoder; a fresh TensorFlow-only process serves the same embeddings."""
    from albert_keras.export.exporter import export_model
    from tests.export.conftest import run_python

    config = tiny_config(vocab_size=1000, num_hidden_layers=2, num_hidden_groups=1, inner_group_num=1)
    model = AlbertSentenceEncoder(AlbertEncoder(config))
    from albert_keras.modeling.pretrained import save_pretrained

    save_pretrained(model, tmp_path / "model", spm_model=str(spm_model_path))
    model = AlbertSentenceEncoder.from_pretrained(tmp_path / "model")
    version = export_model(str(tmp_path / "model"), str(tmp_path / "served"), precision="float32", verbose=False)
    code = (
        "import json, tensorflow as tf, tensorflow_text\n"
        f"loaded = tf.saved_model.load({version!r})\n"
        f"out = loaded.signatures['serving_default'](text=tf.constant({SENTENCES!r}))\n"
        "print(json.dumps(out['sentence_embedding'].numpy().tolist()))\n"
    )
    served = np.array(json.loads(run_python(code).strip().splitlines()[-1]))
    np.testing.assert_allclose(served, model.encode(SENTENCES), atol=1e-5)
