"""Intent-slot models as TFLite with the tokenizer inside: an utterance in; the intent and one slot
tag per word, with each word's byte span in the text sent, out.

The graph does what `IntentSlotServer` (the SavedModel) does, with the ops LiteRT runs (TFLite
builtins plus tensorflow-text's registered ops; no Flex):

1. words: Python's `str.split()` words, with their UTF-8 BYTE offsets: every `str.isspace`
   character becomes as many ASCII spaces as it has bytes (a `FastBertNormalizer` table,
   `whitespace_normalizer_model`, so offsets do not move), then tensorflow-text's
   `WhitespaceTokenizer` splits;
2. each word tokenized alone (the TFLite-compatible `AlbertTextPacker` tokenizer: ALBERT's
   normalization folded into the SentencePiece model, or the TFLite WordPiece route), a word
   without pieces gets `[UNK]`; one window `[CLS] pieces [SEP]` per utterance, a word whose first
   piece does not fit is left out (tag -1: `O`), as `tasks.intent_slots.make_features` does;
3. the intent is the argmax of the intent head, each word's tag the argmax at its first piece.

Outputs: `intent_probabilities` `[B, I]`, `intent_ids` `[B]`, `intents` `[B]` (names),
`slot_tag_ids` `[B, W]` (index into the slot labels; -1: left out of the window, read as `O`,
or padding), `word_start`, `word_end` `[B, W]` (UTF-8 byte offsets into the text sent, `end`
exclusive; -1 pads). The slots are read from the tags in Python, `decode_outputs`: seqeval's
chunking (as `predict` does), byte offsets turned into character offsets, each slot a slice of the
text. LiteRT takes the text as bytes; send valid UTF-8 (the SavedModel also repairs invalid bytes).
"""

import os

import numpy as np
import tensorflow as tf

from albert_keras.errors import AlbertInputError

OUTPUTS = ("intent_probabilities", "intent_ids", "intents", "slot_tag_ids", "word_start", "word_end")


def whitespace_normalizer_model():
    """A `tensorflow_text.FastBertNormalizer` model buffer that turns each whitespace character of
    Python's `str.split()` (`str.isspace`) into as many ASCII spaces as it has UTF-8 bytes, and keeps
    every other character: words then split at " " alone, and byte offsets into the output are byte
    offsets into the input (tensorflow-text's `WhitespaceTokenizer` alone misplaces the end of a word
    before a multi-byte space, and does not split at U+001C..U+001F, which Python does).

    Example:
    >>> import tensorflow_text as tf_text  # doctest: +SKIP
    >>> tf_text.FastBertNormalizer(model_buffer=whitespace_normalizer_model()).normalize(["a\u00a0b"])  # doctest: +SKIP
    [b"a  b"]
    """
    import sys

    from albert_keras.tokenization.wordpiece_graph import darts_trie
    from albert_keras.tokenization.wordpiece_graph import normalizer_flatbuffer

    pool, entries = bytearray(), []
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        if char.isspace() and char != " ":
            width = len(char.encode("utf-8"))
            entries.append((char.encode("utf-8"), 0x40000000 | width | (len(pool) << 6)))
            pool += b" " * width
    return normalizer_flatbuffer(False, darts_trie(entries), 0, pool)


class IntentSlotLiteServer(tf.Module):
    """`text [B] -> intent probabilities and ids, per-word slot tag ids and byte spans`.

    Args:
        model: an `AlbertIntentSlotTagger`.
        vocabulary: the model's vocabulary (SentencePiece or WordPiece; path, bytes or `Vocabulary`).
        sequence_length: packed window length.
        lowercase: the model's casing (None: the vocabulary's).

    Example:
    ```python
    server = IntentSlotLiteServer(model, "spiece.model", sequence_length=64)
    server(tf.constant(["play some jazz"]))["slot_tag_ids"]
    ```
    """

    def __init__(self, model, vocabulary, sequence_length, lowercase=None, name=None):
        import tensorflow_text as tf_text

        from albert_keras.export.text import AlbertTextPacker

        super().__init__(name=name)
        self.model = model
        self.packer = AlbertTextPacker(vocabulary, sequence_length, lowercase=lowercase, tflite_compatible=True)
        special = self.packer.vocabulary.special_ids
        self.cls_id, self.sep_id, self.unk_id = (int(special[key]) for key in ("cls", "sep", "unk"))
        self.sequence_length = int(sequence_length)
        self.intents = [str(intent) for intent in model.intents]
        self.slot_labels = [str(label) for label in model.slot_labels]
        self.spaces = tf_text.FastBertNormalizer(model_buffer=whitespace_normalizer_model())
        self.whitespace = tf_text.WhitespaceTokenizer()

    def features(self, text):
        """`(model features, word row ids [N], first-piece positions [N], kept [N], words)` of `text`."""
        T = self.sequence_length
        budget = T - 2
        words, starts, ends = self.whitespace.tokenize_with_offsets(self.spaces.normalize(text))
        pieces = self.packer.layer.tokenize(words.flat_values)
        count = tf.cast(pieces.row_lengths(), tf.int32)
        dense = tf.pad(tf.cast(pieces.to_tensor(default_value=0), tf.int32), [[0, 0], [0, 1]])
        width = tf.shape(dense)[1]
        column = tf.expand_dims(tf.range(width), 0)
        # A word without pieces stands as one [UNK] (as `tasks.tagging.word_pieces` does).
        dense = tf.where((column == 0) & tf.expand_dims(count == 0, 1), self.unk_id, dense)
        count = tf.maximum(count, 1)
        # Every word's pieces laid end to end (scatter: no ragged kernels needed), one spare slot last.
        first = tf.cumsum(count, exclusive=True)
        total = tf.reduce_sum(count)
        keep = column < tf.expand_dims(count, 1)
        target = tf.where(keep, tf.expand_dims(first, 1) + column, total)
        flat = tf.scatter_nd(tf.reshape(target, [-1, 1]), tf.reshape(tf.where(keep, dense, 0), [-1]),
                             tf.reshape(total + 1, [1]))
        row_splits = tf.cast(words.row_splits, tf.int32)
        row_first = tf.gather(tf.concat([first, tf.reshape(total, [1])], 0), row_splits)  # [B + 1]
        kept_length = tf.minimum(row_first[1:] - row_first[:-1], budget)
        packed = tf.reduce_max(tf.concat([kept_length, [0]], 0)) + 2
        position = tf.expand_dims(tf.range(packed), 0)
        lengths = tf.expand_dims(kept_length, 1)
        body = (position >= 1) & (position <= lengths)
        index = tf.clip_by_value(tf.expand_dims(row_first[:-1], 1) + position - 1, 0, total)
        token_ids = tf.where(body, tf.gather(flat, index), 0)
        token_ids = tf.where(position == 0, self.cls_id, token_ids)
        token_ids = tf.where(position == lengths + 1, self.sep_id, token_ids)
        padding_mask = tf.cast(position <= lengths + 1, tf.int32)
        features = {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": padding_mask}
        # Each word's row, and its first piece's place in its row's window.
        word_rows = tf.cast(words.value_rowids(), tf.int32)
        offset = first - tf.gather(row_first, word_rows)
        kept = offset < budget
        return features, word_rows, tf.minimum(1 + offset, T - 1), kept, (words, starts, ends)

    def __call__(self, text):
        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        text = tf.reshape(text, [-1])
        features, word_rows, position, kept, (words, starts, ends) = self.features(text)
        outputs = self.model(features, training=False)
        probabilities = tf.nn.softmax(tf.cast(outputs[INTENT_OUTPUT], tf.float32), axis=-1)
        intent_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        slot_logits = tf.cast(outputs[SLOT_OUTPUT], tf.float32)
        # The logits at each word's first piece (a flat gather: rows * width + position).
        width = tf.shape(slot_logits)[1]
        flat_logits = tf.reshape(slot_logits, [-1, len(self.slot_labels)])
        word_logits = tf.gather(flat_logits, word_rows * width + tf.minimum(position, width - 1))
        tag_ids = tf.where(kept, tf.argmax(word_logits, axis=-1, output_type=tf.int32), -1)

        def dense(values):
            return words.with_flat_values(tf.cast(values, tf.int32)).to_tensor(default_value=-1)

        return {
            "intent_probabilities": probabilities,
            "intent_ids": intent_ids,
            "intents": tf.gather(tf.constant(self.intents), intent_ids),
            "slot_tag_ids": dense(tag_ids),
            "word_start": dense(starts.flat_values),
            "word_end": dense(ends.flat_values),
        }


def text_bytes(texts):
    """`texts` (str or bytes) as the object array of UTF-8 bytes the TFLite signature takes."""
    return np.array([t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts], dtype=object)


def _char_offsets(text):
    """`{utf-8 byte offset: character offset}` at every character boundary of `text`."""
    table, position = {0: 0}, 0
    for index, char in enumerate(text):
        position += len(char.encode("utf-8"))
        table[position] = index + 1
    return table


def decode_outputs(texts, outputs, intents, slot_labels):
    """The TFLite outputs as `predict` writes them: `{"text", "intent", "probability", "slots"}` per
    utterance, each slot `{"text", "start", "end", "type"}` in CHARACTERS of the text (a slice of it).

    Args:
        texts: the utterances sent (`str`; bytes are decoded as UTF-8).
        outputs: the signature runner's outputs for them (`OUTPUTS`).
        intents: the intent names (`albert_keras.json`'s `intents`).
        slot_labels: the slot tags (`albert_keras.json`'s `slot_labels`).

    Example:
    ```python
    runner = interpreter("model.tflite").get_signature_runner()
    decode_outputs(["play jazz"], runner(text=text_bytes(["play jazz"])), intents, slot_labels)
    # [{"text": "play jazz", "intent": "play_music", "probability": 0.93, "slots": [...]}]
    ```
    """
    from albert_keras.tasks.intent_slots import Utterance
    from albert_keras.tasks.intent_slots import tags_to_slots

    results = []
    for k, text in enumerate(texts):
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        chars = _char_offsets(text)
        starts, ends, tag_ids = (np.asarray(outputs[key][k]) for key in ("word_start", "word_end", "slot_tag_ids"))
        real = starts >= 0
        try:
            spans = [(chars[int(a)], chars[int(b)]) for a, b in zip(starts[real], ends[real])]
        except KeyError as error:
            raise AlbertInputError(f"utterance {k}: byte offset {error} is not a character boundary of the "
                                   "text given: decode the outputs with the texts that were sent") from None
        utterance = Utterance(text, words=[text[a:b] for a, b in spans] or [""], spans=spans)
        tags = [slot_labels[int(i)] if i >= 0 else "O" for i in tag_ids[real]]
        probabilities = np.asarray(outputs["intent_probabilities"][k])
        best = int(outputs["intent_ids"][k])
        results.append({"text": text, "intent": str(intents[best]), "probability": round(float(probabilities[best]), 6),
                        "slots": tags_to_slots(utterance, tags) if spans else []})
    return results


def _agreement(expected, actual):
    """`(intent agreement, slot-tag agreement over the real words)`; raises if the word spans differ."""
    from albert_keras.export.tflite import TFLiteVerificationError

    for key in ("word_start", "word_end"):
        if np.asarray(actual[key]).shape != expected[key].shape or not np.array_equal(actual[key], expected[key]):
            raise TFLiteVerificationError(f"TFLite {key} differs from the graph's in TensorFlow")
    same_intent = np.asarray(actual["intent_ids"]) == expected["intent_ids"]
    real = expected["word_start"] >= 0
    same_tag = (np.asarray(actual["slot_tag_ids"]) == expected["slot_tag_ids"])[real]
    return (float(np.mean(same_intent)) if same_intent.size else 1.0,
            float(np.mean(same_tag)) if same_tag.size else 1.0)


def convert_intent_slots(model, output_path, vocabulary, sequence_length, quantize="none", lowercase=None,
                         threshold=None, verify_texts=None, verbose=True):
    """Convert an intent-slot model to a `.tflite` file with the tokenizer inside, verified first.

    The file is run in LiteRT on `verify_texts` and compared with the same graph run in TensorFlow
    (the Keras model): the intent probabilities within `threshold`, the word spans equal, and for a
    quantized file the intents and the per-word slot tags agree on at least `MIN_LABEL_AGREEMENT`
    of them; otherwise nothing is written.

    Args:
        model: an `AlbertIntentSlotTagger`.
        output_path: the `.tflite` file to write.
        vocabulary: the model's vocabulary (SentencePiece or WordPiece).
        sequence_length: the packed window length.
        quantize: `"none"`, `"float16"` or `"dynamic-int8"` (full-integer files take token ids).
        lowercase: the model's casing (None: the vocabulary's).
        threshold: largest accepted |diff| of the intent probabilities (default: the variant's).
        verify_texts: texts for the check (default: `DEFAULT_SAMPLE_TEXTS`, plus `verification_texts()`
            for quantized files).
        verbose: print size, latency and agreement.

    Returns:
        the report: `max_diff`, `intent_agreement`, `slot_tag_agreement`, `label_agreement` (the
        smaller), `latency_ms`, `size_bytes`, `input_shapes`, `path`, `quantize`, `with_tokenizer`.

    Example:
    ```python
    convert_intent_slots(model, "intents.tflite", "spiece.model", 64, quantize="dynamic-int8")
    ```
    """
    import time

    from albert_keras.export import tflite
    from albert_keras.io_utils import atomic_write

    if quantize not in ("none", "float16", "dynamic-int8"):
        raise AlbertInputError(f"--quantize {quantize}: intent-slot TFLite files carry the tokenizer; use none, "
                               "float16 or dynamic-int8")
    server = IntentSlotLiteServer(model, vocabulary, sequence_length, lowercase=lowercase)
    spec = [tf.TensorSpec([None], tf.string, name="text")]
    tflite_bytes = tflite.convert_function(model, server.__call__, spec, quantize, allow_custom_ops=True)
    if verify_texts is None:
        verify_texts = tflite.DEFAULT_SAMPLE_TEXTS
        if quantize != "none":
            verify_texts = verify_texts + tflite.verification_texts()
    inputs = text_bytes(verify_texts)
    expected = {key: value.numpy() for key, value in server(tf.constant(inputs)).items()}
    runner = tflite.interpreter(tflite_bytes).get_signature_runner()
    try:
        actual = runner(text=inputs)
    except RuntimeError as error:
        raise tflite.TFLiteVerificationError(f"TFLite model fails to run: {str(error).splitlines()[0]}") from error
    got = np.asarray(actual["intent_probabilities"], np.float64)
    if got.shape != expected["intent_probabilities"].shape or not np.all(np.isfinite(got)):
        raise tflite.TFLiteVerificationError(f"TFLite intent probabilities: shape {got.shape} or NaN")
    max_diff = float(np.max(np.abs(got - expected["intent_probabilities"]), initial=0.0))
    intent_agreement, tag_agreement = _agreement(expected, actual)
    latencies = []
    for _ in range(5):
        start = time.perf_counter()
        runner(text=inputs[:1])
        latencies.append((time.perf_counter() - start) * 1000)
    threshold = tflite.DEFAULT_THRESHOLDS[quantize] if threshold is None else threshold
    if max_diff > threshold:
        raise tflite.TFLiteVerificationError(
            f"TFLite intent probabilities differ from the Keras model's by {max_diff:.3g} > threshold {threshold:.3g}")
    agreement = min(intent_agreement, tag_agreement)
    if quantize != "none" and agreement < tflite.MIN_LABEL_AGREEMENT:
        raise tflite.TFLiteVerificationError(
            f"TFLite model gives the Keras model's intents on {intent_agreement:.1%} of {len(inputs)} verification "
            f"utterances and its slot tags on {tag_agreement:.1%} of their words (at least "
            f"{tflite.MIN_LABEL_AGREEMENT:.0%} required); nothing written: use a milder --quantize")
    with atomic_write(output_path) as f:
        f.write(tflite_bytes)
    report = {
        "max_diff": max_diff, "intent_agreement": intent_agreement, "slot_tag_agreement": tag_agreement,
        "label_agreement": agreement, "latency_ms": float(np.median(latencies)), "size_bytes": len(tflite_bytes),
        "input_shapes": tflite.tflite_input_shapes(tflite_bytes), "path": os.fspath(output_path),
        "quantize": quantize, "with_tokenizer": True, "verified_texts": len(inputs),
    }
    if verbose:
        print(f"{output_path}: {len(tflite_bytes) / 1e6:.2f} MB, quantize={quantize}, tokenizer=inside, latency "
              f"{report['latency_ms']:.1f} ms (1 utterance), max|diff| {max_diff:.3g} (threshold {threshold:.3g}), "
              f"intent agreement {intent_agreement:.3f}, slot tag agreement {tag_agreement:.3f}")
    return report
