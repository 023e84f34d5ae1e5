"""In-graph text -> ALBERT features for exported models (SavedModel and TFLite).

`AlbertTextPacker` turns raw UTF-8 strings into `token_ids`, `segment_ids` and `padding_mask` with
tensorflow-text's `FastSentencepieceTokenizer`, packing `[CLS] A [SEP] (B [SEP])` and padding only
to the longest sequence of the batch.

Why not `albert_keras.tokenization.AlbertTokenizer` or keras-hub's `MultiSegmentPacker`: those pack
with ragged ops (`RaggedRange`, ragged concat), which TFLite cannot run without the Flex delegate
(see docs/export.md). Here packing is built from dense ops only (`to_tensor`, `gather`,
`where`), so the very same graph runs in a SavedModel, in TF Serving and in LiteRT with only the
tensorflow-text custom-op registrar. Tests check it against `AlbertTokenizer` token for token.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from albert_keras.errors import AlbertInputError

PAD_ID = 0
CLS_ID = 2
SEP_ID = 3

# The Unicode replacement character, put where the input is not valid UTF-8.
_REPLACEMENT_CHAR = 0xFFFD


def read_spm_model(spm_model):
    """Return the serialized SentencePiece model proto from a path or bytes."""
    if isinstance(spm_model, (bytes, bytearray)):
        return bytes(spm_model)
    try:
        with open(spm_model, "rb") as f:
            return f.read()
    except OSError as error:
        raise AlbertInputError(f"{spm_model}: cannot read the SentencePiece model ({error.strerror})")


def _max_piece_chars(proto):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    return max(len(processor.id_to_piece(i)) for i in range(processor.get_piece_size()))


def truncate_pair_lengths(length_a, length_b, max_tokens):
    """Lengths the official `truncate_seq_pair` leaves, in closed form (dense ops only).

    The official loop drops one token at a time from the longer segment (from `b` on ties) until
    the pair fits; the result is the formula below, which needs no loop so TFLite can run it.

    Args:
        length_a: int32 tensor `[B]`, tokens in the first segment.
        length_b: int32 tensor `[B]`, tokens in the second segment.
        max_tokens: int, the budget for both segments together.

    Returns:
        `(kept_a, kept_b)`, int32 tensors `[B]`.

    Example:
    ```python
    truncate_pair_lengths(tf.constant([10, 2]), tf.constant([10, 10]), 5)  # ([3, 2], [2, 3])
    ```
    """
    half_up = (max_tokens + 1) // 2
    kept_a = tf.minimum(length_a, tf.maximum(half_up, max_tokens - length_b))
    kept_b = tf.minimum(length_b, max_tokens - kept_a)
    return kept_a, kept_b


class AlbertTextPacker(tf.Module):
    """Raw strings -> `token_ids`, `segment_ids`, `padding_mask`, inside the graph.

    Steps: invalid UTF-8 is replaced by U+FFFD; overly long strings are cut to a length that cannot
    change the first `sequence_length` pieces; text is normalized (the official ALBERT
    normalization, or the TFLite-compatible one); SentencePiece splits it; the segments are
    truncated as the official code does and packed as `[CLS] A [SEP] (B [SEP])`, padded to the
    longest sequence in the batch.

    Args:
        spm_model: path of a SentencePiece `.model` file, or its bytes.
        sequence_length: the longest packed sequence (the model's maximum length).
        lowercase: lowercase and strip accents, as the model's vocabulary was built.
        tflite_compatible: use only ops the LiteRT interpreter runs with tensorflow-text's op
            registrar: normalization by `FastBertNormalizer` (lowercase, NFD, accents stripped;
            the SentencePiece model's own NFKC rules still apply) instead of the official
            normalization, and no UTF-8 repair or length cap (LiteRT has no kernels for them).
            The official normalization also turns `` and '' into `"`; the TFLite one does not.

    Example:
    ```python
    packer = AlbertTextPacker("spiece.model", sequence_length=128)
    features = packer(tf.constant(["Hello world."]))
    features["token_ids"]  # [[2, ..., 3]]
    ```
    """

    def __init__(self, spm_model, sequence_length, lowercase=True, tflite_compatible=False, name=None):
        super().__init__(name=name)
        if sequence_length < 3:
            raise AlbertInputError(f"sequence_length: must be at least 3, got {sequence_length}")
        self.spm_proto = read_spm_model(spm_model)
        self.sequence_length = int(sequence_length)
        self.lowercase = bool(lowercase)
        self.tflite_compatible = bool(tflite_compatible)
        try:
            self.tokenizer = tf_text.FastSentencepieceTokenizer(self.spm_proto)
        except Exception as error:  # the converter raises a bare RuntimeError on bad protos
            raise AlbertInputError(f"SentencePiece model: not usable by FastSentencepieceTokenizer ({error})")
        if tflite_compatible:
            self.normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=self.lowercase)
        else:
            # A piece never spans more than this many characters, so cutting the text after
            # 2 * (max piece) * (sequence length) characters (2x for normalization that shrinks
            # text) keeps every piece the model can see, while a 10 MB request costs nothing.
            self.max_chars = 2 * _max_piece_chars(self.spm_proto) * self.sequence_length

    def normalize(self, text):
        """Normalize a `[B]` string tensor as the exported graph does."""
        if self.tflite_compatible:
            return self.normalizer.normalize(text)
        from albert_keras.tokenization import preprocess_text_tf

        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHAR
        )
        text = tf.strings.substr(text, 0, self.max_chars, unit="UTF8_CHAR")
        return preprocess_text_tf(text, lowercase=self.lowercase)

    def tokenize(self, text):
        """`[B]` strings -> dense int32 ids `[B, L]` (0-padded) and lengths `[B]`."""
        ragged = self.tokenizer.tokenize(self.normalize(text))
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        return ragged.to_tensor(default_value=PAD_ID), lengths

    def __call__(self, text, text_b=None):
        """Pack `text` (and `text_b`), string tensors `[B]`, into the model's feature dict."""
        ids_a, length_a = self.tokenize(text)
        if text_b is None:
            return pack_dense(ids_a, tf.minimum(length_a, self.sequence_length - 2))
        ids_b, length_b = self.tokenize(text_b)
        kept_a, kept_b = truncate_pair_lengths(length_a, length_b, self.sequence_length - 3)
        return pack_dense(ids_a, kept_a, ids_b, kept_b)


def pack_dense(ids_a, kept_a, ids_b=None, kept_b=None):
    """Pack `[CLS] A[:kept_a] [SEP] (B[:kept_b] [SEP])` with dense ops, padded to the longest row.

    Args:
        ids_a: int32 `[B, La]`, 0-padded token ids of the first segment.
        kept_a: int32 `[B]`, tokens of `ids_a` to keep per row.
        ids_b: optional int32 `[B, Lb]`, the second segment.
        kept_b: int32 `[B]`, tokens of `ids_b` to keep (required with `ids_b`).

    Returns:
        dict of int32 `[B, W]` tensors `token_ids`, `segment_ids`, `padding_mask`, where `W` is the
        longest packed row of the batch (2 or 3 for an empty batch).

    Example:
    ```python
    pack_dense(tf.constant([[7, 8, 9]]), tf.constant([2]))["token_ids"]  # [[2, 7, 8, 3]]
    ```
    """
    pair = ids_b is not None
    if not pair:
        ids_b = tf.zeros_like(ids_a[:, :1])
        kept_b = tf.zeros_like(kept_a)
    # Position p of the packed row reads A at p-1 and B at p-kept_a-2; a padding column at the end
    # of each segment gives the gather a valid index for every position.
    ids_a = tf.pad(ids_a, [[0, 0], [0, 1]])
    ids_b = tf.pad(ids_b, [[0, 0], [0, 1]])
    extra = 3 if pair else 2
    total = kept_a + kept_b + extra
    width = tf.maximum(tf.reduce_max(tf.concat([total, [extra]], axis=0)), extra)
    positions = tf.range(width)[tf.newaxis, :]
    kept_a_col = kept_a[:, tf.newaxis]
    kept_b_col = kept_b[:, tf.newaxis]
    last_a = tf.shape(ids_a)[1] - 1
    last_b = tf.shape(ids_b)[1] - 1
    index_a = tf.clip_by_value(positions - 1 + tf.zeros_like(kept_a_col), 0, last_a)
    index_b = tf.clip_by_value(positions - kept_a_col - 2, 0, last_b)
    token_a = tf.gather(ids_a, index_a, batch_dims=1)
    token_b = tf.gather(ids_b, index_b, batch_dims=1)

    sep_a = kept_a_col + 1
    in_a = (positions >= 1) & (positions <= kept_a_col)
    in_b = (positions > sep_a) & (positions <= sep_a + kept_b_col)
    sep_b = sep_a + kept_b_col + 1
    token_ids = tf.where(in_a, token_a, tf.where(in_b, token_b, PAD_ID))
    token_ids = tf.where(positions == 0, CLS_ID, token_ids)
    token_ids = tf.where(positions == sep_a, SEP_ID, token_ids)
    if pair:
        token_ids = tf.where(positions == sep_b, SEP_ID, token_ids)
        segment_ids = tf.cast(in_b | (positions == sep_b), tf.int32)
        padding_mask = tf.cast(positions <= sep_b, tf.int32)
    else:
        segment_ids = tf.zeros_like(token_ids)
        padding_mask = tf.cast(positions <= sep_a, tf.int32)
    return {
        "token_ids": tf.cast(token_ids, tf.int32),
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }
