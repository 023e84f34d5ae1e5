"""The intent-slot serving graph: an utterance in; its intent, the intent's probability and the
slots as character spans of the text sent out.

`IntentSlotServer` does in TensorFlow ops what `albert_keras.tasks.intent_slots` does in Python:

1. words split at whitespace (`TaggingServer.words`: `text.split()`'s words, with their spans);
2. each word's pieces (a word without pieces gets `<unk>`) packed into one window
   `[CLS] pieces [SEP]`; a word whose first piece does not fit is left out and tagged `O`;
3. the intent is the argmax of the intent head; each word's slot tag the argmax at its first
   piece; slots are read from the tags with seqeval's default chunking and sliced from the
   ORIGINAL text (`slot_text`, `slot_start`, `slot_end`, in characters, `end` exclusive).

Outputs (padded with "" / -1): `intent` `[B]`, `intent_probability` `[B]`,
`intent_probabilities` `[B, I]`, `words`, `tags`, `word_start`, `word_end` `[B, W]`,
`slot_type`, `slot_text`, `slot_start`, `slot_end` `[B, E]`. Ragged ops: SavedModel only.
"""

import tensorflow as tf

from albert_keras.export.tagging import _O
from albert_keras.export import tagging
from albert_keras.export.tagging import TaggingServer
from albert_keras.export.tagging import _chunk_end
from albert_keras.export.tagging import _chunk_start
from albert_keras.export.tagging import _next
from albert_keras.export.tagging import _previous
from albert_keras.export.tagging import label_tables

ENDPOINT = "serving_default"


class IntentSlotServer(TaggingServer):
    """`text [B] -> intent, probability, words and tags, slot spans` (see the module docstring).

    Args:
        model: an `AlbertIntentSlotTagger`.
        tokenizer: an `AlbertTokenizer` with the model's vocabulary and casing.
        sequence_length: packed window length.

    Example:
    ```python
    server = IntentSlotServer(model, AlbertTokenizer("spiece.model"), sequence_length=64)
    server(tf.constant(["play some jazz in the kitchen"]))["slot_text"]
    ```
    """

    def __init__(self, model, tokenizer, sequence_length, name=None):
        tf.Module.__init__(self, name=name)
        self.model = model
        self.tokenizer = tokenizer
        # The vocabulary's own special ids: [CLS] is 2 in ALBERT's SentencePiece models, 101 in BERT-Chinese's.
        special = tokenizer.vocabulary.special_ids
        self.cls_id, self.sep_id, self.unk_id = (int(special[key]) for key in ("cls", "sep", "unk"))
        self.sequence_length = int(sequence_length)
        self.intents = [str(intent) for intent in model.intents]
        self.labels = [str(label) for label in model.slot_labels]
        self._prefixes, self._type_names, self._types = label_tables(self.labels)

    def __call__(self, text):
        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        # Offsets count the characters of valid UTF-8: slice the same repaired text.
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD,
                                            replace_control_characters=False)
        T = self.sequence_length
        budget = T - 2
        batch = tf.shape(text, out_type=tf.int64)[0]
        words, word_starts, word_ends = self.words(text)
        pieces = self.tokenizer.tokenize(words.flat_values)
        count = tf.cast(pieces.row_lengths(), tf.int32)
        # A word without pieces gets one <unk>, so every word has a first piece (as in training).
        empty = count == 0
        extra = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.unk_id), tf.cast(empty, pieces.row_splits.dtype)
        )
        piece_ids = tf.concat([tf.cast(pieces, tf.int32), extra], axis=1)
        count = tf.maximum(count, 1)
        word_rows = tf.cast(words.value_rowids(), tf.int32)
        n = tf.shape(word_rows)[0]
        # Pieces before each word in its own utterance.
        before = tf.cumsum(count, exclusive=True)
        first_of_row = tf.math.unsorted_segment_min(before, word_rows, tf.cast(batch, tf.int32))
        offset = before - tf.gather(first_of_row, word_rows)
        kept = offset < budget
        # One window per utterance: its pieces up to the budget, then [CLS] ... [SEP].
        piece_word = tf.cast(piece_ids.value_rowids(), tf.int32)
        within = tf.range(tf.shape(piece_word)[0]) - tf.gather(tf.cast(piece_ids.row_splits, tf.int32), piece_word)
        fits = tf.gather(offset, piece_word) + within < budget
        per_row = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(piece_ids.flat_values, fits),
            tf.cast(tf.boolean_mask(tf.gather(word_rows, piece_word), fits), tf.int64), nrows=batch)
        lengths = tf.cast(per_row.row_lengths(), tf.int32)
        body = per_row.to_tensor(default_value=0, shape=[None, budget])
        column = tf.expand_dims(tf.range(T), 0)
        token_ids = tf.pad(body, [[0, 0], [1, 1]])
        token_ids = tf.where(column == 0, self.cls_id, token_ids)
        token_ids = tf.where(column == tf.expand_dims(lengths, 1) + 1, self.sep_id, token_ids)
        padding_mask = tf.cast(column <= tf.expand_dims(lengths, 1) + 1, tf.int32)
        features = {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": padding_mask}
        outputs = self.model(features, training=False)
        probabilities = tf.nn.softmax(tf.cast(outputs[INTENT_OUTPUT], tf.float32), axis=-1)
        intent_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        # Each kept word's tag at its first piece; a word left out of the window is O.
        position = tf.minimum(1 + offset, T - 1)
        word_logits = tf.gather_nd(tf.cast(outputs[SLOT_OUTPUT], tf.float32), tf.stack([word_rows, position], axis=1))
        tag_ids = tf.argmax(word_logits, axis=-1, output_type=tf.int32)
        tags = tf.where(kept, tf.gather(tf.constant(self.labels), tag_ids), "O")
        prefix = tf.where(kept, tf.gather(tf.constant(self._prefixes, tf.int32), tag_ids), _O)
        type_ = tf.where(kept, tf.gather(tf.constant(self._types, tf.int32), tag_ids), 0)
        # Slots (seqeval's default chunking), inside each utterance.
        sentence_start = _previous(word_rows, -1, n) != word_rows
        sentence_end = _next(word_rows, -1, n) != word_rows
        prev_prefix = tf.where(sentence_start, _O, _previous(prefix, _O, n))
        prev_type = tf.where(sentence_start, 0, _previous(type_, 0, n))
        next_prefix = tf.where(sentence_end, _O, _next(prefix, _O, n))
        next_type = tf.where(sentence_end, 0, _next(type_, 0, n))
        begins = tf.where(_chunk_start(prev_prefix, prefix, prev_type, type_))[:, 0]
        ends = tf.where(_chunk_end(prefix, next_prefix, type_, next_type))[:, 0]
        slot_rows = tf.gather(tf.cast(word_rows, tf.int64), begins)
        slot_lengths = tf.math.bincount(slot_rows, minlength=batch, maxlength=batch, dtype=tf.int64)
        slot_start = tf.gather(word_starts.flat_values, begins)
        slot_end = tf.gather(word_ends.flat_values, ends)
        slot_text = tf.strings.substr(tf.gather(text, slot_rows), slot_start, slot_end - slot_start, unit="UTF8_CHAR")
        slot_type = tf.gather(tf.constant(self._type_names), tf.gather(type_, begins))

        def by_slot(values, fill):
            return tf.RaggedTensor.from_row_lengths(values, slot_lengths).to_tensor(default_value=fill)

        return {
            "intent": tf.gather(tf.constant(self.intents), intent_ids),
            "intent_probability": tf.reduce_max(probabilities, axis=-1),
            "intent_probabilities": probabilities,
            "words": words.to_tensor(default_value=""),
            "tags": words.with_flat_values(tags).to_tensor(default_value=""),
            "word_start": word_starts.to_tensor(default_value=-1),
            "word_end": word_ends.to_tensor(default_value=-1),
            "slot_type": by_slot(slot_type, ""),
            "slot_text": by_slot(slot_text, ""),
            "slot_start": by_slot(slot_start, -1),
            "slot_end": by_slot(slot_end, -1),
        }


def add_endpoint(archive, model, vocabulary, sequence_length, lowercase=True, name=ENDPOINT):
    """Add the utterance signature (`text` `[B]` strings) to an `ExportArchive` tracking `model`.

    Returns:
        The endpoint name.

    Example:
    ```python
    add_endpoint(archive, model, "spiece.model", 64)
    # served.signatures["serving_default"](text=tf.constant(["play jazz"]))["intent"]
    ```
    """
    return tagging.add_endpoint(archive, model, vocabulary, sequence_length, lowercase=lowercase, name=name,
                                server_class=IntentSlotServer)
