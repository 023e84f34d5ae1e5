"""File I/O for every filesystem, and atomic writes: nothing half-written ever sits under a final name.

Paths with a scheme (`gs://bucket/run`, `ram://x`, `hdfs://...`) go through `tf.io.gfile`, so data,
checkpoints, pretrained directories and exports can live where TPU and cloud jobs need them;
local paths use `os`/`shutil` directly. Why not `tf.io.gfile` for local paths too: it cannot
`fsync`, its `readline` has no length limit (the text reader bounds line length), and the
create-data worker processes must not import TensorFlow. TensorFlow is imported only when a path
with a scheme is used.

Atomicity: locally a completed file or directory is renamed onto its final name (`os.replace`).
On object stores a rename is a copy, so `atomic_directory` moves the files one by one and the
file named `marker` last: readers treat a directory without its marker as incomplete.
"""

import contextlib
import functools
import glob as _glob
import inspect
import io
import json
import os
import shutil
import tempfile
import uuid

from albert_keras.errors import AlbertInputError


def is_url(path):
    """Whether `path` names a non-local filesystem (`scheme://...`), read through `tf.io.gfile`.

    The one rule for the whole package: `file://...` is a local path (every `io_utils` function
    strips the scheme; `local_path` does it for callers that open files themselves).

    Example:
    ```python
    is_url("gs://bucket/run"), is_url("/tmp/run")  # (True, False)
    ```
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False  # e.g. an AlbertConfig passed where a config path may also go
    path = os.fsdecode(path)
    return "://" in path and not path.startswith("file://")


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _local(path):
    path = os.fspath(path)
    return path[len("file://"):] if path.startswith("file://") else path


def local_path(path):
    """`path` as the local filesystem names it: a `file://` URL is a local path (see `is_url`).

    Example:
    ```python
    local_path("file:///tmp/x.txt"), local_path("x.txt")  # ("/tmp/x.txt", "x.txt")
    ```
    """
    return _local(path)


def absolute(path):
    """`os.path.abspath` for local paths; URLs unchanged.

    Example:
    ```python
    absolute("data/x.txt")  # "/home/me/data/x.txt"
    ```
    """
    return os.fspath(path) if is_url(path) else os.path.abspath(_local(path))


def exists(path):
    """Whether `path` exists (any filesystem)."""
    return _gfile().exists(path) if is_url(path) else os.path.exists(_local(path))


def isdir(path):
    """Whether `path` is a directory (any filesystem)."""
    return _gfile().isdir(path) if is_url(path) else os.path.isdir(_local(path))


def listdir(path):
    """Names in directory `path` (no trailing slashes)."""
    if is_url(path):
        return [name.rstrip("/") for name in _gfile().listdir(path)]
    return os.listdir(_local(path))


def makedirs(path):
    """Create `path` and its parents; no error when it exists."""
    if is_url(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(_local(path), exist_ok=True)


def remove(path):
    """Delete the file `path` if it exists."""
    if is_url(path):
        if _gfile().exists(path):
            _gfile().remove(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(_local(path))


def rmtree(path):
    """Delete the directory tree `path` if it exists (errors ignored, like `ignore_errors=True`)."""
    if is_url(path):
        with contextlib.suppress(Exception):  # noqa: BLE001 - gfile raises tf.errors.* for races
            if _gfile().exists(path):
                _gfile().rmtree(path)
    else:
        shutil.rmtree(_local(path), ignore_errors=True)


def getsize(path):
    """Size of the file `path` in bytes."""
    return _gfile().stat(path).length if is_url(path) else os.path.getsize(_local(path))


def glob(pattern):
    """Sorted paths matching `pattern` (`*`, `?`, `[...]`), on any filesystem."""
    if is_url(pattern):
        return sorted(_gfile().glob(pattern))
    return sorted(_glob.glob(_local(pattern)))


def has_magic(pattern):
    """Whether `pattern` holds glob characters."""
    return _glob.has_magic(os.fspath(pattern))


def rename(source, target, overwrite=False):
    """Rename a file (atomically where the filesystem can)."""
    if is_url(source) or is_url(target):
        _gfile().rename(source, target, overwrite=overwrite)
    elif overwrite:
        os.replace(_local(source), _local(target))
    else:
        if os.path.exists(_local(target)):
            raise FileExistsError(f"{target}: already exists")
        os.rename(_local(source), _local(target))


def copy(source, target, overwrite=False):
    """Copy one file between any two filesystems."""
    if is_url(source) or is_url(target):
        _gfile().copy(source, target, overwrite=overwrite)
    else:
        if not overwrite and os.path.exists(_local(target)):
            raise FileExistsError(f"{target}: already exists")
        shutil.copyfile(_local(source), _local(target))


def walk_files(directory):
    """Relative paths of every file under `directory`, sorted."""
    found = []
    if is_url(directory):
        for root, _, files in _gfile().walk(directory):
            rel = os.path.relpath(root.rstrip("/"), directory.rstrip("/")) if root.rstrip("/") != directory.rstrip("/") else ""
            found += [os.path.join(rel, name) if rel else name for name in files]
    else:
        for root, _, files in os.walk(_local(directory)):
            rel = os.path.relpath(root, _local(directory))
            found += [name if rel == "." else os.path.join(rel, name) for name in files]
    return sorted(found)


def copytree(source, target):
    """Copy the directory tree `source` to `target` (created), between any filesystems."""
    makedirs(target)
    for rel in walk_files(source):
        parent = os.path.dirname(os.path.join(target, rel))
        makedirs(parent)
        copy(os.path.join(source, rel), os.path.join(target, rel), overwrite=True)


class _GFileRaw(io.RawIOBase):
    """A `tf.io.gfile.GFile` as a raw stream, so `io.BufferedReader` gives it a bounded `readline`."""

    def __init__(self, handle):
        self._handle = handle

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self):
        self._handle.close()
        super().close()


def open_file(path, mode="rb"):
    """Open a file on any filesystem (`"rb"`, `"r"`, `"wb"`, `"w"`).

    Binary reads of URLs are buffered streams whose `readline(limit)` honours the limit.

    Example:
    ```python
    with open_file("gs://bucket/corpus.txt") as f:
        first = f.readline(1 << 20)
    ```
    """
    if not is_url(path):
        return open(_local(path), mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    handle = _gfile().GFile(path, mode)
    if mode == "rb":
        return io.BufferedReader(_GFileRaw(handle), buffer_size=1 << 20)
    return handle


def read_bytes(path):
    """The whole file `path` as bytes."""
    with open_file(path, "rb") as f:
        return f.read()


def read_json_object(path, what):
    """The JSON object in the local file `path`, or a one-line error naming the file.

    Args:
        path: a local JSON file.
        what: what the file is, for the error (`"tokenizer settings"`: "PATH: unreadable tokenizer
            settings (...)").

    Returns:
        The parsed dict.

    Raises:
        AlbertInputError: the file cannot be read or parsed, or holds something other than an object.

    Example:
    ```python
    from albert_keras.io_utils import read_json_object
    values = read_json_object("pretrained/tokenizer.json", "tokenizer settings")
    ```
    """
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, ValueError) as error:
        raise AlbertInputError(f"{path}: unreadable {what} ({error})") from None
    if not isinstance(values, dict):
        raise AlbertInputError(f"{path}: expected a JSON object")
    return values


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to `path`; rename it onto `path` only if the block succeeds.

    Args:
        path: final file path (local or a URL such as `gs://...`).
        mode: `"wb"` or `"w"`.

    Example:
    ```python
    with atomic_write("out.json", "w") as f:
        f.write("{}")
    ```
    """
    path = os.fspath(path)
    if is_url(path):
        directory, name = os.path.split(path)
        makedirs(directory)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with _gfile().GFile(tmp, mode) as f:
                yield f
            _gfile().rename(tmp, path, overwrite=True)
        except BaseException:
            remove(tmp)
            raise
        return
    path = _local(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _move_tree(source, target, marker):
    """Move every file of `source` under `target` (URLs: one rename per file), `marker` last."""
    files = walk_files(source)
    if marker in files:
        files = [rel for rel in files if rel != marker] + [marker]
    for rel in files:
        makedirs(os.path.dirname(os.path.join(target, rel)))
        rename(os.path.join(source, rel), os.path.join(target, rel), overwrite=True)
    rmtree(source)


def replace_directory(source, target, marker=None):
    """Put the complete directory `source` at `target`, replacing what is there.

    Locally two renames (the old `target` is deleted only once the new one is in place). On
    filesystems without directory renames the files move one by one, `marker` last (see
    `atomic_directory`).

    Example:
    ```python
    replace_directory("out/.run.partial", "out/run", marker="manifest.json")
    ```
    """
    source, target = absolute(source), absolute(target)
    parent, name = os.path.split(target.rstrip("/"))
    old = os.path.join(parent, f".{name}.{uuid.uuid4().hex[:8]}.old")
    if not is_url(target):
        if os.path.exists(target):
            os.replace(target, old)
            os.replace(source, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(source, target)
        return
    if exists(target):
        # Not next to `source` with a suffix: `ram://` lists by name prefix.
        _move_tree(target, old, None)
    _move_tree(source, target, marker)
    rmtree(old)


@contextlib.contextmanager
def atomic_directory(path, overwrite=False, marker=None):
    """Yield a temporary directory next to `path`; rename it onto `path` if the block succeeds.

    Args:
        path: final directory path (local or a URL). Its parent is created if needed.
        overwrite: replace an existing `path` (the old one is removed only after the new one is
            complete). Without it an existing non-empty `path` is an error.
        marker: on filesystems without directory renames (object stores, `ram://`), the file
            (relative path) moved last, so its presence means the directory is complete.

    Example:
    ```python
    with atomic_directory("saved_models/demo/1") as tmp:
        open(os.path.join(tmp, "file.txt"), "w").write("hi")
    ```
    """
    path = absolute(path)
    if exists(path) and listdir(path) and not overwrite:
        raise FileExistsError(f"{path}: already exists and is not empty (pass overwrite=True)")
    parent = os.path.dirname(path.rstrip("/"))
    makedirs(parent)
    if is_url(path):
        tmp = os.path.join(parent, f".{os.path.basename(path.rstrip('/'))}.{uuid.uuid4().hex[:8]}.tmp")
        makedirs(tmp)
    else:
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    try:
        yield tmp
        replace_directory(tmp, path, marker)
    except BaseException:
        rmtree(tmp)
        raise


@contextlib.contextmanager
def local_copy(path):
    """Yield a local path holding `path`'s content: `path` itself when local, else a temporary
    copy of the file or directory (deleted afterwards). For libraries that only read local files.

    Example:
    ```python
    with local_copy("gs://bucket/pretrained") as directory:
        model = AlbertClassifier.from_pretrained(directory)
    ```
    """
    if not is_url(path):
        yield _local(path)
        return
    scratch = tempfile.mkdtemp(prefix="albert-keras-copy-")
    try:
        local = os.path.join(scratch, os.path.basename(os.fspath(path).rstrip("/")) or "copy")
        if isdir(path):
            copytree(path, local)
        else:
            copy(path, local)
        yield local
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(path, overwrite=False, marker=None):
    """`atomic_directory` for writers that only write local files: on a URL the block writes a
    local temporary directory, uploaded when it succeeds (files one by one, `marker` last).

    Example:
    ```python
    with staged_directory("gs://bucket/export/1", marker="saved_model.pb") as tmp:
        tf.saved_model.save(module, tmp)
    ```
    """
    if not is_url(path):
        with atomic_directory(path, overwrite=overwrite) as tmp:
            yield tmp
        return
    if exists(path) and listdir(path) and not overwrite:
        raise FileExistsError(f"{path}: already exists and is not empty (pass overwrite=True)")
    scratch = tempfile.mkdtemp(prefix="albert-keras-stage-")
    try:
        yield scratch
        with atomic_directory(path, overwrite=True, marker=marker) as remote:
            for rel in walk_files(scratch):
                makedirs(os.path.dirname(os.path.join(remote, rel)))
                copy(os.path.join(scratch, rel), os.path.join(remote, rel), overwrite=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def any_filesystem(inputs=(), outputs=(), markers=("saved_model.pb",)):
    """Decorate a function that reads and writes only local paths so it takes URLs too.

    Each argument named in `inputs` that is a URL is copied to a local temporary path first
    (`local_copy`); each one named in `outputs` that is a URL is replaced by a local temporary
    directory, whose files are uploaded into the URL when the function returns (files named in
    `markers` last in their directory; existing remote files are replaced only when the call
    has `overwrite=True`, else `FileExistsError` before anything is uploaded). Returned strings
    (or a list/tuple/dict of them) that point into the temporary output are mapped to the URL.

    Example:
    ```python
    @any_filesystem(inputs=("model_dir",), outputs=("output",))
    def export(model_dir, output, overwrite=False):
        ...
    ```
    """

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            remote = {name for name in (*inputs, *outputs) if bound.arguments.get(name) is not None
                      and is_url(bound.arguments[name])}
            if not remote:
                return function(*args, **kwargs)
            with contextlib.ExitStack() as stack:
                for name in inputs:
                    if name in remote:
                        bound.arguments[name] = stack.enter_context(local_copy(bound.arguments[name]))
                staged = {}
                for name in outputs:
                    if name in remote:
                        scratch = tempfile.mkdtemp(prefix="albert-keras-stage-")
                        stack.callback(shutil.rmtree, scratch, True)
                        staged[scratch] = bound.arguments[name]
                        bound.arguments[name] = os.path.join(scratch, "out")
                result = function(*bound.args, **bound.kwargs)
                overwrite = bool(bound.arguments.get("overwrite"))
                for scratch, url in staged.items():
                    _upload(os.path.join(scratch, "out"), url, overwrite, markers)
                return _map_paths(result, {os.path.join(scratch, "out"): url for scratch, url in staged.items()})

        return wrapper

    return decorate


def _upload(local, url, overwrite, markers):
    files = walk_files(local)
    if not overwrite:
        taken = [rel for rel in files if exists(os.path.join(url, rel))]
        if taken:
            raise FileExistsError(f"{os.path.join(url, taken[0])}: already exists (pass overwrite)")
    files.sort(key=lambda rel: (os.path.basename(rel) in markers, rel))  # markers after everything else
    for rel in files:
        makedirs(os.path.dirname(os.path.join(url, rel)))
        copy(os.path.join(local, rel), os.path.join(url, rel), overwrite=True)


def _map_paths(value, prefixes):
    if isinstance(value, str):
        for local, url in prefixes.items():
            if value == local or value.startswith(local + os.sep):
                return url.rstrip("/") + value[len(local):]
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_map_paths(v, prefixes) for v in value)
    if isinstance(value, dict):
        return {k: _map_paths(v, prefixes) for k, v in value.items()}
    return value
