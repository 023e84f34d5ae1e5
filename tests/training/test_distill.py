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


def test_student_init_from_the_teacher_truncates_each_weight(teacher, tmp_path, capsys):
    """`student_init="teacher"`: every student weight is the teacher's leading slice (stated rule);
    a student larger on some axis, or a pretrained-directory student, is refused in one line."""
    import numpy as np

    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.training.distill import truncate_weights

    summary = distill(teacher["dir"], teacher["student"], teacher["few"], teacher["dev"], tmp_path / "init",
                      student_init="teacher", alpha=1.0, epochs=1, learning_rate=1e-12, verbose=False)
    assert summary["student"]["init"] == "teacher"
    source, student = load_pretrained(teacher["dir"]), load_pretrained(summary["pretrained_dir"])
    weights = {w.path: w.numpy() for w in source.weights}
    assert len(student.weights) == len(source.weights) > 20
    for weight in student.weights:
        want = weights[weight.path][tuple(slice(0, n) for n in weight.shape)]
        # One Adam step at lr 1e-12 moves nothing visible: the saved student is the truncation.
        np.testing.assert_allclose(weight.numpy(), want, atol=1e-6, err_msg=weight.path)
    assert any(w.shape != weights[w.path].shape for w in student.weights)  # truncated, not copied
    with pytest.raises(AlbertInputError, match=r"the student must be no larger on any axis"):
        truncate_weights(student, source)
    output = tmp_path / "refused"
    code = main(["distill", "--teacher", teacher["dir"], "--student", teacher["dir"], "--student-init", "teacher",
                 "--train", teacher["few"], "--validation", teacher["dev"], "--output", str(output), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "pretrained directory" in err and len(err.splitlines()) == 1, err
    assert not output.exists()


def test_pair_teacher_distils_with_tab_separated_transfer_pairs(finetune_init_dir, tmp_path, capsys):
    """A pair classifier (the label is only in text B) teaches a student through `a<TAB>b` transfer
    lines; a line without a tab is one line naming it, and nothing is written."""
    from tests.finetune_data import pair_rows

    train = write_csv(tmp_path / "train.csv", ["q", "a", "label"], pair_rows(96, seed=5))
    dev = write_csv(tmp_path / "dev.csv", ["q", "a", "label"], pair_rows(64, seed=6))
    # Seed 3: the tiny random model learns the pair rule for some seeds only (test_finetune_commands).
    summary = finetune("classification", finetune_init_dir, train, dev, tmp_path / "teacher",
                       options={"text_column": "q", "pair_column": "a", "max_seq_length": 16, "from_scratch": True}, epochs=6,
                       global_batch_size=16, learning_rate=3e-3, seed=3, verbose=0)
    assert summary["best"]["metrics"]["accuracy"] >= 0.85
    few = write_csv(tmp_path / "few.csv", ["q", "a", "label"], pair_rows(8, seed=8))
    transfer = tmp_path / "transfer.txt"
    transfer.write_text("".join(f"{a}\t{b}\n" for a, b, _ in pair_rows(300, seed=9)))
    distilled = distill(summary["pretrained_dir"], finetune_init_dir, few, dev, tmp_path / "distilled",
                        transfer=str(transfer), epochs=12, learning_rate=3e-3, verbose=False)
    assert distilled["settings"]["transfer_texts"] == 300
    # Chance is 0.5; the teacher's labels on 300 pairs teach the rule that 8 labels alone hardly do.
    assert distilled["student"]["accuracy"] >= 0.8, distilled
    bad = tmp_path / "bad.txt"
    bad.write_text("what is the cat ?\tit is good .\nno tab here\n")
    output = tmp_path / "refused"
    capsys.readouterr()  # finetune's and distill's progress lines
    code = main(["distill", "--teacher", summary["pretrained_dir"], "--student", finetune_init_dir, "--train", few,
                 "--validation", dev, "--transfer", str(bad), "--output", str(output), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "bad.txt: line 2: no tab" in err and len(err.splitlines()) == 1, err
    assert not output.exists()
