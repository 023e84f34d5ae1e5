"""albert-keras: ALBERT for TensorFlow 2 and Keras 3.

Public names are imported lazily, so `import albert_keras` (and the CLI's `--help`) does not pay
for importing TensorFlow until a model, tokenizer or pipeline is used.
"""

from albert_keras.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "AlbertConfig": "albert_keras.config",
    "PRESETS": "albert_keras.config",
    "AlbertInputError": "albert_keras.errors",
    "AlbertEncoder": "albert_keras.modeling.encoder",
    "AlbertPretrainer": "albert_keras.modeling.pretrainer",
    "AlbertClassifier": "albert_keras.modeling.task_models",
    "AlbertTokenClassifier": "albert_keras.modeling.task_models",
    "AlbertQuestionAnswerer": "albert_keras.modeling.task_models",
    "AlbertMultipleChoice": "albert_keras.modeling.task_models",
    "AlbertIntentSlotTagger": "albert_keras.modeling.intent_slots",
    "AlbertSentenceEncoder": "albert_keras.modeling.sentence_encoder",
    "AlbertSeq2Seq": "albert_keras.modeling.seq2seq",
    "load_pretrained": "albert_keras.modeling.pretrained",
    "save_pretrained": "albert_keras.modeling.pretrained",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
