import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from albert_keras import io_utils
from albert_keras.data.create import create_pretraining_data
from albert_keras.data.driver import up_to_date
from albert_keras.data.settings import CreateDataSettings
from albert_keras.errors import AlbertInputError
from tests.data.conftest import PREDICTIONS
from tests.data.conftest import SEQ
from tests.data.conftest import parse_records

CLS, SEP, MASK = 2, 3, 4


def test_records_parse_with_the_official_spec_and_follow_the_algorithm(embedded_records, embedded_parsed):
    _, manifest = embedded_records
    p = embedded_parsed
    n = len(p["input_ids"])
    assert n == manifest["statistics"]["instances"] == sum(s["instances"] for s in manifest["shards"]) > 3000
    labels = p["next_sentence_labels"][:, 0]
    assert set(labels) == {0, 1} and abs(labels.mean() - 0.5) <= 0.03
    lengths = p["input_mask"].sum(1)
    targets = np.minimum(PREDICTIONS, np.maximum(1, np.round(0.15 * lengths).astype(int)))
    predictions = p["masked_lm_weights"].sum(1).astype(int)
    assert (predictions <= targets).all()
    assert (predictions != targets).sum() == manifest["statistics"]["instances_short_of_target"]
    assert (predictions == targets).mean() >= 0.99
    counts = {"mask": 0, "kept": 0, "random": 0}
    for i in range(n):
        length, k = lengths[i], predictions[i]
        ids, positions, originals = p["input_ids"][i], p["masked_lm_positions"][i, :k], p["masked_lm_ids"][i, :k]
        assert (p["input_mask"][i, :length] == 1).all() and (p["input_mask"][i, length:] == 0).all()
        assert (ids[length:] == 0).all() and (p["masked_lm_positions"][i, k:] == 0).all()
        seps = np.flatnonzero(ids == SEP)
        assert ids[0] == CLS and len(seps) == 2 and seps[-1] == length - 1
        # Segment ids are 0 through the first [SEP], 1 after it, 0 in the padding.
        np.testing.assert_array_equal(p["segment_ids"][i, :length], (np.arange(length) > seps[0]).astype(int))
        assert (p["segment_ids"][i, length:] == 0).all()
        # [CLS], [SEP] and padding are never masked.
        assert not np.isin(positions, [0, seps[0], seps[1]]).any() and (positions < length).all()
        assert (p["token_boundary"][i, [0, seps[0], seps[1]]] == 1).all()
        kinds = np.where(ids[positions] == MASK, "mask", np.where(ids[positions] == originals, "kept", "random"))
        for kind in kinds:
            counts[kind] += 1
    total = sum(counts.values())
    assert abs(counts["mask"] / total - 0.8) <= 0.03
    assert abs(counts["kept"] / total - 0.1) <= 0.03
    assert abs(counts["random"] / total - 0.1) <= 0.03
    stats = manifest["statistics"]
    drawn = np.array([stats["ngram_drawn_histogram"][k] for k in "123"], float)
    np.testing.assert_allclose(drawn / drawn.sum(), [6 / 11, 3 / 11, 2 / 11], atol=0.03)
    assert stats["masked_tokens"] == predictions.sum()
    assert stats["sop_label_1"] == labels.sum()


def test_manifest_records_settings_checksum_and_statistics(embedded_records, spm_model_path):
    from albert_keras.tokenization import sentencepiece_checksum

    directory, manifest = embedded_records
    on_disk = json.load(open(os.path.join(directory, "manifest.json")))
    assert on_disk["statistics"] == manifest["statistics"]
    assert on_disk["vocabulary"]["sha256"] == sentencepiece_checksum(spm_model_path)
    assert on_disk["vocabulary"]["kind"] == "sentencepiece" and on_disk["vocabulary"]["special_ids"]["cls"] == 2
    assert on_disk["settings"]["max_seq_length"] == SEQ and on_disk["settings"]["dupe_factor"] == 3
    for key in ("documents", "instances", "tokens", "masked_fraction", "sop_label_1_fraction",
                "ngram_drawn_histogram", "truncated_instances", "skipped_lines"):
        assert key in on_disk["statistics"], key
    assert len(on_disk["inputs"][0]["sha256"]) == 64
    # The peak is the test worker's whole life (ru_maxrss), so only its presence is checked here.
    assert on_disk["run"]["peak_rss_mb_main"] > 0 and on_disk["run"]["seconds"] > 0
    names = sorted(os.listdir(directory))
    assert names == ["manifest.json"] + [f"part-{i:05d}-of-00004.tfrecord" for i in range(4)]


def test_one_and_two_workers_give_identical_records(tmp_path, embedded_corpus_path, spm_model_path):
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        create_pretraining_data([embedded_corpus_path], spm_model_path, out, max_seq_length=SEQ,
                                max_predictions_per_seq=PREDICTIONS, dupe_factor=2, seed=11, workers=workers,
                                num_shards=3, chunk_bytes=64 << 10)
        outputs.append(parse_records(out))
    for name in outputs[0]:
        np.testing.assert_array_equal(outputs[0][name], outputs[1][name], err_msg=name)


def test_rerun_is_a_no_op_and_other_settings_need_overwrite(tmp_path, embedded_corpus_path, spm_model_path):
    out = tmp_path / "rerun"
    kwargs = dict(max_seq_length=32, max_predictions_per_seq=5, num_shards=2, seed=1)
    first = create_pretraining_data([embedded_corpus_path], spm_model_path, out, **kwargs)
    stamps = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
    second = create_pretraining_data([embedded_corpus_path], spm_model_path, out, **kwargs)
    assert second["statistics"] == first["statistics"]
    assert {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)} == stamps
    with pytest.raises(AlbertInputError, match="overwrite"):
        create_pretraining_data([embedded_corpus_path], spm_model_path, out, **dict(kwargs, seed=2))
    third = create_pretraining_data([embedded_corpus_path], spm_model_path, out, overwrite=True,
                                    **dict(kwargs, seed=2, num_shards=3))
    assert sorted(os.listdir(out)) == ["manifest.json"] + [f"part-{i:05d}-of-00003.tfrecord" for i in range(3)]
    assert len(parse_records(out, 32, 5)["input_ids"]) == third["statistics"]["instances"]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


def test_gzip_and_paragraph_input(tmp_path, spm_model_path):
    from albert_keras.corpus import embedded_corpus

    text = "\n\n".join(" ".join(doc[i:i + 4]) for doc in embedded_corpus()[:30] for i in range(0, len(doc), 4))
    source = tmp_path / "paragraphs.txt"
    source.write_text(text + "\n")
    out = tmp_path / "gz"
    manifest = create_pretraining_data([tmp_path / "para*.txt"], spm_model_path, out, max_seq_length=SEQ,
                                       max_predictions_per_seq=PREDICTIONS, compression="gzip",
                                       input_format="paragraphs", num_shards=2)
    assert all(f.endswith(".tfrecord.gz") for f in os.listdir(out) if f.startswith("part-"))
    assert manifest["inputs"][0]["path"] == os.fspath(source)  # the glob was expanded
    assert manifest["statistics"]["sentences"] > manifest["statistics"]["documents"] * 2
    assert len(parse_records(out)["input_ids"]) == manifest["statistics"]["instances"] > 0
    from albert_keras.data.pipeline import pretraining_dataset

    dataset = pretraining_dataset(os.path.join(out, "part-*"), 4, SEQ, PREDICTIONS, is_training=False,
                                  drop_remainder=False)  # gzip detected from the names
    assert sum(int(b["input_ids"].shape[0]) for b in dataset) == manifest["statistics"]["instances"]


def test_bad_lines_are_counted_or_named(tmp_path, spm_model_path):
    source = tmp_path / "bad.txt"
    with open(source, "wb") as f:
        f.write(b"A good first sentence here.\nAnd a second good one.\n")
        f.write(b"broken \xff\xfe bytes\n")
        f.write(b"x" * (50 << 20))  # a 50 MB line without a newline until the end
        f.write(b"\nThe text goes on after it.\nOne more sentence.\n\nAnother document starts.\nIt ends.\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    started = time.monotonic()
    manifest = create_pretraining_data([source, empty], spm_model_path, tmp_path / "out", max_seq_length=32,
                                       max_predictions_per_seq=5, max_line_bytes=1 << 20)
    assert time.monotonic() - started < 60
    stats = manifest["statistics"]
    assert stats["skipped_lines"] == {"undecodable": 1, "line_too_long": 1}
    assert stats["skipped_line_examples"]["undecodable"] == [f"{source}:3"]
    assert stats["skipped_line_examples"]["line_too_long"] == [f"{source}:4"]
    assert stats["empty_files"] == [os.fspath(empty)]
    assert stats["documents"] == 2
    with pytest.raises(AlbertInputError, match=rf"{source}:3: not UTF-8"):
        create_pretraining_data([source], spm_model_path, tmp_path / "strict", on_bad_line="error")
    assert not os.path.exists(tmp_path / "strict")


def test_clear_errors(tmp_path, spm_model_path, embedded_corpus_path):
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    not_a_model = tmp_path / "fake.model"
    not_a_model.write_text("hello")
    cases = [
        ([binary], spm_model_path, "binary"),
        ([tmp_path / "missing.txt"], spm_model_path, "not found"),
        ([tmp_path / "nothing*.txt"], spm_model_path, "no input file matches"),
        ([empty], spm_model_path, "no training instances"),
        ([embedded_corpus_path], tmp_path / "missing.model", "missing.model: vocabulary not found"),
        ([embedded_corpus_path], not_a_model, "not a valid SentencePiece model"),
    ]
    for inputs, model, message in cases:
        with pytest.raises(AlbertInputError, match=message):
            create_pretraining_data(inputs, model, tmp_path / "never")
        assert not os.path.exists(tmp_path / "never")


# What manifests recorded before `CreateDataSettings` (the 22-keyword `checked_settings`), at the
# defaults: their fingerprints hold it, so an output written then must still be up to date.
EARLIER_DEFAULT_SETTINGS = {
    "max_seq_length": 128, "max_predictions_per_seq": 20, "dupe_factor": 1, "masked_lm_prob": 0.15,
    "short_seq_prob": 0.1, "ngram": 3, "favor_shorter_ngram": True, "do_whole_word_mask": True, "lowercase": True,
    "seed": 12345, "num_shards": 8, "shuffle_buffer_size": 20000, "compression": None, "input_format": "sentences",
    "on_bad_line": "skip", "max_line_bytes": 1 << 20, "max_document_bytes": 16 << 20, "chunk_bytes": 1 << 20,
    "official_nondeterministic": False, "official_random_negatives": False, "official_random_replacement": False,
}


def test_settings_record_what_manifests_recorded_before():
    settings = CreateDataSettings()
    assert json.dumps(settings.recorded("local")) == json.dumps(EARLIER_DEFAULT_SETTINGS)  # keys, order, values
    assert settings.recorded("beam") == {**EARLIER_DEFAULT_SETTINGS, "split_bytes": 64_000_000}
    jieba = CreateDataSettings(whole_word_segmenter="jieba", compression="gzip", workers=3)
    assert jieba.recorded("local") == {**EARLIER_DEFAULT_SETTINGS, "compression": "GZIP", "whole_word_segmenter": "jieba"}
    assert CreateDataSettings(chinese_ref="r.txt").recorded("local", ["/abs/r.txt"])["chinese_ref"] == ["/abs/r.txt"]
    # Keywords and a settings object are the same run; keywords change a given object.
    assert CreateDataSettings.build(None, num_shards=2, compression="gzip") == CreateDataSettings(num_shards=2,
                                                                                                 compression="GZIP")
    assert CreateDataSettings.build(jieba, seed=1) == CreateDataSettings(
        whole_word_segmenter="jieba", compression="gzip", workers=3, seed=1)


def test_one_validation_for_both_runners_and_the_cli(tmp_path, capsys):
    from albert_keras.cli import main
    from albert_keras.data.beam import create_pretraining_data_beam

    cases = [
        ({"input_format": "xml"}, None,  # argparse has the choices
         "input_format (--input-format) must be one of ('sentences', 'paragraphs'), got 'xml'"),
        ({"num_shards": 0}, ["--num-shards", "0"], "num_shards (--num-shards) must be >= 1, got 0"),
        ({"dupe_factor": 0}, ["--dupe-factor", "0"], "dupe_factor (--dupe-factor) must be >= 1, got 0"),
        ({"max_seq_length": 4}, ["--max-seq-length", "4"], "max_seq_length (--max-seq-length) must be >= 5, got 4"),
        ({"ngram": 0}, ["--ngram", "0"], "ngram (--ngram) must be >= 1, got 0"),
        ({"split_bytes": 0}, ["--beam-split-mb", "0"], "split_bytes (--beam-split-mb) must be >= 1, got 0"),
        ({"compression": "zip"}, None, "compression (--gzip) must be None or 'gzip', got 'zip'"),
        ({"on_bad_line": "ignore"}, None, "on_bad_line (--on-bad-line) must be 'skip' or 'error', got 'ignore'"),
    ]
    for change, flags, message in cases:
        for run in (create_pretraining_data, create_pretraining_data_beam):
            # The inputs and the model do not exist: the settings are checked before them (and
            # before Apache Beam is imported).
            with pytest.raises(AlbertInputError) as error:
                run(["x.txt"], "m.model", tmp_path / "out", **change)
            assert str(error.value) == f"create-data: {message}", run.__name__
        if flags:
            for runner in ("local", "beam"):
                status = main(["create-data", "--input", "x.txt", "--vocab", "m.model", "--output",
                               str(tmp_path / "out"), "--runner", runner, *flags])
                assert status == 2
                assert capsys.readouterr().err.splitlines() == [f"albert-keras create-data: error: create-data: {message}"]
    # What the Beam runner cannot do: one line naming the flag, from the same object.
    for change, flag in (({"official_random_negatives": True}, "--official-random-negatives"),
                         ({"chinese_ref": ["r.txt"]}, "--chinese-ref"), ({"workers": 2}, "--workers")):
        with pytest.raises(AlbertInputError, match=f"^create-data --runner beam: .*{flag}") as error:
            create_pretraining_data_beam(["x.txt"], "m.model", tmp_path / "out", **change)
        assert "\n" not in str(error.value)
        CreateDataSettings(**change).check_runner("local")  # the local runner can
    assert os.listdir(tmp_path) == []


def test_file_urls_are_local_paths_for_every_step(tmp_path, spm_model_path):
    from albert_keras.data import ranges
    from albert_keras.data import reader

    assert not io_utils.is_url(f"file://{tmp_path}") and io_utils.is_url("gs://bucket/x")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("A first sentence here.\nAnd a second one.\nThen a third." for _ in range(20)) + "\n")
    size = corpus.stat().st_size
    for pattern in (f"file://{corpus}", f"file://{tmp_path}/corp*.txt"):
        assert reader.list_inputs([pattern]) == [reader.InputFile(str(corpus), size, reader.check_input_files([corpus])[0])]
    with pytest.raises(AlbertInputError, match=r"^/nowhere/x\*\.txt: no input file matches this pattern$"):
        reader.list_inputs(["file:///nowhere/x*.txt"])
    with ranges.open_input(f"file://{corpus}") as f:  # what the Beam runner's workers read with
        assert f.read(7) == b"A first"
    with ranges.range_file(f"file://{corpus}", 0, size, size) as (local, _):
        assert local == str(corpus)
    kwargs = dict(max_seq_length=32, max_predictions_per_seq=5, num_shards=1)
    first = create_pretraining_data([corpus], spm_model_path, tmp_path / "out", **kwargs)
    stamp = os.stat(tmp_path / "out" / "manifest.json").st_mtime_ns
    # The same files named by file:// URLs: the same run, so up to date.
    again = create_pretraining_data([f"file://{corpus}"], f"file://{spm_model_path}", f"file://{tmp_path}/out", **kwargs)
    assert again == first and os.stat(tmp_path / "out" / "manifest.json").st_mtime_ns == stamp


def test_up_to_date_reuses_only_the_same_run_and_guards_other_outputs(tmp_path):
    assert not up_to_date(tmp_path / "new", None, {"a": 1}, False, False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    manifest = {"fingerprint": {"a": 1}}
    assert up_to_date(out, manifest, {"a": 1}, False, False)
    for existing, fingerprint, nondeterministic, message in (
        (manifest, {"a": 2}, False, "made with other inputs"),
        (manifest, {"a": 1}, True, "made with other inputs"),  # unseeded records are never reused
        (None, {"a": 1}, False, "not a create-data output"),
    ):
        with pytest.raises(AlbertInputError, match=f"out: already exists and is {message}"):
            up_to_date(out, existing, fingerprint, False, nondeterministic)
    assert not up_to_date(out, manifest, {"a": 2}, True, False)  # overwrite: the run may replace it
    (tmp_path / "file").write_text("x")
    with pytest.raises(AlbertInputError, match="file: exists and is not a directory"):
        up_to_date(tmp_path / "file", None, {}, True, False)


def test_a_model_without_albert_ids_is_rejected(tmp_path, embedded_corpus_path):
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(input=os.fspath(embedded_corpus_path), model_prefix=os.fspath(tmp_path / "plain"),
                                             vocab_size=300, minloglevel=2)
    with pytest.raises(AlbertInputError, match=r"plain.model: id 0 is '<unk>', ALBERT needs '<pad>'"):
        create_pretraining_data([embedded_corpus_path], tmp_path / "plain.model", tmp_path / "never")


def test_killed_run_leaves_no_final_shard_and_rerun_recovers(tmp_path, embedded_corpus_path, spm_model_path):
    out = tmp_path / "killed"
    partial = tmp_path / ".killed.partial"
    code = (
        "import sys\n"
        "from albert_keras.data.create import create_pretraining_data\n"
        "create_pretraining_data([sys.argv[1]], sys.argv[2], sys.argv[3], max_seq_length=32,\n"
        "                        max_predictions_per_seq=5, dupe_factor=200, num_shards=2)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    process = subprocess.Popen([sys.executable, "-c", code, embedded_corpus_path, spm_model_path, out], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # Wait until shards are being written (temporary files exist and have grown).
    while time.monotonic() < deadline:
        written = glob.glob(os.path.join(partial, ".part-*.tmp"))
        if written and sum(os.path.getsize(f) for f in written) > 200_000:
            break
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("no shard was being written")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    finals = [f for f in glob.glob(os.path.join(tmp_path, "**", "part-*"), recursive=True)]
    assert finals == []  # only hidden ".part-*.tmp" files under the hidden partial directory
    # A new run cleans up after the killed one and completes.
    manifest = create_pretraining_data([embedded_corpus_path], spm_model_path, out, max_seq_length=32,
                                       max_predictions_per_seq=5, num_shards=2)
    assert len(parse_records(out, 32, 5)["input_ids"]) == manifest["statistics"]["instances"]
    assert sorted(os.listdir(tmp_path)) == ["killed"]
