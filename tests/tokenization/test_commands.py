import argparse
import os
import subprocess
import sys

import pytest

from albert_keras.tokenization import commands as tokenizer_commands
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization import load_sentencepiece, sentencepiece_checksum


def parse(argv):
    parser = argparse.ArgumentParser()
    tokenizer_commands.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train-tokenizer", *argv])


def test_embedded_corpus_by_default_reproduces_the_fixture(tmp_path, spm_model_path):
    output = tmp_path / "out" / "spiece.model"
    args = parse(["--output", str(output), "--vocab-size", "1000", "--quiet"])
    assert args.input is None and args.lowercase
    assert tokenizer_commands.run_train_tokenizer(args) == 0
    # Same corpus, settings and seed as the session fixture: byte-identical model.
    assert sentencepiece_checksum(output) == sentencepiece_checksum(spm_model_path)
    assert sorted(os.listdir(output.parent)) == ["spiece.model", "spiece.vocab"]


def test_input_files_and_no_lowercase(tmp_path, embedded_corpus_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("Zebras Quietly Jump Over Xylophones.\n" * 50, encoding="utf-8")
    output = tmp_path / "cased.model"
    args = parse(["--input", str(embedded_corpus_path), str(extra), "--output", str(output),
                  "--vocab-size", "600", "--cased", "--quiet"])
    assert tokenizer_commands.run_train_tokenizer(args) == 0
    sp = load_sentencepiece(output)
    assert sp.get_piece_size() == 600
    assert any(sp.id_to_piece(i) != sp.id_to_piece(i).lower() for i in range(5, 600))


def test_bad_arguments(tmp_path):
    with pytest.raises(AlbertInputError, match="must end in .model"):
        tokenizer_commands.run_train_tokenizer(parse(["--output", str(tmp_path / "x.bin"), "--quiet"]))
    with pytest.raises(AlbertInputError, match="nope.txt: input file not found"):
        tokenizer_commands.run_train_tokenizer(
            parse(["--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "x.model")])
        )
    assert os.listdir(tmp_path) == []


def test_command_line_reports_errors_on_one_line(tmp_path):
    # The real entry point: a too-large vocabulary is a one-line error and exit status 2.
    result = subprocess.run(
        [sys.executable, "-m", "albert_keras", "train-tokenizer", "--output", str(tmp_path / "v.model"),
         "--vocab-size", "100000", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("albert-keras")]
    assert len(lines) == 1 and "too large for this corpus" in lines[0] and "--vocab-size" in lines[0]
    assert not os.path.exists(tmp_path / "v.model")


def _main(capsys, *argv):
    from albert_keras.cli import main

    status = main([os.fspath(a) for a in argv])
    captured = capsys.readouterr()
    return status, [line for line in captured.err.splitlines() if line.startswith("albert-keras")]


def test_wordpiece_vocabulary_from_the_command_line(tmp_path, capsys):
    from albert_keras.tokenization import load_vocabulary
    from albert_keras.tokenization.wordpiece_training import train_wordpiece

    corpus = tmp_path / "zh.txt"
    corpus.write_text("我们今天去北京。\n天气很好，我们很喜欢。\nALBERT and BERT are models.\n" * 20, encoding="utf-8")
    output = tmp_path / "zh" / "vocab.txt"
    status, errors = _main(capsys, "train-tokenizer", "--type", "wordpiece", "--input", corpus, "--output", output,
                           "--vocab-size", "200")
    assert status == 0 and errors == []
    vocabulary = load_vocabulary(output)
    assert vocabulary.kind == "wordpiece" and vocabulary.lowercase  # the Chinese models are uncased
    assert vocabulary.special_ids == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    tokens = set(vocabulary.tokens())
    assert {c for c in "我们今天去北京天气很好喜欢"} <= tokens and {"##" + c for c in "我们今天去北京"} <= tokens
    # The command is train_wordpiece: the same bytes as the library call.
    assert output.read_bytes() == open(train_wordpiece([corpus], tmp_path / "lib.txt", 200), "rb").read()


def test_wordpiece_command_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("我们今天去北京。\n" * 5, encoding="utf-8")
    status, errors = _main(capsys, "train-tokenizer", "--type", "wordpiece", "--input", corpus, "--output",
                           tmp_path / "out" / "v.model", "--vocab-size", "200")
    assert status == 2 and len(errors) == 1 and "not a .model" in errors[0]
    status, errors = _main(capsys, "train-tokenizer", "--type", "wordpiece", "--input", corpus, "--output",
                           tmp_path / "out" / "vocab.txt", "--vocab-size", "50")
    assert status == 2 and len(errors) == 1 and "vocab_size 50 is too small" in errors[0]
    assert sorted(os.listdir(tmp_path)) == ["zh.txt"]
