"""train_wordpiece: deterministic, BERT-Chinese layout, CJK characters kept, bad input refused."""

import collections

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.wordpiece import (
    WordPieceModel,
    basic_tokenize,
    is_chinese_char,
    read_wordpiece_vocab,
)
from albert_keras.tokenization.wordpiece_training import count_words, reserved_tokens, train_wordpiece
from tests.tokenization.wordpiece_fixtures import hard_strings

RARE = "\u9f98"  # a CJK character written exactly once into the corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wordpiece_corpus")
    lines = [text.replace("\n", " ").replace("\r", " ") for text in hard_strings(600, seed=7)]
    first = directory / "a.txt"
    second = directory / "b.txt"
    first.write_text("\n".join(lines[:300]) + "\n" + RARE + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[300:]), encoding="utf-8")  # no final newline
    return [str(first), str(second)]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    path = train_wordpiece(corpus, tmp_path_factory.mktemp("trained") / "vocab.txt", vocab_size=1500)
    with open(path, "rb") as f:
        return f.read()


def test_count_words_splits_like_the_tokenizer(corpus):
    expected = collections.Counter()
    for path in corpus:
        with open(path, encoding="utf-8", newline="") as f:
            for line in f:
                expected.update(basic_tokenize(line))
    assert count_words(corpus) == expected
    assert count_words(corpus, lowercase=False) != expected


def test_the_layout_puts_the_special_tokens_where_bert_chinese_has_them(trained):
    tokens = read_wordpiece_vocab(trained)
    assert tokens[:101] == reserved_tokens()[:101]
    assert tokens[:104] == reserved_tokens()
    assert len(tokens) == len(set(tokens)) <= 1500
    model = WordPieceModel(tokens)
    assert model.special_ids() == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert model.repeated_lines == ()
    assert trained.endswith(b"\n") and not trained.endswith(b"\n\n")


def test_every_cjk_character_is_kept_whole_and_with_its_continuation_form(corpus, trained):
    tokens = set(read_wordpiece_vocab(trained))
    cjk = {w for w in count_words(corpus) if len(w) == 1 and is_chinese_char(w)}
    assert len(cjk) > 300 and RARE in cjk
    assert all(c in tokens and "##" + c in tokens for c in cjk)


def test_the_trained_vocabulary_covers_its_corpus(corpus, trained):
    model = WordPieceModel(read_wordpiece_vocab(trained))
    ids = [i for path in corpus for i in model.encode(open(path, encoding="utf-8").read())]
    unk = model.special_ids()["[UNK]"]
    long_words = sum(len(w) > 200 for w in count_words(corpus).elements())
    assert ids.count(unk) <= long_words  # only words over the length limit are unknown
    assert model.tokenize("hello world the") == ["hello", "world", "the"]  # learned whole words


def test_training_is_deterministic(corpus, trained, tmp_path):
    again = train_wordpiece(corpus, tmp_path, vocab_size=1500)  # a directory: vocab.txt in it
    assert again == str(tmp_path / "vocab.txt")
    with open(again, "rb") as f:
        assert f.read() == trained


def test_min_cjk_count_drops_rare_characters_and_other_options(corpus, tmp_path):
    path = train_wordpiece(corpus, tmp_path / "v.txt", vocab_size=1500, min_cjk_count=2, num_unused=3,
                           lowercase=False)
    model = WordPieceModel.from_file(path, lowercase=False)
    assert RARE not in model and "##" + RARE not in model
    assert model.encode(RARE) == [model.special_ids()["[UNK]"]]
    assert model.special_ids() == {"[PAD]": 0, "[UNK]": 4, "[CLS]": 5, "[SEP]": 6, "[MASK]": 7}
    assert "Hello" in model  # cased training keeps uppercase


def _refused(tmp_path, match, inputs, **kwargs):
    output = tmp_path / "out" / "vocab.txt"
    with pytest.raises(AlbertInputError, match=match) as info:
        train_wordpiece(inputs, output, **kwargs)
    assert "\n" not in str(info.value)
    assert not output.exists() and not (output.parent.exists() and list(output.parent.iterdir()))


def test_bad_input_is_one_line_and_writes_nothing(corpus, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\u3000\n\x00\n", encoding="utf-8")
    _refused(tmp_path, "have no words", [str(blank)], vocab_size=1000)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    _refused(tmp_path, r"latin1\.txt:2: not valid UTF-8", [str(latin)], vocab_size=1000)
    _refused(tmp_path, "input file not found", [str(tmp_path / "missing.txt")], vocab_size=1000)
    _refused(tmp_path, "no input files", [], vocab_size=1000)
    too_small = r"vocab_size 500 is too small: the 104 reserved tokens, \d+ CJK"
    _refused(tmp_path, too_small, corpus, vocab_size=500)
    _refused(tmp_path, "vocab_size must be a positive int", corpus, vocab_size=0)
    _refused(tmp_path, "min_cjk_count", corpus, vocab_size=1500, min_cjk_count=0)
