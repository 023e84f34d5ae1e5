"""The `albert-keras convert` subcommand, run as users run it (a real subprocess)."""

import json
import os
import subprocess
import sys

import pytest

from tests.convert.conftest import HF_FIXTURE
from tests.convert.conftest import OFFICIAL_FIXTURE


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "albert_keras.cli", "convert", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_official_to_ours_to_huggingface(tmp_path):
    result = _cli("--from", "official", OFFICIAL_FIXTURE, "--output", tmp_path / "ours")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    with open(tmp_path / "ours" / "model.json") as f:
        assert json.load(f)["class"] == "AlbertPretrainer"
    result = _cli("--to", "huggingface", tmp_path / "ours", "--output", tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "hf")) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--from", "caffe", HF_FIXTURE), "unknown format 'caffe'"),
        (("--from", "huggingface", OFFICIAL_FIXTURE), "config.json not found"),
        (("--from", "huggingface", HF_FIXTURE, "--config", "albert-base-v2"), "do not apply"),
    ],
    ids=["wrong-from", "wrong-format-for-source", "wrong-option"],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    from albert_keras.cli import main

    assert main(["convert", *map(str, args), "--output", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    error_lines = [line for line in stderr.splitlines() if line.startswith("albert-keras convert: error:")]
    assert len(error_lines) == 1 and message in error_lines[0], stderr
    assert not (tmp_path / "out").exists()


def test_official_zh_layout_and_a_mismatched_vocabulary(tmp_path, capsys):
    from albert_keras.cli import main
    from tests.convert.test_chinese import _official_zh
    from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

    _official_zh(tmp_path / "albert_base_zh")
    source = str(tmp_path / "albert_base_zh")
    assert main(["convert", "--from", "official", source, "--output", str(tmp_path / "ours")]) == 0
    assert "vocab.txt" in os.listdir(tmp_path / "ours")
    # The same checkpoint with a vocabulary that lacks the `##` pieces: one line, nothing written.
    short = make_chinese_style_vocab(str(tmp_path / "short.txt"))
    with open(short, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if not line.startswith("##")]
    with open(short, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))
    code = main(["convert", "--from", "official", str(tmp_path / "albert_base_zh"), "--vocab", short,
                 "--output", str(tmp_path / "out")])
    assert code == 2
    stderr = capsys.readouterr().err
    error_lines = [line for line in stderr.splitlines() if line.startswith("albert-keras convert: error:")]
    assert len(error_lines) == 1 and "short.txt: the vocabulary has" in error_lines[0], stderr
    assert not (tmp_path / "out").exists()
