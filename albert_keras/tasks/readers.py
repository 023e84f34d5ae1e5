"""Labelled text files for classification and regression: CSV, TSV and JSONL.

Columns are named (CSV/TSV with a header, JSONL fields) or 0-based indices (files without a
header; negative indices count from the end, as GLUE's "last column" labels). Every bad record
raises `AlbertInputError` naming the file and line. Labels are strings; the label list is given
or collected from the training file (numeric labels sorted numerically, others alphabetically).
Regression targets are floats.

Files larger than `STREAM_BYTES` are not held in memory: `read_labelled` checks them in one
streaming pass and returns a function that re-reads them (`TextExample`s, in order), which
`examples_dataset` turns into a `tf.data.Dataset`.
"""

import csv
import dataclasses
import math
import os
import sys

from albert_keras.errors import AlbertInputError
from albert_keras.text_files import read_json_lines

FORMATS = ("csv", "tsv", "jsonl")
# Above this size the examples are re-read from disk instead of held in a list.
STREAM_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass
class TextExample:
    """One labelled text (or pair). `label` is a class name (str), a float target, or None."""

    text_a: str
    text_b: str = None
    label: object = None
    line: int = 0
    id: object = None


@dataclasses.dataclass
class ColumnSpec:
    """Which columns hold the text, the pair text and the label.

    Args:
        text_column: name or 0-based index (int or digit string) of the text.
        pair_column: optional second text (sentence pairs).
        label_column: the label / target; None for unlabelled files (prediction input).
        header: whether CSV/TSV files start with a header row; default: when columns are names.
        format: `csv`, `tsv` or `jsonl`; default from the file extension.
        id_column: (JSONL) an optional field kept as the example's `id` (benchmark submissions).
        prepare: (JSONL) `prepare(record, labelled, where)` rewrites each JSON object before the columns
            are read (a benchmark's own layout, `albert_keras.tasks.clue`); a string it returns
            instead is the reason to skip the record, counted and reported on stderr.

    Example:
    ```python
    ColumnSpec("sentence", label_column="label")           # CSV with a header
    ColumnSpec(3, label_column=1, header=False)            # CoLA's train.tsv
    ```
    """

    text_column: object = "text"
    pair_column: object = None
    label_column: object = "label"
    header: bool = None
    format: str = None
    id_column: object = None
    prepare: object = None

    def columns(self):
        return [c for c in (self.text_column, self.pair_column, self.label_column) if c is not None]

    def resolved_header(self):
        if self.header is not None:
            return bool(self.header)
        return not all(_as_index(c) is not None for c in self.columns())


def _as_index(column):
    if isinstance(column, int):
        return column
    if isinstance(column, str) and column.lstrip("-").isdigit():
        return int(column)
    return None


def file_format(path, given=None):
    """`csv`, `tsv` or `jsonl`, from `given` or the extension (`.txt` counts as TSV)."""
    if given:
        if given not in FORMATS:
            raise AlbertInputError(f"--format: unknown {given!r}; choose one of {', '.join(FORMATS)}")
        return given
    extension = os.path.splitext(os.fspath(path))[1].lower()
    known = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
    if extension not in known:
        raise AlbertInputError(f"{path}: cannot tell the format from the extension; pass --format csv|tsv|jsonl")
    return known[extension]


def iter_records(path, spec):
    """Yield `(line, {column: value})` for each record: the raw string fields of `spec`'s columns.

    Raises `AlbertInputError` for a missing file, a missing column, a short row or bad JSON.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AlbertInputError(f"{path}: file not found")
    fmt = file_format(path, spec.format)
    columns = spec.columns()
    if fmt == "jsonl":
        skipped = {}
        for line_number, record in read_json_lines(path):
            if spec.prepare is not None:
                record = spec.prepare(record, spec.label_column is not None, f"{path}:{line_number}")
                if isinstance(record, str):
                    skipped[record] = skipped.get(record, 0) + 1
                    continue
            values = {}
            if spec.id_column is not None:
                values[spec.id_column] = record.get(spec.id_column)
            for column in columns:
                if column not in record:
                    raise AlbertInputError(
                        f"{path}:{line_number}: no field {column!r} (fields: {', '.join(sorted(record))})"
                    )
                values[column] = record[column]
            yield line_number, values
        for reason, count in skipped.items():
            print(f"{path}: skipped {count} records ({reason})", file=sys.stderr)
        return
    with open(path, newline="", encoding="utf-8") as f:
        # GLUE's TSVs are read with quotechar=None (quotes are text); CSV uses the usual quoting.
        reader = csv.reader(f, delimiter="\t", quotechar=None) if fmt == "tsv" else csv.reader(f)
        positions = None
        header = spec.resolved_header()
        for row in reader:
            line_number = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if positions is None:
                if header:
                    names = [name.strip() for name in row]
                    positions = {}
                    for column in columns:
                        index = _as_index(column)
                        if index is None:
                            if column not in names:
                                raise AlbertInputError(
                                    f"{path}:{line_number}: no column {column!r} in the header "
                                    f"(columns: {', '.join(names)})"
                                )
                            index = names.index(column)
                        positions[column] = index
                    continue
                positions = {}
                for column in columns:
                    index = _as_index(column)
                    if index is None:
                        raise AlbertInputError(
                            f"{path}: column {column!r} is a name but the file has no header; give an index "
                            "or a file with a header row"
                        )
                    positions[column] = index
            values = {}
            for column, index in positions.items():
                if not -len(row) <= index < len(row):
                    raise AlbertInputError(
                        f"{path}:{line_number}: no column {column!r} (index {index}); the row has {len(row)} fields"
                    )
                values[column] = row[index]
            yield line_number, values


def _labels_sorted(values):
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _label_text(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _convert(path, line, values, spec, regression, label_index):
    text_a = values[spec.text_column]
    if not isinstance(text_a, str):
        raise AlbertInputError(f"{path}:{line}: text {spec.text_column!r} must be a string, got {text_a!r}")
    text_b = None
    if spec.pair_column is not None:
        text_b = values[spec.pair_column]
        if not isinstance(text_b, str):
            raise AlbertInputError(f"{path}:{line}: text {spec.pair_column!r} must be a string, got {text_b!r}")
    label = None
    if spec.label_column is not None:
        raw = values[spec.label_column]
        if regression:
            try:
                label = float(raw)
            except (TypeError, ValueError):
                label = float("nan")
            if not math.isfinite(label):
                raise AlbertInputError(f"{path}:{line}: target {raw!r} is not a number (regression)")
        else:
            label = _label_text(raw)
            if label_index is not None and label not in label_index:
                raise AlbertInputError(
                    f"{path}:{line}: label {label!r} is not one of the labels {list(label_index)}"
                )
    return TextExample(text_a, text_b, label, line, values.get(spec.id_column) if spec.id_column is not None else None)


def iter_labelled(path, spec, labels=None, regression=False):
    """Yield the file's `TextExample`s, checking each record (see `read_labelled`)."""
    label_index = {label: i for i, label in enumerate(labels)} if labels is not None else None
    for line, values in iter_records(path, spec):
        yield _convert(path, line, values, spec, regression, label_index)


def read_labelled(path, spec, labels=None, regression=False, stream_bytes=STREAM_BYTES):
    """Read and check a labelled file.

    Args:
        path: CSV, TSV or JSONL file.
        spec: a `ColumnSpec`.
        labels: the allowed labels (index order); None collects them from the file.
        regression: float targets instead of labels.
        stream_bytes: files at least this large are checked in one pass and re-read on demand.

    Returns:
        `(examples, labels)`: a list of `TextExample` (or, for large files, a function returning a
        fresh iterator over them) and the label list (None for regression).

    Example:
    ```python
    examples, labels = read_labelled("train.csv", ColumnSpec("sentence", label_column="label"))
    ```
    """
    path = os.fspath(path)
    collect = labels is None and not regression and spec.label_column is not None
    stream = os.path.isfile(path) and os.path.getsize(path) >= stream_bytes
    seen = set()
    examples = []
    count = 0
    for example in iter_labelled(path, spec, labels=None if collect else labels, regression=regression):
        count += 1
        if collect:
            seen.add(example.label)
        if not stream:
            examples.append(example)
    if count == 0:
        raise AlbertInputError(f"{path}: no examples (empty file)")
    if collect:
        labels = _labels_sorted(seen)
        if len(labels) < 2:
            raise AlbertInputError(f"{path}: only one label ({labels[0]!r}); classification needs at least two")
    if stream:
        return (lambda: iter_labelled(path, spec, labels=labels, regression=regression)), labels
    return examples, labels


def example_count(examples):
    """Number of examples in a list or a re-readable stream (one pass)."""
    if callable(examples):
        return sum(1 for _ in examples())
    return len(examples)


def examples_dataset(examples, labels=None, regression=False, pair=False):
    """`tf.data.Dataset` of `(x, y)` with x a string (or a `(a, b)` pair) and y the label index
    (int32), the float target, or omitted when the examples have no labels.

    Example:
    ```python
    dataset = examples_dataset(examples, labels=["0", "1"]).batch(32)
    ```
    """
    import numpy as np
    import tensorflow as tf

    index = {label: i for i, label in enumerate(labels)} if labels else None
    source = examples if callable(examples) else (lambda: iter(examples))
    first = next(iter(source()), None)
    has_label = first is not None and first.label is not None

    def target(example):
        if regression:
            return np.float32(example.label)
        return np.int32(index[example.label])

    def generate():
        for example in source():
            x = (example.text_a, example.text_b or "") if pair else example.text_a
            yield (x, target(example)) if has_label else x

    text = tf.TensorSpec([], tf.string)
    x_spec = (text, text) if pair else text
    y_spec = tf.TensorSpec([], tf.float32 if regression else tf.int32)
    if not callable(examples):
        # In memory: slices are faster than a Python generator.
        xs = ([e.text_a for e in examples], [e.text_b or "" for e in examples]) if pair else [e.text_a for e in examples]
        if has_label:
            ys = np.array([target(e) for e in examples], dtype="float32" if regression else "int32")
            return tf.data.Dataset.from_tensor_slices((xs, ys))
        return tf.data.Dataset.from_tensor_slices(xs)
    return tf.data.Dataset.from_generator(generate, output_signature=(x_spec, y_spec) if has_label else x_spec)
