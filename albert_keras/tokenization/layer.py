"""`AlbertTokenizer`: raw strings (or pairs) to ALBERT's packed model inputs, in-graph.

Imported lazily as `albert_keras.tokenization.AlbertTokenizer`; it lives in its own module because
it needs TensorFlow and Keras, which `albert_keras.tokenization.sentencepiece` does not import.

The packing is built with dense ops (gathers and `tf.where` over positions) rather than ragged
concatenation: the result is the same, and it avoids `RaggedRange`, which TFLite cannot run, so the
layer (with `use_fast_tokenizer=True, normalize=False`) converts to a LiteRT model with
tensorflow-text's custom ops only. For the same reason it uses `tf.expand_dims` instead of
`x[..., tf.newaxis]` (a `StridedSlice` with `new_axis_mask`, which TFLite builtins lack).
"""

import base64
import os

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from albert_keras.tokenization import sentencepiece as tokenization


def _quirk_tables(sp):
    """`digit_comma_expansions` as dense arrays for the graph.

    Returns `(quirk_index [V], expansions [Q, K], lengths [Q])` numpy arrays (`quirk_index` is -1
    for ids that stay as they are), or `None` when the vocabulary has no "<digit>," piece.
    """
    expansions = tokenization.digit_comma_expansions(sp)
    if not expansions:
        return None
    quirk_index = np.full([sp.get_piece_size()], -1, dtype=np.int32)
    width = max(len(ids) for ids in expansions.values())
    table = np.zeros([len(expansions), width], dtype=np.int32)
    lengths = np.zeros([len(expansions)], dtype=np.int32)
    for row, (piece_id, ids) in enumerate(sorted(expansions.items())):
        quirk_index[piece_id] = row
        table[row, : len(ids)] = ids
        lengths[row] = len(ids)
    return quirk_index, table, lengths


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertTokenizer(keras.layers.Layer):
    """Strings, or pairs of strings, to ALBERT's packed inputs, entirely in TensorFlow ops.

    Works with either vocabulary kind (`albert_keras.tokenization.load_vocabulary`):

    - SentencePiece: `preprocess_text_tf` (the official normalization, lowercasing if
      `lowercase`), SentencePiece (`tensorflow_text`), the official digit-comma re-encoding; the
      ids are exactly those of `encode_for_albert` (the Python path the data pipeline uses).
    - WordPiece: google-research/ALBERT's `FullTokenizer` steps in-graph
      (`albert_keras.tokenization.wordpiece_graph`); the ids are exactly those of the Python
      `WordPieceVocabulary.encode`.

    Then packing `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]` with the vocabulary's own special ids.
    Pairs are truncated like the official fine-tuning code's `_truncate_seq_pair` (drop from the
    longer segment until the pair fits; equivalent to tensorflow-text's round-robin trimming);
    a single text keeps its first `sequence_length - 2` pieces. Segment ids are 0 for
    `[CLS] A [SEP]` and 1 for `B [SEP]`; padding has the pad id, segment 0 and mask 0.

    Works eagerly, inside `tf.function`, `tf.data.Dataset.map` (batched `[B]` or unbatched scalar
    strings) and SavedModels, and round-trips through `get_config` and `.keras` files (the
    vocabulary file is stored in the config, base64-encoded, with its kind).

    Args:
        vocabulary: a `Vocabulary` (from `load_vocabulary`), or what `load_vocabulary` takes: a
            path to a SentencePiece `.model` or a WordPiece `vocab.txt` (or a directory holding
            one), or the file's bytes.
        sequence_length: the packed length, special tokens included.
        lowercase: lowercase during normalization; None keeps the vocabulary's casing
            (`tokenizer.json`, else True).
        pad_to_sequence_length: pad every row to `sequence_length`; if False, pad to the longest
            row of the batch (still truncating to `sequence_length`).
        normalize: apply the normalization first. Turn off only if texts are already normalised
            (e.g. for a TFLite model, which has no kernel for the regex/ICU ops).
        use_fast_tokenizer: use tensorflow-text's TFLite-compatible tokenizer kernels
            (`FastSentencepieceTokenizer`; for WordPiece, the TFLite-compatible graph); same ids.
        split_digit_comma: reproduce the official digit-comma rewrite (SentencePiece only).
        spm_model: the former name of `vocabulary` (still accepted).
        **kwargs: `keras.layers.Layer` arguments such as `name`.

    Call arguments:
        inputs: a string tensor `[B]` (or a scalar, or a Python list of `str`), or a tuple
            `(texts_a, texts_b)` of those for pairs.

    Returns:
        A dict of int32 tensors `token_ids`, `segment_ids`, `padding_mask`, each `[B, T]`
        (`[T]` for a scalar input).

    Example:
    >>> tokenizer = AlbertTokenizer("spiece.model", sequence_length=16)  # doctest: +SKIP
    >>> tokenizer(["The first text.", "Another."])["token_ids"].shape  # doctest: +SKIP
    TensorShape([2, 16])
    >>> tokenizer((["A question?"], ["Its context."]))["segment_ids"]  # doctest: +SKIP
    """

    def __init__(
        self,
        vocabulary=None,
        sequence_length=512,
        lowercase=None,
        pad_to_sequence_length=True,
        normalize=True,
        use_fast_tokenizer=False,
        split_digit_comma=True,
        spm_model=None,
        **kwargs,
    ):
        from albert_keras.compat import accept_any_call_arguments
        from albert_keras.tokenization.vocabulary import load_vocabulary

        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        # Strings must reach `call` as they are (Keras would try to cast them to floats).
        accept_any_call_arguments(self)
        if vocabulary is None:
            vocabulary = spm_model
        if vocabulary is None:
            raise ValueError("AlbertTokenizer needs a vocabulary (a Vocabulary, a path or the file's bytes)")
        min_length = 3
        if int(sequence_length) < min_length:
            raise ValueError(f"sequence_length must be at least {min_length}, got {sequence_length}")
        self.vocabulary = load_vocabulary(vocabulary, lowercase=lowercase)
        self.sequence_length = int(sequence_length)
        self.lowercase = self.vocabulary.lowercase
        self.pad_to_sequence_length = bool(pad_to_sequence_length)
        self.normalize = bool(normalize)
        self.use_fast_tokenizer = bool(use_fast_tokenizer)
        self.split_digit_comma = bool(split_digit_comma)
        special = self.vocabulary.special_ids
        self._pad_id, self._cls_id, self._sep_id = special["pad"], special["cls"], special["sep"]
        self._quirks = None
        if self.vocabulary.kind == "sentencepiece":
            self._proto = self.vocabulary.data
            self._sp = self.vocabulary.processor
            if self.use_fast_tokenizer:
                self._sentencepiece = tf_text.FastSentencepieceTokenizer(self._proto)
            else:
                self._sentencepiece = tf_text.SentencepieceTokenizer(model=self._proto, out_type=tf.int32)
            tables = _quirk_tables(self._sp) if self.split_digit_comma else None
            if tables is not None:
                self._quirks = tuple(tf.constant(t) for t in tables)
        else:
            from albert_keras.tokenization.wordpiece_graph import WordPieceGraphTokenizer

            self._proto = None
            self._wordpiece = WordPieceGraphTokenizer(
                self.vocabulary.tokens(),
                lowercase=self.lowercase,
                unk_token=self.vocabulary.id_to_token(special["unk"]),
                tflite_compatible=self.use_fast_tokenizer and not self.normalize,
            )
        # No weights: ready to use (and to export with `keras.export.ExportArchive`) as created.
        self.built = True

    # ------------------------------------------------------------------ vocabulary helpers

    def vocabulary_size(self):
        """Number of tokens in the vocabulary."""
        return self.vocabulary.vocabulary_size()

    def get_vocabulary(self):
        """All tokens, indexed by id."""
        return self.vocabulary.tokens()

    def id_to_token(self, token_id):
        """The token for an id (`int`)."""
        return self.vocabulary.id_to_token(token_id)

    def token_to_id(self, token):
        """The id for a token (`str`); unknown tokens give the unknown token's id."""
        return self.vocabulary.token_to_id(token)

    @property
    def proto(self):
        """The serialized SentencePiece model (`bytes`), or None for a WordPiece vocabulary."""
        return self._proto

    # ------------------------------------------------------------------ graph

    def _dense_ids(self, texts):
        """Normalised, tokenized, digit-comma-split ids: dense `[B, L]` (L >= 1) and lengths `[B]`."""
        if self._proto is None:
            ragged = self._wordpiece.tokenize(texts)
        else:
            if self.normalize:
                texts = tokenization.preprocess_text_tf(texts, self.lowercase)
            ragged = self._sentencepiece.tokenize(texts)
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        ids = tf.cast(ragged.to_tensor(default_value=self._pad_id), tf.int32)
        # One spare column, so gathers below never index an empty axis.
        ids = tf.pad(ids, [[0, 0], [0, 1]], constant_values=self._pad_id)
        if self._quirks is not None:
            ids, lengths = self._split_digit_comma(ids, lengths)
        return ids, lengths

    def _split_digit_comma(self, ids, lengths):
        """Replace each "<digit>," piece by its official expansion, with dense ops only."""
        quirk_index, table, table_lengths = self._quirks
        batch = tf.shape(ids)[0]
        width = tf.shape(ids)[1]
        expand = tf.shape(table)[1]
        row = tf.gather(quirk_index, ids)  # [B, L], -1 where no rewrite
        is_quirk = row >= 0
        safe_row = tf.maximum(row, 0)
        valid = tf.expand_dims(tf.range(width), 0) < tf.expand_dims(lengths, 1)
        counts = tf.where(valid, tf.where(is_quirk, tf.gather(table_lengths, safe_row), 1), 0)
        pieces = tf.where(
            tf.expand_dims(is_quirk, -1),
            tf.gather(table, safe_row),
            tf.pad(tf.expand_dims(ids, -1), [[0, 0], [0, 0], [0, expand - 1]]),
        )  # [B, L, K]
        offsets = tf.cumsum(counts, axis=1, exclusive=True)
        k = tf.reshape(tf.range(expand), [1, 1, -1])
        target = tf.expand_dims(offsets, -1) + k
        keep = k < tf.expand_dims(counts, -1)
        dump = width * expand  # an extra column collecting the unused slots, sliced off below
        target = tf.where(keep, target, dump)
        batch_index = tf.broadcast_to(tf.reshape(tf.range(batch), [-1, 1, 1]), tf.shape(target))
        indices = tf.stack([batch_index, target], axis=-1)
        out = tf.scatter_nd(
            tf.reshape(indices, [-1, 2]), tf.reshape(tf.where(keep, pieces, 0), [-1]),
            tf.stack([batch, dump + 1]),
        )
        new_lengths = tf.reduce_sum(counts, axis=1)
        new_width = tf.reduce_max(tf.concat([new_lengths, [0]], 0)) + 1
        return out[:, :new_width], new_lengths

    def tokenize(self, texts):
        """Ids of each text, without special tokens or truncation: a `tf.RaggedTensor` `[B, None]`.

        Example:
        >>> tokenizer.tokenize(["Hello world."])  # doctest: +SKIP
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        scalar = texts.shape.rank == 0
        ids, lengths = self._dense_ids(tf.reshape(texts, [-1]))
        ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        return ragged[0] if scalar else ragged

    def tokenize_with_offsets(self, texts):
        """`tokenize` plus each piece's character span in the ORIGINAL texts.

        See `albert_keras.tokenization.offsets` for the alignment (the same as
        `encode_with_offsets` in Python); needs ragged ops, so SavedModel only (not TFLite).

        Returns:
            `(ids, starts, ends)`: `tf.RaggedTensor`s `[B, None]`, ids int32, offsets int64.

        Example:
        >>> ids, starts, ends = tokenizer.tokenize_with_offsets(["Café au lait"])  # doctest: +SKIP
        """
        from albert_keras.tokenization import offsets

        if self._proto is None:
            texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
            return self._wordpiece.tokenize_with_offsets(texts)
        sentencepiece = self._sentencepiece
        if self.use_fast_tokenizer:  # FastSentencepieceTokenizer reports no offsets
            if getattr(self, "_offset_sentencepiece", None) is None:
                with tf.init_scope():
                    self._offset_sentencepiece = tf_text.SentencepieceTokenizer(
                        model=self._proto, out_type=tf.int32
                    )
            sentencepiece = self._offset_sentencepiece
        tables = offsets.offset_tables(self._sp) if self.split_digit_comma else None
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        return offsets.encode_with_offsets_tf(sentencepiece, texts, self.lowercase, tables)

    def call(self, inputs):
        if isinstance(inputs, dict):
            raise ValueError("AlbertTokenizer takes a string tensor or a tuple (texts_a, texts_b)")
        # A tuple holds segments; anything else (a tensor, a Python list of str) is one batch.
        segments = list(inputs) if isinstance(inputs, tuple) else [inputs]
        if len(segments) not in (1, 2):
            raise ValueError(f"AlbertTokenizer packs one or two segments, got {len(segments)}")
        segments = [tf.convert_to_tensor(s, tf.string) for s in segments]
        scalar = segments[0].shape.rank == 0
        dense = [self._dense_ids(tf.reshape(s, [-1])) for s in segments]
        outputs = self._pack(dense)
        if scalar:
            outputs = {key: value[0] for key, value in outputs.items()}
        return outputs

    def _pack(self, dense):
        """`[CLS] A [SEP] (B [SEP])`, truncated and padded, from dense ids and lengths."""
        length = self.sequence_length
        (a_ids, a_len) = dense[0]
        pair = len(dense) == 2
        if pair:
            (b_ids, b_len) = dense[1]
            budget = length - 3
            # Equal to popping from the longer segment until the pair fits (official).
            a_len = tf.minimum(a_len, tf.maximum((budget + 1) // 2, budget - b_len))
            b_len = tf.minimum(b_len, budget - a_len)
            total = a_len + b_len + 3
        else:
            a_len = tf.minimum(a_len, length - 2)
            total = a_len + 2
        if self.pad_to_sequence_length:
            width = length
        else:
            width = tf.reduce_max(tf.concat([total, [0]], 0))
        batch = tf.shape(a_ids)[0]
        position = tf.broadcast_to(tf.expand_dims(tf.range(width), 0), tf.stack([batch, width]))
        a_end = tf.expand_dims(a_len, 1) + 1  # position of the first [SEP]
        token_ids = tf.fill(tf.stack([batch, width]), self._pad_id)
        a_tokens = tf.gather(a_ids, tf.clip_by_value(position - 1, 0, tf.shape(a_ids)[1] - 1), batch_dims=1)
        token_ids = tf.where((position >= 1) & (position < a_end), a_tokens, token_ids)
        token_ids = tf.where(position == 0, self._cls_id, token_ids)
        token_ids = tf.where(position == a_end, self._sep_id, token_ids)
        segment_ids = tf.zeros_like(token_ids)
        if pair:
            b_start = a_end + 1
            b_end = b_start + tf.expand_dims(b_len, 1)  # position of the second [SEP]
            b_tokens = tf.gather(
                b_ids, tf.clip_by_value(position - b_start, 0, tf.shape(b_ids)[1] - 1), batch_dims=1
            )
            token_ids = tf.where((position >= b_start) & (position < b_end), b_tokens, token_ids)
            token_ids = tf.where(position == b_end, self._sep_id, token_ids)
            segment_ids = tf.where((position >= b_start) & (position <= b_end), 1, segment_ids)
        padding_mask = tf.cast(position < tf.expand_dims(total, 1), tf.int32)
        if self.pad_to_sequence_length:
            for tensor in (token_ids, segment_ids, padding_mask):
                tensor.set_shape([None, length])
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}

    def compute_output_spec(self, inputs):
        first = inputs[0] if isinstance(inputs, tuple) else inputs
        width = self.sequence_length if self.pad_to_sequence_length else None
        shape = (width,) if len(first.shape) == 0 else (first.shape[0], width)
        return {
            key: keras.KerasTensor(shape, dtype="int32")
            for key in ("token_ids", "segment_ids", "padding_mask")
        }

    # ------------------------------------------------------------------ serialization

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": base64.b64encode(self.vocabulary.data).decode("ascii"),
                "vocabulary_kind": self.vocabulary.kind,
                "sequence_length": self.sequence_length,
                "lowercase": self.lowercase,
                "pad_to_sequence_length": self.pad_to_sequence_length,
                "normalize": self.normalize,
                "use_fast_tokenizer": self.use_fast_tokenizer,
                "split_digit_comma": self.split_digit_comma,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        from albert_keras.tokenization.vocabulary import load_vocabulary

        config = dict(config)
        # `spm_model` is what configs written before WordPiece support call the vocabulary.
        data = config.pop("vocabulary", None) or config.pop("spm_model")
        kind = config.pop("vocabulary_kind", None)
        if isinstance(data, str) and not os.path.exists(data):
            data = base64.b64decode(data, validate=True)
        config["vocabulary"] = load_vocabulary(data, lowercase=config.pop("lowercase", True), kind=kind)
        return cls(**config)
