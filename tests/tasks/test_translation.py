"""`--task translation`: pair readers, bad input, the smoothed loss, fine-tuning end to end with BLEU."""

import json
import os

import keras
import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.registry import get_task
from albert_keras.tasks.keras_losses import SmoothedTokenCrossentropy
from albert_keras.tasks.translation import read_pairs

DET = ["the", "a", "this", "that"]
ADJ = ["big", "small", "red", "blue", "old", "young", "happy", "sad"]
NOUN = ["cat", "dog", "bird", "fish", "man", "woman", "child", "horse"]
VERB = ["sees", "likes", "chases", "finds", "helps", "hears"]
WORDS = DET + ADJ + NOUN + VERB + ["."]


def reorder_pair(rng):
    """A made-up translation: noun phrases reversed, the verb moved to the end (SVO -> SOV)."""

    def phrase():
        adjective = [ADJ[rng.integers(len(ADJ))]] if rng.random() < 0.5 else []
        return [DET[rng.integers(len(DET))]] + adjective + [NOUN[rng.integers(len(NOUN))]]

    subject, obj, verb = phrase(), phrase(), VERB[rng.integers(len(VERB))]
    return " ".join(subject + [verb] + obj + ["."]), " ".join(subject[::-1] + obj[::-1] + [verb, "."])


def write_pairs(path, pairs):
    with open(path, "w") as f:
        f.write("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in pairs))
    return str(path)


@pytest.fixture(scope="module")
def reorder_dir(tmp_path_factory):
    """A randomly initialized tiny ALBERT directory with a whole-word WordPiece vocabulary."""
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import save_pretrained

    root = tmp_path_factory.mktemp("translation")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    config = AlbertConfig(vocab_size=5 + len(WORDS), embedding_size=32, hidden_size=64, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=128, max_position_embeddings=32,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1)
    keras.utils.set_random_seed(0)
    save_pretrained(AlbertEncoder(config), root / "random", vocabulary=str(vocab))
    rng = np.random.default_rng(0)
    pairs = [reorder_pair(rng) for _ in range(360)]
    return {"init": str(root / "random"), "train": write_pairs(root / "train.tsv", pairs[:300]),
            "test": write_pairs(root / "test.tsv", pairs[300:]), "root": root}


def test_reads_tsv_csv_and_jsonl_dialogue_turns(tmp_path):
    (tmp_path / "a.tsv").write_text("source\ttarget\nthe cat .\tcat the .\n")
    (tmp_path / "a.csv").write_text('src,tgt\n"a dog, big .",dog a .\n')
    (tmp_path / "a.jsonl").write_text(json.dumps({"source": ["hello .", " how are you ?"], "target": "fine ."}) + "\n")
    assert [(e.source, e.target, e.line) for e in read_pairs(tmp_path / "a.tsv", {})] == [("the cat .", "cat the .", 2)]
    csv = read_pairs(tmp_path / "a.csv", {"text_column": "src", "label_column": "tgt"})
    assert csv[0].source == "a dog, big ." and csv[0].target == "dog a ."
    assert read_pairs(tmp_path / "a.jsonl", {})[0].source == "hello . | how are you ?"
    assert read_pairs(tmp_path / "a.jsonl", {"turn_separator": " [turn] "})[0].source == "hello . [turn] how are you ?"
    unlabelled = read_pairs(tmp_path / "a.tsv", {}, labelled=False)
    assert unlabelled[0].target is None


@pytest.mark.parametrize("name, text, message", [
    ("empty.tsv", "source\ttarget\nthe cat .\tcat the .\n \tdog .\n", "empty.tsv:3: empty source"),
    ("short.tsv", "source\ttarget\nthe cat .\n", "short.tsv:2: no column 'target'"),
    ("blank.tsv", "source\ttarget\nthe cat .\t \n", "blank.tsv:2: missing target"),
    ("nofield.jsonl", '{"source": "the cat ."}\n', "nofield.jsonl:1: no field 'target'"),
    ("turns.jsonl", '{"source": [], "target": "x"}\n', "turns.jsonl:1: empty source"),
])
def test_bad_pairs_are_one_line_naming_file_and_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(AlbertInputError) as error:
        read_pairs(tmp_path / name, {})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_smoothed_loss_is_the_formula_and_plain_crossentropy_without_smoothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    labels = rng.integers(0, 7, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    true = np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    expected = ((-(0.9 * true) - 0.1 * log_p.mean(-1)) * weights).sum() / weights.sum()
    got = float(SmoothedTokenCrossentropy(0.1)(labels, logits, sample_weight=weights))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    np.testing.assert_allclose(float(SmoothedTokenCrossentropy(0.0)(labels, logits, sample_weight=weights)),
                               float(plain(labels, logits, sample_weight=weights)), rtol=1e-5)


def test_long_targets_are_counted_truncated_and_said_once(reorder_dir, tmp_path, capsys):
    task = get_task("translation")
    path = write_pairs(tmp_path / "long.tsv", [("the cat sees a dog .", "cat the dog a sees ."),
                                               ("a cat .", " ".join(["cat"] * 20))])
    data = task.read(path, {})
    model = task.build_model(reorder_dir["init"], data.metadata, {"max_target_length": 8})
    first = next(iter(task.dataset(model, data, 2)))
    next(iter(task.dataset(model, data, 2)))
    said = [line for line in capsys.readouterr().err.splitlines() if "longer than" in line]
    assert said == [f"{path}: 1 of 2 targets are longer than 7 pieces (--max-target-length 8); truncated"]
    x, labels, weights = first
    assert x["decoder_token_ids"].shape == (2, 8) and labels.shape == (2, 8)
    assert int(labels[1, -1]) == 3 and float(weights[1, -1]) == 1.0  # truncated, still ends with [SEP]


def test_finetune_learns_the_reordering_then_evaluate_and_predict(reorder_dir, tmp_path):
    from albert_keras.training.finetune import finetune
    from albert_keras.training.finetune_commands import evaluate_directory
    from albert_keras.training.finetune_commands import predict_directory

    summary = finetune("translation", reorder_dir["init"], reorder_dir["train"], None, tmp_path / "run",
                       options={"max_target_length": 12, "max_seq_length": 16, "from_scratch": True},
                       num_train_steps=200,
                       learning_rate=2e-3, global_batch_size=32, seed=0, verbose=0)
    metrics = evaluate_directory(summary["pretrained_dir"], reorder_dir["test"])
    assert metrics["bleu"] > 90 and metrics["chrf"] > 90, metrics
    beam = evaluate_directory(summary["pretrained_dir"], reorder_dir["test"],
                              args=_args(num_beams=3, length_penalty=1.0))
    assert beam["bleu"] > 90, beam
    output = tmp_path / "predictions.jsonl"
    assert predict_directory(summary["pretrained_dir"], reorder_dir["test"], str(output)) == 60
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert records[0]["line"] == 2 and records[0]["source"].endswith(".")
    right = sum(r["prediction"] == t for r, (_, t) in zip(records, _pairs(reorder_dir["test"])))
    assert right >= 54, right


def _pairs(path):
    with open(path) as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f.readlines()[1:]]


def _args(**values):
    import argparse

    return argparse.Namespace(**values)


def test_chinese_targets_score_with_the_zh_tokenizer(tmp_path):
    path = tmp_path / "zh.jsonl"
    path.write_text("".join(json.dumps({"source": "i love beijing", "target": "我爱北京"}, ensure_ascii=False) + "\n"
                            for _ in range(2)), encoding="utf-8")
    assert get_task("translation").read(str(path), {}).metadata["bleu_tokenize"] == "zh"
    assert get_task("translation").read(str(tmp_path / "zh.jsonl"), {}, metadata={"bleu_tokenize": "13a"}).metadata[
        "bleu_tokenize"] == "13a"
    assert os.path.isfile(path)
