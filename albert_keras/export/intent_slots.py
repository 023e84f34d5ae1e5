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
        super().__init__(model, tokenizer, sequence_length, name=name, labels=list(model.slot_labels))
        self.intents = [str(intent) for intent in model.intents]

    def __call__(self, text):
        from albert_keras.modeling.intent_slots import INTENT_OUTPUT
        from albert_keras.modeling.intent_slots import SLOT_OUTPUT

        text = self.repair(text)
        T = self.sequence_length
        budget = T - 2
        batch = tf.shape(text, out_type=tf.int64)[0]
        words, word_starts, word_ends = self.words(text)
        piece_ids, count = self.word_pieces(words)
        word_rows = tf.cast(words.value_rowids(), tf.int32)
        # Pieces before each word in its own utterance.
        before = tf.cumsum(count, exclusive=True)
        first_of_row = tf.math.unsorted_segment_min(before, word_rows, tf.cast(batch, tf.int32))
        offset = before - tf.gather(first_of_row, word_rows)
        kept = offset < budget
        # One window per utterance: its pieces up to the budget.
        piece_word = tf.cast(piece_ids.value_rowids(), tf.int32)
        within = tf.range(tf.shape(piece_word)[0]) - tf.gather(tf.cast(piece_ids.row_splits, tf.int32), piece_word)
        fits = tf.gather(offset, piece_word) + within < budget
        per_row = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(piece_ids.flat_values, fits),
            tf.cast(tf.boolean_mask(tf.gather(word_rows, piece_word), fits), tf.int64), nrows=batch)
        outputs = self.model(self.pack(per_row), training=False)
        probabilities = tf.nn.softmax(tf.cast(outputs[INTENT_OUTPUT], tf.float32), axis=-1)
        intent_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        # Each kept word's tag at its first piece; a word left out of the window is O.
        position = tf.minimum(1 + offset, T - 1)
        word_logits = tf.gather_nd(tf.cast(outputs[SLOT_OUTPUT], tf.float32), tf.stack([word_rows, position], axis=1))
        tag_ids = tf.argmax(word_logits, axis=-1, output_type=tf.int32)
        tags = tf.where(kept, tf.gather(tf.constant(self.labels), tag_ids), "O")
        prefix = tf.where(kept, tf.gather(tf.constant(self._prefixes, tf.int32), tag_ids), _O)
        type_ = tf.where(kept, tf.gather(tf.constant(self._types, tf.int32), tag_ids), 0)
        slots = self.spans(text, words, word_starts, word_ends, prefix, type_)
        return {
            "intent": tf.gather(tf.constant(self.intents), intent_ids),
            "intent_probability": tf.reduce_max(probabilities, axis=-1),
            "intent_probabilities": probabilities,
            "words": words.to_tensor(default_value=""),
            "tags": words.with_flat_values(tags).to_tensor(default_value=""),
            "word_start": word_starts.to_tensor(default_value=-1),
            "word_end": word_ends.to_tensor(default_value=-1),
            **{f"slot_{key}": value for key, value in slots.items()},
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
