"""`create_pretraining_data`: text files -> sharded ALBERT pretraining TFRecords + manifest.json.

The pipeline, streaming end to end:

    reader.iter_chunks (main process: read, validate, cut into ~1 MB chunks of documents)
      -> workers (normalize, tokenize in batch, SOP pairs, masking, serialize: `_process_chunk`)
      -> ShuffleBuffer (bounded) -> ShardedWriter (temporary names) -> manifest.json -> rename.

Determinism: chunk boundaries depend only on the input, each document's RNG is keyed by
(seed, dupe pass, document index), results are consumed in chunk order, and the buffer and
shard RNGs are seeded. So the records are identical for any number of workers.

Crash safety and reruns: everything is written to a hidden sibling directory
`.<name>.partial` (shards under temporary names even there) and renamed onto the output directory
only when complete. Rerunning over a finished output with the same inputs, model and settings
does nothing; with different ones it is an error unless `overwrite=True`.
"""

import collections
import json
import os
import sys
import time

from albert_keras import io_utils
from albert_keras.data import reader as reader_lib
from albert_keras.data.instances import InstanceOptions
from albert_keras.data.instances import Statistics
from albert_keras.errors import AlbertInputError

MANIFEST_NAME = "manifest.json"
# The settings a worker process needs (`whole_word_segmenter` only when given).
WORKER_SETTINGS = ("lowercase", "input_format", "seed", "official_random_replacement", "whole_word_segmenter",
                   "chinese_ref")
MANIFEST_VERSION = 1
INPUT_FORMATS = ("sentences", "paragraphs")

# Worker-process state, set once by `_init_worker`.
_WORKER = {}


def _init_worker(spm_proto, options, settings):
    from albert_keras.data.instances import InstanceMaker
    from albert_keras.data.vocab import MaskingVocab
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(spm_proto, lowercase=settings["lowercase"])
    vocab = MaskingVocab(vocabulary, official_random_replacement=settings["official_random_replacement"],
                         whole_word_segmenter=settings.get("whole_word_segmenter"),
                         reference_marks=bool(settings.get("chinese_ref")))
    _WORKER.update(vocab=vocab, maker=InstanceMaker(vocab, options), options=options, settings=settings)


def _process_chunk(task):
    """Worker: one chunk of raw documents -> serialized records + statistics, for one dupe pass."""
    from albert_keras.corpus import split_sentences
    from albert_keras.data.instances import document_rng
    from albert_keras.data.schema import serialize_instances
    dupe_pass, first_document_index, raw_documents = task[:3]
    references = task[3] if len(task) > 3 else None  # --chinese-ref: per document, per line
    vocab, maker, options, settings = (_WORKER[k] for k in ("vocab", "maker", "options", "settings"))
    paragraphs = settings["input_format"] == "paragraphs"
    lines, sizes, groups = [], [], []
    for d, raw_document in enumerate(raw_documents):
        count = 0
        for k, raw in enumerate(raw_document):
            sentences = split_sentences(raw) if paragraphs else (raw,)
            lines.extend(sentences)
            count += len(sentences)
            if references is not None:
                groups.append((len(sentences), references[d][k]))
        sizes.append(count)
    before = vocab.segmented_words, vocab.rejected_references, vocab.unreferenced_lines
    encoded = vocab.encode_lines(lines) if references is None else vocab.encode_referenced(lines, groups)
    stats = Statistics(options.ngram)
    stats.counts["whole_words_segmented"] += vocab.segmented_words - before[0]
    stats.counts["chinese_ref_rejected_positions"] += vocab.rejected_references - before[1]
    stats.counts["chinese_ref_unreferenced_lines"] += vocab.unreferenced_lines - before[2]
    documents, keys = [], []
    offset = 0
    for index, size in enumerate(sizes):
        sentences = [ids for ids in encoded[offset : offset + size] if len(ids)]
        offset += size
        if sentences:
            documents.append(sentences)
            keys.append(first_document_index + index)
            stats.counts["sentences"] += len(sentences)
            stats.counts["input_tokens"] += sum(len(ids) for ids in sentences)
    stats.counts["documents"] += len(documents)
    instances = []
    seed = settings["seed"]
    nondeterministic = options.official_nondeterministic
    for local_index, key in enumerate(keys):
        rng = document_rng(seed, dupe_pass, key, nondeterministic)
        instances += maker.document_instances(documents, local_index, rng, stats)
    records = serialize_instances(instances, options.max_seq_length, options.max_predictions_per_seq)
    return records, stats, peak_rss_mb()


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


def _noop():
    return None


class _Progress:
    """A one-line stderr progress bar: documents, instances, MB read, MB/s."""

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


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire_lock(lock_path):
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


def _fingerprint(settings, spm_sha256, inputs):
    return {"settings": settings, "spm_sha256": spm_sha256, "inputs": [list(p) for p in inputs]}


def _existing_manifest(output_dir):
    path = os.path.join(output_dir, MANIFEST_NAME)
    if not io_utils.exists(path):
        return None
    try:
        return json.loads(io_utils.read_bytes(path).decode("utf-8"))
    except (OSError, ValueError):
        return None


def up_to_date(output_dir, existing, fingerprint, overwrite, official_nondeterministic):
    """Whether `output_dir` already holds this run's output (a rerun is then a no-op).

    Shared by the local and the Beam runner. Otherwise checks that the run may write there: an
    output made with other inputs or settings, or anything else in a non-empty directory, needs
    `overwrite`; a file is never replaced.

    Args:
        output_dir: the output directory (local or a URL).
        existing: its parsed `manifest.json`, or None.
        fingerprint: this run's fingerprint (`_fingerprint`).
        overwrite: whether another output may be replaced.
        official_nondeterministic: unseeded records are never reused.

    Returns:
        True when `existing` is this run's output.

    Raises:
        AlbertInputError: the output may not be written.

    Example:
    ```python
    from albert_keras.data.create import up_to_date
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


def checked_settings(
    counts,
    *,
    max_seq_length,
    max_predictions_per_seq,
    dupe_factor,
    masked_lm_prob,
    short_seq_prob,
    ngram,
    favor_shorter_ngram,
    do_whole_word_mask,
    lowercase,
    seed,
    num_shards,
    shuffle_buffer_size,
    compression,
    input_format,
    on_bad_line,
    max_line_bytes,
    max_document_bytes,
    chunk_bytes,
    official_nondeterministic,
    official_random_negatives,
    official_random_replacement,
):
    """Check the create-data arguments that the local and the Beam runner share.

    One place for both runners, so that they reject the same arguments with the same messages and
    write manifests whose settings (and so fingerprints) compare.

    Args:
        counts: `(name, value)` pairs that must each be >= 1, checked in this order.
        max_seq_length, ..., official_random_replacement: as in `create_pretraining_data`.

    Returns:
        `(compression, options, settings)`: the compression as TF names it (None or `"GZIP"`),
        the `InstanceOptions`, and the settings dict recorded in the manifest.

    Raises:
        AlbertInputError: an unknown input format, `on_bad_line` or compression, a count below 1,
            or instance options `InstanceOptions` rejects.

    Example:
    ```python
    from albert_keras.data.create import checked_settings
    compression, options, settings = checked_settings(
        (("num_shards", 8),), max_seq_length=128, max_predictions_per_seq=20, dupe_factor=1,
        masked_lm_prob=0.15, short_seq_prob=0.1, ngram=3, favor_shorter_ngram=True,
        do_whole_word_mask=True, lowercase=True, seed=12345, num_shards=8,
        shuffle_buffer_size=20000, compression="gzip", input_format="sentences",
        on_bad_line="skip", max_line_bytes=1 << 20, max_document_bytes=1 << 26,
        chunk_bytes=1 << 22, official_nondeterministic=False, official_random_negatives=False,
        official_random_replacement=False)
    print(compression, options.max_seq_length, settings["num_shards"])  # GZIP 128 8
    ```
    """
    if input_format not in INPUT_FORMATS:
        raise AlbertInputError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    if on_bad_line not in ("skip", "error"):
        raise AlbertInputError(f"on_bad_line must be 'skip' or 'error', got {on_bad_line!r}")
    compression = (compression or "").upper() or None
    if compression not in (None, "GZIP"):
        raise AlbertInputError(f"compression must be None or 'gzip', got {compression!r}")
    for name, value in counts:
        if int(value) < 1:
            raise AlbertInputError(f"{name} must be >= 1, got {value}")
    try:
        options = InstanceOptions(
            max_seq_length=max_seq_length,
            max_predictions_per_seq=max_predictions_per_seq,
            masked_lm_prob=masked_lm_prob,
            short_seq_prob=short_seq_prob,
            ngram=ngram,
            favor_shorter_ngram=favor_shorter_ngram,
            do_whole_word_mask=do_whole_word_mask,
            official_random_negatives=official_random_negatives,
            official_nondeterministic=official_nondeterministic,
        )
    except ValueError as error:
        raise AlbertInputError(f"create-data: {error}") from None
    settings = {
        "max_seq_length": max_seq_length,
        "max_predictions_per_seq": max_predictions_per_seq,
        "dupe_factor": dupe_factor,
        "masked_lm_prob": masked_lm_prob,
        "short_seq_prob": short_seq_prob,
        "ngram": ngram,
        "favor_shorter_ngram": favor_shorter_ngram,
        "do_whole_word_mask": do_whole_word_mask,
        "lowercase": lowercase,
        "seed": seed,
        "num_shards": num_shards,
        "shuffle_buffer_size": shuffle_buffer_size,
        "compression": compression,
        "input_format": input_format,
        "on_bad_line": on_bad_line,
        "max_line_bytes": max_line_bytes,
        "max_document_bytes": max_document_bytes,
        "chunk_bytes": chunk_bytes,
        "official_nondeterministic": official_nondeterministic,
        "official_random_negatives": official_random_negatives,
        "official_random_replacement": official_random_replacement,
    }
    return compression, options, settings


def create_pretraining_data(
    input_files,
    spm_model,
    output_dir,
    max_seq_length=128,
    max_predictions_per_seq=20,
    dupe_factor=1,
    masked_lm_prob=0.15,
    short_seq_prob=0.1,
    ngram=3,
    favor_shorter_ngram=True,
    do_whole_word_mask=True,
    lowercase=True,
    seed=12345,
    workers=1,
    num_shards=8,
    shuffle_buffer_size=20000,
    compression=None,
    input_format="sentences",
    on_bad_line="skip",
    max_line_bytes=reader_lib.DEFAULT_MAX_LINE_BYTES,
    max_document_bytes=reader_lib.DEFAULT_MAX_DOCUMENT_BYTES,
    chunk_bytes=reader_lib.DEFAULT_CHUNK_BYTES,
    official_nondeterministic=False,
    official_random_negatives=False,
    official_random_replacement=False,
    overwrite=False,
    progress=False,
    whole_word_segmenter=None,
    chinese_ref=None,
):
    """Create ALBERT pretraining TFRecords (MLM + SOP) from text files, streaming.

    The algorithm is the official `create_pretraining_data.py`'s (SOP pairs with `short_seq_prob`,
    n-gram whole-word masking with p(n) ∝ 1/n, 80/10/10, `max_predictions_per_seq`, the official
    truncation) with three documented deviations that each have an `official_*` switch: see
    `albert_keras.data.instances`. Output: `output_dir/part-NNNNN-of-MMMMM.tfrecord[.gz]` in the
    official 8-feature schema and `output_dir/manifest.json` (settings, vocabulary SHA-256,
    statistics, skipped lines).

    Args:
        input_files: text files (or glob patterns): one sentence per line, blank lines between
            documents (`input_format="paragraphs"`: one paragraph per line, split into sentences).
        spm_model: the vocabulary: an ALBERT SentencePiece model (ids 0-4 = `<pad> <unk> [CLS] [SEP]
            [MASK]`) or a WordPiece `vocab.txt` (the Chinese models), or a directory holding one.
        output_dir: the output directory (e.g. `tfrecords/NAME`).
        max_seq_length, max_predictions_per_seq, dupe_factor, masked_lm_prob, short_seq_prob,
            ngram, favor_shorter_ngram, do_whole_word_mask: the official flags.
            `dupe_factor` passes re-read the input, so memory does not grow with it.
        lowercase: normalize with lowercasing (the English models are uncased).
        seed: the random seed; the same inputs and seed give the same records.
        workers: processes that create instances (1 = in this process).
        num_shards: number of output files.
        shuffle_buffer_size: records held for shuffling (bounds memory; 0 = no shuffling).
        compression: None or `"gzip"`.
        input_format: `"sentences"` or `"paragraphs"`.
        on_bad_line: `"skip"` (count undecodable / over-long lines in the manifest) or `"error"`.
        max_line_bytes, max_document_bytes, chunk_bytes: memory bounds (see `reader`).
        whole_word_segmenter: `"jieba"` for Chinese whole-word masking with a WordPiece vocabulary
            (the `zh` extra): each line is segmented, the continuation characters of a word are
            marked so the n-gram masking picks whole words, and the records store the unmarked ids
            (inputs and labels) with the word boundaries in `token_boundary`. Characters without a
            `##` twin in the vocabulary fall back to per-character words. None: the official rule
            (every WordPiece piece not starting with `##` starts a word: per Chinese character).
        chinese_ref: instead of `whole_word_segmenter`, Hugging Face `run_chinese_ref.py` output,
            one file per input file (a path, or a list in the order of `input_files`): one JSON
            list per non-blank input line of the token positions (`[CLS]` at 0) that continue a
            word. A position whose token is not a Chinese character following another one falls
            back to per character (`statistics.chinese_ref_rejected_positions`).
        official_nondeterministic, official_random_negatives, official_random_replacement:
            restore the official behaviour in place of deviations (a), (b), (c).
        overwrite: replace an existing output made with other inputs or settings.
        progress: show a progress bar on stderr.

    Returns:
        The manifest dict (also written to `output_dir/manifest.json`).

    Raises:
        AlbertInputError: missing/binary inputs, a bad vocabulary, no instances, or an
            existing output with other settings (without `overwrite`).

    Example:
    ```python
    from albert_keras.data.create import create_pretraining_data
    manifest = create_pretraining_data(["corpus.txt"], "spiece.model", "tfrecords/demo",
                                       max_seq_length=128, dupe_factor=2, workers=2)
    print(manifest["statistics"]["instances"])
    ```
    """
    from albert_keras.data.vocab import MaskingVocab
    from albert_keras.tokenization.vocabulary import load_vocabulary

    compression, options, settings = checked_settings(
        counts=(("workers", workers), ("num_shards", num_shards), ("dupe_factor", dupe_factor)),
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        dupe_factor=dupe_factor, masked_lm_prob=masked_lm_prob, short_seq_prob=short_seq_prob,
        ngram=ngram, favor_shorter_ngram=favor_shorter_ngram, do_whole_word_mask=do_whole_word_mask,
        lowercase=lowercase, seed=seed, num_shards=num_shards,
        shuffle_buffer_size=shuffle_buffer_size, compression=compression,
        input_format=input_format, on_bad_line=on_bad_line, max_line_bytes=max_line_bytes,
        max_document_bytes=max_document_bytes, chunk_bytes=chunk_bytes,
        official_nondeterministic=official_nondeterministic,
        official_random_negatives=official_random_negatives,
        official_random_replacement=official_random_replacement,
    )

    input_files = reader_lib.expand_inputs(input_files)
    inputs = reader_lib.check_input_files(input_files)
    spm_path = os.fspath(spm_model)
    # load_vocabulary gives clear errors for a missing file or one that is neither kind.
    vocabulary = load_vocabulary(spm_path, lowercase=lowercase)
    spm_path = vocabulary.source
    spm_proto = vocabulary.data
    spm_sha256 = vocabulary.sha256()
    if whole_word_segmenter:
        settings["whole_word_segmenter"] = whole_word_segmenter  # absent otherwise: fingerprints stay as they were
    references = None
    if chinese_ref:
        from albert_keras.data.chinese_ref import check_reference_files

        references = check_reference_files(chinese_ref, input_files)
        settings["chinese_ref"] = references
    # Built here too, so a bad vocabulary or segmenter is an error before anything is written.
    masking_vocab = MaskingVocab(vocabulary, official_random_replacement=official_random_replacement,
                                 whole_word_segmenter=whole_word_segmenter, reference_marks=bool(chinese_ref))
    fingerprint = _fingerprint(settings, spm_sha256, inputs)
    if references:  # an edited reference file makes other records
        fingerprint["chinese_ref"] = reader_lib.check_input_files(references)

    output_dir = io_utils.absolute(output_dir)  # local or a URL (gs://...): I/O through io_utils
    existing = _existing_manifest(output_dir)
    if up_to_date(output_dir, existing, fingerprint, overwrite, official_nondeterministic):
        if progress:
            print(f"create-data: {output_dir} is up to date ({existing['statistics']['instances']} instances)", file=sys.stderr)
        return existing

    parent, name = os.path.split(output_dir)
    io_utils.makedirs(parent)
    # Object stores have no exclusive create: the lock (one writer per output) is local only.
    lock_path = None if io_utils.is_url(output_dir) else os.path.join(parent, f".{name}.lock")
    if lock_path:
        _acquire_lock(lock_path)
    partial = os.path.join(parent, f".{name}.partial")
    try:
        io_utils.rmtree(partial)  # left over from a killed run
        io_utils.makedirs(partial)
        manifest = _run(
            input_files, spm_proto, masking_vocab, options, settings, workers, partial, compression, progress,
            on_bad_line, max_line_bytes, max_document_bytes, chunk_bytes,
        )
        manifest["fingerprint"] = fingerprint
        manifest["vocabulary"] = {"path": io_utils.absolute(spm_path), "sha256": spm_sha256, **masking_vocab.manifest_entry()}
        digests = manifest.pop("_digests")
        manifest["inputs"] = [
            {"path": p[0], "bytes": p[1], "sha256": digests.get(path)}
            for p, path in zip(inputs, input_files)
        ]
        with io_utils.atomic_write(os.path.join(partial, MANIFEST_NAME), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=False)
        # The manifest moves last where directories cannot be renamed: it marks a complete output.
        io_utils.replace_directory(partial, output_dir, marker=MANIFEST_NAME)
    except BaseException:
        io_utils.rmtree(partial)
        raise
    finally:
        if lock_path and os.path.exists(lock_path):
            os.remove(lock_path)
    return manifest


def _run(input_files, spm_proto, masking_vocab, options, settings, workers, directory, compression, progress,
         on_bad_line, max_line_bytes, max_document_bytes, chunk_bytes):
    from albert_keras.data.schema import FEATURE_NAMES
    from albert_keras.data.writer import ShardedWriter
    from albert_keras.data.writer import ShuffleBuffer

    worker_settings = {k: settings[k] for k in WORKER_SETTINGS if k in settings}
    references = settings.get("chinese_ref")
    total_bytes = sum(io_utils.getsize(p) for p in input_files) * settings["dupe_factor"]
    started = time.monotonic()
    stats = Statistics(options.ngram)
    skips = reader_lib.SkipLog()
    digests = {}
    bar = _Progress(progress, total_bytes)
    buffer = ShuffleBuffer(settings["shuffle_buffer_size"], settings["seed"])
    pool = None
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        # "spawn": the parent has TensorFlow loaded (for the TFRecord writer) and forking a
        # multi-threaded process is unsafe; workers import only numpy and sentencepiece.
        # A process pool executor (not multiprocessing.Pool): a worker that dies (OOM killer)
        # surfaces as BrokenProcessPool instead of a hang.
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(spm_proto, options, worker_settings),
        )
    else:
        _init_worker(spm_proto, options, worker_settings)
    peaks = [0.0]
    bytes_done = 0
    try:
        if pool is not None:
            # Start every worker now, before the writer imports TensorFlow into this process.
            for future in [pool.submit(_noop) for _ in range(workers)]:
                future.result()
        with ShardedWriter(directory, settings["num_shards"], settings["seed"], compression) as writer:
            def consume(result):
                records, chunk_stats, worker_peak = result
                peaks[0] = max(peaks[0], worker_peak)
                stats.merge(chunk_stats)
                for record in records:
                    out = buffer.push(record)
                    if out is not None:
                        writer.write(out)

            pending = collections.deque()
            for dupe_pass in range(settings["dupe_factor"]):
                pass_skips = skips if dupe_pass == 0 else reader_lib.SkipLog()
                chunks = reader_lib.iter_chunks(
                    input_files, pass_skips, max_line_bytes=max_line_bytes,
                    max_document_bytes=max_document_bytes, chunk_bytes=chunk_bytes,
                    on_bad_line=on_bad_line, digests=digests if dupe_pass == 0 else None,
                    line_keys=references is not None,
                )
                if references is not None:
                    from albert_keras.data.chinese_ref import with_references

                    chunks = with_references(chunks, references, input_files, pass_skips)
                for first_document, documents, size, *refs in chunks:
                    task = (dupe_pass, first_document, documents, *refs)
                    if pool is None:
                        consume(_process_chunk(task))
                    else:
                        # At most 2 chunks per worker in flight: memory stays bounded.
                        pending.append((pool.submit(_process_chunk, task), size))
                        while len(pending) >= 2 * workers:
                            result, done = pending.popleft()
                            consume(result.result())
                            bytes_done += done
                            bar.update(stats, bytes_done, dupe_pass, settings["dupe_factor"])
                        continue
                    bytes_done += size
                    bar.update(stats, bytes_done, dupe_pass, settings["dupe_factor"])
            while pending:
                result, done = pending.popleft()
                consume(result.result())
                bytes_done += done
            for record in buffer.drain():
                writer.write(record)
            if stats.counts["instances"] == 0:
                raise AlbertInputError(
                    f"{', '.join(input_files)}: no training instances could be made (empty input, or "
                    "every line skipped; see the skipped-line counts)"
                )
            bar.update(stats, bytes_done, settings["dupe_factor"] - 1, settings["dupe_factor"], final=True)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    elapsed = time.monotonic() - started
    statistics = stats.to_dict()
    statistics.update(skips.to_dict())
    input_bytes = sum(io_utils.getsize(p) for p in input_files)
    statistics["input_bytes"] = input_bytes
    run = {
        "seconds": round(elapsed, 3),
        "mb_per_second": round(input_bytes * settings["dupe_factor"] / 1e6 / max(elapsed, 1e-9), 3),
        "workers": workers,
        "peak_rss_mb_main": round(peak_rss_mb(), 1),
        "peak_rss_mb_worker": round(peaks[0], 1) if pool is not None else None,
    }
    return {
        "format_version": MANIFEST_VERSION,
        "created_by": "albert-keras create-data",
        "settings": settings,
        "schema": {
            "features": list(FEATURE_NAMES),
            "max_seq_length": options.max_seq_length,
            "max_predictions_per_seq": options.max_predictions_per_seq,
        },
        "shards": [{"file": name, "instances": count} for name, count in zip(writer.names, writer.counts)],
        "statistics": statistics,
        "run": run,
        "_digests": {path: digest.hexdigest() for path, digest in digests.items()},
    }
