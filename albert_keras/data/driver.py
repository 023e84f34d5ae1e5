"""The driver steps both create-data runners share: vocabulary, fingerprint, up-to-date check,
lock, hidden staging directory, manifest.

`create.py` (local processes) and `beam.py` (an Apache Beam pipeline) differ only in how they
turn the inputs into shard files; everything around that is here, once, so the two write the
same manifest for the same settings and treat an existing output the same way:

    plan = prepare(...)                  inputs listed, vocabulary read, fingerprint, output checked
    if plan.existing: return it          the same run is already there
    with staged_output(plan.output_dir) as partial:
        ... write shards into `partial` ...
        write_manifest(partial, build_manifest(...))
                                         renamed onto the output only when complete

All I/O goes through `io_utils`, so outputs may be local or URLs (`gs://...`).
"""

import contextlib
import dataclasses
import json
import os
import sys
import time

from albert_keras import io_utils
from albert_keras.data import reader as reader_lib
from albert_keras.errors import AlbertInputError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclasses.dataclass
class Plan:
    """What a runner needs after the shared checks (`prepare`).

    Args:
        settings: the `CreateDataSettings`.
        files: the inputs (`reader.InputFile`), in order.
        references: the checked `--chinese-ref` paths, or None.
        spm_proto: the vocabulary file's bytes.
        masking_vocab: the `MaskingVocab` (built once in the driver: a bad vocabulary or segmenter
            is an error before anything is written).
        recorded: the manifest's `settings`.
        fingerprint: what makes a later run with the same inputs, model and settings a no-op.
        output_dir: the absolute output directory (local or a URL).
        existing: the existing output's manifest when it is this run's (nothing to do), else None.
        vocabulary_entry: the manifest's `vocabulary` (path, SHA-256, kind, special ids).
    """

    settings: object
    files: list
    references: list | None
    spm_proto: bytes
    masking_vocab: object
    recorded: dict
    fingerprint: dict
    output_dir: str
    existing: dict | None
    vocabulary_entry: dict


def read_vocabulary(spm_model, settings, reference_marks=False):
    """`(vocabulary, masking_vocab)` of `spm_model` (a file, a directory holding one, or a URL).

    Raises:
        AlbertInputError: a missing file, one that is neither vocabulary kind, a model without
            ALBERT's ids, or an unusable segmenter.
    """
    from albert_keras.data.vocab import MaskingVocab
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(os.fspath(spm_model), lowercase=settings.lowercase)
    masking_vocab = MaskingVocab(vocabulary, official_random_replacement=settings.official_random_replacement,
                                 whole_word_segmenter=settings.whole_word_segmenter, reference_marks=reference_marks)
    return vocabulary, masking_vocab


def read_manifest(output_dir):
    """The parsed `manifest.json` of `output_dir`, or None (missing or unreadable)."""
    path = os.path.join(output_dir, MANIFEST_NAME)
    if not io_utils.exists(path):
        return None
    try:
        return json.loads(io_utils.read_bytes(path).decode("utf-8"))
    except (OSError, ValueError):
        return None


def fingerprint(recorded, spm_sha256, input_fingerprints):
    """The manifest's `fingerprint`: settings, vocabulary digest and inputs (path, size, mtime)."""
    return {"settings": recorded, "spm_sha256": spm_sha256, "inputs": [list(p) for p in input_fingerprints]}


def up_to_date(output_dir, existing, fingerprint, overwrite, official_nondeterministic):
    """Whether `output_dir` already holds this run's output (a rerun is then a no-op).

    Otherwise checks that the run may write there: an output made with other inputs or settings,
    or anything else in a non-empty directory, needs `overwrite`; a file is never replaced.

    Args:
        output_dir: the output directory (local or a URL).
        existing: its parsed `manifest.json`, or None.
        fingerprint: this run's fingerprint (`fingerprint`).
        overwrite: whether another output may be replaced.
        official_nondeterministic: unseeded records are never reused.

    Returns:
        True when `existing` is this run's output.

    Raises:
        AlbertInputError: the output may not be written.

    Example:
    ```python
    from albert_keras.data.driver import up_to_date
    up_to_date("/tmp/new-output", None, {}, False, False)  # False: nothing there yet
    ```
    """
    if existing is not None and existing.get("fingerprint") == fingerprint and not official_nondeterministic:
        return True
    if io_utils.isdir(output_dir) and io_utils.listdir(output_dir) and not overwrite:
        what = "made with other inputs, model or settings" if existing else "not a create-data output"
        raise AlbertInputError(f"{output_dir}: already exists and is {what}; pass --overwrite to replace it")
    if io_utils.exists(output_dir) and not io_utils.isdir(output_dir):
        raise AlbertInputError(f"{output_dir}: exists and is not a directory")
    return False


def prepare(input_files, spm_model, output_dir, settings, runner, overwrite, match_url=None):
    """The checks and reads both runners start with, in the same order (so the same errors).

    Args:
        input_files: paths or glob patterns.
        spm_model: the vocabulary.
        output_dir: the output directory.
        settings: the `CreateDataSettings`.
        runner: `"local"` or `"beam"` (what the manifest records, what the runner refuses).
        overwrite: whether another output may be replaced.
        match_url: `reader.list_inputs`'s lister for URL patterns (the Beam runner's filesystems).

    Returns:
        A `Plan`.
    """
    settings.check_runner(runner)
    files = reader_lib.list_inputs(input_files, match_url=match_url)
    vocabulary, masking_vocab = read_vocabulary(spm_model, settings, reference_marks=bool(settings.chinese_ref))
    references = None
    if settings.chinese_ref:
        from albert_keras.data.chinese_ref import check_reference_files

        references = check_reference_files(settings.chinese_ref, [f.path for f in files])
    recorded = settings.recorded(runner, references)
    spm_sha256 = vocabulary.sha256()
    stamp = fingerprint(recorded, spm_sha256, [f.fingerprint for f in files])
    if references:  # an edited reference file makes other records
        stamp["chinese_ref"] = reader_lib.check_input_files(references)
    output_dir = io_utils.absolute(output_dir)
    if io_utils.is_url(output_dir):
        output_dir = output_dir.rstrip("/")
    existing = read_manifest(output_dir)
    if not up_to_date(output_dir, existing, stamp, overwrite, settings.official_nondeterministic):
        existing = None
    entry = {"path": io_utils.absolute(vocabulary.source), "sha256": spm_sha256, **masking_vocab.manifest_entry()}
    return Plan(settings, files, references, vocabulary.data, masking_vocab, recorded, stamp, output_dir, existing,
                entry)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(lock_path):
    """Take the local output lock `lock_path` (exclusive create; one left by a dead run is taken over).

    Raises:
        AlbertInputError: another live run holds it.
    """
    for _ in range(2):
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(lock_path) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid) and pid != os.getpid():
                raise AlbertInputError(f"{lock_path}: another create-data run (pid {pid}) is writing this output")
            os.remove(lock_path)  # left by a killed run
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return
    raise AlbertInputError(f"{lock_path}: could not take the output lock")


@contextlib.contextmanager
def staged_output(output_dir):
    """Yield the hidden sibling `.<name>.partial` to write into; it becomes `output_dir` only if
    the block succeeds (`io_utils.replace_directory`, the manifest moved last where directories
    cannot be renamed), and is deleted if it fails. Locally a `.<name>.lock` file keeps a second
    run out (object stores have no exclusive create: no lock there).
    """
    parent, name = os.path.split(output_dir)
    io_utils.makedirs(parent)
    lock_path = None if io_utils.is_url(output_dir) else os.path.join(parent, f".{name}.lock")
    if lock_path:
        acquire_lock(lock_path)
    partial = os.path.join(parent, f".{name}.partial")
    try:
        io_utils.rmtree(partial)  # left over from a killed run
        io_utils.makedirs(partial)
        yield partial
        io_utils.replace_directory(partial, output_dir, marker=MANIFEST_NAME)
    except BaseException:
        io_utils.rmtree(partial)
        raise
    finally:
        if lock_path and os.path.exists(lock_path):
            os.remove(lock_path)


def no_instances_error(paths):
    """The error for a run that made no record at all."""
    return AlbertInputError(
        f"{', '.join(paths)}: no training instances could be made (empty input, or every line skipped; "
        "see the skipped-line counts)")


def build_manifest(plan, created_by, shard_names, shard_counts, statistics, run, digests):
    """The manifest both runners write (`run` holds what is particular to the runner).

    Args:
        plan: the run's `Plan`.
        created_by: who wrote it.
        shard_names, shard_counts: the shard files and their record counts.
        statistics: the merged `Statistics.to_dict()` with the skipped-line log; `input_bytes`
            is added here.
        run: timings and memory (`run_entry`).
        digests: the SHA-256 hex digest of each input file (None where not read whole), in order.
    """
    from albert_keras.data.schema import FEATURE_NAMES

    statistics["input_bytes"] = sum(f.size for f in plan.files)
    options = plan.settings.instance_options()
    return {
        "format_version": MANIFEST_VERSION,
        "created_by": created_by,
        "settings": plan.recorded,
        "schema": {
            "features": list(FEATURE_NAMES),
            "max_seq_length": options.max_seq_length,
            "max_predictions_per_seq": options.max_predictions_per_seq,
        },
        "shards": [{"file": name, "instances": count} for name, count in zip(shard_names, shard_counts)],
        "statistics": statistics,
        "run": run,
        "fingerprint": plan.fingerprint,
        "vocabulary": plan.vocabulary_entry,
        "inputs": [{"path": f.fingerprint[0], "bytes": f.size, "sha256": digest}
                   for f, digest in zip(plan.files, digests)],
    }


def run_entry(plan, started, peak_rss_mb_worker, **extra):
    """The manifest's `run`: seconds, MB/s over all dupe passes, `extra`, peak memory in MB."""
    elapsed = time.monotonic() - started
    input_bytes = sum(f.size for f in plan.files)
    return {
        "seconds": round(elapsed, 3),
        "mb_per_second": round(input_bytes * plan.settings.dupe_factor / 1e6 / max(elapsed, 1e-9), 3),
        **extra,
        "peak_rss_mb_main": round(peak_rss_mb(), 1),
        "peak_rss_mb_worker": None if peak_rss_mb_worker is None else round(peak_rss_mb_worker, 1),
    }


def write_manifest(directory, manifest):
    """Write `directory/manifest.json` under a temporary name, then rename it."""
    with io_utils.atomic_write(os.path.join(directory, MANIFEST_NAME), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)


def peak_rss_mb():
    """This process's peak resident memory in MB (Linux `VmHWM`, which restarts at exec, so a
    spawned worker does not inherit its parent's figure; elsewhere `ru_maxrss`)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class Progress:
    """A one-line stderr progress bar: documents, instances, MB read, MB/s.

    Args:
        enabled: False makes `update` do nothing.
        total_bytes: the bytes all passes read (for the bar's length).

    Example:
    ```python
    bar = Progress(True, total_bytes=10_000_000)
    bar.update(stats, bytes_done=5_000_000, dupe_pass=0, dupe_factor=1)
    ```
    """

    def __init__(self, enabled, total_bytes):
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, stats, bytes_done, dupe_pass, dupe_factor, final=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.5:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        fraction = 1.0 if final or not self.total_bytes else bytes_done / self.total_bytes
        width = 20
        bar = "#" * int(width * min(fraction, 1.0))
        line = (
            f"\rcreate-data [{bar:<{width}}] pass {dupe_pass + 1}/{dupe_factor} | "
            f"{stats.counts['documents']:,} documents | {stats.counts['instances']:,} instances | "
            f"{bytes_done / 1e6:,.1f} MB | {bytes_done / 1e6 / elapsed:,.2f} MB/s"
        )
        sys.stderr.write(line + ("\n" if final else ""))
        sys.stderr.flush()
