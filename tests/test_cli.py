import subprocess
import sys

from albert_keras.cli import build_parser, main


def test_every_stage_has_a_subcommand():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"train-tokenizer", "create-data", "pretrain", "export", "convert", "quickstart"} <= set(commands)


def test_help_does_not_import_tensorflow():
    code = "import sys\nfrom albert_keras.cli import build_parser\nbuild_parser()\nprint('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "albert_keras", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "quickstart" in result.stdout


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    code = main(["pretrain", "--config", str(tmp_path / "missing.json"), "--train-files", str(tmp_path / "none-*"),
                 "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("albert-keras pretrain: error:") and "\n" not in err
    assert not (tmp_path / "run").exists()
