"""`distill`: a student taught by a fine-tuned teacher's soft targets beats the same student taught
by the few labels alone; bad input is one line and nothing is written."""

import json
import os
import random
import shutil

import pytest

from albert_keras.cli import main
from albert_keras.errors import AlbertInputError
from albert_keras.training.distill import distill
from albert_keras.training.finetune import finetune
from tests.finetune_data import NEGATIVE
from tests.finetune_data import NOUNS
from tests.finetune_data import POSITIVE
from tests.finetune_data import sentiment_rows
from tests.finetune_data import write_csv

# The few labelled examples use only these keywords: a student taught by them alone has never seen
# the other 3 + 3, while the teacher (trained on all 10) labels transfer texts that hold them.
SEEN = POSITIVE[:2] + NEGATIVE[:2]


@pytest.fixture(scope="module")
def teacher(finetune_init_dir, tmp_path_factory):
    """A classifier fine-tuned on 96 rule-made sentences over all 10 keywords (the finetune recipe)."""
    root = tmp_path_factory.mktemp("distill")
    train, dev = root / "train.csv", root / "dev.csv"
    write_csv(train, ("sentence", "label"), sentiment_rows(96, seed=0))
    write_csv(dev, ("sentence", "label"), sentiment_rows(200, seed=2))
    summary = finetune("classification", finetune_init_dir, train, dev, root / "teacher",
                       options={"text_column": "sentence", "max_seq_length": 16, "from_scratch": True}, epochs=4,
                       global_batch_size=8, learning_rate=1e-3, verbose=0)
    assert summary["best"]["metrics"]["accuracy"] >= 0.95  # the teacher knows every keyword
    rng = random.Random(5)
    few = root / "few.csv"
    write_csv(few, ("sentence", "label"), [
        (f"a {word} {rng.choice(NOUNS)}", "positive" if word in POSITIVE else "negative") for word in SEEN for _ in range(2)
    ])
    transfer = root / "transfer.txt"
    transfer.write_text("\n".join(text for text, _ in sentiment_rows(400, seed=7)) + "\n")
    student = root / "student.json"
    student.write_text(json.dumps({
        "vocab_size": 1000, "embedding_size": 16, "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
        "num_hidden_groups": 1, "inner_group_num": 1, "type_vocab_size": 2, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.1,
    }))
    return {"dir": summary["pretrained_dir"], "few": str(few), "dev": str(dev), "transfer": str(transfer),
            "student": str(student), "root": root}


def test_distilled_student_beats_the_same_student_on_labels_alone(teacher, tmp_path):
    labels_only = distill(teacher["dir"], teacher["student"], teacher["few"], teacher["dev"], tmp_path / "labels",
                          alpha=1.0, epochs=60, verbose=False)
    distilled = distill(teacher["dir"], teacher["student"], teacher["few"], teacher["dev"], tmp_path / "distilled",
                        transfer=teacher["transfer"], temperature=2.0, alpha=0.5, epochs=15, verbose=False)
    assert labels_only["settings"]["transfer_texts"] == 0 and distilled["settings"]["transfer_texts"] == 400
    assert distilled["student"]["parameters"] < distilled["teacher"]["parameters"]
    # Labels alone teach 4 of the 10 keywords (about 0.7); the teacher's soft targets teach all.
    assert distilled["student"]["accuracy"] >= 0.95 * distilled["teacher"]["accuracy"]
    assert distilled["student"]["accuracy"] >= labels_only["student"]["accuracy"] + 0.1, (distilled, labels_only)
    # The result is a fine-tuned directory with the teacher's labels: `evaluate` scores it as it is.
    code = main(["evaluate", "--model", distilled["pretrained_dir"], "--data", teacher["dev"]])
    assert code == 0
    with open(os.path.join(distilled["pretrained_dir"], "finetune.json")) as f:
        record = json.load(f)
    assert record["task"] == "classification" and record["metadata"]["labels"] == ["negative", "positive"]


def test_bad_input_is_one_line_and_nothing_written(teacher, spm_model_path, tmp_path, capsys, embedded_corpus_path):
    from albert_keras.tokenization import train_sentencepiece

    # A student directory with another vocabulary.
    other_vocab = train_sentencepiece(embedded_corpus_path, tmp_path / "other" / "spiece.model", vocab_size=500)
    student_dir = tmp_path / "student_dir"
    shutil.copytree(teacher["dir"], student_dir)
    shutil.copy(other_vocab, student_dir / "spiece.model")
    output = tmp_path / "out"
    code = main(["distill", "--teacher", teacher["dir"], "--student", str(student_dir), "--train", teacher["few"],
                 "--validation", teacher["dev"], "--output", str(output), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "differs from the teacher's" in err and len(err.splitlines()) == 1, err
    assert not output.exists()
    # A teacher of a task the student cannot take.
    regression_teacher = tmp_path / "regression_teacher"
    shutil.copytree(teacher["dir"], regression_teacher)
    record = json.loads((regression_teacher / "finetune.json").read_text())
    (regression_teacher / "finetune.json").write_text(json.dumps({**record, "task": "regression"}))
    with pytest.raises(AlbertInputError, match="'regression' model; distill takes classification teachers"):
        distill(str(regression_teacher), teacher["student"], teacher["few"], teacher["dev"], output)
    with pytest.raises(AlbertInputError, match="--alpha"):
        distill(teacher["dir"], teacher["student"], teacher["few"], teacher["dev"], output, alpha=1.5)
    assert not output.exists()
