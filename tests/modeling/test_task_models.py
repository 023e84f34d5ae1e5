import keras
import tensorflow as tf
import numpy as np
import pytest

from albert_keras.errors import AlbertInputError

from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.task_models import (
    AlbertClassifier,
    AlbertMultipleChoice,
    AlbertQuestionAnswerer,
    AlbertTokenClassifier,
    FoldChoices,
)
from tests.modeling.conftest import encoder_batch, tiny_config

xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _fit_losses(model, x, y, loss):
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    steps = tf.data.Dataset.from_tensors((x, y)).repeat(10)
    return model.fit(steps, epochs=3, verbose=0).history["loss"]


def _batch(n=8, length=10):
    return encoder_batch(batch=n, length=length, seed=3, pad_from=8)


def test_classifier_and_regressor_learn():
    keras.utils.set_random_seed(0)
    x = _batch()
    losses = _fit_losses(AlbertClassifier(AlbertEncoder(tiny_config()), num_classes=3), x, np.arange(8) % 3, xent)
    assert losses[-1] < 0.5 * losses[0]
    regressor = AlbertClassifier(AlbertEncoder(tiny_config()), num_classes=1, dropout=0.0)
    assert regressor(x).shape == (8, 1)
    losses = _fit_losses(regressor, x, np.linspace(0, 5, 8)[:, None], "mse")
    assert losses[-1] < 0.5 * losses[0]


def test_token_classifier_learns():
    keras.utils.set_random_seed(0)
    x = _batch()
    tags = (x["token_ids"] % 3).astype("int32")
    model = AlbertTokenClassifier(AlbertEncoder(tiny_config()), num_classes=3)
    assert model(x).shape == (8, 10, 3)
    losses = _fit_losses(model, x, tags, xent)
    assert losses[-1] < 0.7 * losses[0]


def test_question_answerer_learns_and_masks_padding():
    keras.utils.set_random_seed(0)
    x = _batch()
    model = AlbertQuestionAnswerer(AlbertEncoder(tiny_config()))
    outputs = model(x)
    assert outputs["start_logits"].shape == (8, 10)
    assert np.all(np.asarray(outputs["end_logits"])[:, 8:] < -1e8)
    y = {"start_logits": np.arange(8) % 7, "end_logits": np.arange(8) % 7 + 1}
    losses = _fit_losses(model, x, y, {"start_logits": xent, "end_logits": xent})
    assert losses[-1] < 0.5 * losses[0]


def test_multiple_choice_learns():
    keras.utils.set_random_seed(0)
    single = _batch(n=16)
    x = {k: v.reshape(4, 4, -1) for k, v in single.items()}
    assert FoldChoices()(x["token_ids"]).shape == (16, 10)
    model = AlbertMultipleChoice(AlbertEncoder(tiny_config()), num_choices=4)
    assert model(x).shape == (4, 4)
    losses = _fit_losses(model, x, np.array([0, 1, 2, 3]), xent)
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------------------- raw text, labels


def _held_out_accuracy(predicted, expected):
    return float(np.mean(np.asarray(predicted) == np.asarray(expected)))


def test_classifier_fits_raw_strings_with_label_names(finetune_init_dir):
    from tests.finetune_data import sentiment_rows

    keras.utils.set_random_seed(1)
    train, test = sentiment_rows(96, seed=1), sentiment_rows(32, seed=2)
    model = AlbertClassifier.from_pretrained(finetune_init_dir, labels=["negative", "positive"], sequence_length=16)
    assert model.num_classes == 2 and model.preprocessor.sequence_length == 16
    model.compile(keras.optimizers.Adam(3e-3), xent, metrics=["accuracy"])
    texts, labels = [t for t, _ in train], [y for _, y in train]
    model.fit(texts, labels, batch_size=16, epochs=4, verbose=0)
    predicted = model.predict_labels([t for t, _ in test])
    assert _held_out_accuracy(predicted, [y for _, y in test]) >= 0.85  # chance 0.5
    # tf.data of strings works too, and evaluate agrees on the task metric.
    dataset = tf.data.Dataset.from_tensor_slices(([t for t, _ in test], [int(y == "positive") for _, y in test])).batch(8)
    assert model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"] >= 0.85
    # The labels and the tokenizer travelling with the model: tests/modeling/test_round_trips.py.
    with pytest.raises(AlbertInputError, match="not one of the model's labels"):
        model.fit(["a"], ["neutral"], verbose=0)


def test_classifier_fits_sentence_pairs(finetune_init_dir):
    from tests.finetune_data import pair_rows

    keras.utils.set_random_seed(3)
    train, test = pair_rows(96, seed=5), pair_rows(32, seed=6)
    model = AlbertClassifier.from_pretrained(finetune_init_dir, labels=["0", "1"], sequence_length=16)
    model.compile(keras.optimizers.Adam(3e-3), xent)
    model.fit(([a for a, _, _ in train], [b for _, b, _ in train]), [y for _, _, y in train], batch_size=16, epochs=6,
              verbose=0)
    predicted = model.predict_labels(([a for a, _, _ in test], [b for _, b, _ in test]))
    assert _held_out_accuracy(predicted, [y for _, _, y in test]) >= 0.85  # chance 0.5: the label is in text B


def test_multiple_choice_fits_contexts_with_choices(finetune_init_dir):
    from tests.finetune_data import choice_records

    keras.utils.set_random_seed(2)
    train, test = choice_records(96, seed=3), choice_records(30, seed=4)
    model = AlbertMultipleChoice.from_pretrained(finetune_init_dir, num_choices=3, sequence_length=16)
    model.compile(keras.optimizers.Adam(3e-3), xent, metrics=["accuracy"])
    x = ([r["context"] for r in train], [r["choices"] for r in train])
    model.fit(x, np.array([r["label"] for r in train]), batch_size=16, epochs=4, verbose=0)
    logits = model.predict(([r["context"] for r in test], [r["choices"] for r in test]), verbose=0)
    assert _held_out_accuracy(np.argmax(logits, -1), [r["label"] for r in test]) >= 0.7  # chance 1/3
    with pytest.raises(AlbertInputError, match="same number of choices"):
        model.predict((["c", "d"], [["a", "b", "c"], ["a", "b"]]), verbose=0)


def test_raw_text_without_a_tokenizer_is_a_clear_error(tmp_path):
    from albert_keras.modeling import save_pretrained

    save_pretrained(AlbertEncoder(tiny_config()), tmp_path / "bare")
    model = AlbertClassifier.from_pretrained(tmp_path / "bare", num_classes=2)
    assert model.preprocessor is None
    with pytest.raises(AlbertInputError, match=r"bare: no vocabulary; raw text needs the model.s vocabulary"):
        model.predict(["a sentence"])
    assert model.predict(_batch(2), verbose=0).shape == (2, 2)  # token dicts still work
