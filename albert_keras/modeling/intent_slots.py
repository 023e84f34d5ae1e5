"""`AlbertIntentSlotTagger`: joint intent classification and slot filling on one shared encoder.

The joint model of Chen et al. (2019, "BERT for Joint Intent Classification and Slot Filling"):
the intent from the pooled `[CLS]` output, one slot tag per token from the sequence output, both
heads trained together on the sum of their losses. The task code (`albert_keras.tasks.intent_slots`)
puts each word's slot tag on its first piece, as the entity tagger does.
"""

import keras

from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.encoder import albert_initializer
from albert_keras.modeling.task_models import _encoder_inputs
from albert_keras.modeling.task_models import _num_classes

INTENT_OUTPUT = "intent_logits"
SLOT_OUTPUT = "slot_logits"


@keras.saving.register_keras_serializable(package="albert_keras")
class AlbertIntentSlotTagger(AlbertEncoderModel):
    """Intent classification (pooled output) and slot tagging (sequence output) in one model.

    Args:
        encoder: an `AlbertEncoder`.
        intents: the intent names, index order (stored in `model.json`, so a pretrained directory
            knows them).
        slot_labels: the slot tags (`"O"`, `"B-TYPE"`, `"I-TYPE"`, ...), index order.
        dropout: dropout on both heads' inputs (0.1 in the official fine-tuning scripts).

    Outputs: a dict of float32 `intent_logits` `[batch, len(intents)]` and `slot_logits`
    `[batch, seq, len(slot_labels)]`.

    Example:
    ```python
    import numpy as np
    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger

    config = AlbertConfig(vocab_size=100, embedding_size=8, hidden_size=16,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = AlbertIntentSlotTagger(AlbertEncoder(config), intents=["play", "weather"],
                                   slot_labels=["O", "B-city", "I-city"])
    x = {"token_ids": np.ones((2, 6), "int32"), "segment_ids": np.zeros((2, 6), "int32"),
         "padding_mask": np.ones((2, 6), "int32")}
    model(x)["slot_logits"].shape  # (2, 6, 3)
    ```
    """

    def __init__(self, encoder, intents, slot_labels, dropout=0.1, **kwargs):
        num_intents, intents = _num_classes(None, intents)
        num_slots, slot_labels = _num_classes(None, slot_labels)
        self.encoder = encoder
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        initializer = albert_initializer(encoder.config)
        self.intent_dense = keras.layers.Dense(num_intents, kernel_initializer=initializer,
                                               dtype=encoder.dtype_policy, name="intent_logits_dense")
        self.slot_dense = keras.layers.Dense(num_slots, kernel_initializer=initializer,
                                             dtype=encoder.dtype_policy, name="slot_logits_dense")
        inputs = _encoder_inputs()
        outputs = encoder(inputs)
        intent = self.intent_dense(self.output_dropout(outputs["pooled_output"]))
        slots = self.slot_dense(self.output_dropout(outputs["sequence_output"]))
        super().__init__(
            inputs=inputs,
            outputs={INTENT_OUTPUT: keras.ops.cast(intent, "float32"), SLOT_OUTPUT: keras.ops.cast(slots, "float32")},
            **kwargs,
        )
        self.intents = intents
        self.slot_labels = slot_labels
        # What the export's metadata and the one-class warning read as "the labels".
        self.labels = intents
        self.num_classes = num_intents
        self._arguments = {"intents": list(intents), "slot_labels": list(slot_labels), "dropout": dropout}
