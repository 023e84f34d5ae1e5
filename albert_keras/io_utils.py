"""Atomic file and directory writes: nothing half-written ever sits under a final name."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to `path`; rename it onto `path` only if the block succeeds.

    Args:
        path: final file path.
        mode: `"wb"` or `"w"`.

    Example:
    ```python
    with atomic_write("out.json", "w") as f:
        f.write("{}")
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yield a temporary directory next to `path`; rename it onto `path` if the block succeeds.

    Args:
        path: final directory path. Its parent is created if needed.
        overwrite: replace an existing `path` (the old one is removed only after the new one is
            complete). Without it an existing non-empty `path` is an error.

    Example:
    ```python
    with atomic_directory("saved_models/demo/1") as tmp:
        open(os.path.join(tmp, "file.txt"), "w").write("hi")
    ```
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"{path}: already exists and is not empty (pass overwrite=True)")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            old = tmp + ".old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
