import json
import os
import subprocess
import sys

import numpy as np

from albert_keras.cli import build_parser
from tests.data.conftest import parse_records


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return subprocess.run([sys.executable, "-m", "albert_keras", *map(os.fspath, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_parser_maps_flags_to_the_python_function():
    args = build_parser().parse_args([
        "create-data", "--input", "a.txt", "b.txt", "--vocab", "m.model", "--output", "tfrecords/x",
        "--max-seq-length", "64", "--max-predictions-per-seq", "8", "--dupe-factor", "3", "--ngram", "2",
        "--workers", "2", "--seed", "9", "--gzip", "--official-random-negatives",
    ])
    assert args.input == ["a.txt", "b.txt"] and args.max_seq_length == 64 and args.max_predictions == 8
    assert args.dupe_factor == 3 and args.ngram == 2 and args.workers == 2 and args.seed == 9
    assert args.gzip and args.official_random_negatives and not args.official_random_replacement
    assert args.func.__module__ == "albert_keras.data.commands"


def test_create_data_end_to_end_and_one_line_errors(tmp_path, spm_model_path):
    result = _cli("create-data", "--embedded-corpus", "--vocab", spm_model_path, "--output", "tfrecords/demo",
                  "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--workers", "2", "--num-shards", "2",
                  "--seed", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "documents" in result.stderr and "MB/s" in result.stderr  # the progress bar
    manifest = json.load(open(tmp_path / "tfrecords/demo/manifest.json"))
    assert summary["instances"] == manifest["statistics"]["instances"] > 0
    assert manifest["settings"]["seed"] == 3 and manifest["settings"]["max_predictions_per_seq"] == 5
    parsed = parse_records(tmp_path / "tfrecords/demo", 32, 5)
    assert len(parsed["input_ids"]) == summary["instances"]
    assert np.all(parsed["input_ids"][:, 0] == 2)

    # Same command again: up to date, nothing rewritten.
    again = _cli("create-data", "--embedded-corpus", "--vocab", spm_model_path, "--output", "tfrecords/demo",
                 "--max-seq-length", "32", "--max-predictions-per-seq", "5", "--num-shards", "2", "--seed", "3", cwd=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stderr

    bad = _cli("create-data", "--input", "nope.txt", "--vocab", spm_model_path, "--output", "tfrecords/x",
               cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == "albert-keras create-data: error: nope.txt: input file not found"


def test_create_data_quiet_hides_the_progress_bar(tmp_path, spm_model_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join("A first sentence here.\nAnd a second one.\nThen a third." for _ in range(40)) + "\n")
    result = _cli("create-data", "--input", text, "--vocab", spm_model_path, "--output", "quiet", "--max-seq-length",
                  "32", "--num-shards", "1", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MB/s" not in result.stderr and json.loads(result.stdout.strip().splitlines()[-1])["instances"] > 0
