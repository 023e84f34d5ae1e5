"""Tagging: CoNLL / JSONL readers, first-piece features, window splitting, a tiny tagger that learns."""

import json
import random

import numpy as np
import pytest

from albert_keras.corpus import embedded_corpus
from albert_keras.errors import AlbertInputError
from albert_keras.tasks import tagging
from albert_keras.tasks.tagging import TokenClassificationTask, make_features, read_conll, read_jsonl, read_tagged
from albert_keras.tokenization.vocabulary import load_vocabulary
from albert_keras.tokenization import load_sentencepiece

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
"""

# Rule-made entities: words the filler never contains (whole pieces of the test vocabulary).
PEOPLE = ["Capital", "Bytecode", "Docstring", "Brace"]
PLACES = ["Memory", "Symbol", "Interface", "Header"]


def rule_made_sentences(count, seed):
    rng = random.Random(seed)
    names = {w.lower() for w in PEOPLE + PLACES}
    words = [w for doc in embedded_corpus() for s in doc for w in s.split() if w.lower().strip('."(),') not in names]
    sentences = []
    for _ in range(count):
        tokens = [(w, "O") for w in rng.sample(words, rng.randint(4, 10))]
        for _ in range(rng.randint(1, 2)):
            at = rng.randint(0, len(tokens))
            if rng.random() < 0.5:
                entity = [(rng.choice(PEOPLE), "B-PER")] + [(rng.choice(PEOPLE), "I-PER")] * rng.randint(0, 1)
            else:
                entity = [(rng.choice(PLACES), "B-LOC")]
            tokens[at:at] = entity
        sentences.append(tokens)
    return sentences


def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} X {t}" for w, t in s) for s in sentences) + "\n")
    return str(path)


def test_read_conll(tmp_path):
    path = tmp_path / "eng.train"
    path.write_text(CONLL)
    sentences = read_conll(path)
    assert [s.words for s in sentences] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert sentences[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"] and sentences[0].where == f"{path}:3"
    assert read_conll(path, tag_column=2)[1].tags == ["B-NP", "I-NP"]
    assert read_conll(path, labelled=False)[2].tags is None
    sentences, labels = read_tagged(path)
    assert labels == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]


def test_reader_errors(tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("EU NNP B-NP B-ORG\nrejects O\n")
    with pytest.raises(AlbertInputError, match=r"bad\.conll:2: expected 4 columns, got 2"):
        read_conll(bad)
    unknown = tmp_path / "unknown.conll"
    unknown.write_text("EU B-ORG\nrejects X-ORG\n")
    with pytest.raises(AlbertInputError, match=r"unknown\.conll:1, tag 1: unknown tag 'X-ORG'"):
        read_tagged(unknown)
    bioes = tmp_path / "bioes.conll"
    bioes.write_text("EU S-ORG\nrejects O\n")
    with pytest.raises(AlbertInputError, match="unknown tag 'S-ORG'"):
        read_tagged(bioes)
    assert read_tagged(bioes, scheme="BIOES")[1] == ["O", "S-ORG"]
    dev = tmp_path / "dev.conll"
    dev.write_text("EU B-ORG\n\nParis B-LOC\n")
    with pytest.raises(AlbertInputError, match=r"dev\.conll:3: unknown tag 'B-LOC' \(not in the training"):
        read_tagged(dev, labels=["O", "B-ORG"])
    lines = tmp_path / "x.jsonl"
    lines.write_text('{"words": ["a", "b"], "tags": ["O", "B-PER"]}\n{"words": ["a"], "tags": ["O", "O"]}\n')
    with pytest.raises(AlbertInputError, match=r"x\.jsonl:2: 1 words but 2 tags"):
        read_jsonl(lines)
    lines.write_text('{"words": ["a", "b"], "tags": ["O", "B-PER"]}\n{"words": \n')
    with pytest.raises(AlbertInputError, match=r"x\.jsonl line 2: not valid JSON"):
        read_jsonl(lines)


def test_first_piece_features_and_window_splitting(spm_model_path):
    sp = load_vocabulary(spm_model_path)
    words = "The interpreter raises an exception when Bytecode is malformed".split() * 4
    tags = ["O"] * len(words)
    tags[6::9] = ["B-PER"] * len(tags[6::9])
    sentence = tagging.TaggedSentence(words, tags, "s:1")
    labels = ["O", "B-PER"]
    assert tagging.word_pieces(sp, ["\u0301", "ok"])[0] == [1]  # no pieces at all: one <unk>
    pieces = tagging.word_pieces(sp, words)
    assert sum(len(p) for p in pieces) > 30
    features = make_features(sp, [sentence], labels=labels, max_seq_length=16)
    assert len(features) > 2  # split into windows ...
    assert sum(len(f.word_positions) for f in features) == len(words)  # ... and no word lost
    covered = []
    for f in features:
        assert f.padding_mask.sum() <= 16 and f.token_ids[0] == 2
        assert f.weights.sum() == len(f.word_positions)  # only first pieces count
        for k, position in enumerate(f.word_positions):
            w = f.first_word + k
            covered.append(w)
            assert f.token_ids[position] == pieces[w][0]
            assert f.labels[position] == labels.index(tags[w])
    assert covered == list(range(len(words)))
    # Tags come back one per word, joined across the windows.
    logits = np.zeros((len(features), 16, 2))
    for f in features:
        for k, position in enumerate(f.word_positions):
            logits[features.index(f), position, f.labels[position]] = 1.0
    assert tagging.word_tags(features, logits, labels, 1) == [tags]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, spm_model_path):
    """A tiny tagger fine-tuned by `albert-keras finetune`, loaded back as `evaluate`/`predict` do."""
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.cli import main
    from albert_keras.training.finetune_commands import load_finetuned
    from tests.training.conftest import TINY_CONFIG

    tmp = tmp_path_factory.mktemp("tagging")
    train_path = write_conll(tmp / "train.conll", rule_made_sentences(300, seed=0))
    dev_path = write_conll(tmp / "dev.conll", rule_made_sentences(60, seed=1))
    keras.utils.set_random_seed(0)
    init_dir = str(tmp / "init")
    AlbertEncoder(AlbertConfig(**TINY_CONFIG)).save_pretrained(init_dir, spm_model=spm_model_path)
    run = tmp / "run"
    assert main(["finetune", "--from-scratch",
                 "--task", "token-classification", "--init", init_dir, "--train", train_path,
                 "--output", str(run), "--num-train-steps", "300", "--batch-size", "16", "--learning-rate", "2e-3",
                 "--warmup", "0.05", "--max-seq-length", "32", "--tag-column", "2", "--verbose", "0"]) == 0
    task, model, options, metadata = load_finetuned(run / "pretrained")
    assert metadata["labels"] == ["O", "B-LOC", "B-PER", "I-PER"] and list(model.labels) == metadata["labels"]
    return task, model, options, task.read(dev_path, options, metadata=metadata), str(run / "pretrained"), dev_path


def test_tiny_tagger_finds_rule_made_entities(tagger, tmp_path, capsys):
    from albert_keras.cli import main

    task, model, options, dev, model_dir, dev_path = tagger
    scores = task.evaluate(model, dev, options)  # the options `dev` was read with
    # Chance (random tags of the 4 labels) gives an entity F1 near 0.1.
    assert scores["f1"] > 0.7 and scores["f1_PER"] > 0.5 and scores["f1_LOC"] > 0.5, scores
    assert main(["predict", "--model", model_dir, "--input", dev_path, "--output", str(tmp_path / "p.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["words"] for r in records] == [s.words for s in dev.examples]
    assert [len(r["tags"]) for r in records] == [len(s.words) for s in dev.examples]
    capsys.readouterr()
    assert main(["evaluate", "--model", model_dir, "--data", dev_path]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == pytest.approx(scores)


def test_dataset_takes_the_task_options_as_an_argument(tagger):
    # The options reach `dataset` explicitly: nothing of them rides on the TaskData read with them.
    task, model, options, dev, _, _ = tagger
    assert options["max_seq_length"] == 32 and not any(key.endswith("options") for key in vars(dev))
    x, _, _ = next(iter(task.dataset(model, dev, 4, options=options)))
    assert x["token_ids"].shape == (4, 32)
    x, _, _ = next(iter(task.dataset(model, dev, 4)))  # no options: the default length, within the model's 64
    assert x["token_ids"].shape == (4, 64)
