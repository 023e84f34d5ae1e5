"""Safe extraction of released checkpoint archives (`albert_base_v2.tar.gz` and friends)."""

import os
import posixpath
import tarfile

from albert_keras.errors import AlbertInputError


def _member_problem(member, root):
    """Why `member` may not be extracted under `root`, or None when it is safe."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"member '{name}' has an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return f"member '{name}' climbs out of the archive with '..'"
    target = os.path.realpath(os.path.join(root, name))
    if target != root and not target.startswith(root + os.sep):
        return f"member '{name}' would be written outside the extraction directory"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")):
            return f"member '{name}' is a link to the absolute path '{link}'"
        # Symlinks resolve next to the member; hard links name a path from the archive root.
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = os.path.realpath(os.path.join(root, base, link))
        if resolved != root and not resolved.startswith(root + os.sep):
            return f"member '{name}' is a link pointing outside the archive ('{link}')"
    elif not (member.isfile() or member.isdir()):
        return f"member '{name}' is a device, FIFO or other special file"
    return None


def safe_extract(archive, destination):
    """Extract a tar archive, refusing anything that could escape `destination`.

    Every member is checked first (absolute paths, `..` components, links whose target leaves the
    archive, device files); one bad member rejects the whole archive before anything is written.
    Extraction then runs with Python's `filter="data"`, which re-checks the same rules and drops
    permission bits such as setuid.

    Args:
        archive: path of a `.tar`, `.tar.gz`, `.tgz` or `.tar.bz2` file.
        destination: an existing, empty directory.

    Raises:
        AlbertInputError: naming the archive and the offending member.

    Example:
    ```python
    safe_extract("albert_base_v2.tar.gz", "/tmp/albert_base")
    ```
    """
    archive = os.fspath(archive)
    root = os.path.realpath(os.fspath(destination))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = _member_problem(member, root)
                if problem:
                    raise AlbertInputError(f"{archive}: unsafe archive: {problem}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, members=members, filter="data")
            else:  # Python without PEP 706: the checks above are the only guard.
                tar.extractall(root, members=members)
    except tarfile.FilterError as error:
        raise AlbertInputError(f"{archive}: unsafe archive: {error}") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise AlbertInputError(f"{archive}: cannot read archive ({error})") from None


def is_archive(path):
    """True for a file tarfile can open (released checkpoints are `.tar.gz`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return False
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False
