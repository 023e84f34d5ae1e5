"""Intent-slot TFLite with the tokenizer inside, run in LiteRT: intents and slot spans equal the
Python path of `predict` (`tasks.intent_slots`), slots are slices of the text sent; `export_model`
writes the file with the intents and slot tags beside it, and its dynamic-int8 file passes the
agreement gate."""

import json
import os

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.export.intent_slots_tflite import convert_intent_slots
from albert_keras.export.intent_slots_tflite import decode_outputs
from albert_keras.export.intent_slots_tflite import text_bytes
from albert_keras.export.tflite import interpreter
from albert_keras.tasks import intent_slots as isl
from tests.export.test_intent_slots import INTENTS
from tests.export.test_intent_slots import SLOT_LABELS
from tests.export.test_intent_slots import T
from tests.export.test_intent_slots import TEXTS
from tests.export.test_intent_slots import model  # noqa: F401 (the fixture)
from tests.export.test_intent_slots import python_path

# Python's whitespace that tensorflow-text's WhitespaceTokenizer alone gets wrong: U+001C..U+001F
# (not Unicode White_Space) and multi-byte spaces (the word before keeps a partial character).
ODD_SPACES = ["a\x1cb c\u2028d\x85e\u3000f\u00a0g\u2003h\x1fi"]


def predicted(model, spm_model_path, texts):  # noqa: F811
    """What `predict` writes for `texts`: intent, probability, slots (the Python path)."""
    utterances, probabilities, tags = python_path(model, spm_model_path, texts)
    return [{"text": u.text, "intent": INTENTS[int(np.argmax(p))], "probability": float(np.max(p)),
             "slots": isl.tags_to_slots(u, t)} for u, p, t in zip(utterances, probabilities, tags)]


def check_same(got, want, atol):
    for g, w in zip(got, want, strict=True):
        assert g["intent"] == w["intent"] and g["slots"] == w["slots"], (g, w)
        assert abs(g["probability"] - w["probability"]) < atol
        assert all(g["text"][s["start"]:s["end"]] == s["text"] for s in g["slots"])


def test_tflite_equals_the_python_path(model, spm_model_path, tmp_path):  # noqa: F811
    path = str(tmp_path / "intents.tflite")
    report = convert_intent_slots(model, path, spm_model_path, T, verbose=False)
    assert report["max_diff"] < 1e-5 and report["label_agreement"] == 1.0
    runner = interpreter(path).get_signature_runner()
    texts = TEXTS + ODD_SPACES
    outputs = runner(text=text_bytes(texts))
    assert {k: v.dtype.kind for k, v in outputs.items()} == {
        "intent_probabilities": "f", "intent_ids": "i", "intents": "O", "slot_tag_ids": "i",
        "word_start": "i", "word_end": "i"}
    got = decode_outputs(texts, outputs, INTENTS, SLOT_LABELS)
    want = predicted(model, spm_model_path, texts)
    assert (outputs["word_start"][-1] >= 0).sum() == len(ODD_SPACES[0].split()) == 9
    check_same(got, want, 1e-5)
    assert [i.decode() for i in outputs["intents"]] == [g["intent"] for g in got]
    # Byte offsets: "Brüssels" ends one byte later than its last character.
    assert sum(len(g["slots"]) for g in got) > 5 and len({g["intent"] for g in got}) > 1
    assert (outputs["slot_tag_ids"][3][T - 2:] == -1).all()  # the words past the window: O
    assert decode_outputs(["", "  "], runner(text=text_bytes(["", "  "])), INTENTS, SLOT_LABELS)[1]["slots"] == []


@pytest.fixture(scope="module")
def trained(spm_model_path):
    """A tiny intent-slot model fitted to the made-up assistant grammar (a few seconds): its intents
    are not near-ties, so the int8 agreement gate means something."""
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
    from albert_keras.tokenization import load_sentencepiece
    from tests.tasks import intent_slot_data as data
    from tests.training.conftest import TINY_CONFIG

    keras.utils.set_random_seed(3)
    records = data.utterances(320, seed=1)
    intents = sorted(data.TEMPLATES)
    slot_labels = ["O"] + [f"{p}-{t}" for t in ("object", "place", "value") for p in "BI"]
    model = AlbertIntentSlotTagger(AlbertEncoder(AlbertConfig(**TINY_CONFIG)), intents=intents,
                                   slot_labels=slot_labels, dropout=0.0)
    utterances = [isl.Utterance(text, intent=intent, tags=data.iob2(text, slots)) for text, intent, slots in records]
    f = isl.make_features(load_sentencepiece(spm_model_path), utterances, intents, slot_labels, max_seq_length=T)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(3e-3), loss={"intent_logits": loss, "slot_logits": loss})
    model.fit(f.inputs, {"intent_logits": f.intents, "slot_logits": f.tags},
              sample_weight={"intent_logits": np.ones(len(f.intents), np.float32), "slot_logits": f.weights},
              batch_size=32, epochs=6, verbose=0)
    return model, [text for text, _, _ in data.utterances(40, seed=2)]


def test_int8_gate_refuses_a_model_whose_intents_flip(model, spm_model_path, tmp_path):  # noqa: F811
    from albert_keras.export.tflite import TFLiteVerificationError

    # The random fixture's intents are near-ties scaled up: int8 flips most of them.
    with pytest.raises(TFLiteVerificationError, match="nothing written"):
        convert_intent_slots(model, str(tmp_path / "m.tflite"), spm_model_path, T, quantize="dynamic-int8",
                             verbose=False)
    assert not os.path.exists(tmp_path / "m.tflite")


def test_export_dynamic_int8_passes_the_gate(trained, spm_model_path, tmp_path):
    from albert_keras.export.exporter import export_model

    model, held_out = trained
    directory = str(tmp_path / "pretrained")
    model.save_pretrained(directory, vocabulary=spm_model_path,
                          tokenizer_settings={"lowercase": True, "sequence_length": T})
    with pytest.raises(AlbertInputError, match="pass --with-tokenizer"):
        export_model(directory, str(tmp_path / "ids"), format="tflite", verbose=False)
    assert not os.path.exists(tmp_path / "ids")
    with pytest.raises(AlbertInputError, match="full-int8: intent-slot TFLite files carry the tokenizer"):
        export_model(directory, str(tmp_path / "full"), format="tflite", with_tokenizer=True,
                     quantize="full-int8", verbose=False)
    assert not os.path.exists(tmp_path / "full" / "1" / "model.tflite")
    version = export_model(directory, str(tmp_path / "tflite"), format="tflite", with_tokenizer=True,
                           quantize="dynamic-int8", verbose=False)
    with open(os.path.join(version, "albert_keras.json")) as f:
        metadata = json.load(f)
    assert metadata["intents"] == model.intents and metadata["slot_labels"] == model.slot_labels
    with open(os.path.join(version, "albert_export.json")) as f:
        report = json.load(f)
    # The gate: intents and per-word tags of the 68 verification utterances.
    assert report["label_agreement"] >= 0.98 and report["verified_texts"] > 60, report
    runner = interpreter(os.path.join(version, "model.tflite")).get_signature_runner()
    got = decode_outputs(held_out, runner(text=text_bytes(held_out)), metadata["intents"], metadata["slot_labels"])
    utterances, probabilities, tags = python_path(model, spm_model_path, held_out, model.slot_labels)
    want = [{"intent": model.intents[int(np.argmax(p))], "slots": isl.tags_to_slots(u, t)}
            for u, p, t in zip(utterances, probabilities, tags)]
    assert all(g["text"][s["start"]:s["end"]] == s["text"] for g in got for s in g["slots"])
    assert np.mean([g["intent"] == w["intent"] for g, w in zip(got, want)]) >= 0.95
    assert np.mean([g["slots"] == w["slots"] for g, w in zip(got, want)]) >= 0.9
    assert sum(len(w["slots"]) for w in want) > 30


def test_wordpiece_tflite_equals_the_python_path(tmp_path):
    """A WordPiece (BERT-Chinese layout) model: each word tokenized alone by the TFLite WordPiece
    route, CJK runs and punctuation split inside the word, as `make_features` does."""
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
    from albert_keras.tokenization import load_vocabulary
    from tests.export.test_tflite_metadata_wordpiece import plain_strings
    from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

    vocabulary = load_vocabulary(make_chinese_style_vocab(tmp_path))
    keras.utils.set_random_seed(4)
    config = AlbertConfig(vocab_size=vocabulary.vocabulary_size(), embedding_size=16, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=T)
    model = AlbertIntentSlotTagger(AlbertEncoder(config), intents=INTENTS, slot_labels=SLOT_LABELS)
    model.slot_dense.kernel.assign(np.random.default_rng(1).normal(0, 1.0, model.slot_dense.kernel.shape))
    texts = plain_strings(12, seed=5) + ["hello  World\u00a0中文，ok", "x"]
    path = str(tmp_path / "wordpiece.tflite")
    convert_intent_slots(model, path, vocabulary, T, verbose=False)
    outputs = interpreter(path).get_signature_runner()(text=text_bytes(texts))
    got = decode_outputs(texts, outputs, INTENTS, SLOT_LABELS)
    utterances = [isl.Utterance(t) for t in texts]
    features = isl.make_features(vocabulary, utterances, max_seq_length=T)
    out = model(features.inputs)
    ids = np.argmax(out["slot_logits"].numpy(), axis=-1)
    probabilities = keras.ops.softmax(out["intent_logits"]).numpy()
    want = [{"intent": INTENTS[int(np.argmax(p))], "probability": float(np.max(p)),
             "slots": isl.tags_to_slots(u, [SLOT_LABELS[row[q]] if q >= 0 else "O" for q in where])}
            for u, p, row, where in zip(utterances, probabilities, ids, features.positions)]
    check_same(got, want, 1e-5)
    assert sum(len(g["slots"]) for g in got) > 5
