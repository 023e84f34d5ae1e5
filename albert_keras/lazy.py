"""Lazy module attributes: names resolved on first use, so light imports stay light.

`import albert_keras` and the CLI's `--help` must not pay for importing TensorFlow; packages list
their public names with the module that defines each, and import it only when the name is used.
"""

import importlib


def lazy_exports(package, exports):
    """Module-level `__getattr__` and `__dir__` for `package` that import `exports` on demand.

    Args:
        package: the importing module's `__name__` (for error messages).
        exports: `{public name: "module.path"}`; the name is read from that module.

    Example:
    ```python
    __getattr__, __dir__ = lazy_exports(__name__, {"AlbertEncoder": "albert_keras.modeling.encoder"})
    ```
    """

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        module = importlib.import_module(package)
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__
