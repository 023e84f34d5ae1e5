"""The question-answering serving graph: question and context strings in, an answer sliced from
the context out, with long contexts covered by strided windows.

`QuestionAnsweringServer` does in TensorFlow ops what `albert_keras.tasks.squad` does in Python:

1. the question's pieces (cut to `max_query_length`) and the context's pieces with their character
   spans in the ORIGINAL context (`AlbertTokenizer.tokenize_with_offsets`);
2. `[CLS] question [SEP] window [SEP]` for every window of the context (windows of
   `sequence_length - len(question) - 3` pieces advancing by `doc_stride`, as in training), all
   windows of the batch run through the model together;
3. per window the best span `(i, j)` by `start_logits[i] + end_logits[j]` with `i <= j <
   i + max_answer_length`, both on context pieces, `i` in the window where it has the most
   context (the official rule); over the windows of a question the best span, and the no-answer
   score `start_logits[0] + end_logits[0]` (its lowest value over the windows, as the official
   SQuAD 2.0 code takes it);
4. the answer: `tf.strings.substr` of the context over the span's characters. With
   `allow_no_answer`, a question whose no-answer score beats the span's by more than
   `null_score_diff_threshold` answers "" (start and end -1, `has_answer` False).

The span search is exhaustive over valid pairs, so it equals `squad.decode` whenever the best
valid pair is among the `n_best_size` best starts and ends (always, with a large `n_best_size`).
Ragged ops are used, so it is SavedModel-only (TFLite keeps the token positions). It is the
`serving_default` signature of a question answerer's SavedModel.
"""

import tensorflow as tf

from albert_keras.export.signatures import DEFAULT_MAX_ANSWER_LENGTH

DEFAULT_DOC_STRIDE = 128
DEFAULT_MAX_QUERY_LENGTH = 64
_NEG = -1e30


class QuestionAnsweringServer(tf.Module):
    """`(question [B], context [B]) -> answer_text, answer_start, answer_end, score,
    no_answer_score, has_answer` (see the module docstring).

    Args:
        model: an `AlbertQuestionAnswerer`.
        tokenizer: an `AlbertTokenizer` with the model's vocabulary and casing.
        sequence_length: packed length of each window.
        doc_stride: pieces between window starts (default: the official 128, or half the window
            when windows are shorter, so that every answer up to half a window long lies whole
            inside some window).
        max_query_length: question pieces kept.
        max_answer_length: longest answer in pieces.
        allow_no_answer: SQuAD 2.0 behaviour (answer "" when no-answer wins).
        null_score_diff_threshold: the no-answer margin.

    Example:
    ```python
    server = QuestionAnsweringServer(model, AlbertTokenizer("spiece.model"), sequence_length=384)
    server(tf.constant(["Who wrote it?"]), tf.constant(["It was written by Ann Lee."]))["answer_text"]
    ```
    """

    def __init__(self, model, tokenizer, sequence_length, doc_stride=None,
                 max_query_length=DEFAULT_MAX_QUERY_LENGTH, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH,
                 allow_no_answer=True, null_score_diff_threshold=0.0, name=None):
        super().__init__(name=name)
        if sequence_length < 5:  # [CLS] q [SEP] c [SEP]
            raise ValueError(f"sequence_length must be at least 5, got {sequence_length}")
        self.model = model
        self.tokenizer = tokenizer
        # The vocabulary's own special ids: [CLS] is 2 in ALBERT's SentencePiece models, 101 in BERT-Chinese's.
        special = tokenizer.vocabulary.special_ids
        self.cls_id, self.sep_id, self.unk_id = (int(special[key]) for key in ("cls", "sep", "unk"))
        self.sequence_length = int(sequence_length)
        self.doc_stride = None if doc_stride is None else int(doc_stride)
        if self.doc_stride is not None and self.doc_stride < 1:  # a stride of 0 never leaves the first window
            raise ValueError(f"doc_stride must be positive, got {doc_stride}")
        self.max_query_length = int(max_query_length)
        self.max_answer_length = int(max_answer_length)
        self.allow_no_answer = bool(allow_no_answer)
        self.null_score_diff_threshold = float(null_score_diff_threshold)

    def windows(self, question, context):
        """Features of every window: `(features, window_example, window_offsets)` where
        `window_offsets` holds each position's character span in its context (-1 elsewhere) and
        whether the position is in its max-context window."""
        T = self.sequence_length
        q = self.tokenizer.tokenize(question)
        q_ids = q[:, : self.max_query_length].to_tensor(default_value=0)
        q_len = tf.cast(tf.minimum(q.row_lengths(), self.max_query_length), tf.int32)
        c_ids, c_starts, c_ends = self.tokenizer.tokenize_with_offsets(context)
        n = tf.cast(c_ids.row_lengths(), tf.int32)
        width = T - q_len - 3  # [B] context pieces per window
        width = tf.maximum(width, 1)
        if self.doc_stride is None:  # the official 128, or half the window when windows are shorter
            step = tf.maximum(tf.minimum(width // 2, DEFAULT_DOC_STRIDE), 1)
        else:
            step = tf.minimum(width, self.doc_stride)
        count = 1 + tf.maximum(0, (n - width + step - 1) // step)  # windows per example
        example = tf.repeat(tf.range(tf.shape(n)[0]), count)  # [W]
        first = tf.gather(tf.cumsum(count, exclusive=True), example)
        index = tf.range(tf.shape(example)[0]) - first  # window number inside its example
        w_width, w_q = tf.gather(width, example), tf.gather(q_len, example)
        w_start = index * tf.gather(step, example)
        w_len = tf.minimum(tf.gather(n, example) - w_start, w_width)
        position = tf.expand_dims(tf.range(T), 0)  # [1, T]
        offset = tf.expand_dims(w_q + 2, 1)  # first context position
        piece = position - offset + tf.expand_dims(w_start, 1)  # context piece at each position
        in_context = (position >= offset) & (position < offset + tf.expand_dims(w_len, 1))
        dense_ids = tf.pad(c_ids.to_tensor(default_value=0), [[0, 0], [0, 1]])
        dense_starts = tf.pad(c_starts.to_tensor(default_value=-1), [[0, 0], [0, 1]], constant_values=-1)
        dense_ends = tf.pad(c_ends.to_tensor(default_value=-1), [[0, 0], [0, 1]], constant_values=-1)
        safe_piece = tf.clip_by_value(piece, 0, tf.shape(dense_ids)[1] - 1)

        # (example, piece) pairs straight into the [B, N] tables: gathering each window's whole
        # row first would cost windows x pieces, quadratic in the context's length.
        row = tf.broadcast_to(tf.expand_dims(example, 1), tf.shape(safe_piece))
        at = tf.stack([row, safe_piece], axis=-1)  # [W, T, 2]

        def per_window(dense, fill):
            return tf.where(in_context, tf.gather_nd(dense, at), fill)

        q_rows = tf.pad(tf.gather(q_ids, example), [[0, 0], [0, 1]])
        q_position = tf.broadcast_to(position - 1, tf.stack([tf.shape(example)[0], T]))
        q_token = tf.gather(q_rows, tf.clip_by_value(q_position, 0, tf.shape(q_rows)[1] - 1), batch_dims=1)
        token_ids = per_window(dense_ids, 0)
        in_query = (position >= 1) & (position <= tf.expand_dims(w_q, 1))
        token_ids = tf.where(in_query, q_token, token_ids)
        token_ids = tf.where(position == 0, self.cls_id, token_ids)
        sep = (position == offset - 1) | (position == offset + tf.expand_dims(w_len, 1))
        token_ids = tf.where(sep, self.sep_id, token_ids)
        total = offset + tf.expand_dims(w_len, 1) + 1
        padding_mask = tf.cast(position < total, tf.int32)
        segment_ids = tf.cast((position >= offset) & (position < total), tf.int32)
        starts = per_window(tf.cast(dense_starts, tf.int32), -1)
        ends = per_window(tf.cast(dense_ends, tf.int32), -1)
        # Max context: the official score `min(left, right) + 0.01 * length`, as the exact integer
        # `100 * min + length`, against the windows of the same example that can hold the piece;
        # the best (the first on ties, as the official strict `>` keeps the first) must be this
        # window. Those windows are at most ceil(width / step) apart, so only that band is
        # compared: [W, band, T], not [W, W, T] (a 100,000-character context has ~1,500 windows).
        windows = tf.shape(example)[0]
        w_end = w_start + w_len - 1
        reach = tf.reduce_max(tf.concat([(width + step - 1) // step, [0]], axis=0))
        shift = tf.range(-reach, reach + 1)  # [D]
        neighbour = tf.expand_dims(tf.range(windows), 1) + tf.expand_dims(shift, 0)  # [W, D]
        exists = (neighbour >= 0) & (neighbour < windows)
        neighbour = tf.clip_by_value(neighbour, 0, tf.maximum(windows - 1, 0))
        exists &= tf.equal(tf.gather(example, neighbour), tf.expand_dims(example, 1))
        other_start = tf.expand_dims(tf.gather(w_start, neighbour), 2)  # [W, D, 1]
        other_end = tf.expand_dims(tf.gather(w_end, neighbour), 2)
        other_len = tf.expand_dims(tf.gather(w_len, neighbour), 2)
        p = tf.expand_dims(piece, 1)  # [W, 1, T]
        inside = (p >= other_start) & (p <= other_end) & tf.expand_dims(exists, 2)
        score = tf.where(inside, 100 * tf.minimum(p - other_start, other_end - p) + other_len, -1)
        top = tf.reduce_max(score, axis=1, keepdims=True)
        first = tf.reduce_min(tf.where(score == top, tf.reshape(shift, [1, -1, 1]), tf.int32.max), axis=1)
        max_context = in_context & tf.equal(first, 0)  # [W, T]
        features = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        return features, example, {"starts": starts, "ends": ends, "max_context": max_context}

    def __call__(self, question, context):
        question = tf.reshape(tf.convert_to_tensor(question, tf.string), [-1])
        context = tf.reshape(tf.convert_to_tensor(context, tf.string), [-1])
        # Offsets count the characters of valid UTF-8: slice the same repaired text.
        context = tf.strings.unicode_transcode(context, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD,
                                               replace_control_characters=False)
        batch = tf.shape(context)[0]
        features, example, spans = self.windows(question, context)
        raw = self.model(features, training=False)
        start_logits = tf.cast(raw["start_logits"], tf.float32)
        end_logits = tf.cast(raw["end_logits"], tf.float32)
        T = self.sequence_length
        valid_piece = spans["ends"] > spans["starts"]
        valid_start = valid_piece & spans["max_context"]
        i = tf.reshape(tf.range(T), [-1, 1])
        j = tf.reshape(tf.range(T), [1, -1])
        allowed = (j >= i) & (j - i < self.max_answer_length)
        allowed = tf.expand_dims(allowed, 0) & tf.expand_dims(valid_start, 2) & tf.expand_dims(valid_piece, 1)
        pair = tf.expand_dims(start_logits, 2) + tf.expand_dims(end_logits, 1)
        pair = tf.reshape(tf.where(allowed, pair, _NEG), [tf.shape(pair)[0], -1])
        flat_best = tf.argmax(pair, axis=1, output_type=tf.int32)
        window_score = tf.reduce_max(pair, axis=1)  # [W]
        window_found = tf.reduce_any(tf.reshape(allowed, [tf.shape(pair)[0], -1]), axis=1)
        window_score = tf.where(window_found, window_score, _NEG)
        null = start_logits[:, 0] + end_logits[:, 0]
        no_answer_score = tf.math.unsorted_segment_min(null, example, batch)
        best_score = tf.math.unsorted_segment_max(window_score, example, batch)
        # The first window reaching the example's best score.
        is_best = tf.equal(window_score, tf.gather(best_score, example)) & window_found
        window_number = tf.range(tf.shape(example)[0])
        chosen = tf.math.unsorted_segment_min(tf.where(is_best, window_number, tf.int32.max), example, batch)
        found = chosen < tf.int32.max
        chosen = tf.where(found, chosen, 0)
        best_pair = tf.gather(flat_best, chosen)
        begin = tf.gather(spans["starts"], chosen)
        finish = tf.gather(spans["ends"], chosen)
        start_char = tf.gather(begin, best_pair // T, batch_dims=1)
        end_char = tf.gather(finish, best_pair % T, batch_dims=1)
        has_answer = found
        if self.allow_no_answer:
            has_answer = found & (no_answer_score - best_score <= self.null_score_diff_threshold)
        start_char = tf.where(has_answer, start_char, -1)
        end_char = tf.where(has_answer, end_char, -1)
        text = tf.strings.substr(context, tf.maximum(start_char, 0), tf.maximum(end_char - start_char, 0),
                                 unit="UTF8_CHAR")
        return {
            "answer_text": text,
            "answer_start": tf.cast(start_char, tf.int64),
            "answer_end": tf.cast(end_char, tf.int64),
            "score": tf.where(found, best_score, _NEG),
            "no_answer_score": no_answer_score,
            "has_answer": has_answer,
        }


# A question answerer's `serving_default` IS this graph: the answer clients want is a span of
# what they sent. (`serve_text_pair` keeps the token positions; one traced graph, not two.)
ENDPOINT = "serving_default"


def add_endpoint(archive, model, spm_model, sequence_length, lowercase=True, name=ENDPOINT, **server_arguments):
    """Add the sliced-answer signature (`question`, `context` `[B]` strings) to an `ExportArchive`.

    Add it first when it is to be `serving_default` (ExportArchive makes the first endpoint the
    default).

    Args:
        archive: a `keras.export.ExportArchive` already tracking `model`.
        model: an `AlbertQuestionAnswerer`.
        spm_model: its SentencePiece model (path or bytes).
        sequence_length: window length.
        lowercase: the vocabulary's casing.
        name: the signature name (default `serving_default`).
        **server_arguments: `QuestionAnsweringServer` arguments (`doc_stride`, ...).

    Returns:
        The endpoint name.

    Example:
    ```python
    add_endpoint(archive, model, "spiece.model", 384)
    # served.signatures["serving_default"](question=..., context=...)["answer_text"]
    ```
    """
    from albert_keras.tokenization import AlbertTokenizer

    tokenizer = AlbertTokenizer(spm_model, sequence_length=sequence_length, lowercase=lowercase)
    server = QuestionAnsweringServer(model, tokenizer, sequence_length, **server_arguments)
    archive.track(server)
    archive.add_endpoint(
        name, server.__call__,
        input_signature=[tf.TensorSpec([None], tf.string, name="question"),
                         tf.TensorSpec([None], tf.string, name="context")],
    )
    return name
