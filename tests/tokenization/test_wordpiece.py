"""WordPiece in Python: the official ALBERT reading of vocab.txt, ids, special ids and offsets."""

import subprocess
import sys
import unicodedata

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tokenization import wordpiece
from albert_keras.tokenization.wordpiece import WordPieceModel, basic_tokenize, read_wordpiece_vocab
from tests.tokenization.wordpiece_fixtures import hard_strings, make_chinese_style_vocab


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    return make_chinese_style_vocab(tmp_path_factory.mktemp("wordpiece"))


@pytest.fixture(scope="module")
def tokens(vocab_path):
    with open(vocab_path, "rb") as f:
        return read_wordpiece_vocab(f.read(), vocab_path)


# --- reading vocab.txt --------------------------------------------------------------------------


def test_reading_splits_on_newline_only_and_takes_the_first_column():
    data = "[PAD]\nfoo 17\n\u2028\n##\u2028\n  \n\nbar\r\n中\n".encode("utf-8")
    assert read_wordpiece_vocab(data) == ["[PAD]", "foo", " ", "##", " ", " ", "bar", "中"]
    # splitlines() would have split the U+2028 lines too, shifting every later id.
    assert len(data.decode("utf-8").splitlines()) == 10


def test_a_final_newline_adds_no_token_but_a_last_line_without_one_counts():
    assert read_wordpiece_vocab(b"a\nb\n") == ["a", "b"]
    assert read_wordpiece_vocab(b"a\nb") == ["a", "b"]
    assert read_wordpiece_vocab(b"a\nb\n\n") == ["a", "b", " "]
    assert read_wordpiece_vocab(b"") == []
    assert read_wordpiece_vocab("x\u2028y\nz") == ["x", "z"]  # str input; U+2028 ends a column


def test_bad_bytes_name_the_file_and_line():
    with pytest.raises(AlbertInputError, match=r"^my_vocab\.txt: line 3: not valid UTF-8") as info:
        read_wordpiece_vocab(b"[PAD]\n[UNK]\n\xff\xfe\n", source="my_vocab.txt")
    assert "\n" not in str(info.value)


def test_the_chinese_style_fixture_has_bert_chinese_special_ids(tokens):
    model = WordPieceModel(tokens)
    assert model.special_ids() == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    assert tokens[1] == "[unused1]" and tokens[99] == "[unused99]"
    assert " " in tokens and "##" in tokens  # the U+2028 lines, read as the official reader does


# --- ids ----------------------------------------------------------------------------------------


def test_a_repeated_token_keeps_its_first_id_and_later_ids_follow_the_layout(tokens):
    first = tokens.index("中")
    repeat = tokens.index("中", first + 1)
    albert = WordPieceModel(tokens)
    line = WordPieceModel(tokens, id_layout="line")
    assert albert.repeated_lines == line.repeated_lines == ((repeat, "中"),)
    assert albert.token_to_id("中") == line.token_to_id("中") == first
    after = tokens[repeat + 1]
    assert line.token_to_id(after) == repeat + 1
    assert albert.token_to_id(after) == repeat  # official load_vocab: vocab[token] = len(vocab)
    assert albert.vocabulary_size == len(tokens) - 1 and line.vocabulary_size == len(tokens)
    assert line.id_to_token(repeat) == "中" and albert.id_to_token(repeat) == after
    with pytest.raises(AlbertInputError, match="outside"):
        albert.id_to_token(albert.vocabulary_size)


def test_a_tiny_vocabulary_by_hand():
    model = WordPieceModel(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "中", ","])
    assert model.tokenize("Unaffable, 中!") == ["un", "##aff", "##able", ",", "中", "[UNK]"]
    assert model.encode("Unaffable, 中!") == [5, 6, 7, 9, 8, 1]
    # Greedy longest match first: "ab" + "##c", not "a" + "##bc".
    greedy = WordPieceModel(["[UNK]", "a", "ab", "##b", "##bc", "##c"])
    assert greedy.tokenize("abc") == ["ab", "##c"]
    assert greedy.tokenize("abcd") == ["[UNK]"]  # an unmatchable rest makes the whole word [UNK]


# (text, lowercase ids, cased ids) on the fixture vocabulary, with ALBERT's id layout.
HAND_CASES = [
    ("中文，ok！", [201, 263, 138, 609, 140], [201, 263, 138, 609, 140]),
    ("Unaffable", [573, 574, 575], [100]),
    ("[MASK]", [128, 578, 130], [128, 621, 130]),  # a literal "[MASK]" is cut, as officially
    ("ΟΔΟΣ", [604], [626]),  # lowered as one token: final sigma
    ("ΣΑΣ", [598], [100]),
    ("한", [605, 606, 607], [608]),  # NFD (only when lowercasing) makes jamo
    ("\uf900", [569], [568]),  # a compatibility ideograph: NFD makes it U+8C48
    ("naïve", [596], [100]),  # accents are stripped only when lowercasing
    ("The Café", [572, 594], [618, 625]),
    ("你好\u3000世界", [213, 247, 367, 448], [213, 247, 367, 448]),  # U+3000 is whitespace
    ("a\u200bb\ufffd", [610], [610]),  # zero-width space and U+FFFD are dropped, not split on
    ("ok\u2028ok", [609, 609], [609, 609]),  # U+2028 survives cleaning, then splits
    ("中“文”", [201, 100, 263, 100], [201, 100, 263, 100]),  # curly quotes are not in the vocab
    ("", [], []),
    (" \t\n\u00a0\x00", [], []),
]


@pytest.mark.parametrize("text,lower_ids,cased_ids", HAND_CASES)
def test_hand_cases_on_the_fixture_vocabulary(tokens, text, lower_ids, cased_ids):
    assert WordPieceModel(tokens).encode(text) == lower_ids
    assert WordPieceModel(tokens, lowercase=False).encode(text) == cased_ids
    assert WordPieceModel(tokens).encode(text.encode("utf-8")) == lower_ids


def test_the_word_length_limit_counts_normalized_characters(tokens):
    model = WordPieceModel(tokens)
    a, cont_a, unk = model.token_to_id("a"), model.token_to_id("##a"), model.token_to_id("[UNK]")
    assert model.encode("a" * 200) == [a] + [cont_a] * 199
    assert model.encode("a" * 201) == [unk]
    # 300 characters, but accent stripping leaves 150: under the limit.
    e, cont_e = model.token_to_id("e"), model.token_to_id("##e")
    assert model.encode("e\u0301" * 150) == [e] + [cont_e] * 149
    assert WordPieceModel(tokens, max_input_chars_per_word=400).encode("a" * 400)[:2] == [a, cont_a]


def test_special_ids_are_read_never_assumed():
    model = WordPieceModel(["x", "[MASK]", "[SEP]", "[CLS]", "[UNK]"])
    assert model.special_ids() == {"[PAD]": None, "[UNK]": 4, "[CLS]": 3, "[SEP]": 2, "[MASK]": 1}
    with pytest.raises(AlbertInputError, match=r"lacks \[CLS\], \[MASK\]"):
        WordPieceModel(["[UNK]", "[SEP]"]).special_ids()
    with pytest.raises(AlbertInputError, match=r"no '\[UNK\]' token"):
        WordPieceModel(["[PAD]", "[CLS]"])
    with pytest.raises(AlbertInputError, match="id_layout"):
        WordPieceModel(["[UNK]"], id_layout="hf")


def test_from_file_and_a_missing_file(vocab_path, tmp_path):
    model = WordPieceModel.from_file(vocab_path, lowercase=False)
    assert model.encode("The") == [618] and not model.lowercase
    with pytest.raises(AlbertInputError, match="not found"):
        WordPieceModel.from_file(tmp_path / "nope.txt")


def test_character_classes_match_the_official_definitions_on_every_code_point():
    """Each code point's class in the translate tables, against the official predicates as
    documented (category tests one character at a time)."""
    clean, punct, punct_and_mn = wordpiece._tables()
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        cat = unicodedata.category(char)
        dropped = cp in (0, 0xFFFD) or (cat in ("Cc", "Cf") and char not in "\t\n\r")
        cjk = any(lo <= cp <= hi for lo, hi in wordpiece.CJK_RANGES)
        is_punct = cat.startswith("P") or any(
            lo <= cp <= hi for lo, hi in ((33, 47), (58, 64), (91, 96), (123, 126))
        )
        assert (cp in clean and clean[cp] is None) == dropped, hex(cp)
        assert (cp in clean and clean[cp] is not None) == cjk, hex(cp)
        assert (cp in punct) == is_punct, hex(cp)
        assert (cp in punct_and_mn and punct_and_mn[cp] is None) == (cat == "Mn"), hex(cp)
        assert wordpiece.is_chinese_char(char) == cjk


def test_basic_tokenize_by_hand():
    assert basic_tokenize("Héllo,\u3000世界! [MASK]") == ["hello", ",", "世", "界", "!", "[", "mask", "]"]
    assert basic_tokenize("Héllo,\u3000世界!", lowercase=False) == ["Héllo", ",", "世", "界", "!"]
    # Lowered as one whitespace token before the punctuation split: "." does not end the word
    # for final sigma, so the first sigma stays medial (splitting first would give "οδος").
    assert basic_tokenize("ΟΔΟΣ.ΟΔΟΣ") == ["οδοσ", ".", "οδος"]
    assert basic_tokenize("a\u1fefb") == ["a", "`", "b"]  # NFD makes U+1FEF a backtick
    assert basic_tokenize("a\u1fefb", lowercase=False) == ["a\u1fefb"]


def test_importing_the_module_does_not_import_tensorflow():
    code = (
        "import sys; import albert_keras.tokenization.wordpiece as w; "
        "w.WordPieceModel(['[UNK]', 'a']).encode('a'); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- offsets ------------------------------------------------------------------------------------


def _spans(model, text):
    ids, starts, ends = model.encode_with_offsets(text)
    return [text[s:e] for s, e in zip(starts, ends)]


def test_offsets_by_hand(tokens):
    model = WordPieceModel(tokens)
    assert _spans(model, " Unaffable 中") == ["Un", "aff", "able", "中"]
    assert _spans(model, "e\u0301") == ["e\u0301"]  # the dropped accent joins its letter
    assert _spans(model, "\u0301ok") == ["ok"]  # a leading lone mark belongs to no piece
    assert _spans(model, "한") == ["한", "한", "한"]  # three jamo from one character
    assert _spans(model, "a\u200bb") == ["a\u200bb"]  # a dropped character inside its piece
    assert _spans(model, "\u200bab\x00") == ["ab"]
    assert _spans(model, "中“文”") == ["中", "“", "文", "”"]
    assert _spans(model, "x" + "é" * 250 + "!") == ["x" + "é" * 250, "!"]  # [UNK]: the whole word
    assert model.encode_with_offsets("ok") == ([609], [0], [2])


def _n(text, lowercase):
    """The docstring's normalization of a slice: its basic words joined, final sigma as sigma."""
    return "".join(basic_tokenize(text, lowercase)).replace("ς", "σ")


def check_normalizes_back(model, text):
    ids, starts, ends = model.encode_with_offsets(text)
    assert ids == model.encode(text)
    expected = []  # what each piece stands for: its text without "##", or the word it replaced
    pieces = iter(model.tokenize(text))
    for word in basic_tokenize(text, model.lowercase):
        piece = next(pieces)
        if piece == model.unk_token:  # never a real piece: "[" always splits off a word
            expected.append(word)
            continue
        covered = piece
        expected.append(piece)
        while covered != word:
            body = next(pieces)[2:]
            expected.append(body)
            covered += body
    assert len(expected) == len(ids)
    i = 0
    while i < len(ids):
        assert 0 <= starts[i] < ends[i] <= len(text)
        if i:
            assert starts[i] >= starts[i - 1], (text, i)
        j, end = i + 1, ends[i]
        while j < len(ids) and starts[j] < end:  # pieces from a shared original character
            end = max(end, ends[j])
            j += 1
        assert _n(text[starts[i]:end], model.lowercase) == "".join(expected[i:j]).replace("ς", "σ"), (
            text, i, j, starts[i:j], ends[i:j],
        )
        i = j


@pytest.mark.parametrize("lowercase", [True, False])
def test_every_piece_span_normalizes_back_to_the_piece(tokens, lowercase):
    model = WordPieceModel(tokens, lowercase=lowercase)
    for text in hard_strings(1500, seed=3):
        check_normalizes_back(model, text)


# --- parity with the official code --------------------------------------------------------------


def test_matches_the_official_tokenization_as_shipped_by_tf_models_official(tmp_path):
    """tf-models-official's `official/nlp/tools/tokenization.py` is BERT's copy of the code
    ALBERT forked: the same cleaning, splitting and WordPiece, but a 400-character word limit
    (ALBERT: 200) and BERT's `load_vocab` (stripped whole lines, line-number ids, the LAST of a
    repeated token). So ids are compared on a vocabulary without a repeated token, where both
    readers give every reachable token the same id, and tokens on one with a repeat."""
    official = pytest.importorskip("official.nlp.tools.tokenization")
    plain = make_chinese_style_vocab(tmp_path / "plain.txt", duplicate=False)
    repeated = make_chinese_style_vocab(tmp_path / "repeated.txt")
    strings = list(hard_strings(3000, seed=11))
    compared = 0
    for lowercase in (True, False):
        reference = official.FullTokenizer(plain, do_lower_case=lowercase)
        for limit in (400, 200):
            # ALBERT's WordpieceTokenizer default is 200; set it on BERT's copy to compare.
            reference.wordpiece_tokenizer.max_input_chars_per_word = limit
            model = WordPieceModel.from_file(plain, lowercase=lowercase, max_input_chars_per_word=limit)
            for text in strings:
                expected = reference.convert_tokens_to_ids(reference.tokenize(text))
                assert model.encode(text) == expected, (lowercase, limit, text)
                compared += 1
        reference = official.FullTokenizer(repeated, do_lower_case=lowercase)
        reference.wordpiece_tokenizer.max_input_chars_per_word = 200
        model = WordPieceModel.from_file(repeated, lowercase=lowercase)
        for text in strings:
            assert model.tokenize(text) == reference.tokenize(text), (lowercase, text)
    assert compared == 4 * len(strings)
