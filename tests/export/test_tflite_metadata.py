"""TFLite for the mobile text APIs: metadata a runtime can read, and MediaPipe's own C++ runtime
(`TextClassifier`, `TextEmbedder`, the code that runs on Android, iOS and the web) giving our
model's answers. Skips without mediapipe (`pip install 'albert-keras[mobile]'`)."""

import os

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.cli import main
from albert_keras.errors import AlbertInputError
from albert_keras.export.tflite_metadata import check_mobile_kind

SEQUENCE_LENGTH = 32


def test_unsupported_kinds_name_the_supported_ones(tiny_models):
    for kind in ("token_classifier", "multiple_choice"):
        with pytest.raises(AlbertInputError, match="classifier .*encoder .*question_answerer"):
            check_mobile_kind(tiny_models[kind])
    assert check_mobile_kind(tiny_models["classifier"]) == "classifier"


def test_cli_refuses_metadata_for_a_token_classifier(tiny_models, spm_model_path, tmp_path, capsys):
    from albert_keras.modeling.pretrained import save_pretrained

    model_dir = str(tmp_path / "tagger")
    save_pretrained(tiny_models["token_classifier"], model_dir, spm_model=spm_model_path)
    output = tmp_path / "out"
    args = ["export", "--model", model_dir, "--output", str(output), "--format", "tflite", "--metadata"]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "TextClassifier" in error and "token_classifier" in error
    assert not os.path.exists(output / "1")
    assert main(args + ["--with-tokenizer"]) == 2
    assert "--with-tokenizer" in capsys.readouterr().err


def test_without_mediapipe_the_error_says_what_to_install(tiny_models, spm_model_path, tmp_path, monkeypatch):
    import sys

    from albert_keras.export.tflite_metadata import export_mobile_tflite

    # As if mediapipe were not installed: its modules cannot be imported.
    for name in ("mediapipe", "mediapipe.tasks", "mediapipe.tasks.metadata"):
        monkeypatch.setitem(sys.modules, name, None)
    path = tmp_path / "model.tflite"
    with pytest.raises(AlbertInputError, match=r"pip install 'albert-keras\[mobile\]'"):
        export_mobile_tflite(tiny_models["classifier"], str(path), spm_model_path, SEQUENCE_LENGTH)
    assert not path.exists()


@pytest.fixture(scope="session")  # session: set up (or skipped) before the session-scoped models
def mediapipe_text():
    pytest.importorskip("mediapipe")
    from mediapipe.tasks.python.text import text_classifier
    from mediapipe.tasks.python.text import text_embedder

    return text_classifier, text_embedder


def _options(module, cls_name, path):
    from mediapipe.tasks.python.core.base_options import BaseOptions

    return getattr(module, cls_name)(base_options=BaseOptions(model_asset_path=str(path)))


@pytest.fixture(scope="module")
def classifier_exports(mediapipe_text, trained_classifier, spm_model_path, tmp_path_factory):
    from albert_keras.export.tflite_metadata import export_mobile_tflite

    model, _, _ = trained_classifier
    root = tmp_path_factory.mktemp("mobile")
    paths = {}
    for quantize in ("none", "dynamic-int8"):
        paths[quantize] = str(root / f"{quantize}.tflite")
        export_mobile_tflite(model, paths[quantize], spm_model_path, SEQUENCE_LENGTH, quantize=quantize,
                             labels=["no quote", "quote"])
    return paths


def test_metadata_layout(classifier_exports, spm_model_path):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb

    from albert_keras.export.albert_spm import folded_spm_model
    from albert_keras.export.tflite_metadata import read_metadata

    with open(classifier_exports["none"], "rb") as f:
        metadata, files = read_metadata(f.read())
    subgraph = metadata.subgraphMetadata[0]
    assert sorted(t.name.decode() for t in subgraph.inputTensorMetadata) == ["ids", "mask", "segment_ids"]
    [unit] = subgraph.inputProcessUnits
    assert unit.optionsType == metadata_fb.ProcessUnitOptions.SentencePieceTokenizerOptions
    assert unit.options.sentencePieceModel[0].name.decode() == "spiece.model"
    [output] = subgraph.outputTensorMetadata
    assert output.name.decode() == "probability"
    assert output.associatedFiles[0].type == metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    assert files["labels.txt"] == b"no quote\nquote\n"
    with open(spm_model_path, "rb") as f:
        assert files["spiece.model"] == folded_spm_model(f.read())


def _classify(text_classifier, path, sentences):
    options = _options(text_classifier, "TextClassifierOptions", path)
    with text_classifier.TextClassifier.create_from_options(options) as c:
        results = [c.classify(s).classifications[0].categories for s in sentences]
    # The label names come from the metadata's labels.txt.
    assert {cat.category_name for r in results for cat in r} <= {"no quote", "quote", "0", "1"}
    labels = np.array([max(r, key=lambda cat: cat.score).index for r in results])
    scores = np.array([[cat.score for cat in sorted(r, key=lambda cat: cat.index)] for r in results])
    return labels, scores


def _keras_outputs(model, spm_model_path, sentences):
    """Our model on training's tokenization (official normalization + digit-comma rewrite)."""
    from albert_keras.export import signatures as sigs
    from albert_keras.export.text import AlbertTextPacker

    packer = AlbertTextPacker(spm_model_path, SEQUENCE_LENGTH)
    return sigs.task_outputs(model, packer(tf.constant(sentences)))


def test_mediapipe_text_classifier_gives_our_labels(mediapipe_text, classifier_exports, trained_classifier,
                                                    spm_model_path):
    """500 held-out sentences: MediaPipe's TextClassifier, tokenizing from the metadata itself,
    gives the Keras model's top label on all of them (float32) and >= 98 % (int8)."""
    text_classifier, _ = mediapipe_text
    model, held_out, accuracy = trained_classifier
    assert accuracy > 0.8  # a learned task: labels are not coin flips
    sentences = held_out[:500]
    expected = _keras_outputs(model, spm_model_path, sentences)
    want = expected["label_ids"].numpy()
    labels, scores = _classify(text_classifier, classifier_exports["none"], sentences)
    assert float(np.mean(labels == want)) == 1.0
    with text_classifier.TextClassifier.create_from_options(
        _options(text_classifier, "TextClassifierOptions", classifier_exports["none"])
    ) as classifier:
        names = {cat.category_name for cat in classifier.classify(sentences[0]).classifications[0].categories}
    assert names == {"no quote", "quote"}
    # Scores too: MediaPipe feeds the same ids as training on nearly every sentence (the
    # digit-comma rewrite is the one step a SentencePiece model cannot carry).
    close = np.max(np.abs(scores - expected["probabilities"].numpy()), axis=1) < 1e-4
    assert close.mean() >= 0.98, close.mean()
    int8_labels, _ = _classify(text_classifier, classifier_exports["dynamic-int8"], sentences)
    assert float(np.mean(int8_labels == want)) >= 0.98


def test_mediapipe_text_embedder_matches_our_sentence_embedding(mediapipe_text, tiny_models, spm_model_path,
                                                                 corpus_sentences, tmp_path):
    from albert_keras.export.tflite_metadata import export_mobile_tflite
    from albert_keras.export.tflite_metadata import read_metadata

    _, text_embedder = mediapipe_text
    model = tiny_models["encoder"]
    path = tmp_path / "embedder.tflite"
    export_mobile_tflite(model, str(path), spm_model_path, SEQUENCE_LENGTH)
    with open(path, "rb") as f:
        metadata, _ = read_metadata(f.read())
    assert metadata.subgraphMetadata[0].outputTensorMetadata[0].name.decode() == "embedding"
    sentences = corpus_sentences[::60][:50] + ["Crème Brûlée ``costs'' 1,234.5 ÉUR."]
    want = _keras_outputs(model, spm_model_path, sentences)["sentence_embedding"].numpy()
    options = _options(text_embedder, "TextEmbedderOptions", path)
    with text_embedder.TextEmbedder.create_from_options(options) as embedder:
        got = np.array([embedder.embed(s).embeddings[0].embedding for s in sentences])
    cosine = np.sum(got * want, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() >= 0.99, cosine.min()


def test_question_answerer_metadata_names_the_logits(mediapipe_text, tiny_models, spm_model_path, tmp_path):
    """MediaPipe Tasks has no question answerer; the Task Library's BertQuestionAnswerer finds
    the outputs by these names. The file still runs (and is verified) in ai_edge_litert."""
    from albert_keras.export.tflite_metadata import export_mobile_tflite
    from albert_keras.export.tflite_metadata import read_metadata

    path = tmp_path / "qa.tflite"
    report = export_mobile_tflite(tiny_models["question_answerer"], str(path), spm_model_path, SEQUENCE_LENGTH)
    assert report["max_diff"] < 1e-4
    with open(path, "rb") as f:
        metadata, files = read_metadata(f.read())
    outputs = sorted(t.name.decode() for t in metadata.subgraphMetadata[0].outputTensorMetadata)
    assert outputs == ["end_logits", "start_logits"] and sorted(files) == ["spiece.model"]


def test_cli_export_with_metadata(mediapipe_text, trained_classifier, spm_model_path, tmp_path):
    import json

    from albert_keras.modeling.pretrained import save_pretrained

    text_classifier, _ = mediapipe_text
    model, held_out, _ = trained_classifier
    model_dir = str(tmp_path / "quote")
    save_pretrained(model, model_dir, spm_model=spm_model_path)
    output = tmp_path / "mobile"
    assert main(["export", "--model", model_dir, "--output", str(output), "--format", "tflite", "--metadata",
                 "--quantize", "float16", "--sequence-length", str(SEQUENCE_LENGTH)]) == 0
    with open(output / "1" / "albert_export.json") as f:
        assert json.load(f)["metadata"] is True
    labels, _ = _classify(text_classifier, output / "1" / "model.tflite", held_out[:50])
    want = _keras_outputs(model, spm_model_path, held_out[:50])["label_ids"].numpy()
    assert float(np.mean(labels == want)) >= 0.98


def test_mediapipe_lowercases_ascii_so_a_cased_model_is_warned(mediapipe_text, tiny_models, spm_model_path,
                                                               tmp_path, caplog):
    """MediaPipe's BERT preprocessor ASCII-lowercases the text before its tokenizer runs: what the
    export warns about for cased models. Seen through the embedding of a cased export."""
    from albert_keras.export.albert_spm import folded_spm_model
    from albert_keras.export.tflite_metadata import export_mobile_tflite
    from albert_keras.export.tflite_metadata import mobile_function
    from albert_keras.export.tflite_metadata import mobile_features

    _, text_embedder = mediapipe_text
    model = tiny_models["encoder"]
    path = tmp_path / "cased.tflite"
    with caplog.at_level("WARNING", logger="albert_keras.export"):
        export_mobile_tflite(model, str(path), spm_model_path, SEQUENCE_LENGTH, lowercase=False)
    assert "lowercases ASCII" in caplog.text
    with open(spm_model_path, "rb") as f:
        cased = folded_spm_model(f.read(), lowercase=False)
    function, _ = mobile_function(model, SEQUENCE_LENGTH)
    text = "The Quick Brown Fox Ärgert Ölaf."

    def embedding(as_text):
        features = mobile_features(cased, [as_text], SEQUENCE_LENGTH)
        return function(**{k: tf.constant(v) for k, v in features.items()})["embedding"].numpy()[0]

    lowered = "".join(c.lower() if c.isascii() else c for c in text)
    assert embedding(lowered).tolist() != embedding(text).tolist()
    options = _options(text_embedder, "TextEmbedderOptions", path)
    with text_embedder.TextEmbedder.create_from_options(options) as embedder:
        got = np.asarray(embedder.embed(text).embeddings[0].embedding)
    assert np.max(np.abs(got - embedding(lowered))) < 1e-5


def test_full_int8_with_metadata_runs_in_litert_and_mediapipe(mediapipe_text, trained_classifier, spm_model_path,
                                                              corpus_sentences, tmp_path, capsys):
    """`--quantize full-int8 --metadata`: calibrated on the apps' packing of the given texts, passes
    the label-agreement gate, and MediaPipe's TextClassifier and LiteRT give the Keras labels."""
    import json

    from albert_keras.export.tflite import interpreter
    from albert_keras.export.tflite_metadata import mobile_features
    from albert_keras.export.albert_spm import folded_spm_model
    from albert_keras.modeling.pretrained import save_pretrained

    text_classifier, _ = mediapipe_text
    model, held_out, _ = trained_classifier
    model_dir = str(tmp_path / "quote")
    save_pretrained(model, model_dir, spm_model=spm_model_path)
    texts = tmp_path / "calibration.txt"
    texts.write_text("\n".join(corpus_sentences[:150]) + "\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    output = tmp_path / "mobile"
    args = ["export", "--model", model_dir, "--output", str(output), "--format", "tflite", "--metadata",
            "--quantize", "full-int8", "--max-seq-length", str(SEQUENCE_LENGTH), "--calibration"]
    assert main(args + [str(empty)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "empty.txt" in error and not os.path.exists(output / "1")
    assert main(args + [str(texts)]) == 0
    printed = capsys.readouterr().out
    assert "float ops (kept float32, and why)" in printed
    with open(output / "1" / "albert_export.json") as f:
        report = json.load(f)
    assert report["quantize"] == "full-int8" and report["label_agreement"] >= 0.98
    assert report["calibration_texts"] == 150
    path = output / "1" / "model.tflite"
    # Integer weights and activations: only the boundaries and the float output's tail stay float.
    assert {row["op"] for row in report["float_ops"]} <= {"QUANTIZE", "DEQUANTIZE", "SOFTMAX", "CAST"}, report
    sentences = held_out[:200]
    want = _keras_outputs(model, spm_model_path, sentences)["label_ids"].numpy()
    labels, scores = _classify(text_classifier, path, sentences)
    assert float(np.mean(labels == want)) >= 0.97
    with open(spm_model_path, "rb") as f:
        features = mobile_features(folded_spm_model(f.read()), sentences[:50], SEQUENCE_LENGTH)
    runner = interpreter(str(path), num_threads=1).get_signature_runner()
    litert = np.array([np.asarray(runner(**{k: v[i : i + 1] for k, v in features.items()})["probability"])[0]
                       for i in range(50)])
    # MediaPipe runs the same file: its scores are LiteRT's on the apps' packing.
    assert np.max(np.abs(litert - scores[:50])) < 0.02
