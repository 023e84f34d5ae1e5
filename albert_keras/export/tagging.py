"""The token-classification serving graph: text in, one tag per word and entity spans out.

`TaggingServer` does in TensorFlow ops what `albert_keras.tasks.tagging` does in Python, on
words split at whitespace (Python's `str.isspace` set, so `text.split()` gives the same words):

1. each word's pieces (`AlbertTokenizer.tokenize` of the word; a word without pieces gets
   `<unk>`), its first piece carrying its tag, as in training;
2. a sentence longer than the window is split between words (greedily, as `make_features`
   does), never cut; every window runs through the model in one batch;
3. each word's tag is the argmax at its first piece; entities are read from the tags with
   seqeval's default (lenient) chunking (`albert_keras.tasks.entity_metrics.entities`), and
   returned with their character spans in the ORIGINAL text.

Outputs (padded with "" / -1): `words`, `tags` `[B, W]`, `word_start`, `word_end` `[B, W]`
(characters), `entity_type`, `entity_text` `[B, E]`, `entity_start`, `entity_end` `[B, E]`.
Ragged ops and `tf.scan` are used, so it is SavedModel-only.
"""

import tensorflow as tf


# Tag prefixes as small ints for the chunking rules.
_O, _B, _I, _E, _S = 0, 1, 2, 3, 4
_PREFIX = {"B": _B, "I": _I, "E": _E, "S": _S}
ENDPOINT = "tag"


def label_tables(labels):
    """`(prefix ids, type names, type ids)` of the labels; a label that is not `O` or
    `X-TYPE` (X in B, I, E, S) counts as `O` for entities."""
    prefixes, types = [], []
    for label in labels:
        head, _, tail = str(label).partition("-")
        if head in _PREFIX and tail:
            prefixes.append(_PREFIX[head])
            types.append(tail)
        else:
            prefixes.append(_O)
            types.append("")
    names = sorted(set(types) - {""})
    return prefixes, [""] + names, [0 if not t else 1 + names.index(t) for t in types]


def _chunk_start(prev, tag, prev_type, type_):
    # seqeval's start_of_chunk, elementwise.
    return ((tag == _B) | (tag == _S) | (((prev == _E) | (prev == _S) | (prev == _O)) & ((tag == _E) | (tag == _I)))
            | ((tag != _O) & (prev_type != type_)))


def _chunk_end(prev, tag, prev_type, type_):
    # seqeval's end_of_chunk (does the chunk holding `prev` end before `tag`?), elementwise.
    return ((prev == _E) | (prev == _S) | (((prev == _B) | (prev == _I)) & ((tag == _B) | (tag == _S) | (tag == _O)))
            | ((prev != _O) & (prev_type != type_)))


def _previous(x, fill, n):
    """`x` shifted right by one (`fill` first); `n = len(x)`, also for an empty `x`."""
    return tf.concat([[fill], x[:-1]], 0)[:n]


def _next(x, fill, n):
    return tf.concat([x[1:], [fill]], 0)[:n]


class TaggingServer(tf.Module):
    """`text [B] -> words, tags, word spans, entities` (see the module docstring).

    Args:
        model: an `AlbertTokenClassifier` (its `labels` name the tags; otherwise "0", "1", ...).
        tokenizer: an `AlbertTokenizer` with the model's vocabulary and casing.
        sequence_length: packed window length.

    Example:
    ```python
    server = TaggingServer(tagger, AlbertTokenizer("spiece.model"), sequence_length=128)
    server(tf.constant(["Peter Blackburn went to Brussels"]))["entity_text"]
    ```
    """

    def __init__(self, model, tokenizer, sequence_length, name=None, labels=None):
        super().__init__(name=name)
        self.model = model
        self.tokenizer = tokenizer
        # The vocabulary's own special ids: [CLS] is 2 in ALBERT's SentencePiece models, 101 in BERT-Chinese's.
        special = tokenizer.vocabulary.special_ids
        self.cls_id, self.sep_id, self.unk_id = (int(special[key]) for key in ("cls", "sep", "unk"))
        self.sequence_length = int(sequence_length)
        labels = labels or getattr(model, "labels", None) or [str(i) for i in range(int(model.num_classes))]
        self.labels = [str(label) for label in labels]
        self._prefixes, self._type_names, self._types = label_tables(self.labels)

    @staticmethod
    def repair(text):
        """`[B]` strings, invalid UTF-8 replaced by U+FFFD: offsets count the characters of this text."""
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        return tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD,
                                            replace_control_characters=False)

    def words(self, text):
        """Whitespace-separated words of `repair`ed text: `(words, starts, ends)` ragged `[B, None]`."""
        from albert_keras.tokenization.offsets import _member
        from albert_keras.tokenization.offsets import _whitespace_codepoints

        chars = tf.strings.unicode_decode(text, "UTF-8")
        rows = chars.value_rowids()
        positions = tf.range(tf.shape(rows, out_type=tf.int64)[0]) - tf.gather(chars.row_splits, rows)
        space, _ = _member(chars.flat_values, _whitespace_codepoints())
        previous_space = tf.concat([[True], space[:-1]], 0) | (positions == 0)
        next_space = tf.concat([space[1:], [True]], 0) | (positions == tf.gather(chars.row_lengths(), rows) - 1)
        begins = tf.where(~space & previous_space)[:, 0]
        ends = tf.where(~space & next_space)[:, 0]
        word_rows = tf.gather(rows, begins)
        batch = tf.shape(chars.row_splits, out_type=tf.int64)[0] - 1
        lengths = tf.math.bincount(word_rows, minlength=batch, maxlength=batch, dtype=tf.int64)
        starts = tf.gather(positions, begins)
        stops = tf.gather(positions, ends) + 1
        words = tf.strings.substr(tf.gather(text, word_rows), starts, stops - starts, unit="UTF8_CHAR")
        make = lambda values: tf.RaggedTensor.from_row_lengths(values, lengths)  # noqa: E731
        return make(words), make(starts), make(stops)

    def word_pieces(self, words, limit=None):
        """`(piece_ids, count)`: each word's pieces (at most `limit`), one `[UNK]` for a word with none,
        so every word has a first piece (as in training)."""
        pieces = self.tokenizer.tokenize(words.flat_values)
        if limit is not None:
            pieces = pieces[:, :limit]
        count = tf.cast(pieces.row_lengths(), tf.int32)
        empty = count == 0
        extra = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.unk_id), tf.cast(empty, pieces.row_splits.dtype)
        )
        return tf.concat([tf.cast(pieces, tf.int32), extra], axis=1), tf.maximum(count, 1)

    def pack(self, rows):
        """Model features of ragged piece rows (each at most `sequence_length - 2`): `[CLS] row [SEP]`."""
        T = self.sequence_length
        lengths = tf.cast(rows.row_lengths(), tf.int32)
        body = rows.to_tensor(default_value=0, shape=[None, T - 2])
        column = tf.expand_dims(tf.range(T), 0)
        token_ids = tf.pad(body, [[0, 0], [1, 1]])
        token_ids = tf.where(column == 0, self.cls_id, token_ids)
        token_ids = tf.where(column == tf.expand_dims(lengths, 1) + 1, self.sep_id, token_ids)
        padding_mask = tf.cast(column <= tf.expand_dims(lengths, 1) + 1, tf.int32)
        return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": padding_mask}

    def spans(self, text, words, word_starts, word_ends, prefix, type_):
        """Entities of per-word tag prefixes and types (seqeval's default chunking, inside each text):
        `{"type", "text", "start", "end"}` padded `[B, max entities]` (characters of `text`)."""
        word_rows = tf.cast(words.value_rowids(), tf.int32)
        n = tf.shape(word_rows)[0]
        sentence_start = _previous(word_rows, -1, n) != word_rows
        sentence_end = _next(word_rows, -1, n) != word_rows
        prev_prefix = tf.where(sentence_start, _O, _previous(prefix, _O, n))
        prev_type = tf.where(sentence_start, 0, _previous(type_, 0, n))
        next_prefix = tf.where(sentence_end, _O, _next(prefix, _O, n))
        next_type = tf.where(sentence_end, 0, _next(type_, 0, n))
        begins = tf.where(_chunk_start(prev_prefix, prefix, prev_type, type_))[:, 0]
        ends = tf.where(_chunk_end(prefix, next_prefix, type_, next_type))[:, 0]
        rows = tf.gather(tf.cast(word_rows, tf.int64), begins)
        batch = tf.shape(text, out_type=tf.int64)[0]
        lengths = tf.math.bincount(rows, minlength=batch, maxlength=batch, dtype=tf.int64)
        start = tf.gather(word_starts.flat_values, begins)
        end = tf.gather(word_ends.flat_values, ends)
        values = {
            "type": (tf.gather(tf.constant(self._type_names), tf.gather(type_, begins)), ""),
            "text": (tf.strings.substr(tf.gather(text, rows), start, end - start, unit="UTF8_CHAR"), ""),
            "start": (start, -1),
            "end": (end, -1),
        }
        return {key: tf.RaggedTensor.from_row_lengths(value, lengths).to_tensor(default_value=fill)
                for key, (value, fill) in values.items()}

    def __call__(self, text):
        text = self.repair(text)
        budget = self.sequence_length - 2
        words, word_starts, word_ends = self.words(text)
        piece_ids, count = self.word_pieces(words, limit=budget)
        word_rows = tf.cast(words.value_rowids(), tf.int32)
        sentence_start = _previous(word_rows, -1, tf.shape(word_rows)[0]) != word_rows

        # Greedy windows between words: a new window when the next word does not fit.
        def step(state, inputs):
            window, used = state
            length, first = inputs
            new = first | (used + length > budget)
            window = window + tf.cast(new, tf.int32)
            used = tf.where(new, length, used + length)
            return window, used

        window, _ = tf.scan(step, (count, sentence_start), initializer=(tf.constant(-1), tf.constant(0)))
        num_windows = tf.reduce_max(tf.concat([window, [-1]], 0)) + 1
        per_window = tf.RaggedTensor.from_value_rowids(piece_ids.flat_values, tf.cast(tf.repeat(window, count), tf.int64),
                                                       nrows=tf.cast(num_windows, tf.int64))
        logits = tf.cast(self.model(self.pack(per_window), training=False), tf.float32)
        # Each word's first piece: 1 + pieces of the earlier words of its window.
        offset = tf.cumsum(count, exclusive=True)
        window_first = tf.gather(tf.math.unsorted_segment_min(offset, window, num_windows), window)
        word_logits = tf.gather_nd(logits, tf.stack([window, 1 + offset - window_first], axis=1))
        tag_ids = tf.argmax(word_logits, axis=-1, output_type=tf.int32)
        prefix = tf.gather(tf.constant(self._prefixes, tf.int32), tag_ids)
        type_ = tf.gather(tf.constant(self._types, tf.int32), tag_ids)
        entities = self.spans(text, words, word_starts, word_ends, prefix, type_)
        return {
            "words": words.to_tensor(default_value=""),
            "tags": words.with_flat_values(tf.gather(tf.constant(self.labels), tag_ids)).to_tensor(default_value=""),
            "word_start": word_starts.to_tensor(default_value=-1),
            "word_end": word_ends.to_tensor(default_value=-1),
            **{f"entity_{key}": value for key, value in entities.items()},
        }


def add_endpoint(archive, model, vocabulary, sequence_length, lowercase=True, name=ENDPOINT, server_class=None):
    """Add the `tag` signature (`text` `[B]` strings) to an `ExportArchive` tracking `model`.

    Args:
        server_class: the serving module built on `TaggingServer` (default: it).

    Returns:
        The endpoint name.

    Example:
    ```python
    add_endpoint(archive, tagger, "spiece.model", 128)
    # served.signatures["tag"](text=tf.constant(["Peter lives in Paris"]))["entity_text"]
    ```
    """
    from albert_keras.tokenization import AlbertTokenizer

    tokenizer = AlbertTokenizer(vocabulary, sequence_length=sequence_length, lowercase=lowercase)
    server = (server_class or TaggingServer)(model, tokenizer, sequence_length)
    archive.track(server)
    archive.add_endpoint(name, server.__call__, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    return name
