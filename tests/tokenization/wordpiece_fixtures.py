"""Test helpers for WordPiece: a BERT-Chinese-layout vocabulary built here, and hard strings.

Other tests (the in-graph WordPiece tokenizer, `load_vocabulary`) import these, so that every
WordPiece test runs on the same vocabulary and the same strings as the parity tests.
"""

import os
import random

# Common Chinese characters (a few hundred, each once). The vocabulary gets each alone and with
# "##", as BERT-Chinese has.
CJK_CHARS = "".join(dict.fromkeys(
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可"
    "她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三"
    "已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女"
    "问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由"
    "却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路"
    "期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八"
    "特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花"
    "快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程"
))
# Rare characters (CJK extension B, a compatibility ideograph) the vocabulary also has.
RARE_CJK = ("\U00020000", "\u4dae", "\uf900", "\u8c48")  # U+F900 is NFD-equivalent to U+8C48
ENGLISH_PIECES = (
    "the", "un", "##aff", "##able", "hello", "world", "mask", "cls", "play", "##ing", "##ed",
    "##er", "##ly", "new", "york", "data", "##base", "token", "##izer", "al", "##bert", "straße",
    "cafe", "café", "naive", "##ive", "σας", "σ", "ς", "##σ", "##ς", "ολα", "οδος", "ᄒ", "##ᅡ",
    "##ᆫ", "한", "ok", "ab", "##cd", "xy", "iphone", "2020", "##00", "10", "100",
    # Cased entries, so that do_lower_case=False has something to find.
    "The", "Hello", "World", "MASK", "##S", "New", "York", "Café", "ΟΔΟΣ", "##ΟΣ",
)
PUNCTUATION = tuple("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + (
    "，", "。", "！", "？", "；", "：", "、", "（", "）", "《", "》", "·", "¿", "¡", "«", "»",
)


def make_chinese_style_vocab(path_or_dir, duplicate=True, unicode_line_separators=True):
    """Write a vocabulary in BERT-Chinese's layout and return its path.

    Layout: `[PAD]`=0, `[unused1]`..`[unused99]`=1..99, `[UNK]`=100, `[CLS]`=101, `[SEP]`=102,
    `[MASK]`=103, `<S>`, `<T>`, then punctuation, digits, single letters, the CJK characters,
    English and other pieces, then every character again with `##`. In the middle (between the
    CJK characters and the English pieces) are a U+2028 line and a `##`+U+2028 line (read as
    `" "` and `"##"`), and, with `duplicate`, a second `"中"` line (ALBERT's reader gives every
    later token an id one below its line number).

    Args:
        path_or_dir: a file path, or an existing directory (the file is `vocab.txt` in it).
        duplicate: add the repeated `"中"` line.
        unicode_line_separators: add the U+2028 and `##`+U+2028 lines.

    Returns:
        The path written (`str`).

    Example:
    >>> path = make_chinese_style_vocab(tmp_path)  # doctest: +SKIP
    >>> read_wordpiece_vocab(open(path, "rb").read())[100:104]  # doctest: +SKIP
    ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
    """
    path = os.fspath(path_or_dir)
    if os.path.isdir(path):
        path = os.path.join(path, "vocab.txt")
    lines = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)]
    lines += ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "<T>"]
    lines += list(PUNCTUATION) + [str(d) for d in range(10)]
    lines += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    lines += list(CJK_CHARS) + list(RARE_CJK)
    if unicode_line_separators:
        lines += ["\u2028", "##\u2028"]
    if duplicate:
        lines.append("中")
    lines += list(ENGLISH_PIECES)
    singles = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    lines += ["##" + c for c in singles + list(CJK_CHARS) + list(RARE_CJK)]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return path


# Fragments hard strings are built from: everything the WordPiece normalization treats specially.
HARD_FRAGMENTS = (
    # whitespace the cleaner turns into spaces, and what str.split() still splits on
    " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2009", "\u3000", "\u2028", "\u2029", "\u202f",
    # dropped: NUL, U+FFFD, Cc, Cf (zero-width, BOM, soft hyphen, bidi marks)
    "\x00", "\ufffd", "\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x1c", "\x1f", "\x7f", "\x85",
    "\u200b", "\u200c", "\u200d", "\u200e", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0001",
    # accents, combining marks (also a lone one), case with context, expansions
    "Crème", "brûlée", "naïve", "Ångström", "Café", "cafe\u0301", "e\u0301", "\u0301", "a\u0308\u0323",
    "ΟΔΟΣ", "ΣΑΣ.", "Σ", "όλα", "Σ'Α", "İstanbul", "ß", "ẞ", "Straße", "ǅ", "Ǆ", "ﬁ", "Ω", "Å",
    "\u1fef", "\u1fee", "≠", "\u037e", "한", "한국어", "ｶﾀｶﾅ", "カタカナ", "مُحَمَّد", "क़", "ที่", "𝐀𝐁",
    # full-width forms, CJK punctuation, quotes, dashes, ellipsis
    "ＡＢＣ１２３", "！", "，", "。", "？", "、", "“", "”", "‘", "’", "「", "」", "…", "—", "–", "·",
    # emoji and symbols
    "😀", "👍🏽", "❤️", "👨\u200d👩\u200d👧", "🇩🇪", "™", "©", "²", "½", "$", "€", "^", "`",
    # CJK beyond the basic block, compatibility ideographs
    "\U00020000", "\U0002a6d6", "\u4dae", "\uf900", "\ufa2d", "\U0002f800", "\u3007", "\u2f00",
    # literal special tokens, punctuation runs, digits
    "[MASK]", "[CLS]", "[UNK]", "[mask]", "##", "###s", "!!!???", "...", "--", "((()))", "@#$%",
    "2020", "10,000", "3.14", "100%",
    # English pieces the vocabulary can and cannot cut
    "unaffable", "Unaffable", "playing", "The", "the", "New York", "database", "tokenizer",
    "ALBERT", "albert", "hello", "world", "xyz", "qqqq", "iPhone",
)


def _long_words(rng):
    length = rng.choice([199, 200, 201, 250, 399, 400, 401])
    return rng.choice([
        "a" * length,
        "ab" * (length // 2) + "a" * (length % 2),
        "é" * length,
        ("e\u0301" * length)[:length],  # NFD: the mark is dropped, so the word gets shorter
        "İ" * length,
    ])


def hard_strings(n, seed=0):
    """Yield `n` deterministic strings mixing Chinese, English and every hard case.

    The first strings are fixed edge cases (empty, whitespace only, lone marks, long words); the
    rest are random mixtures of `HARD_FRAGMENTS`, runs of `CJK_CHARS` and English words, with
    random separators (or none, so that fragments touch).

    Args:
        n: how many strings.
        seed: the random seed; the same `(n, seed)` always gives the same strings.

    Yields:
        `str`.

    Example:
    >>> strings = list(hard_strings(1000, seed=0))  # doctest: +SKIP
    """
    fixed = [
        "", " ", "\t\n\r", "\u3000\u00a0\u2028", "\x00\ufffd\u200b", "\u0301", "\u0301abc",
        "[MASK]", "a" * 200, "a" * 201, "中" * 300, "ΟΔΟΣ ΟΔΟΣ.", "unaffable", "中文，ok！",
        "Hello, World! 你好，世界。", "naïve café", "\u2028中\u2028", "a\x00b\u200bc", "x" * 401,
    ]
    rng = random.Random(seed)
    words = ["hello", "world", "the", "data", "new", "york", "token", "player", "played", "unable"]
    for index in range(n):
        if index < len(fixed):
            yield fixed[index]
            continue
        parts = []
        for _ in range(rng.randint(1, 14)):
            roll = rng.random()
            if roll < 0.45:
                parts.append(rng.choice(HARD_FRAGMENTS))
            elif roll < 0.7:
                parts.append("".join(rng.choice(CJK_CHARS) for _ in range(rng.randint(1, 8))))
            elif roll < 0.97:
                word = rng.choice(words)
                parts.append(word.capitalize() if rng.random() < 0.3 else word)
            else:
                parts.append(_long_words(rng))
            if rng.random() < 0.6:
                parts.append(rng.choice([" ", " ", "  ", "\t", "\u00a0", "\u3000", ""]))
        yield "".join(parts)
