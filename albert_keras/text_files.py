"""The one reader of user text files behind every command.

One rule everywhere: a `.txt` file is one text a line; `.csv`, `.tsv` (with a header row unless
told otherwise) and `.jsonl` hold columns. Whatever a file holds, a problem is one line naming the
file and line (`AlbertInputError`), never a traceback: bytes that are not UTF-8, a header with no
rows, an empty file. Fields of any size are read (Python's csv module stops at 128 KiB by default,
which a pasted document passes). Lowest layer: imports only `errors`, no TensorFlow.
"""

import csv
import json
import os

from albert_keras.errors import AlbertInputError

LINES = "lines"
FORMATS = (LINES, "csv", "tsv", "jsonl")
_EXTENSIONS = {".txt": LINES, ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
# csv.field_size_limit takes a C long: 2**31 - 1 fits on every platform (Windows' long is 32 bits).
_FIELD_LIMIT = 2**31 - 1


def allow_large_fields():
    """Let Python's csv module read fields of any size (its default stops at 131072 characters).

    Process-wide, as the limit itself is; the CLI calls it once before running a command.

    Example:
    ```python
    allow_large_fields()
    ```
    """
    if csv.field_size_limit() < _FIELD_LIMIT:
        csv.field_size_limit(_FIELD_LIMIT)


def text_format(path, given=None):
    """`lines`, `csv`, `tsv` or `jsonl`: `given`, else from the extension (anything unknown is lines).

    Example:
    ```python
    text_format("queries.txt"), text_format("dev.tsv")  # ("lines", "tsv")
    ```
    """
    if given:
        if given not in FORMATS:
            raise AlbertInputError(f"--format: unknown {given!r}; choose one of {', '.join(FORMATS)}")
        return given
    return _EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower(), LINES)


def iter_lines(path):
    """Yield `(line number, decoded line)`; bad bytes name their line instead of raising a traceback.

    Example:
    ```python
    for number, line in iter_lines("notes.txt"):
        print(number, line.rstrip("\n"))
    ```
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AlbertInputError(f"{path}: is a directory, expected a text file")
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: file not found") from None
    except OSError as error:
        raise AlbertInputError(f"{path}: cannot read ({error.strerror})") from None
    with f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AlbertInputError(
                    f"{path} line {number}: not UTF-8 text ({error.reason} at byte {error.start} of the line)"
                ) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]  # a byte-order mark (Windows editors) is not part of the first text
            yield number, line


def read_json_lines(path):
    """Yield `(line number, object)` for each non-blank line of a JSON-lines file.

    The one JSONL parser behind every reader: bad bytes, a line that is not JSON and a line that
    is not an object each end in one line naming the file and line.

    Example:
    ```python
    for number, record in read_json_lines("train.jsonl"):
        text = record["text"]
    ```
    """
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise AlbertInputError(f"{os.fspath(path)} line {number}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise AlbertInputError(f"{os.fspath(path)} line {number}: expected a JSON object")
        yield number, record


def check_utf8(path):
    """Refuse a local file that is not UTF-8 text, naming the first bad line; returns its line count.

    Directories and remote paths pass (a GLUE task directory, `gs://...`): their readers check them.

    Example:
    ```python
    check_utf8("train.tsv")  # 8552
    ```
    """
    path = os.fspath(path)
    if "://" in path or os.path.isdir(path) or not os.path.exists(path):
        return None
    count = 0
    for count, _ in iter_lines(path):
        pass
    return count


def read_lines(path, skip_blank=False):
    """The texts of a one-text-a-line file.

    Args:
        path: the file.
        skip_blank: drop blank lines; otherwise a blank line is an error (row i is line i).

    Raises:
        AlbertInputError: missing, unreadable, not UTF-8 (naming the line), empty, or a blank line.

    Example:
    ```python
    texts = read_lines("sentences.txt")
    ```
    """
    lines = [line.rstrip("\r\n") for _, line in iter_lines(path)]
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are the end of the file
    if skip_blank:
        lines = [line for line in lines if line.strip()]
    else:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                raise AlbertInputError(f"{path} line {number}: blank line (one text a line; row i is line i)")
    if not lines:
        raise AlbertInputError(f"{path}: no texts (empty file)")
    return lines


def _rows(path, fmt, header):
    """Yield `(line number, row)` of a CSV/TSV file; `row` is a list of fields."""
    allow_large_fields()
    reader = csv.reader((line for _, line in iter_lines(path)), **_dialect(fmt))
    for row in reader:
        if row and not (len(row) == 1 and not row[0].strip()):
            yield reader.line_num, row


def _dialect(fmt):
    # GLUE's TSVs are read with quotechar=None (quotes are text), as tasks.readers does.
    return {"delimiter": "\t", "quotechar": None} if fmt == "tsv" else {}


def read_column(path, column="text", format=None, header=True, skip_blank=False):
    """The texts of one column of a CSV/TSV/JSONL file (or the lines of a `.txt` file).

    Args:
        path: the file.
        column: a column name (files with a header, JSONL) or a 0-based index (files without).
        format: `lines`, `csv`, `tsv` or `jsonl` (default: from the extension).
        header: whether CSV/TSV files start with a header row.
        skip_blank: drop blank texts instead of refusing them.

    Raises:
        AlbertInputError: bad bytes, a header with no rows, a missing column or field, bad JSON.

    Example:
    ```python
    read_column("reviews.tsv", column="sentence")  # ["a gripping film", ...]
    ```
    """
    fmt = text_format(path, format)
    if fmt == LINES:
        return read_lines(path, skip_blank=skip_blank)
    column = "text" if column is None else column
    texts = []
    if fmt == "jsonl":
        for number, record in read_json_lines(path):
            if column not in record:
                raise AlbertInputError(f"{path} line {number}: no field {column!r} ({', '.join(sorted(record))})")
            texts.append((number, str(record[column])))
    else:
        index = None
        for number, row in _rows(path, fmt, header):
            if index is None:
                index = _column_index(path, number, row, column, header)
                if header:
                    continue
            if not -len(row) <= index < len(row):
                raise AlbertInputError(f"{path} line {number}: no column {column!r}; the row has {len(row)} fields")
            texts.append((number, row[index]))
        if index is not None and header and not texts:
            raise AlbertInputError(f"{path}: no texts (only a header row)")
    if skip_blank:
        texts = [(number, text) for number, text in texts if text.strip()]
    for number, text in texts:
        if not text.strip():
            raise AlbertInputError(f"{path} line {number}: blank text in column {column!r}")
    if not texts:
        raise AlbertInputError(f"{path}: no texts (empty file)")
    return [text for _, text in texts]


def _column_index(path, number, row, column, header):
    if isinstance(column, int) or (isinstance(column, str) and column.lstrip("-").isdigit()):
        return int(column)
    if not header:
        raise AlbertInputError(f"{path}: column {column!r} is a name but the file has no header row; give an index")
    names = [name.strip() for name in row]
    if column not in names:
        raise AlbertInputError(f"{path} line {number}: no column {column!r} in the header ({', '.join(names)})")
    return names.index(column)


def check_table(path, format=None, header=None):
    """Refuse a labelled or column file that cannot hold examples, before a task reads it.

    Checks what a task reader would otherwise report as a traceback or not at all: bytes that are
    not UTF-8 (naming the line), an empty file, and a CSV/TSV with a header row and no rows.
    Directories and remote paths pass (their readers check them).

    Args:
        path: the file.
        format: `csv`, `tsv` or `jsonl` (default: from the extension; other files only get the
            UTF-8 check, as their task reads them its own way).
        header: whether a CSV/TSV file has a header row (None: it does).

    Example:
    ```python
    check_table("dev.tsv")
    ```
    """
    if check_utf8(path) is None:
        return
    fmt = text_format(path, format)
    if fmt in ("csv", "tsv"):
        rows = 0
        for _ in _rows(path, fmt, header):
            rows += 1
            if rows > 1:
                return
        if rows == 0:
            raise AlbertInputError(f"{path}: no examples (empty file)")
        if header is not False:
            raise AlbertInputError(f"{path}: no examples (only a header row)")
    elif fmt == "jsonl" and not any(line.strip() for _, line in iter_lines(path)):
        raise AlbertInputError(f"{path}: no examples (empty file)")
