"""`finetune`'s starting point: a path that is not a pretrained directory, or whose vocabulary and
config disagree, is refused in one line before anything is written; what was restored from it
(encoder, head) and what starts fresh is printed and recorded in `summary.json`."""

import json
import os
import shutil

import pytest

from albert_keras.cli import main
from tests.tasks import intent_slot_data as data

ONE_STEP = ["--num-train-steps", "1", "--batch-size", "4", "--max-seq-length", "16", "--quiet"]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return data.write_jsonl(tmp_path_factory.mktemp("init") / "train.jsonl", data.utterances(8))


def _finetune(model, train, output):
    return main(["finetune", "--task", "intent-slots", "--model", str(model), "--train", train,
                 "--output", str(output), *ONE_STEP])


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "nonexistent", r"--model .*nonexistent: no such directory"),
    (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", r"file\.txt: a file, not a pretrained directory"),
    (lambda d: (d / "empty").mkdir() or d / "empty",
     r"empty: not a pretrained directory \(no albert_config\.json and no encoder\.weights\.h5\); give one written"),
])
def test_a_path_that_is_not_a_pretrained_directory_says_so(tmp_path, train_file, capsys, make, message):
    import re

    model = make(tmp_path)
    capsys.readouterr()
    assert _finetune(model, train_file, tmp_path / "run") == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error
    assert not (tmp_path / "run").exists()


def test_a_vocabulary_of_another_model_is_refused(finetune_init_dir, embedded_corpus_path, tmp_path, train_file,
                                                  capsys):
    from albert_keras.tokenization import train_sentencepiece

    mixed = tmp_path / "mixed"
    shutil.copytree(finetune_init_dir, mixed)
    train_sentencepiece(embedded_corpus_path, mixed / "spiece.model", vocab_size=600)
    capsys.readouterr()
    assert _finetune(mixed, train_file, tmp_path / "run") == 2
    error = capsys.readouterr().err
    assert "the vocabulary spiece.model has 600 tokens but albert_config.json says vocab_size 1000" in error
    assert not (tmp_path / "run").exists()


def test_restored_and_fresh_variables_are_reported(finetune_init_dir, tmp_path, train_file, capsys):
    capsys.readouterr()
    assert _finetune(finetune_init_dir, train_file, tmp_path / "first") == 0
    err = capsys.readouterr().err
    with open(tmp_path / "first" / "summary.json") as f:
        first = json.load(f)["init"]
    # The bare encoder's directory: every encoder variable loads; the two heads (kernel + bias each) are new.
    assert first["encoder_restored"] > 10 and first["head_fresh"] == 4 and first["head_restored"] == 0
    assert f"{first['encoder_restored']} encoder variables restored; 4 head variables initialized fresh" in err
    # From the fine-tuned directory (same intents and tags), the heads load too.
    assert _finetune(tmp_path / "first" / "pretrained", train_file, tmp_path / "second") == 0
    assert "4 head variables restored" in capsys.readouterr().err
    with open(tmp_path / "second" / "summary.json") as f:
        second = json.load(f)["init"]
    assert second == {**first, "dir": os.path.join(str(tmp_path / "first"), "pretrained"), "head_restored": 4,
                      "head_fresh": 0}
