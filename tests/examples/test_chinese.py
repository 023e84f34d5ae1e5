"""examples/chinese.py end to end: a WordPiece vocabulary trained on made-up Chinese text, jieba
whole-word-masked records, a few pretraining steps, fine-tuning from raw Chinese text, a SavedModel
answering in a process that imports only tensorflow and tensorflow_text."""

import os

import pytest

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_chinese_example_end_to_end(tmp_path, capsys):
    pytest.importorskip("jieba")
    example = load_script(os.path.join(EXAMPLES, "chinese.py"), "example_chinese")
    result = example.main(["--output-dir", str(tmp_path)])
    out = capsys.readouterr().out

    # The records mask whole jieba words, and every stage ran through its command.
    assert result["whole_words_segmented"] > 1000
    for command in ("train-tokenizer --type wordpiece", "create-data", "--whole-word-segmenter jieba", "pretrain",
                    "--dynamic-masking", "export"):
        assert command in out
    vocab = open(os.path.join(tmp_path, "pretrain", "pretrained", "vocab.txt"), encoding="utf-8").read().split("\n")
    assert vocab[101:104] == ["[CLS]", "[SEP]", "[MASK]"] and "##影" in vocab

    # Learnable from raw Chinese text: clearly above the majority class of the validation data.
    _, dev_labels = example.made_up_reviews(64, seed=2)
    majority = max(dev_labels.count(label) for label in set(dev_labels)) / len(dev_labels)
    assert result["majority"] == majority and 0.55 < majority < 0.75
    assert result["accuracy"] >= majority + 0.2, result

    # The SavedModel answers raw Chinese text without this package, as Keras does.
    assert result["served_imports"] == []
    assert result["served_labels"] == result["keras_labels"] == ["positive", "negative"]
