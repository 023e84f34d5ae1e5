import io
import os
import tarfile

import pytest

from albert_keras.convert.archive import safe_extract
from albert_keras.errors import AlbertInputError


def _tar(path, members):
    """Write a .tar.gz; `members` is a list of (name, kind, payload) with kind file/symlink/hardlink."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = payload
                tar.addfile(info)
    return path


def test_extracts_a_normal_archive(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [("albert_base/albert_config.json", "file", "{}"),
                                           ("albert_base/30k-clean.model", "file", "spm")])
    out = tmp_path / "out"
    out.mkdir()
    safe_extract(archive, out)
    assert (out / "albert_base" / "albert_config.json").read_text() == "{}"


@pytest.mark.parametrize(
    "member, reason",
    [
        (("../evil.txt", "file", "x"), "'..'"),
        (("albert/../../evil.txt", "file", "x"), "'..'"),
        (("/tmp/evil_absolute.txt", "file", "x"), "absolute"),
        (("albert/link", "symlink", "../../outside"), "outside"),
        (("albert/abs_link", "symlink", "/etc/passwd"), "absolute"),
        (("albert/hard", "hardlink", "../outside"), "outside"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"],
)
def test_rejects_unsafe_members_and_writes_nothing(tmp_path, member, reason):
    archive = _tar(tmp_path / "bad.tar.gz", [("albert/ok.txt", "file", "fine"), member])
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    with pytest.raises(AlbertInputError, match=reason) as error:
        safe_extract(archive, out)
    assert "bad.tar.gz" in str(error.value)
    assert os.listdir(out) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "a" / "evil.txt").exists()


def test_not_an_archive(tmp_path):
    path = tmp_path / "junk.tar.gz"
    path.write_bytes(b"not a tar at all")
    with pytest.raises(AlbertInputError, match="cannot read archive"):
        safe_extract(path, tmp_path)
