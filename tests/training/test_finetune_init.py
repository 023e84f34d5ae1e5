"""`finetune`'s starting point: a path that is not a pretrained directory, whose vocabulary and
config disagree, or that holds no trained weights (without --from-scratch) is refused in one line
before anything is written; what was restored from it
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


def _finetune(model, train, output, *extra):
    return main(["finetune", "--task", "intent-slots", "--model", str(model), "--train", train,
                 "--output", str(output), *ONE_STEP, *extra])


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
    assert _finetune(finetune_init_dir, train_file, tmp_path / "first", "--from-scratch") == 0
    err = capsys.readouterr().err
    with open(tmp_path / "first" / "summary.json") as f:
        first = json.load(f)["init"]
    # The bare encoder's directory: every encoder variable loads; the two heads (kernel + bias each) are new.
    assert first["encoder_restored"] > 10 and first["head_fresh"] == 4 and first["head_restored"] == 0
    assert f"{first['encoder_restored']} encoder variables restored; 4 head variables initialized fresh" in err
    # From the fine-tuned directory (same intents and tags), the heads load too; it is trained: no --from-scratch.
    assert _finetune(tmp_path / "first" / "pretrained", train_file, tmp_path / "second") == 0
    assert "4 head variables restored" in capsys.readouterr().err
    with open(tmp_path / "second" / "summary.json") as f:
        second = json.load(f)["init"]
    assert second == {**first, "dir": os.path.join(str(tmp_path / "first"), "pretrained"), "head_restored": 4,
                      "head_fresh": 0}


def test_an_untrained_directory_is_refused_unless_from_scratch(finetune_init_dir, tmp_path, train_file, capsys):
    capsys.readouterr()
    assert _finetune(finetune_init_dir, train_file, tmp_path / "run") == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert f"--model {finetune_init_dir}: holds no trained weights (every LayerNorm gamma" in error
    assert "initializer_range 0.1" in error and "give --from-scratch" in error
    assert not (tmp_path / "run").exists()


def test_trained_directories_pass_by_their_record_or_their_weights(finetune_init_dir, tiny_config_path,
                                                                   small_records, tmp_path):
    from albert_keras.errors import AlbertInputError
    from albert_keras.modeling.pretrained import untrained_weights
    from albert_keras.training.finetune import check_init_directory
    from albert_keras.training.pretrain import pretrain

    with pytest.raises(AlbertInputError, match="holds no trained weights"):
        check_init_directory(finetune_init_dir)
    check_init_directory(finetune_init_dir, from_scratch=True)
    # Two pretraining steps: model.json records them, and the weights alone tell too.
    pretrain(tiny_config_path, small_records, str(tmp_path / "run"), global_batch_size=8, num_train_steps=2,
             num_warmup_steps=0, learning_rate=1e-3, optimizer="adamw", verbose=0)
    trained = tmp_path / "run" / "pretrained"
    with open(trained / "model.json") as f:
        description = json.load(f)
    assert description["trained_steps"] == 2
    check_init_directory(trained)
    del description["trained_steps"]
    with open(trained / "model.json", "w") as f:
        json.dump(description, f)
    assert untrained_weights(trained) is None
    # The same model saved as built (initializer_range 0.02 here): no record, untrained by its weights.
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained
    from albert_keras.modeling.pretrainer import AlbertPretrainer

    fresh = save_pretrained(AlbertPretrainer(AlbertEncoder(AlbertConfig.resolve(tiny_config_path))), tmp_path / "fresh")
    assert "trained_steps" not in json.load(open(tmp_path / "fresh" / "model.json"))
    assert "initializer_range 0.02" in untrained_weights(fresh)
