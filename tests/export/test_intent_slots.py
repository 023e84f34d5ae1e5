"""The intent-slot serving graph: intents, probabilities and per-word tags equal the Python path
(`tasks.intent_slots`), slots are slices of the text sent; `export_model` writes a SavedModel whose
`serving_default` answers the same in a fresh process that imports only tensorflow and
tensorflow_text, and whose warmup replays."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.tasks import intent_slots as isl
from tests.export.conftest import serve_raw_texts_in_fresh_process

T = 16
INTENTS = ["play_music", "get_weather", "book_table"]
SLOT_LABELS = ["O", "B-artist", "I-artist", "B-city", "I-city", "B-time"]
TEXTS = [
    "  play  Blackburn\u00a0songs in Brüssels ",
    "x",
    "\x01 \x02 word lone \u0301 mark",  # a lone combining mark normalizes to nothing: <unk>
    "a " * 40 + "end",  # longer than the window: the words past it are O
    "Ünïcödé ``q'' 10,000, ﬁne\ttabs\nand lines",
    "",
    "   ",
    b"\xff\xfe broken \xc3 UTF-8 Bytecode".decode("utf-8", errors="replace"),
]
RAW = [t.encode() for t in TEXTS[:-1]] + [b"\xff\xfe broken \xc3 UTF-8 Bytecode"]


@pytest.fixture(scope="module")
def model(spm_model_path):
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
    from tests.training.conftest import TINY_CONFIG

    keras.utils.set_random_seed(5)
    model = AlbertIntentSlotTagger(AlbertEncoder(AlbertConfig(**TINY_CONFIG)), intents=INTENTS,
                                   slot_labels=SLOT_LABELS)
    # Larger output weights than the initializer gives, so the random tags vary from word to word.
    rng = np.random.default_rng(0)
    model.slot_dense.kernel.assign(rng.normal(0, 1.0, model.slot_dense.kernel.shape).astype("float32"))
    # A random encoder's pooled outputs differ little from text to text: a large intent kernel, and a
    # bias that centres them, so the intents differ too.
    kernel = rng.normal(0, 30.0, model.intent_dense.kernel.shape).astype("float32")
    model.intent_dense.kernel.assign(kernel)
    pooled = model.encoder(python_features(spm_model_path, TEXTS).inputs)["pooled_output"].numpy()
    model.intent_dense.bias.assign(-pooled.mean(axis=0) @ kernel)
    return model


def python_features(spm_model_path, texts):
    from albert_keras.tokenization import load_sentencepiece

    return isl.make_features(load_sentencepiece(spm_model_path), [isl.Utterance(t) for t in texts], max_seq_length=T)


def served(model, spm_model_path, raw=RAW):
    from albert_keras.export.intent_slots import IntentSlotServer
    from albert_keras.tokenization import AlbertTokenizer

    server = IntentSlotServer(model, AlbertTokenizer(spm_model_path, sequence_length=T), T)
    return {k: v.numpy() for k, v in server(tf.constant(raw)).items()}


def python_path(model, spm_model_path, texts, slot_labels=SLOT_LABELS):
    """`(intent probabilities, tags per word)` as `IntentSlotTask` computes them."""
    utterances = [isl.Utterance(t) for t in texts]
    features = python_features(spm_model_path, texts)
    out = model(features.inputs)
    ids = np.argmax(out["slot_logits"].numpy(), axis=-1)
    tags = [[slot_labels[row[p]] if p >= 0 else "O" for p in where] for row, where in zip(ids, features.positions)]
    probabilities = tf.nn.softmax(out["intent_logits"]).numpy()
    return utterances, probabilities, tags


def test_server_equals_the_python_path(model, spm_model_path):
    out = served(model, spm_model_path)
    utterances, probabilities, tags = python_path(model, spm_model_path, TEXTS)
    slot_count = 0
    assert [i.decode() for i in out["intent"]] == [INTENTS[i] for i in np.argmax(probabilities, axis=-1)]
    np.testing.assert_allclose(out["intent_probabilities"], probabilities, atol=1e-5)
    np.testing.assert_allclose(out["intent_probability"], probabilities.max(axis=-1), atol=1e-5)
    for k, (utterance, word_tags) in enumerate(zip(utterances, tags)):
        n = len(utterance.words)
        assert [w.decode() for w in out["words"][k][:n]] == utterance.words
        assert [t.decode() for t in out["tags"][k][:n]] == word_tags
        slots = isl.tags_to_slots(utterance, word_tags)
        slot_count += len(slots)
        m = len(slots)
        got = [{"text": out["slot_text"][k][j].decode(), "start": int(out["slot_start"][k][j]),
                "end": int(out["slot_end"][k][j]), "type": out["slot_type"][k][j].decode()} for j in range(m)]
        assert got == slots
        assert all(utterance.text[s["start"]:s["end"]] == s["text"] for s in got)
        assert (out["slot_type"][k][m:] == b"").all() and (out["slot_start"][k][m:] == -1).all()
    long_tags = tags[3]
    assert long_tags[-10:] == ["O"] * 10  # past the window
    assert slot_count > 5 and len(set(out["intent"].tolist())) > 1


def test_export_serves_in_a_fresh_process(model, spm_model_path, tmp_path):
    from albert_keras.export.exporter import export_model
    from albert_keras.export.warmup import replay_warmup_file

    directory = str(tmp_path / "pretrained")
    model.save_pretrained(directory, vocabulary=spm_model_path, tokenizer_settings={"lowercase": True,
                                                                                    "sequence_length": T})
    version = export_model(directory, str(tmp_path / "saved" / "intents"), verbose=False)
    expected = served(model, spm_model_path)
    with open(os.path.join(version, "assets.extra", "albert_keras.json")) as f:
        assert json.load(f)["signatures"] == ["serving_default", "tokenize", "serve_ids"]
    replayed = dict(replay_warmup_file(version))
    assert set(replayed) == {"serving_default", "tokenize", "serve_ids"}
    assert replayed["serve_ids"]["intent_probabilities"].shape[1] == len(INTENTS)
    got = serve_raw_texts_in_fresh_process(version, "serving_default", RAW, tmp_path)
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        if got[key].dtype.kind == "f":
            np.testing.assert_allclose(got[key], want, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_array_equal(got[key], want, err_msg=key)
