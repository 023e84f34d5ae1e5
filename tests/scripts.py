"""Load a script of `examples/` or `benchmarks/` as a module, as the tests of those scripts do."""

import importlib.util
import os


def load_script(path, name=None):
    """Import the Python file at `path` under `name` (default: its file name) and return the module.

    Example:
    ```python
    bench = load_script("benchmarks/serving_text.py")
    ```
    """
    name = name or os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
