"""BERT WordPiece tokenization (the Chinese ALBERT vocabularies) as TensorFlow ops, and in TFLite.

The ids are those of google-research/ALBERT's `FullTokenizer` without an spm model (the
`albert_keras.tokenization.wordpiece` reference): clean (drop U+0000, U+FFFD and Cc/Cf controls
except tab/newline/CR; whitespace and Zs become spaces), a space around every CJK ideograph,
`str.split()`, per word `lower()` + NFD + drop Mn (when lowercasing), split off punctuation,
greedy longest-match WordPiece with `##`, a word over 200 characters is one `[UNK]`.

Why not tensorflow-text's `BertTokenizer` / `FastBertNormalizer` as they are: their normalization
differs from the official rules on 8,027 code points (controls become spaces, U+FFFD is kept,
NFKC case folding instead of `lower()` + NFD, a different Unicode version), and
`FastWordpieceTokenizer` counts the word limit in bytes. So both routes here use their own
per-code-point table, computed from Python's `unicodedata` and `str.lower` (the reference's
own rules) when the tokenizer is built:

* exact route (default): `unicode_decode`, table lookups by `searchsorted`, then the words go to
  `FastWordpieceTokenizer(no_pretokenization=True)`: one word in, its pieces out (the greedy
  longest match; the 200-character rule is applied here, in characters). Greek final sigma
  (the one context-dependent lowering in `str.lower`) is decided from the neighbouring
  characters, as Python does. Gives character offsets into the original strings.
* TFLite route (`tflite_compatible=True`): only tensorflow-text ops LiteRT registers
  (`FastBertNormalize`, `WhitespaceTokenize`, `FastWordpieceTokenize`). The same table is
  compiled into a `FastBertNormalizer` model (its flatbuffer and darts-clone trie are written
  here, because tensorflow-text's builder only takes a bool): each code point maps to its
  official output, with spaces around CJK ideographs and punctuation, so only splitting on
  spaces is left. What a per-code-point map cannot express differs from the official ids:
  a capital sigma always lowers to the medial form, and the word limit is 200 bytes (equal to
  the official 200 characters for ASCII words).

Measured (tensorflow-text 2.21, Python 3.11's Unicode 14.0; `hard_strings(3000, seed=1)` of
tests/tokenization/wordpiece_fixtures.py on its BERT-Chinese-layout vocabulary, against
`WordPieceModel.encode` / `encode_with_offsets`): exact route 3000/3000 equal ids and equal
offsets; TFLite route 2900/3000 equal ids (96.7%), and every one of the 100 that differ holds a
capital sigma (U+03A3) (those strings are sigma-heavy on purpose; without
U+03A3 agreement was 100%). Code point by code point (each of the 1,112,063 between two
letters), the TFLite route's normalizer and whitespace split give the reference's words for
all of them (a test). tests/tokenization/test_wordpiece_graph.py checks the same on other
seeds, including a LiteRT run of the converted route.

Both routes decompose one code point at a time, so they would differ from Python's whole-word
NFD only where canonical reordering moves a character the accent stripping keeps (a non-Mn
character with a combining class, such as the musical Mc symbols U+1D165, U+1D166, U+1D16D..
U+1D172, next to another); not seen in the measurements. Invalid UTF-8: the exact route decodes
it to U+FFFD, which cleaning drops (the reference drops invalid bytes when given bytes); the
TFLite route's normalizer turns each invalid byte into a space.
"""

import functools
import struct
import sys
import unicodedata

MAX_WORD_CHARS = 200  # google-research/ALBERT WordpieceTokenizer.max_input_chars_per_word
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
_CAPITAL_SIGMA, _FINAL_SIGMA = 0x3A3, 0x3C2
# Never in a word (dropped by cleaning): stands for "one [UNK]" and fills unusable vocab slots.
_UNMATCHABLE = "\ufffd"


# ---------------------------------------------------------------------------------------------
# The official rules, one code point at a time
# ---------------------------------------------------------------------------------------------


def _is_dropped(char):
    return char in ("\x00", "\ufffd") or (
        char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf")
    )


def _is_space(char):
    # Cleaning maps " ", tab, newline, CR and Zs to " "; `str.split()` then also splits at the
    # other Python whitespace that survives cleaning (U+2028, U+2029).
    return char in " \t\n\r" or unicodedata.category(char) == "Zs" or char.isspace()


def is_cjk(code_point):
    """Whether the official tokenizer puts spaces around `code_point` (`_is_chinese_char`).

    Example:
    >>> is_cjk(ord("中")), is_cjk(ord("あ"))
    (True, False)
    """
    return any(lo <= code_point <= hi for lo, hi in _CJK_RANGES)


def is_punctuation(char):
    """The official `_is_punctuation`: non-alphanumeric ASCII symbols and every Unicode P*.

    Example:
    >>> is_punctuation("$"), is_punctuation("。"), is_punctuation("a")
    (True, True, False)
    """
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _normalize_char(char, lowercase):
    if not lowercase:
        return char
    return "".join(c for c in unicodedata.normalize("NFD", char.lower()) if unicodedata.category(c) != "Mn")


def _ranges(flags):
    """`(starts, ends)` inclusive int lists of the runs of true code points in `flags`."""
    starts, ends = [], []
    for cp, flag in enumerate(flags):
        if flag:
            if ends and ends[-1] == cp - 1:
                ends[-1] = cp
            else:
                starts.append(cp)
                ends.append(cp)
    return starts, ends


@functools.lru_cache(maxsize=None)
def code_point_tables(lowercase=True):
    """Every code point's role in the official WordPiece path, as sorted arrays for the graph.

    Args:
        lowercase: the tokenizer's `do_lower_case`.

    Returns:
        dict of int lists: `drop`, `space`, `punct`, `cased`, `ignorable` as inclusive ranges
        (`<name>_starts`, `<name>_ends`; `punct` is over OUTPUT characters, `cased` and
        `ignorable` are Python's final-sigma classes of input characters), and `map_keys`,
        `map_starts`, `map_lengths`, `map_values`: code points whose output (lowercased, NFD,
        Mn dropped) is not themselves, with the output code points.

    Example:
    >>> tables = code_point_tables(True)
    >>> i = tables["map_keys"].index(ord("É"))
    >>> tables["map_values"][tables["map_starts"][i]]
    101
    """
    size = sys.maxunicode + 1
    drop, space, punct, cased, ignorable = (bytearray(size) for _ in range(5))
    keys, starts, lengths, values = [], [], [], []
    for cp in range(size):
        if 0xD800 <= cp <= 0xDFFF:  # never produced by UTF-8 decoding
            continue
        char = chr(cp)
        punct[cp] = is_punctuation(char)
        if _is_dropped(char):
            drop[cp] = 1
            continue
        if _is_space(char):
            space[cp] = 1
            continue
        out = _normalize_char(char, lowercase)
        if out != char:
            if any(_is_space(c) or _is_dropped(c) for c in out):  # never with Unicode 15/16
                raise AssertionError(f"U+{cp:04X} normalizes to a space or a dropped character")
            keys.append(cp)
            starts.append(len(values))
            lengths.append(len(out))
            values.extend(ord(c) for c in out)
        if lowercase and not is_cjk(cp):
            # Python's final-sigma context, probed through `str.lower` itself: a "stop" that is
            # cased makes a capital sigma after it final; an ignorable one is looked through.
            if (char + "\u03a3").lower()[-1] == "\u03c2":
                cased[cp] = 1
            elif ("A" + char + "\u03a3").lower()[-1] == "\u03c2":
                ignorable[cp] = 1
    tables = {"map_keys": keys, "map_starts": starts, "map_lengths": lengths, "map_values": values}
    for name, flags in (("drop", drop), ("space", space), ("punct", punct), ("cased", cased),
                        ("ignorable", ignorable)):
        tables[f"{name}_starts"], tables[f"{name}_ends"] = _ranges(flags)
    return tables


def wordpiece_vocab(tokens, unk_token="[UNK]"):
    """The vocabulary handed to `FastWordpieceTokenizer`: same ids, unusable entries replaced.

    A repeated token keeps its first id (as the official `load_vocab`), and a token holding a
    character that cleaning removes or splits at can never match; such slots get distinct
    placeholders that no word can match, so the builder accepts the list and ids stay put.

    Args:
        tokens: the vocabulary, id order.
        unk_token: must be in `tokens`.

    Example:
    >>> wordpiece_vocab(["[UNK]", "a", "a", " "])
    ['[UNK]', 'a', '\\ufffd2', '\\ufffd3']
    """
    from albert_keras.errors import AlbertInputError

    out, seen = [], set()
    for i, token in enumerate(tokens):
        # "##" alone never matches either ("#" is punctuation, a suffix is "##" plus something);
        # FastWordpieceTokenizer's builder warns about it.
        if not token or token == "##" or token in seen or any(_is_dropped(c) or _is_space(c) for c in token):
            out.append(f"{_UNMATCHABLE}{i}")
        else:
            out.append(token)
        seen.add(token)
    if unk_token not in seen:
        raise AlbertInputError(f"vocabulary: unknown token {unk_token!r} is not in the vocabulary")
    return out


# ---------------------------------------------------------------------------------------------
# FastBertNormalizer model with the official mapping (for the TFLite route)
# ---------------------------------------------------------------------------------------------


def darts_trie(keys_values):
    """A darts-clone double array (the unit layout tensorflow-text's trie wrapper reads).

    Written here because tensorflow-text exposes no trie builder to Python. Unit bits: label in
    0-7 (bit 31 set for a value unit), has-value 8, offset to the children from bit 10 (XOR
    addressing: child of `id` for byte `b` is `id ^ offset ^ b`; a value is the child for 0).
    """
    root = {}
    for key, value in keys_values:
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1
    search_from = 1
    bases = set()  # one parent per base, or a child of one would read as a child of the other
    pending = [(0, root)]
    while pending:
        node_id, node = pending.pop()
        labels = sorted(0 if label is None else label for label in node)
        slot = search_from
        while True:  # first fit: put the first label on a free slot, check the rest
            base = slot ^ labels[0]
            need = max(base ^ label for label in labels) + 1
            if need > len(units):
                units.extend([0] * (need - len(units) + 256))
                used.extend(bytearray(need - len(used) + 256))
            if base not in bases and all(not used[base ^ label] for label in labels):
                break
            slot += 1
            while slot < len(used) and (used[slot] or slot in bases):
                slot += 1
        while search_from < len(used) and (used[search_from] or search_from in bases):
            search_from += 1
        bases.add(base)
        offset = node_id ^ base
        if offset >= 1 << 21:  # the unit's 21-bit offset field; never reached for ~10k keys
            raise AssertionError("double array offset too large")
        units[node_id] |= offset << 10
        for label, child in node.items():
            child_id = base ^ (0 if label is None else label)
            used[child_id] = 1
            if label is None:
                units[node_id] |= 0x100
                units[child_id] = 0x80000000 | child
            else:
                units[child_id] |= label
                pending.append((child_id, child))
    return units


def normalizer_flatbuffer(lowercase, trie, data_for_zero, pool):
    """Serialize `FastBertNormalizerModel` (fast_bert_normalizer_model.fbs) by hand: one table
    with fields bool, [uint32], int32, [ubyte]; flatbuffers is not a dependency."""
    buf = bytearray(struct.pack("<I", 0))  # root offset, patched below
    vtable_at = len(buf)
    vtable_size, table_size = 4 + 2 * 4, 4 + 1 + 3 + 4 + 4 + 4
    buf += bytes(vtable_size)
    table_at = len(buf)
    buf += bytes(table_size)
    # table layout: soffset(4) | bool(1) pad(3) | trie uoffset(4) | int32(4) | pool uoffset(4)
    fields = {0: 4, 1: 8, 2: 12, 3: 16}
    struct.pack_into("<HH", buf, vtable_at, vtable_size, table_size)
    for index, offset in fields.items():
        struct.pack_into("<H", buf, vtable_at + 4 + 2 * index, offset)
    struct.pack_into("<i", buf, table_at, table_at - vtable_at)
    struct.pack_into("<B", buf, table_at + 4, int(bool(lowercase)))
    struct.pack_into("<i", buf, table_at + 12, data_for_zero)

    def vector(field_at, payload, count):
        while len(buf) % 4:
            buf.append(0)
        start = len(buf)
        buf.extend(struct.pack("<I", count))
        buf.extend(payload)
        struct.pack_into("<I", buf, field_at, start - field_at)

    vector(table_at + 8, struct.pack(f"<{len(trie)}I", *trie), len(trie))
    vector(table_at + 16, bytes(pool), len(pool))
    while len(buf) % 4:
        buf.append(0)
    struct.pack_into("<I", buf, 0, table_at)
    return bytes(buf)


@functools.lru_cache(maxsize=None)
def official_normalizer_model(lowercase=True):
    """A `tensorflow_text.FastBertNormalizer` model buffer with the official per-code-point rules.

    Each code point maps to: nothing (dropped controls, U+0000, U+FFFD), a space (whitespace),
    its output (lowercase + NFD + Mn dropped when `lowercase`), with a space before and after
    each CJK ideograph and each punctuation character of the output. A capital sigma maps to the
    medial form (no context in a per-code-point map).

    Args:
        lowercase: the tokenizer's `do_lower_case`.

    Returns:
        the flatbuffer bytes for `FastBertNormalizer(model_buffer=...)`.

    Example:
    >>> import tensorflow_text as tf_text  # doctest: +SKIP
    >>> tf_text.FastBertNormalizer(model_buffer=official_normalizer_model()).normalize(["Ａb,c"])  # doctest: +SKIP
    """
    tables = code_point_tables(bool(lowercase))
    drop = _flags(tables, "drop")
    space = _flags(tables, "space")
    punct = _flags(tables, "punct")
    mapped = {
        k: "".join(chr(v) for v in tables["map_values"][s : s + n])
        for k, s, n in zip(tables["map_keys"], tables["map_starts"], tables["map_lengths"])
    }
    pool, pool_at, entries, data_for_zero = bytearray(), {}, [], None
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if drop[cp]:
            out = ""
        elif space[cp]:
            out = " "
        else:
            out = "".join(f" {c} " if punct[ord(c)] else c for c in mapped.get(cp, chr(cp)))
            if is_cjk(cp):
                out = f" {out} "
        if out == chr(cp):
            continue
        data = 0x40000000
        if out:
            encoded = out.encode("utf-8")
            if encoded not in pool_at:
                pool_at[encoded] = len(pool)
                pool += encoded
            data |= len(encoded) | (pool_at[encoded] << 6)
        if cp == 0:
            data_for_zero = data
        else:
            entries.append((chr(cp).encode("utf-8"), data))
    return normalizer_flatbuffer(lowercase, darts_trie(entries), data_for_zero or 0, pool)


def _flags(tables, name):
    flags = bytearray(sys.maxunicode + 1)
    for lo, hi in zip(tables[f"{name}_starts"], tables[f"{name}_ends"]):
        flags[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    return flags


# ---------------------------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------------------------


def _in_ranges(values, starts, ends):
    """Whether each int32 value lies in one of the sorted inclusive ranges."""
    import tensorflow as tf

    if not starts:
        return tf.zeros_like(values, tf.bool)
    starts_t = tf.constant(starts, tf.int32)
    index = tf.searchsorted(starts_t, values, side="right") - 1
    safe = tf.maximum(index, 0)
    return (index >= 0) & (values <= tf.gather(tf.constant(ends, tf.int32), safe))


def _cjk(values):
    import tensorflow as tf

    found = tf.zeros_like(values, tf.bool)
    for lo, hi in _CJK_RANGES:
        found = found | ((values >= lo) & (values <= hi))
    return found


def _utf8_length(code_points):
    import tensorflow as tf

    return (1 + tf.cast(code_points >= 0x80, tf.int64) + tf.cast(code_points >= 0x800, tf.int64)
            + tf.cast(code_points >= 0x10000, tf.int64))


class WordPieceGraphTokenizer:
    """The official BERT/ALBERT WordPiece tokenization (`FullTokenizer` without spm) in-graph.

    Works eagerly, in `tf.function`, `tf.data.Dataset.map` and SavedModels (track it on a
    `tf.Module`); with `tflite_compatible=True` `tokenize` uses only ops LiteRT runs with
    tensorflow-text's registrar (see the module docstring for what that route cannot match).

    Args:
        tokens: the vocabulary as a list of `str`, in id order.
        lowercase: the official `do_lower_case` (True for every Chinese ALBERT).
        unk_token: the unknown token (must be in `tokens`).
        tflite_compatible: build `tokenize` from TFLite-convertible ops only.
        id_layout: as `WordPieceModel`'s: `"albert"` (a repeated token takes no id) or `"line"`.

    Example:
    >>> tokenizer = WordPieceGraphTokenizer(["[UNK]", "中", "hello", "##s", "!"])
    >>> tokenizer.tokenize(["Hellos 中!"]).to_list()
    [[2, 3, 1, 4]]
    >>> [t.to_list() for t in tokenizer.tokenize_with_offsets(["Hellos 中!"])]
    [[[2, 3, 1, 4]], [[0, 5, 7, 8]], [[5, 6, 8, 9]]]
    """

    def __init__(self, tokens, lowercase=True, unk_token="[UNK]", tflite_compatible=False, id_layout="albert"):
        import tensorflow as tf
        import tensorflow_text as tf_text

        self.lowercase = bool(lowercase)
        self.unk_token = unk_token
        self.tflite_compatible = bool(tflite_compatible)
        # "albert": the official load_vocab (a repeated line takes no id); "line": line numbers.
        self.tokens = list(dict.fromkeys(tokens)) if id_layout == "albert" else list(tokens)
        vocab = wordpiece_vocab(self.tokens, unk_token)
        self.unk_id = self.tokens.index(unk_token)
        self._tables = code_point_tables(self.lowercase)
        with tf.init_scope():
            # Words reach it already cut and checked against the 200-character rule; the byte
            # limit only has to let every such word through (4 bytes per character at most).
            self._wordpiece = tf_text.FastWordpieceTokenizer(
                vocab, token_out_type=tf.int32, unknown_token=unk_token, no_pretokenization=True,
                max_bytes_per_word=4 * MAX_WORD_CHARS + 4,
            )
            if self.tflite_compatible:
                self._normalizer = tf_text.FastBertNormalizer(model_buffer=official_normalizer_model(self.lowercase))
                self._whitespace = tf_text.WhitespaceTokenizer()
                self._tflite_wordpiece = tf_text.FastWordpieceTokenizer(
                    vocab, token_out_type=tf.int32, unknown_token=unk_token, no_pretokenization=True,
                    max_bytes_per_word=MAX_WORD_CHARS,
                )

    @property
    def vocabulary_size(self):
        """Number of ids."""
        return len(self.tokens)

    def tokenize(self, texts):
        """Ids of each text: an int32 `tf.RaggedTensor` `[B, None]` (`[None]` for a scalar).

        Args:
            texts: `[B]` strings (a tensor, a list of `str`, or a scalar string).

        Example:
        >>> WordPieceGraphTokenizer(["[UNK]", "a"]).tokenize(["a b"]).to_list()
        [[1, 0]]
        """
        import tensorflow as tf

        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        flat = tf.reshape(texts, [-1])
        ids = self._tflite_ids(flat) if self.tflite_compatible else self._exact(flat)[0]
        return ids[0] if scalar else ids

    def tokenize_with_offsets(self, texts):
        """`tokenize` plus each piece's span in the ORIGINAL texts, in characters (code points).

        A piece spans the original characters its output characters came from: from the first
        one's start to the last one's end (a whole character when a piece covers only part of
        what it became; `[UNK]` spans its whole word). Always the exact route (not TFLite).

        Returns:
            `(ids int32, starts int64, ends int64)`, `tf.RaggedTensor`s `[B, None]`.

        Example:
        >>> ids, starts, ends = WordPieceGraphTokenizer(["[UNK]", "e"]).tokenize_with_offsets(["  É"])
        >>> starts.to_list(), ends.to_list()
        ([[2]], [[3]])
        """
        import tensorflow as tf

        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        out = self._exact(tf.reshape(texts, [-1]))
        return tuple(t[0] for t in out) if scalar else out

    def _tflite_ids(self, texts):
        import tensorflow as tf

        normalized = self._normalizer.normalize(texts)
        words = self._whitespace.tokenize(normalized)
        pieces = self._tflite_wordpiece.tokenize(words.flat_values)
        # [B, words] and [words, pieces] -> [B, pieces], by row splits (no RaggedRange: TFLite).
        splits = tf.gather(pieces.row_splits, words.row_splits)
        return tf.RaggedTensor.from_row_splits(pieces.flat_values, splits, validate=False)

    def _exact(self, texts):
        import tensorflow as tf

        t = self._tables
        chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace", replacement_char=0xFFFD)
        batch = tf.shape(chars.row_splits, out_type=tf.int64)[0] - 1
        rows = chars.value_rowids()
        positions = tf.range(tf.shape(rows, out_type=tf.int64)[0]) - tf.gather(chars.row_splits, rows)
        cps = chars.flat_values
        # Cleaning: dropped characters vanish before anything else looks at the text.
        kept = tf.where(~_in_ranges(cps, t["drop_starts"], t["drop_ends"]))[:, 0]
        cps, rows, positions = tf.gather(cps, kept), tf.gather(rows, kept), tf.gather(positions, kept)
        space = _in_ranges(cps, t["space_starts"], t["space_ends"])
        cjk = _cjk(cps)
        count = tf.shape(cps, out_type=tf.int64)[0]
        final = self._final_sigma(cps, rows, space | cjk) if self.lowercase else None
        # Each character becomes 0..n output characters (a space becomes none: it only cuts).
        keys = t["map_keys"] or [-1]
        keys_t = tf.constant(keys, tf.int32)
        index = tf.minimum(tf.searchsorted(keys_t, cps), len(keys) - 1)
        mapped = tf.equal(tf.gather(keys_t, index), cps)
        lengths = tf.where(mapped, tf.gather(tf.constant(t["map_lengths"] or [1], tf.int64), index), 1)
        lengths = tf.where(space, tf.zeros_like(lengths), lengths)
        source = tf.repeat(tf.range(count), lengths)
        within = tf.range(tf.reduce_sum(lengths)) - tf.gather(tf.cumsum(lengths, exclusive=True), source)
        value_at = tf.gather(tf.constant(t["map_starts"] or [0], tf.int64), tf.gather(index, source)) + within
        values = tf.constant(t["map_values"] or [0], tf.int32)
        out = tf.where(
            tf.gather(mapped, source),
            tf.gather(values, tf.minimum(value_at, len(t["map_values"] or [0]) - 1)),
            tf.gather(cps, source),
        )
        if final is not None:
            out = tf.where(tf.gather(final, source), _FINAL_SIGMA, out)
        # Words: cut at spaces, around CJK characters and punctuation, and between texts.
        cuts = tf.cast(space | cjk, tf.int64)
        segment = 2 * tf.cumsum(cuts) + tf.cast(~cjk, tf.int64)
        punct = _in_ranges(out, t["punct_starts"], t["punct_ends"])
        out_rows = tf.gather(rows, source)
        out_segment = tf.gather(segment, source)
        new_word = tf.concat(
            [[True], (out_rows[1:] != out_rows[:-1]) | (out_segment[1:] != out_segment[:-1])
             | punct[1:] | punct[:-1]], 0,
        )[: tf.shape(out)[0]]
        word_of = tf.cumsum(tf.cast(new_word, tf.int64)) - 1
        num_words = tf.reduce_sum(tf.cast(new_word, tf.int64))
        words = tf.RaggedTensor.from_value_rowids(out, word_of, nrows=num_words, validate=False)
        word_chars = words.row_lengths()
        too_long = word_chars > MAX_WORD_CHARS
        strings = tf.where(too_long, _UNMATCHABLE, tf.strings.unicode_encode(words, "UTF-8"))
        ids, byte_starts, byte_ends = self._wordpiece.tokenize_with_offsets(strings)
        # Pieces' byte offsets inside their word -> output characters -> original characters.
        piece_word = ids.value_rowids()
        char_bytes = tf.cumsum(_utf8_length(out), exclusive=True)
        word_first = words.row_splits[:-1]
        word_base = tf.gather(tf.concat([char_bytes, [0]], 0), word_first)
        base = tf.gather(word_base, piece_word)
        first = tf.searchsorted(char_bytes, tf.cast(byte_starts.flat_values, tf.int64) + base, out_type=tf.int64)
        last = tf.searchsorted(char_bytes, tf.cast(byte_ends.flat_values, tf.int64) + base, out_type=tf.int64) - 1
        long_piece = tf.gather(too_long, piece_word)
        first = tf.where(long_piece, tf.gather(word_first, piece_word), first)
        last = tf.where(long_piece, tf.gather(words.row_splits[1:], piece_word) - 1, last)
        # A character that becomes nothing (a combining mark) joins the end of the character
        # before it in its whitespace token, as the reference's offsets do.
        cut = space | cjk
        joins = tf.equal(lengths, 0) & ~cut & tf.concat([[False], ~cut[:-1] & tf.equal(rows[1:], rows[:-1])], 0)
        group = tf.cumsum(tf.cast(~joins, tf.int64)) - 1
        group_end = tf.math.unsorted_segment_max(positions + 1, group, tf.reduce_max(tf.concat([group, [-1]], 0)) + 1)
        starts = tf.gather(tf.gather(positions, source), first)
        ends = tf.gather(group_end, tf.gather(tf.gather(group, source), last))
        piece_rows = tf.gather(tf.gather(out_rows, word_first), piece_word)
        row_lengths = tf.math.bincount(piece_rows, minlength=batch, maxlength=batch, dtype=tf.int64)
        return tuple(
            tf.RaggedTensor.from_row_lengths(v, row_lengths, validate=False)
            for v in (ids.flat_values, starts, ends)
        )

    def _final_sigma(self, cps, rows, cut):
        """Which capital sigmas Python lowers to final sigma: the nearest non-ignorable character
        before it in its word is cased, and the one after it is not (or there is none)."""
        import tensorflow as tf

        t = self._tables
        ignorable = _in_ranges(cps, t["ignorable_starts"], t["ignorable_ends"]) & ~cut
        cased = _in_ranges(cps, t["cased_starts"], t["cased_ends"]) & ~cut
        stop = ~ignorable
        stops = tf.where(stop)[:, 0]
        num_stops = tf.shape(stops, out_type=tf.int64)[0]
        through = tf.cumsum(tf.cast(stop, tf.int64))  # stops up to and including each character
        before = through - tf.cast(stop, tf.int64)
        padded = tf.concat([stops, [0]], 0)
        previous = tf.gather(padded, tf.maximum(before - 1, 0))
        following = tf.gather(padded, tf.minimum(through, num_stops))
        rows_p = tf.concat([rows, [-1]], 0)
        cased_p = tf.concat([cased, [False]], 0)
        has_previous = (before > 0) & tf.equal(tf.gather(rows_p, previous), rows)
        has_following = (through < num_stops) & tf.equal(tf.gather(rows_p, following), rows)
        previous_cased = has_previous & tf.gather(cased_p, previous)
        following_cased = has_following & tf.gather(cased_p, following)
        return tf.equal(cps, _CAPITAL_SIGMA) & previous_cased & ~following_cased
