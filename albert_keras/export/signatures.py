"""Serving functions for every ALBERT model kind: ids or raw text in, the task's answer out.

The same functions back the SavedModel signatures (`saved_model.py`) and the TFLite models
(`tflite.py`), so both formats give the same outputs for the same input.

| model kind | outputs |
|---|---|
| encoder | `pooled_output` [B,H], `sentence_embedding` [B,H] (L2-normalized masked mean) |
| classifier | `probabilities` [B,C], `label_ids` [B], `labels` [B] (names; when the model has labels) (or `score` [B] for regression) |
| token classifier | `tag_ids` [B,T], `tag_probabilities` [B,T,C], `token_ids`, `padding_mask` |
| question answerer | `start_index`, `end_index` [B] (token positions), `span_score`, `span_probability`, `no_answer_score` [B] (the text answer, sliced from the context: `question_answering.py`) |
| multiple choice | `probabilities` [B,C], `label_ids` [B] |
| intent-slot tagger | `intent_probabilities` [B,I], `intent_ids` [B], `intents` [B], `slot_tag_ids` [B,T] (the text signature: `intent_slots.py`) |
"""

import tensorflow as tf

from albert_keras.errors import AlbertInputError

ENCODER = "encoder"
CLASSIFIER = "classifier"
TOKEN_CLASSIFIER = "token_classifier"
QUESTION_ANSWERER = "question_answerer"
MULTIPLE_CHOICE = "multiple_choice"
INTENT_SLOTS = "intent_slots"

_KINDS_BY_CLASS = {
    "AlbertEncoder": ENCODER,
    "AlbertBackbone": ENCODER,  # keras-hub's encoder has the same inputs and outputs
    "AlbertSentenceEncoder": ENCODER,  # SimCSE-trained: outputs the encoder's, plus the embedding
    "AlbertClassifier": CLASSIFIER,
    "AlbertTokenClassifier": TOKEN_CLASSIFIER,
    "AlbertQuestionAnswerer": QUESTION_ANSWERER,
    "AlbertMultipleChoice": MULTIPLE_CHOICE,
    "AlbertIntentSlotTagger": INTENT_SLOTS,
}

# Tasks whose text input is always a pair (question + context, context + choice).
PAIR_KINDS = (QUESTION_ANSWERER, MULTIPLE_CHOICE)

FEATURES = ("token_ids", "segment_ids", "padding_mask")

# SQuAD's usual limit on answer length, in tokens.
DEFAULT_MAX_ANSWER_LENGTH = 30


def model_kind(model):
    """The serving kind of an ALBERT model (`"encoder"`, `"classifier"`, ...), from its class.

    Example:
    ```python
    model_kind(AlbertClassifier(encoder, num_classes=2))  # "classifier"
    ```
    """
    for cls in type(model).__mro__:
        if cls.__name__ in _KINDS_BY_CLASS:
            return _KINDS_BY_CLASS[cls.__name__]
    raise AlbertInputError(
        f"model: cannot export a {type(model).__name__}; expected one of {sorted(_KINDS_BY_CLASS)}"
    )


def num_outputs(model):
    """Classes, tags or choices of a task model (None for encoders and QA).

    Example:
    ```python
    num_outputs(AlbertMultipleChoice(encoder, num_choices=4))  # 4
    ```
    """
    for name in ("num_classes", "num_choices"):
        if hasattr(model, name):
            return int(getattr(model, name))
    return None


def ids_input_signature(model):
    """`tf.TensorSpec`s of the ids signature (`[B, C, T]` for multiple choice).

    Example:
    ```python
    ids_input_signature(classifier)["token_ids"]  # TensorSpec(shape=(None, None), dtype=tf.int32)
    ```
    """
    shape = [None, num_outputs(model), None] if model_kind(model) == MULTIPLE_CHOICE else [None, None]
    return {name: tf.TensorSpec(shape, tf.int32, name=name) for name in FEATURES}


def _masked_mean_l2(sequence_output, padding_mask):
    mask = tf.expand_dims(tf.cast(padding_mask, sequence_output.dtype), 2)
    total = tf.reduce_sum(sequence_output * mask, axis=1)
    count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    mean = total / count
    # Written out rather than tf.math.l2_normalize so the TFLite graph keeps to plain builtins.
    norm = tf.sqrt(tf.maximum(tf.reduce_sum(mean * mean, axis=-1, keepdims=True), 1e-24))
    return mean / norm


def best_spans(start_logits, end_logits, features, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
    """The highest-scoring answer span inside the context (the second segment) of each row.

    A span `(i, j)` scores `start_logits[i] + end_logits[j]`; it must satisfy
    `i <= j < i + max_answer_length` with both ends on context tokens (not `[SEP]`, not padding).

    Returns:
        dict with int32 `start_index`, `end_index` and float32 `span_score`, `span_probability`
        (softmax(start)[i] * softmax(end)[j] over all positions) and `no_answer_score` (the `[CLS]`
        position's score, which SQuAD 2.0 models compare with `span_score`). A row without any
        context token gets span `(0, 0)`.

    Example:
    ```python
    logits = question_answerer(features)
    spans = best_spans(logits["start_logits"], logits["end_logits"], features)
    ```
    """
    token_ids = features["token_ids"]
    context = (features["segment_ids"] == 1) & (features["padding_mask"] == 1) & (token_ids != 3)
    width = tf.shape(start_logits)[1]
    positions = tf.range(width)
    offsets = tf.expand_dims(positions, 0) - tf.expand_dims(positions, 1)  # [T, T]: j - i
    allowed = (offsets >= 0) & (offsets < max_answer_length)
    allowed = tf.expand_dims(allowed, 0) & tf.expand_dims(context, 2) & tf.expand_dims(context, 1)
    scores = tf.expand_dims(start_logits, 2) + tf.expand_dims(end_logits, 1)
    scores = tf.where(allowed, scores, tf.fill(tf.shape(scores), -1e30))
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    best = tf.cast(tf.argmax(flat, axis=1, output_type=tf.int32), tf.int32)
    found = tf.reduce_any(tf.reshape(allowed, [tf.shape(scores)[0], -1]), axis=1)
    start = tf.where(found, best // width, 0)
    end = tf.where(found, best % width, 0)
    start_probs = tf.nn.softmax(start_logits, axis=-1)
    end_probs = tf.nn.softmax(end_logits, axis=-1)
    return {
        "start_index": start,
        "end_index": end,
        "span_score": tf.gather(start_logits, start, batch_dims=1) + tf.gather(end_logits, end, batch_dims=1),
        "span_probability": tf.gather(start_probs, start, batch_dims=1) * tf.gather(end_probs, end, batch_dims=1),
        "no_answer_score": start_logits[:, 0] + end_logits[:, 0],
    }


def task_outputs(model, features, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
    """Run `model` on `features` and turn its raw outputs into the served outputs (table above).

    Args:
        model: an ALBERT encoder or task model.
        features: dict of int32 `token_ids`, `segment_ids`, `padding_mask`.
        max_answer_length: longest answer span, in tokens (question answerers only).

    Returns:
        dict of output tensors.

    Example:
    ```python
    outputs = task_outputs(classifier, {"token_ids": ids, "segment_ids": seg, "padding_mask": mask})
    outputs["label_ids"]
    ```
    """
    kind = model_kind(model)
    raw = model({name: features[name] for name in FEATURES}, training=False)
    if kind == ENCODER:
        return {
            "pooled_output": tf.cast(raw["pooled_output"], tf.float32),
            "sentence_embedding": _masked_mean_l2(
                tf.cast(raw["sequence_output"], tf.float32), features["padding_mask"]
            ),
        }
    if kind in (CLASSIFIER, MULTIPLE_CHOICE):
        logits = tf.cast(raw, tf.float32)
        if kind == CLASSIFIER and num_outputs(model) == 1:
            return {"score": logits[:, 0]}
        outputs = {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "label_ids": tf.argmax(logits, axis=-1, output_type=tf.int32),
        }
        if getattr(model, "labels", None):
            # The fine-tuned label names (model.json `labels`), one per example.
            outputs["labels"] = tf.gather(tf.constant([str(label) for label in model.labels]), outputs["label_ids"])
        return outputs
    if kind == TOKEN_CLASSIFIER:
        logits = tf.cast(raw, tf.float32)
        return {
            "tag_ids": tf.argmax(logits, axis=-1, output_type=tf.int32),
            "tag_probabilities": tf.nn.softmax(logits, axis=-1),
            "token_ids": tf.identity(features["token_ids"]),
            "padding_mask": tf.identity(features["padding_mask"]),
        }
    if kind == INTENT_SLOTS:
        probabilities = tf.nn.softmax(tf.cast(raw["intent_logits"], tf.float32), axis=-1)
        intent_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "intent_probabilities": probabilities,
            "intent_ids": intent_ids,
            "intents": tf.gather(tf.constant([str(intent) for intent in model.intents]), intent_ids),
            "slot_tag_ids": tf.argmax(raw["slot_logits"], axis=-1, output_type=tf.int32),
        }
    return best_spans(
        tf.cast(raw["start_logits"], tf.float32),
        tf.cast(raw["end_logits"], tf.float32),
        features,
        max_answer_length=max_answer_length,
    )


def pack_choices(packer, text, choices):
    """Pack `[B]` contexts with `[B, C]` choices into `[B, C, W]` multiple-choice features.

    Example:
    ```python
    pack_choices(packer, tf.constant(["Pick one."]), tf.constant([["red", "blue"]]))["token_ids"].shape
    # [1, 2, W]
    ```
    """
    num_choices = tf.shape(choices)[1]
    repeated = tf.reshape(tf.repeat(tf.expand_dims(text, 1), num_choices, axis=1), [-1])
    flat = packer(repeated, tf.reshape(choices, [-1]))
    batch = tf.shape(choices)[0]
    return {name: tf.reshape(value, [batch, num_choices, -1]) for name, value in flat.items()}


def text_features(model, packer, text, text_b=None):
    """Features for the text signatures: `text` ([B]) with `text_b` ([B], or [B, C] choices).

    Example:
    ```python
    features = text_features(question_answerer, packer, tf.constant(["Who?"]), tf.constant(["Ann did."]))
    ```
    """
    if model_kind(model) == MULTIPLE_CHOICE:
        return pack_choices(packer, text, text_b)
    return packer(text, text_b)

