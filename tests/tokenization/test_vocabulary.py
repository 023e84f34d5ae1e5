"""`load_vocabulary`: one path from a file or directory to a vocabulary, and the layer built from it."""

import ast
import json
import os
import pathlib

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.vocabulary import SentencePieceVocabulary
from albert_keras.tokenization.vocabulary import WordPieceVocabulary
from albert_keras.tokenization.vocabulary import load_vocabulary
from tests.tokenization.wordpiece_fixtures import hard_strings
from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "albert_keras"


@pytest.fixture(scope="module")
def chinese_vocab_path(tmp_path_factory):
    return make_chinese_style_vocab(tmp_path_factory.mktemp("zh") / "vocab_chinese.txt", duplicate=False)


def test_both_kinds_from_files_directories_and_bytes(spm_model_path, chinese_vocab_path, tmp_path):
    spm = load_vocabulary(spm_model_path)
    assert isinstance(spm, SentencePieceVocabulary) and spm.kind == "sentencepiece"
    assert spm.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    wordpiece = load_vocabulary(chinese_vocab_path)
    assert isinstance(wordpiece, WordPieceVocabulary) and wordpiece.kind == "wordpiece"
    # Read from the file (BERT-Chinese layout), never assumed.
    assert wordpiece.special_ids == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    assert wordpiece.lowercase is True
    assert load_vocabulary(open(chinese_vocab_path, "rb").read()).encode("我爱") == wordpiece.encode("我爱")
    # A directory with a released name (Google's zh tarballs), and a pretrained directory's tokenizer.json.
    directory = tmp_path / "albert_base_zh"
    directory.mkdir()
    (directory / "vocab_chinese.txt").write_bytes(open(chinese_vocab_path, "rb").read())
    assert load_vocabulary(directory).source == str(directory / "vocab_chinese.txt")
    (directory / "tokenizer.json").write_text(json.dumps({"kind": "wordpiece", "lowercase": False}))
    assert load_vocabulary(directory).lowercase is False
    assert load_vocabulary(directory, lowercase=True).lowercase is True
    # Hugging Face's casing when there is no tokenizer.json.
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "vocab.txt").write_bytes(open(chinese_vocab_path, "rb").read())
    (hf / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": False}))
    assert load_vocabulary(hf).lowercase is False


def test_bad_vocabularies_are_one_line_errors(spm_model_path, chinese_vocab_path, tmp_path):
    cases = {
        "empty.txt": b"",
        "words.txt": "hello\nworld\n".encode(),
        "binary.model": bytes(range(256)) * 4,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AlbertInputError, match=rf"{name}: .*(empty|neither)") as error:
            load_vocabulary(path)
        assert "\n" not in str(error.value)
    with pytest.raises(AlbertInputError, match="missing.model: vocabulary not found"):
        load_vocabulary(tmp_path / "missing.model")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(AlbertInputError, match="nothing: no vocabulary"):
        load_vocabulary(empty_dir)
    with pytest.raises(AlbertInputError, match="a wordpiece vocabulary, but a sentencepiece one is needed"):
        load_vocabulary(chinese_vocab_path, kind="sentencepiece")
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    (mismatch / "spiece.model").write_bytes(open(spm_model_path, "rb").read())
    (mismatch / "tokenizer.json").write_text(json.dumps({"kind": "wordpiece"}))
    with pytest.raises(AlbertInputError, match="tokenizer.json says kind 'wordpiece'"):
        load_vocabulary(mismatch)


def test_wordpiece_layer_packs_the_python_ids_with_the_vocabulary_special_ids(chinese_vocab_path):
    from albert_keras.tokenization import AlbertTokenizer

    vocabulary = load_vocabulary(chinese_vocab_path)
    tokenizer = AlbertTokenizer(vocabulary, sequence_length=24)
    texts = [t for t in hard_strings(300, seed=3)]
    got = tokenizer(texts)
    for row, text in enumerate(texts):
        ids = vocabulary.encode(text)[:22]
        expected = [101] + ids + [102]
        assert got["token_ids"][row].numpy().tolist() == expected + [0] * (24 - len(expected)), repr(text)
        assert got["padding_mask"][row].numpy().sum() == len(expected)
    pair = tokenizer((["我爱北京。"], ["Hello, World!"]))
    a, b = vocabulary.encode("我爱北京。"), vocabulary.encode("Hello, World!")
    expected = [101] + a + [102] + b + [102]
    assert pair["token_ids"][0].numpy().tolist()[: len(expected)] == expected
    assert pair["segment_ids"][0].numpy().tolist()[: len(expected)] == [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_wordpiece_layer_offsets_and_config_round_trip(chinese_vocab_path):
    from albert_keras.tokenization import AlbertTokenizer

    vocabulary = load_vocabulary(chinese_vocab_path, lowercase=False)
    tokenizer = AlbertTokenizer(vocabulary, sequence_length=16)
    text = "　Café 北京\u00a0欢迎你！"
    ids, starts, ends = tokenizer.tokenize_with_offsets([text])
    assert (ids[0].numpy().tolist(), starts[0].numpy().tolist(), ends[0].numpy().tolist()) == tuple(
        list(x) for x in vocabulary.encode_with_offsets(text)
    )
    config = tokenizer.get_config()
    assert config["vocabulary_kind"] == "wordpiece" and config["lowercase"] is False
    again = AlbertTokenizer.from_config(json.loads(json.dumps(config)))
    assert again.vocabulary.kind == "wordpiece" and again.lowercase is False
    np.testing.assert_array_equal(again(["Café 北京"])["token_ids"], tokenizer(["Café 北京"])["token_ids"])


def test_pretrained_directory_keeps_a_wordpiece_vocabulary(chinese_vocab_path, tmp_path):
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling import AlbertClassifier
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained
    from albert_keras.tokenization.vocabulary import read_tokenizer_settings

    vocabulary = load_vocabulary(chinese_vocab_path)
    config = AlbertConfig(vocab_size=vocabulary.vocabulary_size(), embedding_size=8, hidden_size=16,
                          num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, hidden_act="relu")
    base = save_pretrained(AlbertEncoder(config), tmp_path / "base", vocabulary=vocabulary)
    assert os.path.isfile(os.path.join(base, "vocab.txt")) and not os.path.exists(os.path.join(base, "spiece.model"))
    assert read_tokenizer_settings(base)["kind"] == "wordpiece"
    classifier = AlbertClassifier.from_pretrained(base, labels=["负面", "正面"], sequence_length=16)
    assert classifier.preprocessor.tokenizer.vocabulary.kind == "wordpiece"
    logits = classifier.predict(["这部电影很好看。", "太差了"], verbose=0)
    assert logits.shape == (2, 2)
    out = classifier.save_pretrained(tmp_path / "classifier")
    assert open(os.path.join(out, "vocab.txt"), "rb").read() == vocabulary.data
    assert read_tokenizer_settings(out) == {"kind": "wordpiece", "lowercase": True, "sequence_length": 16}


def _calls_outside_tokenization():
    """`(file, line, what)` for every place outside `tokenization/` that opens a vocabulary itself."""
    opening_calls = {"load_sentencepiece", "SentencePieceProcessor", "read_wordpiece_vocab", "WordPieceModel"}
    vocabulary_names = ("spiece.model", "vocab.txt", "vocab_chinese.txt", "30k-clean.model", ".model")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "tokenization":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in opening_calls and name != "SentencePieceProcessor":
                found.append((path.name, node.lineno, name))
            if name == "SentencePieceProcessor" and any(k.arg == "model_file" for k in node.keywords):
                found.append((path.name, node.lineno, "SentencePieceProcessor(model_file=...)"))
            if name in ("Load", "LoadFromFile"):
                found.append((path.name, node.lineno, name))
            if name in ("open", "copyfile", "read_bytes", "GFile"):
                text = ast.unparse(node)
                if any(v in text for v in vocabulary_names) or "spm" in text:
                    found.append((path.name, node.lineno, text))
    return found


def test_load_vocabulary_is_the_only_place_a_vocabulary_file_is_opened():
    assert _calls_outside_tokenization() == []
