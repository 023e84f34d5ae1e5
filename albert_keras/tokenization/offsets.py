"""Character offsets of ALBERT pieces in the ORIGINAL text, in Python and in-graph.

Question answering and tagging must hand back spans of the text the user sent, but ALBERT's
pieces are cut from the normalized text (`preprocess_text`: whitespace collapsing, ``` `` ```/`''`
to `"`, NFKD, accents dropped, lowercasing), then re-encoded around digit commas. This module
carries an alignment through each step:

1. whitespace: each kept character is a unit; a whitespace run becomes one `" "` unit spanning the
   run; leading and trailing whitespace are dropped;
2. quotes: in a run of backticks (or apostrophes) the 2nd, 4th, ... characters join the unit
   before them (non-overlapping left-to-right pairs, exactly `str.replace`);
3. NFKD + accent stripping + lowercasing: a unit becomes 0, 1 or more normalized characters
   (`"ﬁ"` -> `"fi"`, `"한"` -> three jamo, a lone combining mark -> nothing). A unit that becomes
   nothing joins the unit before it (so `"e\\u0301"` is one span). Each normalized character
   spans its unit, from the unit's first original character up to the next unit;
4. SentencePiece reports each piece's byte span in the normalized text (`begin`/`end` in
   Python, `tokenize_with_offsets` in-graph; its own normalizer, e.g. NFKC, is accounted for
   there); a leading `" "` (the `"▁"` of the piece) is left out of the span, so a standalone
   `"▁"` piece has an empty span;
5. the digit-comma re-encoding (`tokenize_for_albert`) splits a `"<digit>,"` piece into pieces
   whose spans are the matching sub-spans of the original piece's span.

Per-character normalization gives the same characters as normalizing the whole string except for
Greek final sigma (context-dependent lowering, `"Σ"` -> `"σ"` or `"ς"`, same length), so the
normalized text (and hence the ids) is always the whole-string `preprocess_text`.

"Normalizes back", precisely (what `tests/tokenization/test_offsets.py` checks): let
`N(s) = sp.normalize(preprocess_text(s)).replace("▁", "")` with final sigma read as `"σ"`.
Pieces whose spans overlap (several pieces cut from one original character, e.g. `"f"`, `"in"`
from `"ﬁn"`) form a group; for every group, `N(text[group_start:group_end])` equals the
concatenation of its pieces with `"▁"` removed (for `<unk>`, the characters SentencePiece
reports as its surface). Most groups are single pieces; spans never go backwards.

Offsets are in characters (Python `str` indices = Unicode code points; in-graph the same,
usable with `tf.strings.substr(..., unit="UTF8_CHAR")`).
"""

import functools
import sys
import unicodedata

from albert_keras.tokenization.sentencepiece import (
    SPIECE_UNDERLINE,
    _combining_regex,
    digit_comma_expansions,
    preprocess_text,
)

_SPACE = ord(" ")
_QUOTES = (ord("`"), ord("'"))


# ---------------------------------------------------------------------------------------------
# The alignment, in Python
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _char_length(char, lowercase):
    """How many normalized characters one (whitespace-collapsed) character becomes."""
    out = char
    if not char.isascii():
        out = _combining_regex().sub("", unicodedata.normalize("NFKD", char))
    if lowercase:
        out = out.lower()
    return len(out)


def _units(text):
    """Step 1-2: `[(original index, character)]` of the kept characters, and the text's end."""
    n = len(text)
    lo = 0
    while lo < n and text[lo].isspace():
        lo += 1
    hi = n
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    units = []
    previous_space = False
    run_char, run_index = None, 0
    for i in range(lo, hi):
        char = text[i]
        if char.isspace():
            if not previous_space:
                units.append((i, " "))
            previous_space = True
            run_char = None
            continue
        previous_space = False
        if char in "`'":
            if char == run_char:
                run_index += 1
            else:
                run_char, run_index = char, 0
            if run_index % 2 == 1:  # the second of a pair: part of the quote unit before it
                continue
        else:
            run_char = None
        units.append((i, char))
    return units, hi


def normalize_with_offsets(text, lowercase=True):
    """`preprocess_text(text)` with, for every normalized character, its span in `text`.

    Args:
        text: a `str`.
        lowercase: as for `preprocess_text`.

    Returns:
        `(normalized, starts, ends)`: the normalized `str` and two int lists of its length;
        character `k` of `normalized` comes from `text[starts[k]:ends[k]]`.

    Example:
    >>> normalize_with_offsets("Ａ  ﬁx")
    ('a fix', [0, 1, 3, 3, 4], [1, 3, 4, 4, 5])
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    units, hi = _units(text)
    kept = [(index, _char_length(char, lowercase)) for index, char in units]
    kept = [(index, count) for index, count in kept if count]
    starts, ends = [], []
    for k, (index, count) in enumerate(kept):
        end = kept[k + 1][0] if k + 1 < len(kept) else hi
        starts.extend([index] * count)
        ends.extend([end] * count)
    normalized = preprocess_text(text, lowercase)
    if len(normalized) != len(starts):  # would be a bug in the alignment, never bad input
        raise AssertionError(f"offset alignment lost its way on {text!r}")
    return normalized, starts, ends


def _byte_to_char(string):
    """`{utf-8 byte offset: character offset}` for every character boundary of `string`."""
    table, position = {}, 0
    for k, char in enumerate(string):
        table[position] = k
        position += len(char.encode("utf-8"))
    table[position] = len(string)
    return table


def _proto_spans(sp, string):
    """SentencePiece ids and character spans `(a, b)` in `string`, without a leading space."""
    proto = sp.encode(string, out_type="proto")
    to_char = _byte_to_char(string)
    ids, spans = [], []
    for piece in proto.pieces:
        a, b = to_char[piece.begin], to_char[piece.end]
        if a < b and string[a] == " ":
            a += 1
        ids.append(piece.id)
        spans.append((a, b))
    return ids, spans


def digit_comma_offsets(sp):
    """`{piece id: [(id, start, end), ...]}`: the digit-comma rewrite with each new piece's span
    relative to the rewritten piece's span (the final "," included).

    Example:
    >>> digit_comma_offsets(sp)  # doctest: +SKIP
    {812: [(13, 0, 0), (44, 0, 1), (15, 1, 2)]}
    """
    cached = getattr(sp, "_albert_digit_comma_offsets", None)
    if cached is not None:
        return cached
    table = {}
    for piece_id, expansion in digit_comma_expansions(sp).items():
        body = sp.id_to_piece(piece_id)[:-1].replace(SPIECE_UNDERLINE, "")
        ids, spans = _proto_spans(sp, body)
        ids.append(expansion[-1])
        spans.append((len(body), len(body) + 1))
        if ids != list(expansion):  # the same encoding as digit_comma_expansions, by construction
            raise AssertionError(f"digit-comma offsets disagree for piece {piece_id}")
        table[piece_id] = [(i, a, b) for i, (a, b) in zip(ids, spans)]
    try:
        sp._albert_digit_comma_offsets = table
    except AttributeError:
        pass
    return table


def encode_with_offsets(sp, text, lowercase=True):
    """Ids of `encode_for_albert(sp, text, lowercase)` with each piece's span in `text`.

    Args:
        sp: a `sentencepiece.SentencePieceProcessor` (ALBERT ids).
        text: the original `str`.
        lowercase: as for `preprocess_text`.

    Returns:
        `(ids, starts, ends)`, three int lists: piece `i` was cut from `text[starts[i]:ends[i]]`
        (see the module docstring for exactly what that guarantees).

    Example:
    >>> ids, starts, ends = encode_with_offsets(sp, "  Café  au lait")  # doctest: +SKIP
    >>> ["  Café  au lait"[s:e] for s, e in zip(starts, ends)]  # doctest: +SKIP
    ['Café', 'au', 'lait']
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    normalized, char_starts, char_ends = normalize_with_offsets(text, lowercase)
    piece_ids, spans = _proto_spans(sp, normalized)
    rewrites = digit_comma_offsets(sp)
    end_of_text = char_ends[-1] if char_ends else 0
    ids, starts, ends = [], [], []
    for piece_id, (a, b) in zip(piece_ids, spans):
        parts = rewrites.get(piece_id)
        pieces = [(piece_id, a, b)] if parts is None else [
            (i, min(a + ra, b), min(a + rb, b)) for i, ra, rb in parts
        ]
        for i, pa, pb in pieces:
            start = char_starts[pa] if pa < len(char_starts) else end_of_text
            ids.append(i)
            starts.append(start)
            ends.append(char_ends[pb - 1] if pa < pb else start)
    return ids, starts, ends


# ---------------------------------------------------------------------------------------------
# The same alignment as TensorFlow ops
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _length_table(lowercase):
    """Sorted code points whose `_char_length` is not 1, with their lengths (for the graph)."""
    keys, values = [], []
    for c in range(128, sys.maxunicode + 1):
        char = chr(c)
        # Only these can change length (fast C checks first; Hangul syllables decompose
        # algorithmically, so `decomposition` does not list them).
        if not (
            unicodedata.decomposition(char) or unicodedata.combining(char) or 0xAC00 <= c <= 0xD7A3
            or (lowercase and len(char.lower()) != 1)
        ):
            continue
        n = _char_length(char, lowercase)
        if n != 1:
            keys.append(c)
            values.append(n)
    return keys, values


@functools.lru_cache(maxsize=None)
def _whitespace_codepoints():
    return [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def _member(values, sorted_keys):
    import tensorflow as tf

    keys = tf.constant(sorted_keys, tf.int32)
    index = tf.minimum(tf.searchsorted(keys, values), len(sorted_keys) - 1)
    return tf.equal(tf.gather(keys, index), values), index


def _row_positions(ragged):
    """Flat values' row ids and positions inside their rows (int64)."""
    import tensorflow as tf

    rows = ragged.value_rowids()
    positions = tf.range(tf.shape(rows, out_type=tf.int64)[0]) - tf.gather(ragged.row_splits, rows)
    return rows, positions


def normalize_with_offsets_tf(texts, lowercase=True):
    """`normalize_with_offsets` for a `[B]` string tensor, as TensorFlow ops.

    Returns:
        `(normalized [B] strings, starts, ends)`, the offsets as int64 `tf.RaggedTensor`s
        `[B, None]` (one entry per normalized character).

    Example:
    >>> normalize_with_offsets_tf(tf.constant(["Ａ  ﬁx"]))[1]  # doctest: +SKIP
    <tf.RaggedTensor [[0, 1, 3, 3, 4]]>
    """
    import tensorflow as tf

    from albert_keras.tokenization.sentencepiece import preprocess_text_tf

    texts = tf.strings.unicode_transcode(
        tf.convert_to_tensor(texts, tf.string), "UTF-8", "UTF-8", errors="replace",
        replacement_char=0xFFFD, replace_control_characters=False,
    )
    chars = tf.strings.unicode_decode(texts, "UTF-8")
    batch = tf.shape(chars.row_splits, out_type=tf.int64)[0] - 1
    flat = chars.flat_values
    rows, positions = _row_positions(chars)
    is_space, _ = _member(flat, _whitespace_codepoints())
    solid = tf.cast(~is_space, tf.int64)
    before = tf.cumsum(solid, exclusive=True)
    before = before - tf.gather(tf.concat([before, [0]], 0), tf.gather(chars.row_splits, rows))
    total = tf.math.unsorted_segment_sum(solid, rows, batch)
    after = tf.gather(total, rows) - before - solid
    previous_space = tf.concat([[False], is_space[:-1]], 0) & (positions > 0)
    keep = ~is_space | (~previous_space & (before > 0) & (after > 0))
    # Quote pairs: within a run of one quote character, odd positions join the unit before.
    unit_char = tf.where(is_space, _SPACE, flat)
    previous_char = tf.concat([[-1], unit_char[:-1]], 0)
    for quote in _QUOTES:
        is_quote = (unit_char == quote) & keep
        run_start = is_quote & ~((previous_char == quote) & (positions > 0))
        index = tf.range(tf.shape(flat, out_type=tf.int64)[0])
        run_id = tf.cumsum(tf.cast(run_start, tf.int64)) - 1
        start_index = tf.math.unsorted_segment_max(
            tf.where(run_start, index, -1), tf.maximum(run_id, 0), tf.maximum(tf.reduce_max(run_id) + 1, 1)
        )
        in_run = index - tf.gather(start_index, tf.maximum(run_id, 0))
        keep = keep & ~(is_quote & (in_run % 2 == 1))
    # Each kept unit becomes `count` normalized characters.
    keys, values = _length_table(bool(lowercase))
    found, index = _member(unit_char, keys)
    count = tf.where(found, tf.gather(tf.constant(values, tf.int32), index), 1)
    count = tf.where(keep, count, 0)
    end_of_text = tf.math.unsorted_segment_max(tf.where(solid > 0, positions + 1, 0), rows, batch)
    end_of_text = tf.maximum(end_of_text, 0)
    survivor = tf.where(count > 0)[:, 0]
    s_rows = tf.gather(rows, survivor)
    s_positions = tf.gather(positions, survivor)
    same_row_next = tf.concat([tf.equal(s_rows[1:], s_rows[:-1]), [False]], 0)
    next_position = tf.concat([s_positions[1:], [0]], 0)
    s_ends = tf.where(same_row_next, next_position, tf.gather(end_of_text, s_rows))
    s_count = tf.gather(count, survivor)
    starts = tf.repeat(s_positions, s_count)
    ends = tf.repeat(s_ends, s_count)
    lengths = tf.math.unsorted_segment_sum(tf.cast(s_count, tf.int64), s_rows, batch)
    normalized = preprocess_text_tf(texts, lowercase)
    return (
        normalized,
        tf.RaggedTensor.from_row_lengths(starts, lengths),
        tf.RaggedTensor.from_row_lengths(ends, lengths),
    )


def offset_tables(sp):
    """`digit_comma_offsets` as dense arrays: (index [V], ids [Q,K], lengths [Q], rel starts, rel ends)."""
    import numpy as np

    table = digit_comma_offsets(sp)
    if not table:
        return None
    width = max(len(parts) for parts in table.values())
    index = np.full([sp.get_piece_size()], -1, np.int64)
    ids = np.zeros([len(table), width], np.int64)
    rel = np.zeros([2, len(table), width], np.int64)
    lengths = np.zeros([len(table)], np.int64)
    for row, (piece_id, parts) in enumerate(sorted(table.items())):
        index[piece_id] = row
        lengths[row] = len(parts)
        for k, (i, a, b) in enumerate(parts):
            ids[row, k], rel[0, row, k], rel[1, row, k] = i, a, b
    return index, ids, lengths, rel[0], rel[1]


def encode_with_offsets_tf(sentencepiece, texts, lowercase=True, digit_comma_tables=None):
    """`encode_with_offsets` for a `[B]` string tensor, as TensorFlow ops (SavedModel-ready).

    Args:
        sentencepiece: a `tensorflow_text.SentencepieceTokenizer` for the model.
        texts: `[B]` strings.
        lowercase: as for `preprocess_text`.
        digit_comma_tables: `offset_tables(sp)` (None when the vocabulary has no "<digit>,").

    Returns:
        `(ids int32, starts int64, ends int64)`, `tf.RaggedTensor`s `[B, None]`, equal to
        `encode_with_offsets` row by row.

    Example:
    >>> tokenizer = AlbertTokenizer("spiece.model")  # doctest: +SKIP
    >>> ids, starts, ends = tokenizer.tokenize_with_offsets(["Café au lait"])  # doctest: +SKIP
    """
    import tensorflow as tf

    normalized, char_starts, char_ends = normalize_with_offsets_tf(texts, lowercase)
    ids, byte_begin, byte_end = sentencepiece.tokenize_with_offsets(normalized)
    batch = tf.shape(ids.row_splits, out_type=tf.int64)[0] - 1
    # Byte offsets -> character offsets: search the pieces' bytes among the characters' bytes,
    # with every row shifted by the bytes of the rows before it (one sorted flat axis).
    codes, char_bytes = tf.strings.unicode_decode_with_offsets(normalized, "UTF-8")
    row_bytes = tf.cumsum(tf.cast(tf.strings.length(normalized), tf.int64), exclusive=True)
    char_rows, _ = _row_positions(char_bytes)
    flat_bytes = char_bytes.flat_values + tf.gather(row_bytes, char_rows)
    piece_rows, _ = _row_positions(ids)
    piece_base = tf.gather(row_bytes, piece_rows)
    char_base = tf.gather(char_bytes.row_splits, piece_rows)
    a = tf.searchsorted(flat_bytes, tf.cast(byte_begin.flat_values, tf.int64) + piece_base, out_type=tf.int64)
    b = tf.searchsorted(flat_bytes, tf.cast(byte_end.flat_values, tf.int64) + piece_base, out_type=tf.int64)
    flat_codes = tf.concat([codes.flat_values, [0]], 0)
    a = a + tf.cast((a < b) & (tf.gather(flat_codes, a) == _SPACE), tf.int64)
    a, b = a - char_base, b - char_base  # now inside the row's normalized characters
    flat_ids = tf.cast(ids.flat_values, tf.int64)
    counts = tf.ones_like(flat_ids)
    if digit_comma_tables is not None:
        index, table_ids, table_lengths, rel_starts, rel_ends = (tf.constant(t) for t in digit_comma_tables)
        row = tf.gather(index, flat_ids)
        rewrite = row >= 0
        safe = tf.maximum(row, 0)
        counts = tf.where(rewrite, tf.gather(table_lengths, safe), 1)
        source = tf.repeat(tf.range(tf.shape(flat_ids, out_type=tf.int64)[0]), counts)
        k = tf.range(tf.reduce_sum(counts)) - tf.gather(tf.cumsum(counts, exclusive=True), source)
        at = tf.stack([tf.gather(safe, source), k], 1)
        rewritten = tf.gather(rewrite, source)
        sa, sb = tf.gather(a, source), tf.gather(b, source)
        flat_ids = tf.where(rewritten, tf.gather_nd(table_ids, at), tf.gather(flat_ids, source))
        a = tf.where(rewritten, tf.minimum(sa + tf.gather_nd(rel_starts, at), sb), sa)
        b = tf.where(rewritten, tf.minimum(sa + tf.gather_nd(rel_ends, at), sb), sb)
        piece_rows = tf.gather(piece_rows, source)
        char_base = tf.gather(char_base, source)
    row_lengths = tf.math.bincount(piece_rows, minlength=batch, maxlength=batch, dtype=tf.int64)
    # Normalized character -> original span; an empty piece sits where the next character starts.
    starts_flat = tf.concat([char_starts.flat_values, [0]], 0)
    ends_flat = tf.concat([char_ends.flat_values, [0]], 0)
    row_chars = tf.gather(char_starts.row_lengths(), piece_rows)
    end_of_text = tf.gather(
        tf.concat([[0], ends_flat[:-1]], 0), tf.gather(char_starts.row_splits[1:], piece_rows)
    )
    start = tf.where(a < row_chars, tf.gather(starts_flat, char_base + a), end_of_text)
    end = tf.where(a < b, tf.gather(ends_flat, char_base + tf.maximum(b - 1, 0)), start)
    return (
        tf.RaggedTensor.from_row_lengths(tf.cast(flat_ids, tf.int32), row_lengths),
        tf.RaggedTensor.from_row_lengths(start, row_lengths),
        tf.RaggedTensor.from_row_lengths(end, row_lengths),
    )

