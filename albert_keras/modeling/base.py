"""`AlbertEncoderModel`: what every model built on an `AlbertEncoder` shares.

The pretrainer and the task models hold the encoder as `.encoder`, serialize as "the encoder plus
the constructor's own arguments", read and write pretrained directories, and train with `fit`
under every tf.distribute strategy, MultiWorkerMirroredStrategy included.
"""

import keras

from albert_keras.modeling.pretrained import PretrainedMixin
from albert_keras.compat import MultiWorkerTrainerMixin


class AlbertEncoderModel(PretrainedMixin, MultiWorkerTrainerMixin, keras.Model):
    """Base class of functional models built on an `AlbertEncoder`.

    Subclasses build their functional graph on `encoder`, call `super().__init__(inputs=...,
    outputs=...)`, and set `self._arguments` to their constructor arguments other than `encoder`
    (what `model.json` records in a pretrained directory).

    Example:
    ```python
    class PooledModel(AlbertEncoderModel):
        def __init__(self, encoder, **kwargs):
            self.encoder = encoder
            inputs = {name: keras.Input((None,), dtype="int32", name=name)
                      for name in ("token_ids", "segment_ids", "padding_mask")}
            super().__init__(inputs=inputs, outputs=encoder(inputs)["pooled_output"], **kwargs)
    ```
    """

    _arguments = {}

    def pretrained_arguments(self):
        return dict(self._arguments)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            **self._arguments,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
