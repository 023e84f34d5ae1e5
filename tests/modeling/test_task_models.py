import keras
import tensorflow as tf
import numpy as np
import pytest

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


@pytest.mark.parametrize("cls, args", [(AlbertClassifier, {"num_classes": 2}), (AlbertMultipleChoice, {"num_choices": 2})])
def test_task_model_config_round_trip(cls, args):
    model = cls(AlbertEncoder(tiny_config()), **args)
    clone = cls.from_config(model.get_config())
    assert clone.count_params() == model.count_params()
    assert clone.pretrained_arguments() == model.pretrained_arguments()
