import os

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_directory, atomic_write, read_json_object


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


def test_the_same_operations_on_tensorflows_ram_filesystem():
    import uuid

    from albert_keras import io_utils

    root = f"ram://io-utils-{uuid.uuid4().hex[:8]}"
    target = root + "/model"
    with pytest.raises(RuntimeError):
        with io_utils.atomic_write(root + "/out.txt", "w") as f:
            f.write("half")
            raise RuntimeError("crash")
    assert not io_utils.exists(root + "/out.txt") and io_utils.listdir(root) == []
    with io_utils.atomic_write(root + "/out.txt", "w") as f:
        f.write("whole")
    with io_utils.open_file(root + "/out.txt", "rb") as f:
        assert f.readline(3) == b"who"  # bounded readline, as the text reader needs
    with io_utils.atomic_directory(target, marker="done") as tmp:
        assert not io_utils.exists(target)
        for rel in ("sub/a", "done", "b"):
            io_utils.makedirs(os.path.dirname(f"{tmp}/{rel}"))
            with io_utils.open_file(f"{tmp}/{rel}", "w") as f:
                f.write(rel)
    assert io_utils.walk_files(target) == ["b", "done", "sub/a"]
    with pytest.raises(FileExistsError):
        with io_utils.atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with io_utils.atomic_directory(target, overwrite=True) as tmp:
            raise RuntimeError("crash")
    assert io_utils.walk_files(target) == ["b", "done", "sub/a"]
    with io_utils.atomic_directory(target, overwrite=True) as tmp:
        with io_utils.open_file(f"{tmp}/c", "w") as f:
            f.write("c")
    assert io_utils.walk_files(target) == ["c"]
    assert sorted(io_utils.listdir(root)) == ["model", "out.txt"]
    assert io_utils.glob(root + "/*.txt") == [root + "/out.txt"] and io_utils.getsize(root + "/out.txt") == 5
    io_utils.rmtree(root)
    assert not io_utils.exists(target)


def test_local_copies_and_staged_uploads(tmp_path):
    import uuid

    from albert_keras import io_utils

    root = f"ram://stage-{uuid.uuid4().hex[:8]}"
    with io_utils.staged_directory(root + "/out", marker="z.pb") as tmp:
        assert not io_utils.is_url(tmp)
        os.makedirs(os.path.join(tmp, "variables"))
        for rel in ("z.pb", "variables/v", "a.json"):
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(rel)
    assert io_utils.walk_files(root + "/out") == ["a.json", "variables/v", "z.pb"]
    with io_utils.local_copy(root + "/out") as local:
        assert open(os.path.join(local, "variables", "v")).read() == "variables/v"
    assert not os.path.exists(local)
    with io_utils.local_copy(str(tmp_path)) as same:
        assert same == str(tmp_path)
    partial = root + "/.x.partial"
    with io_utils.open_file(partial + "/m", "w") as f:
        f.write("new")
    io_utils.replace_directory(partial, root + "/out", marker="m")
    assert io_utils.walk_files(root + "/out") == ["m"] and not io_utils.exists(partial)
    io_utils.rmtree(root)


def test_read_json_object_names_the_file_and_what_it_is(tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"lowercase": false, "name": "\u00e9t\u00e9"}', encoding="utf-8")
    assert read_json_object(good, "settings") == {"lowercase": False, "name": "été"}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    for path, message in ((broken, "unreadable tokenizer settings"), (listed, "expected a JSON object"),
                          (tmp_path / "missing.json", "unreadable tokenizer settings")):
        with pytest.raises(AlbertInputError, match=f"{path.name}: {message}"):
            read_json_object(path, "tokenizer settings")
