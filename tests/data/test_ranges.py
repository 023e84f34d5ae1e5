"""Document-aligned byte ranges: read range by range, the input gives the whole-file read's
documents, skipped-line log and errors."""

import os

import pytest

from albert_keras.data import ranges
from albert_keras.data import reader


def _tricky_text():
    """Documents of every shape the reader distinguishes, in one file."""
    parts = [
        "One.\r\nTwo.\n\n\n  \n",                   # CRLF, runs of blank and space-only lines
        "Three.\n\u3000\nFour.\n\n",                # a Unicode-space line: a break, but no sync point
        "".join(f"Long document line {i}.\n" for i in range(40)) + "\n",  # longer than a range
        "bad \xff\xfe line\nafter bad.\n\n",         # an undecodable line inside a document
        "x" * 300 + "\nshort.\n\n",                  # a line over the 256-byte cap
        "".join(f"Big {i}.\n" for i in range(30)),  # cut by max_document_bytes, no blank line
        "\nLast, no newline.",
    ]
    return "".join(parts).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe")


def _documents(path, size, split_bytes, **kwargs):
    """Documents read range by range, as the pipeline does, and the merged count-pass results."""
    count = ranges.num_ranges(size, split_bytes)
    settings = {"max_line_bytes": 256, "max_document_bytes": 120, "chunk_bytes": 50, "on_bad_line": "skip", **kwargs}
    documents, infos = [], []
    for k in range(count):
        info = ranges.count_range(0, path, size, k, count, settings, split_bytes)
        infos.append(info)
        if info["start"] < info["end"]:
            with ranges.range_file(path, info["start"], info["end"], size) as (local, _):
                rkw = {k: settings[k] for k in ("max_line_bytes", "max_document_bytes", "chunk_bytes")}
                documents += [d for _, docs, _ in reader.iter_chunks([local], reader.SkipLog(), **rkw) for d in docs]
    return documents, infos


@pytest.mark.parametrize("split_bytes", [1, 7, 33, 100, 1 << 20])
def test_ranges_hold_whole_documents_like_the_whole_file_read(tmp_path, split_bytes):
    path = tmp_path / "tricky.txt"
    path.write_bytes(_tricky_text())
    size = os.path.getsize(path)
    whole_skips = reader.SkipLog()
    whole = [d for _, docs, _ in reader.iter_chunks(
        [str(path)], whole_skips, max_line_bytes=256, max_document_bytes=120, chunk_bytes=50) for d in docs]
    documents, infos = _documents(str(path), size, split_bytes)
    assert documents == whole  # never a document cut in two, merged or lost
    assert len(infos) == ranges.num_ranges(size, split_bytes)
    bounds = [(i["start"], i["end"]) for i in infos]
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap
    first, skips, digests, error = ranges.merge_range_counts([str(path)], infos)
    assert error is None
    assert [first[(0, k)] for k in range(len(infos))] == [sum(i["documents"] for i in infos[:k]) for k in range(len(infos))]
    # Skip counts and first examples with file line numbers, as one sequential read reports them.
    expected = whole_skips.to_dict()
    assert skips["skipped_lines"] == expected["skipped_lines"] == {"undecodable": 1, "line_too_long": 1}
    assert skips["skipped_line_examples"] == expected["skipped_line_examples"]
    assert skips["documents_split_for_size"] == expected["documents_split_for_size"] > 0
    assert (digests[str(path)] is None) == (len(infos) > 1)


def test_range_errors_name_the_file_line(tmp_path):
    path = tmp_path / "strict.txt"
    path.write_bytes(b"".join(b"Line %d.\n\n" % i for i in range(20)) + b"bad \xff\n")
    size = os.path.getsize(path)
    _, infos = _documents(str(path), size, 16, on_bad_line="error")
    error = ranges.merge_range_counts([str(path)], infos)[3]
    assert error.startswith(f"{path}:41: not UTF-8")
