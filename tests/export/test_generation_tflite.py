"""A translation TFLite file: greedy decoding (tokenizer and loop inside) gives what `generate()` gives."""

import json
import os

import keras
import pytest

from albert_keras.config import AlbertConfig
from albert_keras.errors import AlbertInputError
from albert_keras.modeling import AlbertEncoder
from albert_keras.modeling.seq2seq import AlbertSeq2Seq

WORDS = ["the", "a", "cat", "dog", "sees", "big", "red", "bird", "runs", ".", "我", "爱", "北", "京"]
SOURCES = ["the big cat sees a red bird .", "a dog runs .", "我 爱 北 京", "the dog"]


@pytest.fixture(scope="module")
def seq2seq_dir(tmp_path_factory):
    from albert_keras.modeling import save_pretrained

    tmp_path = tmp_path_factory.mktemp("seq2seq_tflite")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n", encoding="utf-8")
    config = AlbertConfig(vocab_size=5 + len(WORDS), embedding_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=24,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.5)
    keras.utils.set_random_seed(3)
    save_pretrained(AlbertSeq2Seq(AlbertEncoder(config), max_target_length=9), tmp_path / "model",
                    vocabulary=str(vocab), tokenizer_settings={"lowercase": True, "sequence_length": 16})
    return tmp_path


def test_tflite_file_generates_what_generate_does(seq2seq_dir):
    from albert_keras.export.exporter import export_model
    from albert_keras.export.generation_tflite import TFLiteGenerator

    output = seq2seq_dir / "tflite"
    export_model(seq2seq_dir / "model", output, format="tflite", generation={"num_beams": 1, "max_length": 7},
                 verbose=False)
    version = output / "1"
    assert sorted(os.listdir(version)) == ["albert_export.json", "albert_keras.json", "model.tflite", "vocab.txt"]
    model = AlbertSeq2Seq.from_pretrained(seq2seq_dir / "model")
    generator = TFLiteGenerator(version)
    expected_ids = model.generate_ids(**_packed(model, SOURCES), max_length=7)
    assert generator.generate_ids(SOURCES) == expected_ids
    expected = model.generate(SOURCES, max_length=7)
    assert generator(SOURCES) == expected
    assert len(set(expected)) > 1
    with open(version / "albert_keras.json") as f:
        recorded = json.load(f)
    assert recorded["generation"]["sampler"] == "greedy" and recorded["generation"]["max_length"] == 7
    assert recorded["model_class"] == "AlbertSeq2Seq" and recorded["format"] == "tflite"
    with open(version / "albert_export.json") as f:
        report = json.load(f)
    assert report["size_bytes"] == os.path.getsize(version / "model.tflite")
    assert report["verified_sources"] >= 3 and report["ms_per_token"] > 0


def _packed(model, sources):
    x = model.preprocessor(sources)
    return {"encoder_token_ids": x["encoder_token_ids"].numpy(), "encoder_padding_mask": x["encoder_padding_mask"].numpy()}


@pytest.mark.parametrize("options, message", [
    ({"generation": {"num_beams": 3}}, "--num-beams 3: a translation TFLite file decodes greedily only"),
    ({"quantize": "dynamic-int8"}, "--quantize dynamic-int8: translation TFLite files are float32 only"),
])
def test_beam_search_and_quantization_are_refused_in_one_line_before_writing(seq2seq_dir, options, message):
    from albert_keras.export.exporter import export_model

    output = seq2seq_dir / "refused"
    with pytest.raises(AlbertInputError, match=message.replace("(", r"\(")):
        export_model(seq2seq_dir / "model", output, format="tflite", verbose=False, **options)
    assert not os.path.exists(output / "1")


def test_sentencepiece_tflite_file_generates_what_generate_does(tmp_path, spm_model_path):
    from albert_keras.export.generation_tflite import TFLiteGenerator
    from albert_keras.export.generation_tflite import export_seq2seq_tflite
    from albert_keras.modeling import save_pretrained

    config = AlbertConfig(vocab_size=1000, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.5)
    keras.utils.set_random_seed(5)
    save_pretrained(AlbertSeq2Seq(AlbertEncoder(config), max_target_length=6), tmp_path / "model",
                    vocabulary=str(spm_model_path), tokenizer_settings={"lowercase": True, "sequence_length": 12})
    model = AlbertSeq2Seq.from_pretrained(tmp_path / "model")
    texts = ["The cat sat on the mat.", "Python is a programming language.", "Short."]
    report = export_seq2seq_tflite(model, tmp_path / "tflite" / "1")
    assert report["generation"]["vocabulary"] == "spiece.model" and report["generation"]["max_length"] == 6
    expected = model.generate(texts)
    assert TFLiteGenerator(tmp_path / "tflite" / "1")(texts) == expected
    assert any(expected)
