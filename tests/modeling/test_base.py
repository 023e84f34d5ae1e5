import keras
import numpy as np

from albert_keras.modeling.base import AlbertEncoderModel
from albert_keras.modeling.encoder import AlbertEncoder
from albert_keras.modeling.pretrainer import AlbertPretrainer
from albert_keras.modeling.task_models import AlbertClassifier
from tests.modeling.conftest import encoder_batch, tiny_config


class PooledModel(AlbertEncoderModel):
    def __init__(self, encoder, scale=1.0, **kwargs):
        self.encoder = encoder
        inputs = {name: keras.Input((None,), dtype="int32", name=name)
                  for name in ("token_ids", "segment_ids", "padding_mask")}
        super().__init__(inputs=inputs, outputs=encoder(inputs)["pooled_output"] * scale, **kwargs)
        self._arguments = {"scale": scale}


def test_subclasses_serialize_as_encoder_plus_arguments():
    model = PooledModel(AlbertEncoder(tiny_config()), scale=2.0)
    config = model.get_config()
    assert config["scale"] == 2.0 and config["encoder"]["config"]["config"]["hidden_size"] == 16
    clone = PooledModel.from_config(config)
    clone.set_weights(model.get_weights())
    batch = encoder_batch()
    np.testing.assert_allclose(clone(batch), model(batch))
    assert model.pretrained_arguments() == {"scale": 2.0}


def test_every_model_shares_the_base():
    encoder = AlbertEncoder(tiny_config())
    assert isinstance(AlbertPretrainer(encoder), AlbertEncoderModel)
    assert isinstance(AlbertClassifier(AlbertEncoder(tiny_config()), num_classes=2), AlbertEncoderModel)
    assert AlbertPretrainer(AlbertEncoder(tiny_config())).pretrained_arguments() == {}
