"""create-data on Apache Beam: the same records as the local run, whole documents, clear errors.

The range tests need no Beam; the pipeline tests skip when apache-beam is not installed.
"""

import collections
import glob
import json
import os
import sys

import pytest

from albert_keras.data import beam as beam_lib
from albert_keras.data import reader
from albert_keras.errors import AlbertInputError

MULTI = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
SEQ, PREDICTIONS = 64, 10


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
    count = beam_lib.num_ranges(size, split_bytes)
    settings = {"max_line_bytes": 256, "max_document_bytes": 120, "chunk_bytes": 50, "on_bad_line": "skip", **kwargs}
    documents, infos = [], []
    for k in range(count):
        info = beam_lib.count_range(0, path, size, k, count, settings, split_bytes)
        infos.append(info)
        if info["start"] < info["end"]:
            with beam_lib._range_file(path, info["start"], info["end"], size) as (local, _):
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
    assert len(infos) == beam_lib.num_ranges(size, split_bytes)
    bounds = [(i["start"], i["end"]) for i in infos]
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap
    first, skips, digests, error = beam_lib.merge_range_counts([str(path)], infos)
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
    error = beam_lib.merge_range_counts([str(path)], infos)[3]
    assert error.startswith(f"{path}:41: not UTF-8")


def test_without_apache_beam_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # what `import` sees when it is absent
    with pytest.raises(AlbertInputError, match=r'pip install -e "\.\[beam\]"'):
        beam_lib.create_pretraining_data_beam(["x.txt"], "m.model", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")


# ----------------------------------------------------------------------------- pipelines


@pytest.fixture(scope="module")
def beam_corpus(tmp_path_factory, embedded_corpus_path):
    """Two files from the embedded corpus (~60 KB) and an empty one."""
    pytest.importorskip("apache_beam")
    text = open(embedded_corpus_path, encoding="utf-8").read()
    documents = text.split("\n\n")
    directory = tmp_path_factory.mktemp("beam_corpus")
    (directory / "a.txt").write_text("\n\n".join(documents[:40]) + "\n", encoding="utf-8")
    (directory / "b.txt").write_bytes(("\n\n".join(documents[40:80]) + "\n").encode() + b"a bad \xff line\n")
    (directory / "c.txt").write_text("")
    return directory


def _records(directory):
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(directory, "part-*")))
    return collections.Counter(r.numpy() for f in files for r in tf.data.TFRecordDataset(f)), files


def test_beam_cli_gives_the_local_records(beam_corpus, spm_model_path, tmp_path):
    from albert_keras import cli
    from albert_keras.data.create import create_pretraining_data

    inputs = [str(beam_corpus / "*.txt")]
    common = dict(max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS, dupe_factor=2, seed=3, num_shards=3)
    local = create_pretraining_data(inputs, spm_model_path, tmp_path / "local", **common)
    argv = ["create-data", "--input", *inputs, "--spm-model", str(spm_model_path), "--output", str(tmp_path / "beam"),
            "--max-seq-length", str(SEQ), "--max-predictions", str(PREDICTIONS), "--dupe-factor", "2",
            "--seed", "3", "--num-shards", "3", "--runner", "beam", f"--beam-options={MULTI}",
            # ~8 KB ranges: every file is split, through the middle of documents.
            "--beam-split-mb", "0.008"]
    assert cli.main(argv) == 0
    manifest = json.load(open(tmp_path / "beam" / "manifest.json"))
    local_records, local_files = _records(tmp_path / "local")
    beam_records, beam_files = _records(tmp_path / "beam")
    assert sum(local_records.values()) > 500
    assert beam_records == local_records  # the same multiset; shards may differ
    assert [os.path.basename(f) for f in beam_files] == [os.path.basename(f) for f in local_files]
    assert sorted(os.listdir(tmp_path / "beam")) == sorted(os.listdir(tmp_path / "local"))  # no leftovers
    assert sum(s["instances"] for s in manifest["shards"]) == sum(beam_records.values())
    for key, value in local["statistics"].items():
        if key != "input_bytes":
            assert manifest["statistics"][key] == value, key
    assert manifest["statistics"]["skipped_lines"] == {"undecodable": 1}
    assert manifest["statistics"]["empty_files"] == [str(beam_corpus / "c.txt")]
    assert manifest["run"]["peak_rss_mb_worker"] > 0
    assert [i["path"] for i in manifest["inputs"]] == [i["path"] for i in local["inputs"]]
    assert not glob.glob(str(tmp_path / ".beam*")) and not glob.glob(str(tmp_path / ".*.lock"))
    # A rerun with the same inputs and settings is up to date: no pipeline, the same manifest.
    again = beam_lib.create_pretraining_data_beam(inputs, spm_model_path, tmp_path / "beam", beam_options=MULTI,
                                                  split_bytes=8000, **common)
    assert again == manifest


def test_beam_bad_input_is_a_clear_error_and_writes_nothing(beam_corpus, spm_model_path, tmp_path):
    run = beam_lib.create_pretraining_data_beam
    output = tmp_path / "out"
    with pytest.raises(AlbertInputError, match=r"nothing\*\.txt: no input file matches this pattern"):
        run([str(tmp_path / "nothing*.txt")], spm_model_path, output)
    with pytest.raises(AlbertInputError, match=r"missing\.model: SentencePiece model not found"):
        run([str(beam_corpus / "a.txt")], tmp_path / "missing.model", output)
    undecodable = tmp_path / "latin1.txt"
    undecodable.write_bytes(b"caf\xe9 cr\xe8me\n\xe0 la carte\n")
    # The file passes the driver's checks; the workers' count pass finds it unusable.
    with pytest.raises(AlbertInputError, match=r"latin1\.txt: none of its 2 lines is usable"):
        run([str(undecodable)], spm_model_path, output, beam_options="--runner=DirectRunner")
    assert os.listdir(tmp_path) == ["latin1.txt"]  # no output, no partial directory, no lock
