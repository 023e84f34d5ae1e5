"""Piece offsets into the original text: they normalize back to the pieces; in-graph == Python."""

import random

import pytest
import tensorflow as tf

from albert_keras.corpus import embedded_corpus
from albert_keras.tokenization import AlbertTokenizer, UNK_ID, encode_for_albert, load_sentencepiece
from albert_keras.tokenization.offsets import encode_with_offsets, normalize_with_offsets
from albert_keras.tokenization.sentencepiece import preprocess_text
from tests.tokenization.test_sentencepiece import HARD_STRINGS

# Fragments the random strings are built from: every kind of character the normalization touches.
FRAGMENTS = [
    "Crème", "brûlée", "naïve", "Ångström", "e\u0301", "\u0301", "a\u0308\u0323", "ﬁ", "ﬂow", "Ǆ", "ǅ",
    "Ĳ", "ﬓ", "ΐ", "İ", "ı", "ẞ", "Straße", "ΟΔΟΣ", "Σ", "中文", "字", "。", "，", "日本語", "ｶﾀｶﾅ",
    "한국어", "한", "😀", "👍🏽", "❤️", "👨\u200d👩\u200d👧", "🇩🇪", "``", "''", "`", "'", "```", "'''",
    '"', "10,000,", "1,999,", "3,", "73,", "0,", ",", "12,345,678", "²", "½", "①", "™", "㎏",
    "ＡＢＣ１２３", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2009", "\u3000", "\u2028", "\x85",
    "\x00", "\x01", "\x07", "\x1b", "\x7f", "\x1c", "\u200b", "\u200d", "\ufeff", "\ufffd", "…",
    "–", "—", "¨", "´", "¸", "مُحَمَّد", "עִבְרִית", "क़", "ที่", "𝐀𝐁", "≠", "(", ")", "-", ".", "£", "€",
]


def random_strings(count, seed=0):
    rng = random.Random(seed)
    words = [w for doc in embedded_corpus() for s in doc for w in s.split()]
    strings = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(rng.choice(FRAGMENTS) if rng.random() < 0.5 else rng.choice(words))
            if rng.random() < 0.6:
                parts.append(rng.choice([" ", " ", "  ", "\t", "\u00a0", ""]))
        strings.append("".join(parts))
    return strings


@pytest.fixture(scope="module")
def strings():
    return HARD_STRINGS + random_strings(2000)


def _n(sp, text):
    """The docstring's N: SentencePiece's normalizer over `preprocess_text`, "▁" removed, final
    sigma read as sigma (the one context-dependent lowering)."""
    return sp.normalize(preprocess_text(text)).replace("\u2581", "").replace("ς", "σ")


def check_normalizes_back(sp, text, ids, starts, ends):
    assert len(ids) == len(starts) == len(ends)
    for i in range(len(ids)):
        assert 0 <= starts[i] <= ends[i] <= len(text)
        if i:
            assert starts[i] >= starts[i - 1] and ends[i] >= ends[i - 1], (text, i)
    unknown = iter(  # what SentencePiece could not cut, normalized by its own normalizer
        sp.normalize(p.surface) for p in sp.encode(preprocess_text(text), out_type="proto").pieces
        if p.id == UNK_ID
    )
    texts = [next(unknown) if i == UNK_ID else sp.id_to_piece(i) for i in ids]
    groups = []  # [start, end, concatenated piece texts]
    for start, end, piece in zip(starts, ends, texts):
        piece = piece.replace("\u2581", "").replace("ς", "σ")
        if groups and start < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][2] += piece
        else:
            groups.append([start, end, piece])
    for start, end, pieces in groups:
        assert _n(sp, text[start:end]) == pieces, (text, text[start:end], pieces)


def test_normalize_with_offsets_spans():
    normalized, starts, ends = normalize_with_offsets("  Ａ  ﬁx``e\u0301''  ")
    assert normalized == preprocess_text("  Ａ  ﬁx``e\u0301''  ") == 'a fix"e"'
    assert list(zip(starts, ends)) == [(2, 3), (3, 5), (5, 6), (5, 6), (6, 7), (7, 9), (9, 11), (11, 13)]
    assert normalize_with_offsets("   ") == ("", [], [])


def test_offsets_example_slices(spm_model_path):
    sp = load_sentencepiece(spm_model_path)
    text = "  The  CAFÉ\u00a0``opened''  "
    ids, starts, ends = encode_with_offsets(sp, text)
    assert ids == encode_for_albert(sp, text)
    slices = [text[s:e] for s, e in zip(starts, ends)]
    assert "".join(slices).replace("``", '"').replace("''", '"') == "TheCAFÉ\"opened\""
    # A piece keeps the accent that normalization removed, and never includes the space before it.
    assert all(not s[:1].isspace() for s in slices)


@pytest.mark.parametrize("model", ["spm", "digits"])
def test_every_piece_normalizes_back_and_ids_are_official(model, strings, spm_model_path, digit_model_path):
    sp = load_sentencepiece(spm_model_path if model == "spm" else digit_model_path)
    for text in strings:
        ids, starts, ends = encode_with_offsets(sp, text)
        assert ids == encode_for_albert(sp, text), text
        check_normalizes_back(sp, text, ids, starts, ends)
    # The lowercase=False path keeps its own alignment (cased text, same normalization otherwise).
    for text in strings[:200]:
        normalized, starts, ends = normalize_with_offsets(text, lowercase=False)
        assert normalized == preprocess_text(text, lowercase=False)
        assert len(starts) == len(normalized)


@pytest.mark.parametrize("model", ["spm", "digits"])
def test_in_graph_equals_python(model, strings, spm_model_path, digit_model_path):
    path = spm_model_path if model == "spm" else digit_model_path
    sp = load_sentencepiece(path)
    tokenizer = AlbertTokenizer(path, sequence_length=16, use_fast_tokenizer=model == "digits")
    run = tf.function(tokenizer.tokenize_with_offsets)
    ids, starts, ends = (t.to_list() for t in run(tf.constant(strings)))
    rewritten = 0
    for k, text in enumerate(strings):
        expected = encode_with_offsets(sp, text)
        assert (ids[k], starts[k], ends[k]) == tuple(expected), text
        rewritten += len(ids[k]) - len(sp.encode_as_ids(preprocess_text(text)))
    if model == "digits":
        assert rewritten > 100  # the digit-comma rewrite really ran on many pieces
    # Equal to the layer's own ids, too.
    layer_ids = tokenizer.tokenize(tf.constant(strings[:50])).to_list()
    assert layer_ids == ids[:50]
