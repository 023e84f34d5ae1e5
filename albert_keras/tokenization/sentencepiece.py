"""ALBERT's SentencePiece vocabulary: training, the official text normalization, tokenization.

ALBERT's English models use a unigram SentencePiece model with fixed special ids
(`<pad>`=0, `<unk>`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4) and normalise every line before
tokenizing it (`preprocess_text`). This module provides:

- `train_sentencepiece` (in `albert_keras.tokenization.training`): train such a model from
  files or strings, deterministically.
- `preprocess_text` (Python) and `preprocess_text_tf` (in-graph, TensorFlow + tensorflow-text),
  which agree exactly, character for character.
- `load_sentencepiece`, `sentencepiece_checksum`, `tokenize_for_albert` (with the official
  digit-comma re-encoding) and id conversion.
- `AlbertTokenizer` (in `albert_keras.tokenization.layer`), a Keras layer that does all of it
  in-graph.

Importing this module does not import TensorFlow, so data-generation worker processes that only
need `preprocess_text` and `tokenize_for_albert` start fast.
"""

import functools
import hashlib
import os
import re
import sys
import unicodedata

from albert_keras.errors import AlbertInputError

PAD_ID = 0
UNK_ID = 1
CLS_ID = 2
SEP_ID = 3
MASK_ID = 4
PAD_PIECE = "<pad>"
UNK_PIECE = "<unk>"
CLS_PIECE = "[CLS]"
SEP_PIECE = "[SEP]"
MASK_PIECE = "[MASK]"
SPECIAL_PIECES = (PAD_PIECE, UNK_PIECE, CLS_PIECE, SEP_PIECE, MASK_PIECE)
SPECIAL_IDS = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)
# The pieces the released 30k-clean.model was trained with as user-defined symbols (ids 5-12):
# SentencePiece always cuts them out as single pieces.
OFFICIAL_USER_DEFINED_SYMBOLS = ("(", ")", '"', "-", ".", "\u2013", "\u00a3", "\u20ac")
SPIECE_UNDERLINE = "\u2581"


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------


def preprocess_text(text, lowercase=True):
    """ALBERT's text normalization, in Python.

    The steps of the official `tokenization.preprocess_text`, in its order:
    1. strip and collapse whitespace: `" ".join(text.split())` (Python's whitespace set,
       `str.isspace`, which includes NBSP, U+2000-U+200A, U+3000, U+001C-U+001F, U+0085);
    2. replace ``` `` ``` and `''` with `"`. The official ALBERT script does not do this, but
       XLNet's `preprocess_text` and the Hugging Face `AlbertTokenizer` do, so text normalised here
       tokenizes like the Hugging Face tokenizer. We follow them deliberately;
    3. Unicode NFKD (folds compatibility characters such as "ﬁ" -> "fi", splits Hangul into jamo);
    4. drop every character with a non-zero canonical combining class (`unicodedata.combining`):
       accents are always stripped, as in the official script;
    5. lowercase with `str.lower()` if `lowercase` (the English models are uncased).

    Control characters other than whitespace are kept, as in the official script.
    `preprocess_text_tf` gives the same result in-graph.

    Args:
        text: a `str` (or UTF-8 `bytes`; invalid bytes become U+FFFD).
        lowercase: lowercase the result.

    Returns:
        The normalised `str`.

    Example:
    >>> preprocess_text("  Crème\\u00a0Brûlée  ``ﬁne''  ")
    'creme brulee "fine"'
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    outputs = " ".join(text.split())
    outputs = outputs.replace("``", '"').replace("''", '"')
    # ASCII has no decompositions and no combining marks: skip the slow steps (same result).
    if not outputs.isascii():
        outputs = unicodedata.normalize("NFKD", outputs)
        outputs = _combining_regex().sub("", outputs)
    if lowercase:
        outputs = outputs.lower()
    return outputs


@functools.lru_cache(maxsize=None)
def _combining_codepoints():
    return tuple(c for c in range(sys.maxunicode + 1) if unicodedata.combining(chr(c)))


@functools.lru_cache(maxsize=None)
def _combining_regex():
    """A Python regex matching exactly the characters `unicodedata.combining` flags."""
    # Faster than testing `unicodedata.combining` character by character.
    ranges = []
    for c in _combining_codepoints():
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    parts = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{parts}]+")


def _regex_class(codepoints):
    """An RE2 character class matching exactly `codepoints` (sorted ints), as compact ranges."""
    parts = []
    start = previous = None
    for codepoint in list(codepoints) + [None]:
        if start is not None and codepoint == previous + 1:
            previous = codepoint
            continue
        if start is not None:
            parts.append(
                f"\\x{{{start:x}}}" if start == previous else f"\\x{{{start:x}}}-\\x{{{previous:x}}}"
            )
        start = previous = codepoint
    return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _normalization_patterns():
    """RE2 classes for Python's whitespace and combining characters, from the running Python.

    RE2's `\\s` is ASCII-only and `\\p{Mn}` is not the same set as "non-zero combining class"
    (it includes U+FE0F, Thai vowels and other ccc=0 marks, and misses some Mc characters), so
    we build the exact sets Python uses; the in-graph normalization then agrees with
    `preprocess_text` character for character.
    """
    whitespace = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    return _regex_class(whitespace), _regex_class(_combining_codepoints())


@functools.lru_cache(maxsize=None)
def _lowercase_gaps():
    """Characters that `tf.strings.lower` (ICU) lowercases differently from Python's `str.lower`.

    ICU in TensorFlow may know an older Unicode version than the running Python: with TF 2.21 and
    Python 3.11 (Unicode 14) these are the ~40 capitals added in Unicode 14 (Vithkuqi, ...), which
    ICU leaves as they are. Found once by asking TensorFlow; `preprocess_text_tf` maps them itself.

    Returns:
        Two sorted int32 lists: the code points and their Python lowercase code points.
    """
    import tensorflow as tf

    cased = [
        c for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c < 0xE000 and len(chr(c).lower()) == 1 and chr(c).lower() != chr(c)
    ]
    with tf.init_scope():  # eager even when first called while tracing a tf.function
        lowered = tf.strings.lower(tf.constant([chr(c) for c in cased]), encoding="utf-8").numpy()
    gaps = [(c, ord(chr(c).lower())) for c, got in zip(cased, lowered) if got.decode() != chr(c).lower()]
    return [c for c, _ in gaps], [lower for _, lower in gaps]


def _lower_utf8(x):
    """`str.lower` for a 1-D string tensor: ICU's `tf.strings.lower` plus two fixes."""
    import tensorflow as tf

    keys, values = _lowercase_gaps()
    if keys:
        chars = tf.strings.unicode_decode(x, "UTF-8")
        flat = chars.flat_values
        keys_t = tf.constant(keys, tf.int32)
        index = tf.minimum(tf.searchsorted(keys_t, flat), len(keys) - 1)
        found = tf.equal(tf.gather(keys_t, index), flat)
        flat = tf.where(found, tf.gather(tf.constant(values, tf.int32), index), flat)
        x = tf.strings.unicode_encode(chars.with_flat_values(flat), "UTF-8")
    # tf.strings.lower(encoding="utf-8") stops at the first NUL byte (it treats the string as a C
    # string), so lowercase the NUL-separated parts and join them back with NULs.
    parts = tf.strings.lower(tf.strings.split(x, sep="\x00"), encoding="utf-8")
    joined = tf.strings.reduce_join(parts + "\x00", axis=-1)
    length = tf.strings.length(joined) - 1
    return tf.strings.substr(joined, tf.zeros_like(length), length)


def preprocess_text_tf(strings, lowercase=True):
    """ALBERT's text normalization in-graph: `preprocess_text` as TensorFlow ops.

    Uses `tf.strings.regex_replace` (RE2) with the exact whitespace and combining-mark sets of
    Python, `tensorflow_text.normalize_utf8(..., "NFKD")` and `tf.strings.lower(encoding="utf-8")`
    (corrected where ICU's Unicode version lags Python's). Invalid UTF-8 becomes U+FFFD first.
    For every assigned code point the result equals `preprocess_text`'s (tested exhaustively).
    Works eagerly, in `tf.function`, `tf.data.Dataset.map` and SavedModels (the graph needs
    tensorflow-text's ops registered at load time: `import tensorflow_text`).

    Args:
        strings: a string tensor (any shape) or something convertible to one.
        lowercase: lowercase the result.

    Returns:
        A string tensor of the same shape.

    Example:
    >>> preprocess_text_tf(["  Crème\u00a0Brûlée  ``ﬁne'' "]).numpy()[0].decode()
    'creme brulee "fine"'
    """
    import tensorflow as tf
    import tensorflow_text as tf_text

    whitespace, combining = _normalization_patterns()
    x = tf.convert_to_tensor(strings, dtype=tf.string)
    shape = tf.shape(x)
    x = tf.reshape(x, [-1])
    x = tf.strings.unicode_transcode(
        x, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD,
        replace_control_characters=False,
    )
    x = tf.strings.regex_replace(x, f"^{whitespace}+|{whitespace}+$", "")
    x = tf.strings.regex_replace(x, f"{whitespace}+", " ")
    x = tf.strings.regex_replace(x, "``|''", '"')
    x = tf_text.normalize_utf8(x, "NFKD")
    x = tf.strings.regex_replace(x, f"{combining}+", "")
    if lowercase:
        x = _lower_utf8(x)
    return tf.reshape(x, shape)


# ---------------------------------------------------------------------------------------------
# Loading and checking a SentencePiece model
# ---------------------------------------------------------------------------------------------


def _read_model_bytes(spm_model):
    if isinstance(spm_model, (bytes, bytearray)):
        return bytes(spm_model)
    path = os.fspath(spm_model)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: SentencePiece model not found") from None
    except IsADirectoryError:
        raise AlbertInputError(f"{path}: is a directory, not a SentencePiece .model file") from None


def check_albert_special_ids(sp, name="SentencePiece model"):
    """Raise `AlbertInputError` unless `sp` has ALBERT's special pieces at ids 0-4.

    Args:
        sp: a `sentencepiece.SentencePieceProcessor`.
        name: how to name the model in the error (e.g. its path).

    Example:
    >>> check_albert_special_ids(load_sentencepiece("spiece.model"))  # doctest: +SKIP
    """
    size = sp.get_piece_size()
    for piece_id, piece in zip(SPECIAL_IDS, SPECIAL_PIECES):
        actual = sp.id_to_piece(piece_id) if piece_id < size else None
        if actual != piece:
            raise AlbertInputError(
                f"{name}: id {piece_id} is {actual!r}, ALBERT needs {piece!r} "
                f"(<pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4); train it with "
                f"`albert-keras train-tokenizer`"
            )


def load_sentencepiece(spm_model, check_special_ids=True, name=None):
    """Load a SentencePiece model from a path or serialized proto bytes.

    Args:
        spm_model: path to a `.model` file, or its bytes.
        check_special_ids: require ALBERT's ids (`check_albert_special_ids`).
        name: how errors name the model (default: its path).

    Returns:
        A `sentencepiece.SentencePieceProcessor`.

    Raises:
        AlbertInputError: the file is missing, is not a SentencePiece model, or has other ids.

    Example:
    >>> sp = load_sentencepiece("spiece.model")  # doctest: +SKIP
    >>> sp.piece_to_id("[CLS]")  # doctest: +SKIP
    2
    """
    import sentencepiece

    proto = _read_model_bytes(spm_model)
    if name is None:
        name = "SentencePiece model" if isinstance(spm_model, (bytes, bytearray)) else os.fspath(spm_model)
    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(proto)
    except Exception as error:  # sentencepiece raises RuntimeError/OSError with C++ messages
        raise AlbertInputError(f"{name}: not a valid SentencePiece model ({error})") from None
    if check_special_ids:
        check_albert_special_ids(sp, name)
    return sp


def sentencepiece_checksum(spm_model):
    """The SHA-256 hex digest of a SentencePiece model file (or its bytes).

    Data manifests record it, so a pipeline can refuse records made with another vocabulary.

    Example:
    >>> len(sentencepiece_checksum(b"abc"))
    64
    """
    return hashlib.sha256(_read_model_bytes(spm_model)).hexdigest()


# ---------------------------------------------------------------------------------------------
# Tokenization
# ---------------------------------------------------------------------------------------------


def tokenize_for_albert(sp, text):
    """Pieces for `text` exactly as the official `FullTokenizer.tokenize` makes them.

    Like the official tokenizer this does NOT normalise: call `preprocess_text` first. It
    reproduces the official digit-comma handling under Python 3: a piece longer than one
    character ending in "," after a digit is re-encoded without the comma and its "▁", then ","
    is appended (the official branch meant to drop the new leading "▁" never runs in Python 3,
    so e.g. "0," becomes "▁", "0", ","). The Hugging Face slow tokenizer differs here: its copy of
    that branch compares str with str and runs, giving "0", ",". We follow the official code.

    Args:
        sp: a `sentencepiece.SentencePieceProcessor`.
        text: normalised text.

    Returns:
        A list of piece strings.

    Example:
    >>> tokenize_for_albert(sp, preprocess_text("10,000, ok"))  # doctest: +SKIP
    ['▁1', '▁', '0', ',', '00', '▁', '0', ',', '▁ok']
    """
    pieces = []
    for piece in sp.encode_as_pieces(text):
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            pieces.extend(sp.encode_as_pieces(piece[:-1].replace(SPIECE_UNDERLINE, "")))
            pieces.append(",")
        else:
            pieces.append(piece)
    return pieces


def convert_pieces_to_ids(sp, pieces):
    """Map pieces to ids (`sp.piece_to_id`; unknown pieces map to `UNK_ID`).

    Example:
    >>> convert_pieces_to_ids(sp, ["[CLS]", "▁the", "[SEP]"])  # doctest: +SKIP
    [2, 14, 3]
    """
    return [sp.piece_to_id(piece) for piece in pieces]


def convert_ids_to_pieces(sp, ids):
    """Map ids to pieces (`sp.id_to_piece`).

    Example:
    >>> convert_ids_to_pieces(sp, [2, 3])  # doctest: +SKIP
    ['[CLS]', '[SEP]']
    """
    return [sp.id_to_piece(int(piece_id)) for piece_id in ids]


def digit_comma_expansions(sp):
    """The official digit-comma rewrite as a table: `{piece id: [ids it becomes]}`.

    The rewrite of `tokenize_for_albert` depends only on the piece, so it is a fixed expansion of
    the ids whose piece ends in "<digit>,". Computed once per processor (cached on it); used by
    `encode_for_albert` and by the in-graph `AlbertTokenizer`.

    Example:
    >>> digit_comma_expansions(sp)  # doctest: +SKIP
    {812: [13, 44, 15]}
    """
    cached = getattr(sp, "_albert_digit_comma", None)
    if cached is not None:
        return cached
    expansions = {}
    for piece_id in range(sp.get_piece_size()):
        if sp.is_control(piece_id) or sp.is_unknown(piece_id):
            continue
        piece = sp.id_to_piece(piece_id)
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            pieces = sp.encode_as_pieces(piece[:-1].replace(SPIECE_UNDERLINE, "")) + [","]
            expansions[piece_id] = [sp.piece_to_id(p) for p in pieces]
    try:
        sp._albert_digit_comma = expansions
    except AttributeError:  # a processor type that takes no attributes: just recompute next time
        pass
    return expansions


def encode_for_albert(sp, text, lowercase=True):
    """`preprocess_text`, then ids exactly as `tokenize_for_albert` + `convert_pieces_to_ids`.

    Works on ids directly (`sp.encode_as_ids` plus `digit_comma_expansions`), which is about
    twice as fast as going through piece strings.

    Example:
    >>> encode_for_albert(sp, "The Café.")  # doctest: +SKIP
    [14, 1234, 9]
    """
    ids = sp.encode_as_ids(preprocess_text(text, lowercase))
    expansions = digit_comma_expansions(sp)
    if not expansions or not any(i in expansions for i in ids):
        return ids
    out = []
    for piece_id in ids:
        expansion = expansions.get(piece_id)
        if expansion is None:
            out.append(piece_id)
        else:
            out.extend(expansion)
    return out


# The official special-character set of `_is_start_piece_sp` (the apostrophe, `<`, `=` and `>` are
# not in it; the code also adds "€"/"£" as *bytes*, which never match a Python 3 str).
_START_SPECIAL_PIECES = frozenset('!"#$%&"()*+,-./:;?@[\\]^_`{|}~')
_START_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz") | _START_SPECIAL_PIECES


def is_start_piece(piece):
    """The official `_is_start_piece_sp` word-start test for one SentencePiece piece.

    A piece starts a new word if it starts with "▁" or "<", is one of the official punctuation
    characters, or contains any character outside a-z and that punctuation (so pieces with digits,
    apostrophes or non-ASCII letters are words of their own).

    Example:
    >>> is_start_piece("\u2581the"), is_start_piece("ing"), is_start_piece("99")
    (True, False, True)
    """
    return (
        piece.startswith(SPIECE_UNDERLINE)
        or piece.startswith("<")
        or piece in _START_SPECIAL_PIECES
        or not all(char.lower() in _START_CHARS for char in piece)
    )
