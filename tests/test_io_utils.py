import os

import pytest

from albert_keras.io_utils import atomic_directory, atomic_write


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    with atomic_write(target, "w") as f:
        f.write("whole")
    assert target.read_text() == "whole"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_directory_replaces_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as tmp:
        (tmp_path / "model").exists() and pytest.fail("final name visible before completion")
        open(os.path.join(tmp, "a"), "w").write("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(FileExistsError):
        with atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            open(os.path.join(tmp, "b"), "w").write("2")
            raise RuntimeError("crash")
    assert sorted(os.listdir(target)) == ["a"]
    assert sorted(os.listdir(tmp_path)) == ["model"]
    with atomic_directory(target, overwrite=True) as tmp:
        open(os.path.join(tmp, "b"), "w").write("2")
    assert sorted(os.listdir(target)) == ["b"]
