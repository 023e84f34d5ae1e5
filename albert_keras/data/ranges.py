"""Document-aligned byte ranges of text files: how `create-data --runner beam` splits its input.

A file larger than one work unit is cut into byte ranges that each start right after a blank line
(`sync_offset`), where the reader has no document open. Reading a range alone with
`reader.iter_chunks` then gives exactly the documents that the whole-file read gives there, so a
document is never cut in two, whatever the split size. A count pass per range (`count_range`)
and a prefix sum (`merge_range_counts`) give each range's first global document index, the
skipped-line log with file line numbers, and the first error in input order: what the local
run learns from one sequential read. No Beam here: these are plain functions on files.
"""

import contextlib
import os
import re
import tempfile

from albert_keras import io_utils
from albert_keras.data import reader as reader_lib
from albert_keras.errors import AlbertInputError

# bytes.strip() whitespace: a line of only these is a blank line for the reader too (str.strip()
# removes them all), and it is always valid UTF-8 without NUL.
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"
_COPY_BLOCK = 8 << 20
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@contextlib.contextmanager
def open_input(path):
    """Open an input file for binary reading: local (`file://` too), or through Beam's filesystems."""
    if io_utils.is_url(path):
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            yield f
    else:
        with open(io_utils.local_path(path), "rb") as f:
            yield f


def _finish_line(f):
    """Read to the end of the current physical line in bounded pieces; returns bytes read."""
    count = 0
    while True:
        rest = f.readline(1 << 20)
        count += len(rest)
        if not rest or rest.endswith(b"\n"):
            return count


def sync_offset(f, target, size, max_line_bytes=reader_lib.DEFAULT_MAX_LINE_BYTES):
    """The first offset >= `target` that follows a blank line (or 0, or `size`).

    Lines are `\\n`-terminated byte strings, as the reader reads them; a blank line here is one of
    only ASCII whitespace, at most `max_line_bytes` long and newline-terminated, which the reader
    always treats as a document break. After it no document is open, so a range starting there
    reads exactly as it does within the whole file. Depends only on the file and `target`, so the
    ranges on either side of a boundary agree on it without talking.

    Args:
        f: the file, opened in binary mode and seekable.
        target: a byte offset.
        size: the file's size in bytes.
        max_line_bytes: the reader's line cap.

    Example:
    >>> import io
    >>> sync_offset(io.BytesIO(b"a\\nb\\n\\nc\\n"), 1, 8)
    5
    """
    if target <= 0:
        return 0
    if target >= size:
        return size
    f.seek(target - 1)
    position = target - 1 + _finish_line(f)  # the first line start >= target
    while position < size:
        raw = f.readline(max_line_bytes + 1)
        if not raw:
            break
        position += len(raw)
        if not raw.endswith(b"\n"):
            if len(raw) > max_line_bytes:
                position += _finish_line(f)
            continue
        if not raw.strip(_ASCII_WHITESPACE):
            return position
    return size


def num_ranges(size, split_bytes):
    """How many ranges a file of `size` bytes is cut into (at least one)."""
    return max(1, -(-size // max(1, int(split_bytes))))


def range_bounds(f, size, index, count, split_bytes, max_line_bytes=reader_lib.DEFAULT_MAX_LINE_BYTES):
    """`(start, end)` of range `index` of `count`: from the sync offset at `index * split_bytes` to
    the one at `(index + 1) * split_bytes`. A document longer than `split_bytes` makes the next
    range empty (start == end) rather than being cut.

    Example:
    >>> import io
    >>> data = b"one.\\ntwo.\\n\\nthree.\\n"
    >>> [range_bounds(io.BytesIO(data), len(data), k, 2, 8) for k in range(2)]
    [(0, 11), (11, 18)]
    """
    start = sync_offset(f, index * split_bytes, size, max_line_bytes)
    end = size if index + 1 >= count else sync_offset(f, (index + 1) * split_bytes, size, max_line_bytes)
    return start, end


@contextlib.contextmanager
def range_file(path, start, end, size, count_newlines=False):
    """A local path holding bytes [start, end) of `path` (the file itself when it is local and
    whole), and the number of newlines in it when asked. The reader reads whole local files, so
    a range is copied to a temporary file rather than re-implementing the reader on offsets."""
    newlines = None
    if start == 0 and end == size and not io_utils.is_url(path):
        path = io_utils.local_path(path)
        if count_newlines:
            newlines = 0
            with open(path, "rb") as f:
                while block := f.read(_COPY_BLOCK):
                    newlines += block.count(b"\n")
        yield path, newlines
        return
    fd, temporary = tempfile.mkstemp(prefix="albert-keras-range-", suffix=".txt")
    try:
        newlines = 0
        with os.fdopen(fd, "wb") as out, open_input(path) as f:
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                block = f.read(min(remaining, _COPY_BLOCK))
                if not block:
                    break
                out.write(block)
                newlines += block.count(b"\n")
                remaining -= len(block)
        yield temporary, newlines
    finally:
        os.remove(temporary)


def reader_kwargs(settings):
    return {k: settings[k] for k in ("max_line_bytes", "max_document_bytes", "chunk_bytes", "on_bad_line")}


def count_range(file_index, path, size, index, count, settings, split_bytes):
    """Count pass over one range: its bounds, documents, newlines, skipped lines, error.

    A plain function (no Beam) so tests can check ranges against the whole-file read.

    Returns:
        A JSON-able dict; `skips` is `SkipLog.to_dict()` with line numbers local to the range.
    """
    info = {"file": file_index, "index": index, "documents": 0, "newlines": 0, "error": None, "sha256": None}
    try:
        with open_input(path) as f:
            if index == 0:
                if b"\x00" in f.read(8192):
                    raise AlbertInputError(
                        f"{path}: looks like a binary file (NUL byte in the first 8 KiB); expected UTF-8 text")
            start, end = range_bounds(f, size, index, count, split_bytes, settings["max_line_bytes"])
        info.update(start=start, end=end)
        skips = reader_lib.SkipLog()
        if start < end:
            with range_file(path, start, end, size, count_newlines=True) as (local, newlines):
                digests = {}
                try:
                    for _, documents, _ in reader_lib.iter_chunks([local], skips, digests=digests, **reader_kwargs(settings)):
                        info["documents"] += len(documents)
                except AlbertInputError as error:
                    raise AlbertInputError(str(error).replace(local, path)) from None
                info["newlines"] = newlines
                if count == 1:
                    info["sha256"] = digests[local].hexdigest()
                skips = skips.to_dict()
                skips["skipped_line_examples"] = {
                    reason: [example.replace(local, path) for example in examples]
                    for reason, examples in skips["skipped_line_examples"].items()
                }
        else:
            skips = skips.to_dict()
            if size == 0:
                skips["empty_files"] = [path]
                info["sha256"] = _EMPTY_SHA256
        info["skips"] = skips
    except AlbertInputError as error:
        info["error"] = str(error)
    return info


def _shift_line(text, path, offset):
    """`path:LINE` -> `path:LINE+offset` (range-local line numbers -> file line numbers)."""
    if not offset:
        return text
    return re.sub(re.escape(path) + r":(\d+)", lambda m: f"{path}:{int(m.group(1)) + offset}", text, count=1)


def merge_range_counts(paths, infos):
    """Combine count-pass results into what the local run computes in one sequential read.

    Args:
        paths: the input files, in order.
        infos: `count_range` results, any order.

    Returns:
        `(first_documents, skips, digests, error)`: `first_documents[(file, index)]` is the global
        index of that range's first document; `skips` is a `SkipLog.to_dict()` for the whole input
        (first examples in file order, file line numbers); `digests[path]` is the SHA-256 of files
        read as one range (None otherwise); `error` is the first error in input order or None.
    """
    infos = sorted(infos, key=lambda i: (i["file"], i["index"]))
    first_documents, digests = {}, {}
    merged = reader_lib.SkipLog().to_dict()
    total = lines = 0
    last_file = None
    for info in infos:
        path = paths[info["file"]]
        if info["file"] != last_file:
            last_file, lines = info["file"], 0
        if info["error"] is not None:
            return first_documents, merged, digests, _shift_line(info["error"], path, lines)
        first_documents[(info["file"], info["index"])] = total
        total += info["documents"]
        digests[path] = info["sha256"] if info["index"] == 0 else None
        for key, value in info["skips"].items():
            if key == "skipped_line_examples":
                for reason, examples in value.items():
                    kept = merged[key].setdefault(reason, [])
                    kept.extend(_shift_line(e, path, lines) for e in examples[: max(0, 5 - len(kept))])
            elif key == "skipped_lines":
                for reason, n in value.items():
                    merged[key][reason] = merged[key].get(reason, 0) + n
            elif isinstance(value, list):
                merged[key] = merged.get(key, []) + value
            else:
                merged[key] = merged.get(key, 0) + value
        lines += info["newlines"]
    return first_documents, merged, digests, None
