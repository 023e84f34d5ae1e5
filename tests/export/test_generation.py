"""A translation SavedModel: the decoding loop in the graph, the same text as `generate()` in a fresh process."""

import json
import os
import subprocess
import sys

import keras
import pytest

from albert_keras.config import AlbertConfig
from albert_keras.modeling import AlbertEncoder
from albert_keras.modeling.seq2seq import AlbertSeq2Seq

WORDS = ["the", "a", "cat", "dog", "sees", "big", "red", "bird", "runs", ".", "我", "爱", "北", "京"]
SOURCES = ["the big cat sees a red bird .", "a dog runs .", "我 爱 北 京", "the dog"]

# A fresh interpreter with TensorFlow and TF-Text's op libraries only: keras, keras_hub, albert_keras and
# tensorflow_text's Python package (which imports keras) cannot be imported at all.
SERVE = """
import glob, json, os, sys
for name in ("keras", "keras_hub", "albert_keras", "tensorflow_text", "tf_keras"):
    sys.modules[name] = None
import tensorflow as tf
ops_dir = os.path.join(os.path.dirname(tf.__file__), "..", "tensorflow_text", "python", "ops")
for library in sorted(glob.glob(os.path.join(ops_dir, "_*.so"))):
    tf.load_op_library(library)
served = tf.saved_model.load(sys.argv[1])
out = served.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps([t.decode("utf-8") for t in out["generated_text"].numpy().tolist()]))
print(json.dumps(sorted(m for m, v in sys.modules.items() if v is not None
                        and m.split(".")[0] in ("keras", "keras_hub", "albert_keras", "tensorflow_text"))))
"""


def _saved_model(tmp_path, vocabulary_kind, spm_model_path=None, **settings):
    from albert_keras.export.generation import export_seq2seq
    from albert_keras.modeling import save_pretrained

    if vocabulary_kind == "wordpiece":
        vocab = tmp_path / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n", encoding="utf-8")
        size = 5 + len(WORDS)
    else:
        vocab, size = spm_model_path, 1000
    config = AlbertConfig(vocab_size=size, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=24,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.5)
    keras.utils.set_random_seed(3)
    save_pretrained(AlbertSeq2Seq(AlbertEncoder(config), max_target_length=9), tmp_path / "model",
                    vocabulary=str(vocab), tokenizer_settings={"lowercase": True, "sequence_length": 16})
    model = AlbertSeq2Seq.from_pretrained(tmp_path / "model")
    export_seq2seq(model, tmp_path / "served" / "1", metadata={"model_class": "AlbertSeq2Seq"}, **settings)
    return model, str(tmp_path / "served" / "1")


def _serve(directory, texts):
    done = subprocess.run([sys.executable, "-c", SERVE, directory, json.dumps(texts)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-2]), json.loads(lines[-1])


@pytest.mark.parametrize("settings", [{"sampler": "greedy"}, {"sampler": "beam", "num_beams": 3, "length_penalty": 1.0}])
def test_wordpiece_saved_model_generates_what_generate_does(tmp_path, settings):
    model, directory = _saved_model(tmp_path, "wordpiece", **settings)
    expected = model.generate(SOURCES, **settings)
    served, modules = _serve(directory, SOURCES)
    assert served == expected
    assert len(set(expected)) > 1 and modules == []
    with open(os.path.join(directory, "assets.extra", "albert_keras.json")) as f:
        recorded = json.load(f)["generation"]
    assert recorded["sampler"] == settings["sampler"] and recorded["max_length"] == 9
    assert recorded["num_beams"] == settings.get("num_beams", 1)


def test_sentencepiece_saved_model_generates_what_generate_does(tmp_path, spm_model_path):
    model, directory = _saved_model(tmp_path, "sentencepiece", spm_model_path=spm_model_path)
    texts = ["The cat sat on the mat.", "Python is a programming language."]
    served, _ = _serve(directory, texts)
    assert served == model.generate(texts)


def test_random_samplers_are_not_served(tmp_path):
    from albert_keras.errors import AlbertInputError

    with pytest.raises(AlbertInputError, match="greedy or beam"):
        _saved_model(tmp_path, "wordpiece", sampler="top_k")


def test_albert_keras_export_command_fixes_beam_search(tmp_path):
    from albert_keras.cli import main

    model, _ = _saved_model(tmp_path, "wordpiece")
    assert main(["export", "--model", str(tmp_path / "model"), "--output", str(tmp_path / "cli"),
                 "--num-beams", "2", "--length-penalty", "0.0", "--quiet"]) == 0
    served, _ = _serve(str(tmp_path / "cli" / "1"), SOURCES)
    assert served == model.generate(SOURCES, sampler="beam", num_beams=2, length_penalty=0.0)
    with open(tmp_path / "cli" / "1" / "assets.extra" / "albert_keras.json") as f:
        recorded = json.load(f)
    assert recorded["generation"]["num_beams"] == 2 and recorded["model_class"] == "AlbertSeq2Seq"
    # TFLite decodes greedily only (tests/export/test_generation_tflite.py): beams are refused, nothing written.
    assert main(["export", "--model", str(tmp_path / "model"), "--output", str(tmp_path / "lite"),
                 "--format", "tflite", "--num-beams", "2"]) == 2
    assert not os.path.exists(tmp_path / "lite" / "1")
