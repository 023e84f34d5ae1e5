"""create-data on Apache Beam: the same records as the local run, whole documents, clear errors.

The pipeline tests skip when apache-beam is not installed (tests/data/test_ranges.py checks the
document-aligned ranges without it).
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


def test_without_apache_beam_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # what `import` sees when it is absent
    with pytest.raises(AlbertInputError, match=r'pip install -e "\.\[beam\]"'):
        beam_lib.create_pretraining_data_beam(["x.txt"], "m.model", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")


def test_finalize_renames_the_committed_attempt_and_deletes_the_others(tmp_path):
    import tensorflow as tf

    from albert_keras.data.driver import Plan
    from albert_keras.data.instances import Statistics
    from albert_keras.data.settings import CreateDataSettings

    partial = tmp_path / ".out.partial"
    partial.mkdir()
    (partial / beam_lib.PARTS_NAME).mkdir()  # the work items' part files: merged, then deleted
    (partial / beam_lib.PARTS_NAME / "s00000-aaa.tfrecord").write_bytes(b"")

    def write(name, records):
        with tf.io.TFRecordWriter(str(partial / name)) as writer:
            for record in records:
                writer.write(record)
        return str(partial / name)

    committed = write(".part-00000-of-00002.tfrecord.aaa.tmp", [b"x", b"y"])
    write(".part-00000-of-00002.tfrecord.bbb.tmp", [b"x"])  # a failed or retried attempt
    stats = Statistics(3)
    stats.counts["instances"] = 2
    info = {"file": 0, "index": 0, "start": 0, "end": 9, "documents": 1, "newlines": 3, "error": None,
            "sha256": "s", "skips": reader.SkipLog().to_dict()}

    def finalize(infos):
        commit = {"shards": [[0, committed, 2]], "statistics": stats.to_dict(), "peak_rss_mb_worker": 1.0, "ranges": infos}
        (partial / beam_lib.COMMIT_NAME).write_text(json.dumps(commit))
        plan = Plan(settings=CreateDataSettings(num_shards=2), files=[reader.InputFile("in.txt", 9, ["in.txt", 9, 0])],
                    references=None, spm_proto=b"", masking_vocab=None, recorded={"dupe_factor": 1}, fingerprint={},
                    output_dir="out", existing=None, vocabulary_entry={"vocab_size": 10})
        return beam_lib._finalize(plan, str(partial), str(partial / beam_lib.COMMIT_NAME), ["in.txt"], [], 0.0)

    with pytest.raises(AlbertInputError, match=r"^in\.txt:3: not UTF-8$"):
        finalize([dict(info, error="in.txt:3: not UTF-8")])
    manifest = finalize([info])
    assert sorted(os.listdir(partial)) == ["manifest.json", "part-00000-of-00002.tfrecord", "part-00001-of-00002.tfrecord"]
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(partial / "part-00000-of-00002.tfrecord"))] == [b"x", b"y"]
    assert list(tf.data.TFRecordDataset(str(partial / "part-00001-of-00002.tfrecord"))) == []
    assert [s["instances"] for s in manifest["shards"]] == [2, 0]
    assert manifest["inputs"] == [{"path": "in.txt", "bytes": 9, "sha256": "s"}]


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


def _records(directory, compression=""):
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(directory, "part-*")))
    records = (r.numpy() for f in files for r in tf.data.TFRecordDataset(f, compression_type=compression))
    return collections.Counter(records), files


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
    # a.txt and b.txt were split into ranges (no whole-file digest); the empty c.txt was not.
    assert [i["sha256"] is None for i in manifest["inputs"]] == [True, True, False]
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
    with pytest.raises(AlbertInputError, match=r"missing\.model: vocabulary not found"):
        run([str(beam_corpus / "a.txt")], tmp_path / "missing.model", output)
    undecodable = tmp_path / "latin1.txt"
    undecodable.write_bytes(b"caf\xe9 cr\xe8me\n\xe0 la carte\n")
    # The file passes the driver's checks; the workers' count pass finds it unusable.
    with pytest.raises(AlbertInputError, match=r"latin1\.txt: none of its 2 lines is usable"):
        run([str(undecodable)], spm_model_path, output, beam_options="--runner=DirectRunner")
    # --on-bad-line error: found by a worker in the last of several ranges, named with its file line.
    bad_line = (beam_corpus / "b.txt").read_bytes().count(b"\n")
    with pytest.raises(AlbertInputError, match=rf"b\.txt:{bad_line}: not UTF-8"):
        run([str(beam_corpus / "b.txt")], spm_model_path, output, on_bad_line="error", split_bytes=8000)
    assert os.listdir(tmp_path) == ["latin1.txt"]  # no output, no partial directory, no lock


def test_beam_gzip_with_shards_that_draw_no_record(beam_corpus, spm_model_path, tmp_path):
    from albert_keras.data.create import create_pretraining_data
    from albert_keras.data.settings import CreateDataSettings

    small = tmp_path / "small.txt"
    small.write_text("\n\n".join((beam_corpus / "a.txt").read_text().split("\n\n")[:2]) + "\n")
    # One settings object for both runners.
    settings = CreateDataSettings(max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS, num_shards=40,
                                  compression="gzip")
    local = create_pretraining_data([small], spm_model_path, tmp_path / "local", settings=settings)
    manifest = beam_lib.create_pretraining_data_beam([small], spm_model_path, tmp_path / "beam", settings=settings)
    beam_records, files = _records(tmp_path / "beam", "GZIP")
    assert beam_records == _records(tmp_path / "local", "GZIP")[0]
    assert len(files) == 40 and files[0].endswith("part-00000-of-00040.tfrecord.gz")
    counts = [s["instances"] for s in manifest["shards"]]
    assert 0 in counts and sum(counts) == sum(beam_records.values()) < 40  # empty shards are real files
    # The same manifest but for the run's figures, who wrote it, which shard holds a record, and the
    # Beam run's work-unit size (a setting of its own, so a local and a Beam output never compare).
    beam_view = json.loads(json.dumps(manifest))  # as read back from manifest.json
    split_bytes = beam_view["settings"].pop("split_bytes"), beam_view["fingerprint"]["settings"].pop("split_bytes")
    assert split_bytes == (settings.split_bytes,) * 2
    differ = {"run", "created_by", "shards"}
    assert {k: v for k, v in beam_view.items() if k not in differ} == {k: v for k, v in local.items() if k not in differ}
    assert [s["file"] for s in manifest["shards"]] == [s["file"] for s in local["shards"]]


def test_part_files_read_back_as_tensorflow_wrote_them(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "s00000-x.tfrecord")
    records = [b"", b"a", bytes(range(256)) * 40]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert list(beam_lib._read_part(path)) == records
    with open(path, "rb") as f:
        data = f.read()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-3])
    with pytest.raises(OSError, match="truncated"):
        list(beam_lib._read_part(str(tmp_path / "cut.tfrecord")))
