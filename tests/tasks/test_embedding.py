"""The sentence-embedding (SimCSE) task: file formats, batches, and training that raises Spearman."""

import json
import random

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError

TINY = dict(
    vocab_size=1000, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
)


@pytest.fixture(scope="module")
def sentences():
    from albert_keras.corpus import embedded_corpus

    return [sentence for document in embedded_corpus() for sentence in document]


@pytest.fixture(scope="module")
def init_dir(spm_model_path, tmp_path_factory):
    """A randomly initialized tiny encoder (dropout 0.1) with the shared SentencePiece model."""
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import save_pretrained

    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("simcse") / "init")
    save_pretrained(AlbertEncoder(AlbertConfig(**TINY)), path, spm_model=str(spm_model_path))
    return path


def rule_made_sts(sentences, count=120, seed=0):
    """STS-B-format rows scored by a rule: a sentence against itself with a fraction f of its words
    kept (score 5f, f = 0.8, 0.5, 0.25) and against an unrelated sentence (score 0)."""
    rng = random.Random(seed)
    pool = [s for s in sentences if len(s.split()) >= 8][-count:]
    rows = ["index\tsentence1\tsentence2\tscore"]
    for i, sentence in enumerate(pool):
        words = sentence.split()
        for fraction in (0.8, 0.5, 0.25):
            kept = sorted(rng.sample(range(len(words)), max(1, round(len(words) * fraction))))
            rows.append(f"{i}\t{sentence}\t{' '.join(words[j] for j in kept)}\t{5 * fraction}")
        rows.append(f"{i}\t{sentence}\t{pool[(i + 7) % len(pool)]}\t0")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def files(sentences, tmp_path_factory):
    root = tmp_path_factory.mktemp("simcse_files")
    train = root / "sentences.txt"
    train.write_text("\n".join(sentences[:640]) + "\n")
    sts = root / "sts-dev.tsv"
    sts.write_text(rule_made_sts(sentences))
    return {"train": str(train), "sts": str(sts), "root": root}


def test_read_every_format(tmp_path):
    from albert_keras.tasks.embedding import read_embedding_file

    cases = {
        "plain.txt": ("One sentence.\n\nAnother one.\n", "unsupervised", [("One sentence.",), ("Another one.",)]),
        "pairs.tsv": ("a dog\ta puppy\nrain\twet weather\n", "pairs", [("a dog", "a puppy"), ("rain", "wet weather")]),
        "triplets.tsv": ("a dog\ta puppy\ta car\n", "triplets", [("a dog", "a puppy", "a car")]),
        "sts.tsv": ("genre\tsentence1\tsentence2\tscore\nx\ta dog\ta puppy\t4.2\n", "scored", [("a dog", "a puppy")]),
        "pairs.jsonl": (json.dumps({"anchor": "a dog", "positive": "a puppy", "negative": "a car"}) + "\n",
                        "triplets", [("a dog", "a puppy", "a car")]),
        "sts.jsonl": (json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n", "scored", [("a", "b")]),
    }
    for name, (text, kind, texts) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        examples, found = read_embedding_file(path)
        assert found == kind and [e.texts for e in examples] == texts, name
    examples, _ = read_embedding_file(tmp_path / "sts.tsv")
    assert examples[0].score == 4.2 and examples[0].line == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("\n\n", "empty file"),
        ("a\tb\nc\td\te\n", "line 2: a triplets example in a file of pairs examples"),
        ("sentence1\tsentence2\tscore\na\tb\thigh\n", "line 2: score 'high' is not a number"),
        ('{"anchor": "a", "positive": "b"}\n{"anchor": "a"\n', "line 2: not valid JSON"),
        ('{"anchor": "a", "negative": "b"}\n', "line 1: needs 'anchor' and 'positive'"),
    ],
)
def test_read_errors_name_the_file_and_line(tmp_path, text, message):
    from albert_keras.tasks.embedding import read_embedding_file

    path = tmp_path / ("bad.jsonl" if text.startswith("{") else "bad.tsv")
    path.write_text(text)
    with pytest.raises(AlbertInputError, match="bad.*" + message.replace("(", r"\(")):
        read_embedding_file(path)


def test_batches_hold_each_example_s_texts(init_dir, tmp_path):
    from albert_keras.tasks.registry import get_task

    task = get_task("sentence-embedding")
    (tmp_path / "s.txt").write_text("A dog runs.\nThe cat sleeps on the mat.\nRain.\n")
    (tmp_path / "t.tsv").write_text("a dog\ta puppy\ta car\nrain\twet weather\tsun\n")
    model = task.build_model(init_dir, {}, {"max_seq_length": 16})
    unsupervised = next(iter(task.dataset(model, task.read(tmp_path / "s.txt", {}), batch_size=2)))
    assert unsupervised["token_ids"].shape[:2] == (2, 2)
    ids = unsupervised["token_ids"].numpy()
    np.testing.assert_array_equal(ids[:, 0], ids[:, 1])  # the same sentence twice: dropout is the noise
    triplets = next(iter(task.dataset(model, task.read(tmp_path / "t.tsv", {}), batch_size=2)))
    assert triplets["token_ids"].shape[:2] == (2, 3)


def test_simcse_through_finetune_raises_spearman_above_the_untrained_embeddings(init_dir, files):
    """Done when: unsupervised SimCSE on the embedded corpus beats the untrained model's Spearman on a
    rule-made similarity set; `albert-keras evaluate` on the result reports the same number."""
    from albert_keras.cli import main
    from albert_keras.tasks.registry import get_task

    task = get_task("sentence-embedding")
    sts = task.read(files["sts"], {})
    before = task.evaluate(task.build_model(init_dir, {}, {"max_seq_length": 32}), sts, {})["spearman"]
    output = files["root"] / "run"
    code = main(["finetune", "--from-scratch",
                 "--task", "sentence-embedding", "--init", init_dir, "--train", files["train"],
                 "--validation", files["sts"], "--output", str(output), "--epochs", "1", "--batch-size", "32",
                 "--learning-rate", "1e-3", "--warmup", "0", "--max-seq-length", "32", "--verbose", "0"])
    assert code == 0
    summary = json.loads((output / "summary.json").read_text())
    after = summary["best"]["metrics"]["spearman"]
    print(f"rule-made STS Spearman: untrained {before:.4f}, after SimCSE {after:.4f}")  # shown with pytest -s
    assert after > before + 0.05, (before, after)
    assert summary["train"]["contrastive_accuracy"] > 0.5  # far above 1/32 chance

    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", "--model", str(output / "pretrained"), "--data", files["sts"]]) == 0
    assert json.loads(out.getvalue())["spearman"] == pytest.approx(after, abs=1e-4)
    # `albert-keras predict` on sentences writes each one's embedding.
    (files["root"] / "few.txt").write_text("The for statement loops.\nImport loads a module.\n")
    predictions = files["root"] / "few.jsonl"
    assert main(["predict", "--model", str(output / "pretrained"), "--input", str(files["root"] / "few.txt"),
                 "--output", str(predictions)]) == 0
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["text"] for r in records] == ["The for statement loops.", "Import loads a module."]
    assert all(np.linalg.norm(r["embedding"]) == pytest.approx(1.0, abs=1e-5) for r in records)


def test_supervised_triplets_in_one_call(init_dir, sentences, files):
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.tasks.embedding import train_sentence_embeddings

    rows = []
    for i, sentence in enumerate(sentences[:64]):
        words = sentence.split()
        rows.append(f"{sentence}\t{' '.join(words[: max(1, len(words) - 2)])}\t{sentences[i + 100]}")
    triplets = files["root"] / "triplets.tsv"
    triplets.write_text("\n".join(rows) + "\n")
    output = files["root"] / "supervised"
    report = train_sentence_embeddings(init_dir, triplets, output, batch_size=16, learning_rate=1e-3,
                                       sequence_length=32)
    assert report["output_dir"] == str(output)
    model = load_pretrained(output)
    assert type(model).__name__ == "AlbertSentenceEncoder" and model.temperature == 0.05

    # The InfoNCE loss on the triplets (in order, no dropout) is lower after the epoch than before it.
    from albert_keras.modeling.sentence_encoder import AlbertSentenceEncoder
    from albert_keras.tasks.embedding import SentenceEmbeddingTask

    task = SentenceEmbeddingTask()
    data = task.read(str(triplets), {"sequence_length": 32})

    def triplet_loss(directory):
        encoder = AlbertSentenceEncoder.from_pretrained(directory, sequence_length=32)
        encoder.compile()
        return encoder.evaluate(task.dataset(encoder, data, 16), verbose=0, return_dict=True)["loss"]

    before, after = triplet_loss(init_dir), triplet_loss(output)
    assert after < before, (before, after)
