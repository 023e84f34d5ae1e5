"""Moved: the global-batch reader `pretrain` uses is `albert_keras.data.batches`.

This name stays so code written against it keeps working; there is one reader, in `data/`.

Example:
```python
from albert_keras.data.batches import global_batches, match_files
```
"""

from albert_keras.data.batches import distributed_batches  # noqa: F401
from albert_keras.data.batches import global_batches  # noqa: F401
from albert_keras.data.batches import inspect_records  # noqa: F401
from albert_keras.data.batches import match_files  # noqa: F401
