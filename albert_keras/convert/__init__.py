"""Read and write the checkpoints users already have: official TF1, Hugging Face, keras-hub, Model Garden.

Each format is one module with a mapping table (`official`, `huggingface`, `keras_hub_preset`,
`model_garden`); `common` holds the machinery they share. Names are imported lazily so that the
CLI does not import TensorFlow before a command runs.

Example:
```python
from albert_keras import convert

convert.from_official("albert_base_v2.tar.gz", "albert_base_v2")
convert.to_huggingface("albert_base_v2", "albert_base_v2_hf")
```
"""

from albert_keras.lazy import lazy_exports

_EXPORTS = {
    "from_official": "albert_keras.convert.official",
    "from_huggingface": "albert_keras.convert.huggingface",
    "to_huggingface": "albert_keras.convert.huggingface",
    "from_keras_hub": "albert_keras.convert.keras_hub_preset",
    "to_keras_hub": "albert_keras.convert.keras_hub_preset",
    "from_model_garden": "albert_keras.convert.model_garden",
    "convert_from": "albert_keras.convert.dispatch",
    "convert_to": "albert_keras.convert.dispatch",
    "safe_extract": "albert_keras.convert.archive",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
