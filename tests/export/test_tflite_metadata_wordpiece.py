"""`--metadata` for WordPiece models (the Chinese kind): MediaPipe's BERT tokenizer metadata, and
MediaPipe's own runtime fed by it. Measures MediaPipe's ids against the official `FullTokenizer`'s
through the embedding of a tiny encoder (equal embeddings within 1e-5 = equal ids). Skips without
mediapipe."""

import random
import re
import unicodedata

import numpy as np
import pytest

from tests.tokenization.wordpiece_fixtures import CJK_CHARS
from tests.tokenization.wordpiece_fixtures import hard_strings
from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

SEQUENCE_LENGTH = 64


def plain_strings(n, seed):
    """Chinese runs, English words (some capitalized), digits and Chinese punctuation."""
    rng = random.Random(seed)
    words = ["hello", "world", "New", "York", "data", "player", "ALBERT", "iPhone", "2020", "10", "ok"]
    strings = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(2, 8)):
            roll = rng.random()
            if roll < 0.6:
                parts.append("".join(rng.choice(CJK_CHARS) for _ in range(rng.randint(1, 6))))
            elif roll < 0.85:
                parts.append(rng.choice(words) + rng.choice(["", " ", "  ", "\t"]))
            else:
                parts.append(rng.choice("，。！？、：；（）《》"))
        strings.append("".join(parts))
    return strings


def documented_difference(text):
    """Why MediaPipe's BERT tokenizer may split `text` otherwise than `FullTokenizer` (docs/export.md),
    or None: it lowercases ASCII only, strips no accents, keeps control and format characters,
    splits on ASCII whitespace only, and makes a word of more than 100 characters one [UNK]."""
    for char in text:
        if char in " \t\n\r":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co", "Cn") or char == "\ufffd":
            return f"whitespace, control or mark {char!r}"
        if ord(char) > 127 and char.lower() != char:
            return f"non-ASCII capital {char!r}"
        if unicodedata.normalize("NFD", char) != char:
            return f"accented {char!r}"
    if any(len(word) > 100 for word in re.split(r"[ \t\n\r]+", text)):
        return "a word of more than 100 characters"
    return None


@pytest.fixture(scope="module")
def wordpiece_models(tmp_path_factory):
    pytest.importorskip("mediapipe")
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.tokenization import load_vocabulary

    root = tmp_path_factory.mktemp("wordpiece_mobile")
    # BERT-Chinese's layout with its traps: a U+2028 line, and a repeated token (ALBERT's reader
    # gives it no id of its own, MediaPipe would give every later line its line number).
    vocab_path = make_chinese_style_vocab(root, duplicate=True, unicode_line_separators=True)
    vocabulary = load_vocabulary(vocab_path)
    keras.utils.set_random_seed(3)
    config = AlbertConfig(vocab_size=vocabulary.vocabulary_size(), embedding_size=16, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          max_position_embeddings=SEQUENCE_LENGTH)
    encoder = AlbertEncoder(config)
    return {"vocab": vocab_path, "vocabulary": vocabulary, "encoder": encoder,
            "classifier": AlbertClassifier(encoder, 3), "root": root}


def _keras(model, vocabulary, texts):
    """The mobile function on the official `FullTokenizer` ids, one row at a time."""
    import tensorflow as tf

    from albert_keras.export.tflite_metadata import mobile_features
    from albert_keras.export.tflite_metadata import mobile_function

    function, _ = mobile_function(model, SEQUENCE_LENGTH)
    features = mobile_features(vocabulary, texts, SEQUENCE_LENGTH)
    rows = [function(**{k: tf.constant(v[i : i + 1]) for k, v in features.items()}) for i in range(len(texts))]
    return {key: np.concatenate([row[key].numpy() for row in rows]) for key in rows[0]}


def test_metadata_names_the_bert_tokenizer_and_the_vocabulary(wordpiece_models):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb

    from albert_keras.export.tflite_metadata import export_mobile_tflite
    from albert_keras.export.tflite_metadata import read_metadata

    path = wordpiece_models["root"] / "classifier.tflite"
    report = export_mobile_tflite(wordpiece_models["classifier"], str(path), wordpiece_models["vocab"],
                                  SEQUENCE_LENGTH, labels=["体育", "财经", "科技"])
    assert report["max_diff"] < 1e-4 and report["label_agreement"] == 1.0
    metadata, files = read_metadata(path.read_bytes())
    [unit] = metadata.subgraphMetadata[0].inputProcessUnits
    assert unit.optionsType == metadata_fb.ProcessUnitOptions.BertTokenizerOptions
    [vocab_file] = unit.options.vocabFile
    assert vocab_file.name.decode() == "vocab.txt" and vocab_file.type == metadata_fb.AssociatedFileType.VOCABULARY
    # One id a line: line i is the token ALBERT's reader gives id i (the repeated line is gone).
    lines = files["vocab.txt"].decode("utf-8").split("\n")[:-1]
    assert lines == wordpiece_models["vocabulary"].tokens()
    assert len(lines) == len(open(wordpiece_models["vocab"], encoding="utf-8").read().split("\n")) - 2
    assert files["labels.txt"].decode("utf-8") == "体育\n财经\n科技\n"


def test_mediapipe_text_classifier_runs_a_wordpiece_model(wordpiece_models):
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    from albert_keras.cli import main
    from albert_keras.modeling.pretrained import save_pretrained

    model_dir = str(wordpiece_models["root"] / "classifier_dir")
    save_pretrained(wordpiece_models["classifier"], model_dir, spm_model=wordpiece_models["vocab"])
    output = wordpiece_models["root"] / "mobile"
    assert main(["export", "--model", model_dir, "--output", str(output), "--format", "tflite", "--metadata",
                 "--max-seq-length", str(SEQUENCE_LENGTH), "--quiet"]) == 0
    texts = plain_strings(40, seed=1)
    want = _keras(wordpiece_models["classifier"], wordpiece_models["vocabulary"], texts)["probability"]
    options = text_classifier.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(output / "1" / "model.tflite")))
    with text_classifier.TextClassifier.create_from_options(options) as classifier:
        got = np.array([[c.score for c in sorted(classifier.classify(t).classifications[0].categories,
                                                 key=lambda c: c.index)] for t in texts])
    assert np.max(np.abs(got - want)) < 1e-5


def test_mediapipe_ids_agree_on_plain_text_and_differ_only_where_documented(wordpiece_models):
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_embedder

    from albert_keras.export.tflite_metadata import export_mobile_tflite

    path = wordpiece_models["root"] / "embedder.tflite"
    export_mobile_tflite(wordpiece_models["encoder"], str(path), wordpiece_models["vocab"], SEQUENCE_LENGTH)
    plain, hard = plain_strings(200, seed=0), list(hard_strings(200, seed=0))
    want = _keras(wordpiece_models["encoder"], wordpiece_models["vocabulary"], plain + hard)["embedding"]
    options = text_embedder.TextEmbedderOptions(base_options=BaseOptions(model_asset_path=str(path)))
    with text_embedder.TextEmbedder.create_from_options(options) as embedder:
        got = np.array([embedder.embed(t).embeddings[0].embedding for t in plain + hard])
    same = np.max(np.abs(got - want), axis=1) < 1e-5
    assert same[: len(plain)].all()  # Chinese, English words, digits, CJK punctuation: the official ids
    unexplained = [t for t, ok in zip(hard, same[len(plain):]) if not ok and documented_difference(t) is None]
    assert not unexplained, unexplained[:5]
    assert 0 < same[len(plain):].mean() < 1  # the hard strings do hit the differences
    print(f"MediaPipe ids = FullTokenizer ids: plain {same[:len(plain)].mean():.3f}, "
          f"hard {same[len(plain):].mean():.3f} ({len(hard)} strings)")
