"""ALBERT models: the encoder, the pretraining heads, the task models, the pretrained directory."""

from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
from albert_keras.modeling.pretrained import load_pretrained, save_pretrained
from albert_keras.modeling.pretrainer import AlbertPretrainer
from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder
from albert_keras.modeling.seq2seq import AlbertSeq2Seq
from albert_keras.modeling.task_models import (
    AlbertClassifier,
    AlbertMultipleChoice,
    AlbertQuestionAnswerer,
    AlbertTokenClassifier,
)
