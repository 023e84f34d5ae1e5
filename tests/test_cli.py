"""The `albert-keras` command line as a whole: every command's `--help`, one vocabulary (docs/cli.md),
every command the docs and the quickstart print parses, deprecated spellings, loud import failures,
and bad input as one line."""

import argparse
import contextlib
import glob
import io
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from albert_keras import __version__
from albert_keras import cli
from albert_keras.cli import build_parser, main
from albert_keras.cli_args import DeprecatedAlias
from albert_keras.cli_args import resolve_model
from albert_keras.cli_args import resolve_vocab
from albert_keras.errors import AlbertInputError
from albert_keras.quickstart import stage_commands

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {"train-tokenizer", "create-data", "pretrain", "finetune", "distill", "evaluate", "predict", "export", "convert",
            "inspect", "fill-mask", "embed", "index", "search", "attention", "quickstart"}


def _subparsers(parser):
    return parser._subparsers._group_actions[0].choices  # argparse keeps no public list of subparsers


def _canonical_options(subparser):
    return {option for action in subparser._actions if not isinstance(action, DeprecatedAlias)
            for option in action.option_strings}


def _parse(parser, argv):
    """`(namespace or None, stderr)`: the real parser, nothing run."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return parser.parse_args(argv), err.getvalue()
        except SystemExit:
            return None, err.getvalue()


def documented_commands(text):
    """`(line, command, complete)` for each `albert-keras ...` in a Markdown text: whole commands in code
    blocks (backslash continuations joined), and inline code spans (often a flag or two only)."""
    found, in_block, pending = [], False, None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_block, pending = not in_block, None
            continue
        if in_block:
            stripped = re.sub(r"^\$ ", "", stripped)
            if pending is None and stripped.startswith("albert-keras"):
                pending = [number, ""]
            if pending is not None:
                pending[1] += " " + stripped.rstrip("\\")
                if not stripped.endswith("\\"):
                    found.append((pending[0], pending[1].split(" #")[0].strip(), True))
                    pending = None
        else:
            found.extend((number, span, False) for span in re.findall(r"`(albert-keras [^`]+)`", line))
    return found


def test_every_command_has_help_with_defaults(capsys):
    parser = build_parser()
    assert set(_subparsers(parser)) == COMMANDS
    for command in sorted(COMMANDS):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0, command
        assert out.startswith(f"usage: albert-keras {command}"), command
    help_text = " ".join(_subparsers(parser)["pretrain"].format_help().split())
    assert "--batch-size BATCH_SIZE examples per optimizer step, all replicas together (global) (default: 64)" in help_text
    assert "--global-batch-size" not in help_text  # deprecated spellings are hidden


def test_one_vocabulary_across_commands():
    """The concepts of docs/cli.md: where a command has the concept, it has the canonical spelling."""
    parser = build_parser()
    options = {name: _canonical_options(sub) for name, sub in _subparsers(parser).items()}
    for command in ("finetune", "evaluate", "predict", "export", "embed", "index", "search", "fill-mask", "attention"):
        assert "--model" in options[command], command
    for command in COMMANDS - {"inspect", "search", "fill-mask", "evaluate"}:
        assert "--output" in options[command], command
    for command in ("pretrain", "finetune", "evaluate", "predict", "embed", "index", "quickstart"):
        assert "--batch-size" in options[command], command
    for command in ("train-tokenizer", "create-data", "export", "convert"):
        assert {"--cased", "--uncased"} <= options[command], command
    for command in ("create-data", "pretrain", "export", "convert"):
        assert "--vocab" in options[command] and "--spm-model" not in options[command], command
    for command in ("create-data", "pretrain", "finetune", "export", "convert", "embed", "index", "train-tokenizer",
                    "quickstart"):
        assert "--quiet" in options[command], command
    old = {"--output-dir", "--global-batch-size", "--sequence-length", "--no-progress", "--verbose",
           "--num-warmup-steps", "--validation-every", "--no-lowercase", "--spm-model", "--version"}
    for command, names in options.items():
        assert not names & old, (command, names & old)
    precision_choices = {
        name: sub._option_string_actions["--precision"].metavar
        for name, sub in _subparsers(parser).items() if "--precision" in sub._option_string_actions
    }
    assert set(precision_choices) == {"pretrain", "finetune", "export", "embed", "index"}
    assert set(precision_choices.values()) == {"{auto,float32,bfloat16,float16}"}


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"albert-keras {__version__}"
    args, _ = _parse(build_parser(), ["export", "--model", "m", "--output", "o", "--model-version", "3"])
    assert args.model_version == 3


def test_every_documented_command_parses():
    parser = build_parser()
    sub = _subparsers(parser)
    checked = 0
    for path in ["README.md"] + sorted(glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True)):
        with open(os.path.join(REPO, path), encoding="utf-8") as f:
            text = f.read()
        for number, command, complete in documented_commands(text):
            where = f"{os.path.basename(path)}:{number}: {command}"
            argv = shlex.split(command)[1:]
            name = argv[0].rstrip(",") if argv else ""
            if name.startswith("--"):  # a top-level option (`albert-keras --version`)
                assert name in _canonical_options(parser), where
                checked += 1
                continue
            assert name in sub, where
            if complete:
                args, err = _parse(parser, argv)
                assert args is not None, f"{where}\n{err}"
                assert "deprecated" not in err, f"{where}\n{err}"
            else:  # an inline mention: its flags must be the command's canonical ones
                flags = [word.split("=")[0] for word in argv if word.startswith("--")]
                unknown = set(flags) - _canonical_options(sub[name])
                assert not unknown, f"{where}: {unknown}"
            checked += 1
    assert checked >= 40  # the extraction itself works (the docs print about 50)


def test_every_command_the_quickstart_prints_parses(tmp_path):
    parser = build_parser()
    commands = stage_commands(str(tmp_path / "qs"), num_train_steps=8, global_batch_size=4)
    assert set(commands) == {"vocabulary", "data", "pretrain", "finetune", "export", "tflite"}
    for stage, command in commands.items():
        args, err = _parse(parser, shlex.split(command)[1:])
        assert args is not None and "deprecated" not in err, (stage, command, err)
    args, _ = _parse(parser, shlex.split(commands["data"])[1:])
    assert args.max_predictions == 10  # 20 per 128 tokens at the default 64
    args, _ = _parse(parser, shlex.split(commands["pretrain"])[1:])
    assert (args.output, args.batch_size, args.warmup) == (str(tmp_path / "qs" / "pretrain"), 4, 300)


def test_old_spellings_set_the_same_destination_with_one_line_each():
    parser = build_parser()
    old, old_err = _parse(parser, ["pretrain", "--config", "c.json", "--train-files", "t", "--output-dir", "run",
                             "--global-batch-size", "8", "--num-warmup-steps", "5", "--spm-model", "v.model",
                             "--validation-every", "7", "--verbose", "0"])
    new, err = _parse(parser, ["pretrain", "--config", "c.json", "--train-files", "t", "--output", "run",
                               "--batch-size", "8", "--warmup", "5", "--vocab", "v.model", "--eval-every", "7",
                               "--quiet"])
    assert (old.output, old.batch_size, old.warmup, old.vocab, old.eval_every) == \
        (new.output, new.batch_size, new.warmup, new.vocab, new.eval_every) == ("run", 8, 5, "v.model", 7)
    assert err == ""
    lines = old_err.strip().splitlines()
    assert len(lines) == 6
    for spelling in ("--output-dir", "--global-batch-size", "--num-warmup-steps", "--spm-model", "--validation-every",
                     "--verbose"):
        assert sum(line.startswith(f"albert-keras: warning: {spelling} is deprecated") for line in lines) == 1
    cased, _ = _parse(parser, ["train-tokenizer", "--output", "v.model", "--no-lowercase"])
    assert cased.lowercase is False
    init, err = _parse(parser, ["finetune", "--task", "classification", "--init", "d", "--train", "t", "--output", "o"])
    assert init.model == "d" and err == ""  # --init stays a plain alias on finetune


def test_required_flag_with_old_spellings_is_still_required(tmp_path, capsys):
    code = main(["pretrain", "--config", "albert-base-v2", "--train-files", str(tmp_path / "none-*")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "albert-keras pretrain: error: the following arguments are required: --output"


def test_a_command_module_that_fails_to_import_fails_loudly(tmp_path, monkeypatch):
    (tmp_path / "broken_commands.py").write_text("import albert_keras_no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("broken_commands",))
    with pytest.raises(cli.CommandImportError, match="broken_commands failed to import.*albert_keras_no_such_module"):
        build_parser()
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("albert_keras.no_such_stage.commands",))
    with pytest.raises(cli.CommandImportError, match="no_such_stage"):
        build_parser()


def test_model_and_vocab_resolve_run_directories(tmp_path):
    run = tmp_path / "run"
    (run / "pretrained").mkdir(parents=True)
    (run / "pretrained" / "albert_config.json").write_text("{}")
    (run / "pretrained" / "spiece.model").write_bytes(b"x")
    assert resolve_model(str(run)) == str(run / "pretrained")
    assert resolve_model(str(run / "pretrained")) == str(run / "pretrained")
    (run / "albert_config.json").write_text("{}")  # a pretrained directory that has a pretrained/ inside
    assert resolve_model(str(run)) == str(run)
    assert resolve_vocab(str(run / "pretrained")) == str(run / "pretrained" / "spiece.model")
    assert resolve_vocab(str(run / "pretrained" / "spiece.model")) == str(run / "pretrained" / "spiece.model")
    with pytest.raises(AlbertInputError, match="exactly one vocabulary file"):
        resolve_vocab(str(tmp_path))


def test_help_does_not_import_tensorflow():
    code = "import sys\nfrom albert_keras.cli import build_parser\nbuild_parser()\nprint('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "albert_keras", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "quickstart" in result.stdout


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    code = main(["pretrain", "--config", str(tmp_path / "missing.json"), "--train-files", str(tmp_path / "none-*"),
                 "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("albert-keras pretrain: error:") and "\n" not in err
    assert not (tmp_path / "run").exists()


def _one_error_line(capsys, command):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"albert-keras {command}: error: "), err
    return err


def test_text_inputs_fail_in_one_line(tmp_path, capsys):
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    header_only = tmp_path / "header.tsv"
    header_only.write_text("text\tlabel\n")
    model = tmp_path / "model"  # evaluate reads the task from finetune.json before it loads a model
    model.mkdir()
    (model / "finetune.json").write_text(json.dumps({"task": "classification", "options": {}, "metadata": {}}))
    bad_byte = tmp_path / "dev.tsv"
    bad_byte.write_bytes("text\tlabel\ngood\tpositive\nbad \xe9\tnegative\n".encode("latin-1"))

    assert main(["embed", "--model", str(model), "--input", str(binary), "--output", str(tmp_path / "e.npy")]) == 2
    assert "data.bin line 1: not UTF-8 text (invalid start byte" in _one_error_line(capsys, "embed")
    assert main(["finetune", "--from-scratch",
                 "--task", "classification", "--model", str(model), "--train", str(binary),
                 "--output", str(tmp_path / "ft")]) == 2
    assert "data.bin line 1: not UTF-8 text" in _one_error_line(capsys, "finetune")
    assert main(["evaluate", "--model", str(model), "--data", str(bad_byte)]) == 2
    assert "dev.tsv line 3: not UTF-8 text" in _one_error_line(capsys, "evaluate")
    assert main(["index", "--model", str(model), "--input", str(header_only), "--output", str(tmp_path / "i")]) == 2
    assert "header.tsv: no texts (only a header row)" in _one_error_line(capsys, "index")
    assert main(["evaluate", "--model", str(model), "--data", str(header_only)]) == 2
    assert "header.tsv: no examples (only a header row)" in _one_error_line(capsys, "evaluate")
    assert not (tmp_path / "e.npy").exists() and not (tmp_path / "i").exists() and not (tmp_path / "ft").exists()


def test_export_onto_an_existing_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "saved_model"
    target.write_text("not a directory")
    assert main(["export", "--model", str(tmp_path), "--output", str(target)]) == 2
    err = _one_error_line(capsys, "export")
    assert "is a file" in err and "Errno" not in err


def test_embed_refuses_a_precision_it_does_not_compute(tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("one\n")
    assert main(["embed", "--model", str(tmp_path), "--input", str(texts), "--output", str(tmp_path / "e.npy"),
                 "--precision", "float16"]) == 2
    assert "--precision float16: embed computes auto, float32, bfloat16" in _one_error_line(capsys, "embed")


def test_argparse_errors_still_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", "--model", "m", "--input", "i", "--output", "o", "--precision", "float64"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'float64'" in capsys.readouterr().err
    assert isinstance(build_parser(), argparse.ArgumentParser)
