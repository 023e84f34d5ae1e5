import os
import unicodedata

import pytest

from albert_keras.tokenization import sentencepiece as tokenization
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization import (
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_PIECES,
    UNK_ID,
    convert_ids_to_pieces,
    encode_for_albert,
    load_sentencepiece,
    preprocess_text,
    sentencepiece_checksum,
    tokenize_for_albert,
    train_sentencepiece,
)

# Strings that exercise every step of the normalization. Used by the in-graph agreement tests too.
HARD_STRINGS = [
    "",
    " ",
    "\t\n\r\x0b\x0c",
    "The Quick  Brown\tFox.\n",
    "  leading and trailing  ",
    "Crème brûlée, naïve café, Ångström, São Paulo, Dvořák, façade",
    "ÀÉÎÕÜ àéîõü ÇçÑñ",
    "Ελληνικά ΟΔΟΣ Σίσυφος",
    "Русский текст Ёлка й",
    "中文字符测试，汉字。日本語のテキスト、カタカナ ｶﾀｶﾅ",
    "한국어 텍스트 한글",
    "emoji 😀👍🏽 ❤️ 👨‍👩‍👧 🇩🇪",
    "10,000, ok 1999, was 3,14 1,000,000.",
    "control\x00chars\x01\x07\x1b\x7f here",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    "nbsp\u00a0thin\u2009em\u2003ideographic\u3000narrow\u202fline\u2028para\u2029nel\x85ogham\u1680",
    "zero\u200bwidth\u200cjoiners\u200d\ufeffbom",
    "Turkish İstanbul ıi IĞÜŞÖÇ",
    "German Straße GROSS ẞ",
    "ligatures ﬁne ﬂow ﬀ Ǆ ǅ ǆ Ĳ",
    "``quoted'' and ''twice'' and ``` and '''",
    "superscript x² ½ ① ™ ℌ ㎏ Ⅻ",
    "fullwidth ＡＢＣ１２３！",
    "Arabic العربية مُحَمَّد",
    "Hebrew עִבְרִית",
    "Hindi हिन्दी क़",
    "Thai ภาษาไทย ที่",
    "combining a\u0301 e\u0300\u0323 lone\u0308 \u0301start",
    "Vietnamese Tiếng Việt",
    "math 𝐀𝐁𝐂 𝔸 ∑ ≠ ≤",
    "mixed\r\nline\rendings",
    "dots … ellipsis – en — em",
    "¨ spacing diaeresis ´ acute ¸ cedilla",
    "Ǳ ǲ ǳ ΐ ΰ ﬓ",
    "\ufffd replacement",
]


def test_preprocess_text_follows_the_official_steps():
    assert preprocess_text("  The  Quick\tBrown\n") == "the quick brown"
    assert preprocess_text("The Quick", lowercase=False) == "The Quick"
    assert preprocess_text("Crème brûlée") == "creme brulee"
    assert preprocess_text("ﬁne ①") == "fine 1"
    assert preprocess_text("a\u00a0\u3000b") == "a b"
    assert preprocess_text("``hi'' ok") == '"hi" ok'
    assert preprocess_text("") == ""
    # NFKD splits Hangul syllables into jamo (U+1100 block), which survive (combining class 0).
    assert preprocess_text("한") == "\u1112\u1161\u11ab"
    # NFKD splits İ into I + combining dot above, which is stripped like any accent.
    assert preprocess_text("İ") == "i"
    # NFKD runs after whitespace collapsing, as in the official script, so a spacing diaeresis
    # (NFKD: space + U+0308) leaves a space; SentencePiece collapses it later anyway.
    assert preprocess_text("a ¨b") == "a  b"
    assert preprocess_text(b"caf\xc3\xa9") == "cafe"


def official_preprocess_text(inputs, lower):
    """The official ALBERT steps written out literally, plus the ``/'' replacement we add."""
    outputs = " ".join(inputs.strip().split())
    outputs = outputs.replace("``", '"').replace("''", '"')
    outputs = unicodedata.normalize("NFKD", outputs)
    outputs = "".join([c for c in outputs if not unicodedata.combining(c)])
    return outputs.lower() if lower else outputs


def test_preprocess_text_equals_the_literal_official_steps_on_every_code_point():
    # Guards our shortcuts (ASCII fast path, regex for combining marks).
    import sys

    chars = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    for start in range(0, len(chars), 128):  # blocks of 128 code points (block 0 is pure ASCII)
        text = "A" + "b ".join(chars[start : start + 128]) + "``"
        for lower in (True, False):
            assert preprocess_text(text, lower) == official_preprocess_text(text, lower), hex(start)
    for text in HARD_STRINGS:
        assert preprocess_text(text) == official_preprocess_text(text, True)


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_preprocess_text_output_properties(text):
    for lowercase in (True, False):
        out = preprocess_text(text, lowercase)
        assert not any(unicodedata.combining(c) for c in out)
        assert "``" not in out and "''" not in out and "\t" not in out and "\n" not in out
        assert out == unicodedata.normalize("NFKD", out) or not lowercase
        if lowercase:
            assert out == out.lower()


def test_load_sentencepiece_errors(tmp_path, spm_model_path):
    with pytest.raises(AlbertInputError, match="nope.model: SentencePiece model not found"):
        load_sentencepiece(tmp_path / "nope.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"\x00\x01 not a model")
    with pytest.raises(AlbertInputError, match="garbage.model: not a valid SentencePiece model"):
        load_sentencepiece(garbage)
    # A model with other special ids (SentencePiece's defaults: <unk>=0, <s>=1, </s>=2).
    import sentencepiece

    other = tmp_path / "other"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(["hello world abc"] * 50), model_prefix=str(other), vocab_size=20,
        hard_vocab_limit=False, minloglevel=2,
    )
    with pytest.raises(AlbertInputError, match=r"other.model: id 0 is '<unk>', ALBERT needs '<pad>'"):
        load_sentencepiece(str(other) + ".model")
    assert load_sentencepiece(str(other) + ".model", check_special_ids=False).id_to_piece(0) == "<unk>"
    assert load_sentencepiece(open(spm_model_path, "rb").read()).get_piece_size() == 1000


def test_checksum(spm_model_path):
    import hashlib

    data = open(spm_model_path, "rb").read()
    assert sentencepiece_checksum(spm_model_path) == hashlib.sha256(data).hexdigest()
    assert sentencepiece_checksum(data) == sentencepiece_checksum(spm_model_path)


def test_digit_comma_quirk_matches_the_official_rule(spm_model_path):
    sp = load_sentencepiece(spm_model_path)
    # Find text whose raw pieces include "<digit>," pieces, then check the official rewrite.
    text = preprocess_text("10,000, ok 1999, was 5, 77, 12,345,678, 3,")
    raw = sp.encode_as_pieces(text)
    quirky = [p for p in raw if len(p) > 1 and p[-1] == "," and p[-2].isdigit()]
    pieces = tokenize_for_albert(sp, text)
    if not quirky:
        assert pieces == raw
    expected = []
    for piece in raw:
        if piece in quirky:
            expected += sp.encode_as_pieces(piece[:-1].replace("▁", "")) + [","]
        else:
            expected.append(piece)
    assert pieces == expected
    assert "".join(pieces).replace("▁", "") == text.replace(" ", "")


def test_digit_comma_quirk_with_a_model_that_has_digit_comma_pieces(tmp_path):
    # A vocabulary holding pieces like "99,": the case the official code rewrites. Verified
    # against the official script with the 30k model: "99," -> "▁9", "9", "," (the leading "▁"
    # that re-encoding adds is kept, because the Python 3 branch meant to drop it is dead code).
    import random

    rng = random.Random(0)
    words = ["ok", "was", "and", "the"]
    texts = [
        " ".join(f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}, {rng.choice(words)}" for _ in range(8))
        for _ in range(300)
    ]
    path = train_sentencepiece(
        iter(texts), tmp_path / "digits.model", vocab_size=100, user_defined_symbols=(),
        character_coverage=1.0,
    )
    sp = load_sentencepiece(path)
    text = "10,000, ok 1999, was 73, 38,000"
    raw = sp.encode_as_pieces(text)
    quirky = [p for p in raw if len(p) > 1 and p.endswith(",") and p[-2].isdigit()]
    assert quirky, raw
    pieces = tokenize_for_albert(sp, text)
    assert not any(len(p) > 1 and p.endswith(",") and p[-2].isdigit() for p in pieces)
    assert "".join(pieces).replace("▁", "") == text.replace(" ", "")
    assert len(pieces) > len(raw)
    for piece in quirky:
        assert sp.encode_as_pieces(piece[:-1].replace("▁", ""))[0].startswith("▁")
    expected = []
    for piece in raw:
        expected += (sp.encode_as_pieces(piece[:-1].replace("▁", "")) + [","]) if piece in quirky else [piece]
    assert pieces == expected
    assert convert_ids_to_pieces(sp, encode_for_albert(sp, text.upper())) == pieces


# ---------------------------------------------------------------------------------------------
# In-graph normalization: must equal preprocess_text exactly.
# ---------------------------------------------------------------------------------------------


def _tf_preprocess(strings, lowercase):
    from albert_keras.tokenization import preprocess_text_tf

    return [s.decode("utf-8") for s in preprocess_text_tf(strings, lowercase).numpy().reshape(-1)]


@pytest.mark.parametrize("lowercase", [True, False])
def test_preprocess_text_tf_agrees_on_hard_strings(lowercase):
    expected = [preprocess_text(s, lowercase) for s in HARD_STRINGS]
    assert _tf_preprocess(HARD_STRINGS, lowercase) == expected
    # Any shape, and inside a tf.function / tf.data pipeline.
    import tensorflow as tf

    from albert_keras.tokenization import preprocess_text_tf

    grid = tf.reshape(tf.constant(HARD_STRINGS[:34]), [2, 17])
    assert preprocess_text_tf(grid, lowercase).shape == (2, 17)
    assert _tf_preprocess(grid, lowercase) == expected[:34]
    assert preprocess_text_tf(HARD_STRINGS[3], lowercase).numpy().decode() == expected[3]
    function = tf.function(lambda x: preprocess_text_tf(x, lowercase))
    assert [s.decode() for s in function(tf.constant(HARD_STRINGS)).numpy()] == expected
    dataset = tf.data.Dataset.from_tensor_slices(HARD_STRINGS).map(lambda x: preprocess_text_tf(x, lowercase))
    assert [s.decode() for s in dataset.as_numpy_iterator()] == expected


def test_preprocess_text_tf_agrees_on_every_code_point():
    # Every assigned code point, alone and between cased letters (so lowercasing and whitespace
    # collapsing see context), in both modes.
    import sys

    chars = [
        chr(c) for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"
    ]
    strings = [f"Ab{c}Cd {c}" for c in chars]
    for lowercase in (True, False):
        got = _tf_preprocess(strings, lowercase)
        mismatches = [
            (hex(ord(c)), g) for c, s, g in zip(chars, strings, got) if g != preprocess_text(s, lowercase)
        ]
        assert not mismatches, mismatches[:20]


def test_preprocess_text_tf_agrees_on_random_mixtures():
    import random

    pool = "".join(HARD_STRINGS) + "ΣΣσς ΑΣ. ΟΔΟΣ's \u0345\u0399\u03a3\u0342 `'`''``'"
    rng = random.Random(1234)
    strings = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for lowercase in (True, False):
        assert _tf_preprocess(strings, lowercase) == [preprocess_text(s, lowercase) for s in strings]


def test_preprocess_text_tf_agrees_on_invalid_utf8():
    raw = [b"\xff", b"ab\xc3", b"\xe2\x82x", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xafZ", b"\x80\x80 A"]
    assert _tf_preprocess(raw, True) == [preprocess_text(b) for b in raw]


def _parity_texts_and_models(spm_model_path, tmp_path):
    """What both official-parity tests compare on: the corpus, the hard strings and digit-comma
    texts, with the test model and one whose "<digit>," pieces make the official rewrite fire."""
    import random

    from albert_keras.corpus import embedded_corpus

    rng = random.Random(0)
    digit_texts = [
        " ".join(f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}, word{rng.randint(0, 9)}" for _ in range(3))
        for _ in range(400)
    ]
    digits = train_sentencepiece(iter(digit_texts), tmp_path / "d.model", vocab_size=100, character_coverage=1.0)
    texts = [s for doc in embedded_corpus() for s in doc] + HARD_STRINGS + digit_texts[:100]
    texts = [t.replace("``", '"').replace("''", '"') for t in texts]  # our one deliberate addition
    return texts, (spm_model_path, digits)


@pytest.mark.skipif(
    not os.environ.get("ALBERT_OFFICIAL_DIR"),
    reason="set ALBERT_OFFICIAL_DIR to a google-research/ALBERT checkout to compare with its tokenization.py",
)
def test_matches_the_official_tokenization_module(spm_model_path, tmp_path):
    # Optional parity check against the real official code (never vendored).
    import types

    sys_modules = __import__("sys").modules
    sys_modules.setdefault("tensorflow_hub", types.ModuleType("tensorflow_hub"))  # imported, unused here
    __import__("sys").path.insert(0, os.environ["ALBERT_OFFICIAL_DIR"])
    import tokenization as official

    texts, models = _parity_texts_and_models(spm_model_path, tmp_path)
    rewritten = 0
    for model in models:
        full = official.FullTokenizer(vocab_file=None, do_lower_case=True, spm_model_file=str(model))
        sp = load_sentencepiece(model)
        for text in texts:
            rewritten += full.tokenize(official.preprocess_text(text, lower=True)) != sp.encode_as_pieces(
                official.preprocess_text(text, lower=True)
            )
            normalized = official.preprocess_text(text, lower=True)
            assert preprocess_text(text) == normalized
            assert tokenize_for_albert(sp, normalized) == full.tokenize(normalized)
            assert encode_for_albert(sp, text) == full.convert_tokens_to_ids(full.tokenize(normalized))
    assert rewritten > 0  # the digit-comma rewrite was exercised


class _ComparesLikeBytes(str):
    """`"▁"` that, like google-research/ALBERT's bytes constant under Python 3, equals no str."""

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = str.__hash__


def test_matches_the_official_tokenization_as_shipped_by_tf_models_official(spm_model_path, tmp_path, monkeypatch):
    # CI runs this in its second environment (the `official` extra). tf-models-official ships
    # official/nlp/tools/tokenization.py, whose preprocess_text and encode_pieces are forked from
    # google-research/ALBERT's tokenization.py (their docstrings say so). preprocess_text is the same
    # code. encode_pieces differs in one place: the original's SPIECE_UNDERLINE is bytes, so under
    # Python 3 its two `piece[0] ... SPIECE_UNDERLINE` comparisons never match a str and the branch
    # that drops the new leading "▁" of a digit-comma rewrite is dead; the fork's is a str, so the
    # branch runs (as in Hugging Face's slow tokenizer). Giving the fork a "▁" that compares like
    # bytes runs exactly the original's Python 3 code path, which ours must equal.
    official = pytest.importorskip("official.nlp.tools.tokenization", reason="needs the `official` extra")
    texts, models = _parity_texts_and_models(spm_model_path, tmp_path)
    fork_only = rewritten = compared = 0
    for model in models:
        sp = load_sentencepiece(model)
        for text in texts:
            normalized = official.preprocess_text(text, lower=True)
            assert preprocess_text(text) == normalized
            fork = official.encode_pieces(sp, normalized)
            with monkeypatch.context() as patch:
                patch.setattr(official, "SPIECE_UNDERLINE", _ComparesLikeBytes(official.SPIECE_UNDERLINE))
                original = official.encode_pieces(sp, normalized)
                original_ids = official.encode_ids(sp, normalized)
            assert tokenize_for_albert(sp, normalized) == original, text
            assert encode_for_albert(sp, text) == original_ids, text
            rewritten += original != sp.encode_as_pieces(normalized)
            fork_only += fork != original
            compared += 1
    assert compared == 2 * len(texts) and rewritten > 0  # the digit-comma rewrite was exercised
    assert fork_only > 0  # and so was the branch where the fork and the original differ
    print(f"official tokenization parity: {compared} texts, 0 differences, rewrite on {rewritten}, "
          f"fork-only branch on {fork_only}")
