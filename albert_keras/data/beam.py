"""`create-data` on Apache Beam: the same records as the local run, from any number of machines.

The local path (`create.py`) reads the input in one process. Here the same work is an Apache Beam
pipeline, so it runs on the DirectRunner or on Dataflow, Flink and Spark:

    plan ranges (driver)      every input file is cut into byte ranges of about `split_bytes`,
                              each starting right after a blank line (`ranges.py`)
      -> count (per range)    `reader.iter_chunks` over the range: documents, skipped lines, errors
      -> plan (one element)   global index of each range's first document (a prefix sum)
      -> records (per range   `create._process_chunk`, the local workers' own function, with the
         and dupe pass)       same per-document seeds; each record gets a seeded shard number and
                              goes straight to that shard's part file for this work item
      -> GroupByKey(shard)    of part file NAMES only (records never pass through the runner)
      -> merge (per shard)    parts streamed through a bounded shuffle buffer into one temporary
                              TFRecord file per shard
      -> commit file          committed temporary names + statistics (a combiner)
    finalize (driver)         rename the committed files to `part-NNNNN-of-MMMMM`, write
                              manifest.json, rename the hidden directory onto the output.

Why the records are the local run's: a document's records depend only on its text, the settings,
the seed, the dupe pass and its global index (`instances.document_rng`). Ranges start after a
blank line, where the reader's state is fresh (no open document), so reading a range alone gives
exactly the documents the whole-file read gives there, and the count pass gives each range's
first global index. Which shard a record lands in, and the order within a shard, differ from the
local run: the multiset of records is the same.

Why a failed or retried bundle never leaves a partial or duplicated shard: workers write parts
and shards under unique temporary names (`.beam-parts/s<shard>-<uuid>.tfrecord`,
`.part-...tfrecord.<uuid>.tmp`) inside the hidden `.<name>.partial` directory; only the parts a
kept attempt names are merged, only the shards that reach the committed commit file are renamed,
the rest (from retried or failed attempts) and the parts are deleted, and the output directory
appears only when everything is complete.

Memory: records are written where they are made and read back one at a time, so a worker holds
one work item's chunk and the shuffle buffer's share, and the runner only file names, whatever
the corpus size (docs/data.md has the measurement).

Input errors (no usable line, `on_bad_line="error"`) travel as data to the driver, which raises
them as one `AlbertInputError` naming the file and line and removes the hidden directory.

apache-beam is an optional dependency (`pip install -e ".[beam]"`); it is imported only here, on
call.
"""

import json
import os
import random
import re
import shlex
import time
import uuid

from albert_keras.data import create as create_lib
from albert_keras.data import ranges as ranges_lib
from albert_keras.data import reader as reader_lib
from albert_keras.data.instances import Statistics
from albert_keras.errors import AlbertInputError

BEAM_INSTALL_HINT = 'pip install -e ".[beam]"'
# Work unit of the count and record stages: big enough that per-element overhead vanishes, small
# enough that a 100 GB corpus gives thousands of units.
DEFAULT_SPLIT_BYTES = 64_000_000  # the CLI default, --beam-split-mb 64
COMMIT_NAME = ".beam-commit.json"
PARTS_NAME = ".beam-parts"  # per (work item, shard) record files, merged into the shards


def import_beam():
    """Import apache_beam, or raise a one-line `AlbertInputError` saying how to install it."""
    try:
        import apache_beam
    except ImportError:
        raise AlbertInputError(f"create-data --runner beam needs Apache Beam: {BEAM_INSTALL_HINT}") from None
    return apache_beam


# ----------------------------------------------------------------------------- pipeline stages
# Plain callables (not DoFn subclasses) so this module imports without apache_beam.


class _CountRanges:
    def __init__(self, settings, split_bytes):
        self.settings, self.split_bytes = settings, split_bytes

    def __call__(self, element):
        file_index, path, size, index, count = element
        yield ranges_lib.count_range(file_index, path, size, index, count, self.settings, self.split_bytes)


class _PlanRecords:
    """The single plan element -> one work item per (range, dupe pass); nothing after an error."""

    def __init__(self, paths, sizes, dupe_factor):
        self.paths, self.sizes, self.dupe_factor = paths, sizes, dupe_factor

    def __call__(self, infos):
        first_documents, _, _, error = ranges_lib.merge_range_counts(self.paths, infos)
        if error is not None:
            return
        for info in infos:
            if info["documents"]:
                base = first_documents[(info["file"], info["index"])]
                path, size = self.paths[info["file"]], self.sizes[info["file"]]
                for dupe_pass in range(self.dupe_factor):
                    yield (path, size, info["start"], info["end"], base, dupe_pass)


class _MakeRecords:
    """One range, one dupe pass -> its records, written straight to one part file per shard, and a
    (Statistics, peak MB) output; through the local path's own `_process_chunk` with the same
    per-document seeds.

    Only the part names travel through the pipeline, never the records: a runner that keeps
    grouped data in memory (the DirectRunner keeps it in the driver and hands a whole group to one
    worker) then holds a few names per work item, so memory stays flat as the corpus grows.
    """

    def __init__(self, spm_proto, options, settings, num_shards, parts_dir):
        self.spm_proto, self.options, self.settings, self.num_shards = spm_proto, options, settings, num_shards
        self.parts_dir = parts_dir
        # Which pipeline set up this process's worker state: an in-process runner shares the
        # module with local runs and other pipelines.
        self.key = uuid.uuid4().hex

    def __call__(self, element):
        import tensorflow as tf
        from apache_beam import pvalue

        if create_lib._WORKER.get("beam_key") != self.key:  # once per worker process
            worker_settings = {k: self.settings[k] for k in create_lib.WORKER_SETTINGS if k in self.settings}
            create_lib._init_worker(self.spm_proto, self.options, worker_settings)
            create_lib._WORKER["beam_key"] = self.key
        path, size, start, end, base, dupe_pass = element
        stats, peak = Statistics(self.options.ngram), 0.0
        seed = self.settings["seed"]
        # Unique names per attempt: a retried bundle writes new parts; only the attempt whose
        # output the runner keeps is named downstream, the others are deleted at the end.
        attempt = uuid.uuid4().hex
        writers, paths, counts = {}, {}, {}
        try:
            with ranges_lib.range_file(path, start, end, size) as (local, _):
                chunks = reader_lib.iter_chunks([local], reader_lib.SkipLog(), **ranges_lib.reader_kwargs(self.settings))
                for first, documents, _ in chunks:
                    records, chunk_stats, peak = create_lib._process_chunk((dupe_pass, base + first, documents))
                    stats.merge(chunk_stats)
                    # Seeded by the chunk's first global document: the same shards on every retry.
                    rng = random.Random(f"albert-keras/beam-shards/{seed}/{dupe_pass}/{base + first}")
                    for record in records:
                        shard = rng.randrange(self.num_shards)
                        if shard not in writers:
                            paths[shard] = f"{self.parts_dir}/s{shard:05d}-{attempt}.tfrecord"
                            writers[shard] = tf.io.TFRecordWriter(paths[shard])
                            counts[shard] = 0
                        writers[shard].write(record)
                        counts[shard] += 1
        finally:
            for writer in writers.values():
                writer.close()
        order = (path, start, dupe_pass)  # sorts the parts the same way on every run
        for shard in sorted(writers):
            yield shard, (order, paths[shard], counts[shard])
        yield pvalue.TaggedOutput("stats", (stats, peak))


class _MergeStats:
    def __init__(self, ngram):
        self.ngram = ngram

    def __call__(self, values):
        total, peak = Statistics(self.ngram), 0.0
        for stats, value in values:
            total.merge(stats)
            peak = max(peak, value)
        return total, peak


def _read_part(path):
    """The records of a part file, streamed.

    Parts are this pipeline's own uncompressed TFRecord files, written moments before, so the
    framing (8-byte little-endian length, 4-byte length CRC, data, 4-byte data CRC) is read
    directly and the CRCs are not checked: reading them through `tf.data` one record at a time
    from Python costs several times the rest of the merge.
    """
    import struct

    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise OSError(f"{path}: truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length + 4)
            if len(data) < length + 4:
                raise OSError(f"{path}: truncated record")
            yield data[:length]


class _WriteShard:
    """(shard, its part files) -> one temporary TFRecord file with a unique name; yields its name.

    The parts are read one record at a time through a bounded shuffle buffer, so a shard of any
    size costs the buffer's memory, not the shard's.
    """

    def __init__(self, directory, num_shards, compression, shuffle_buffer_size, seed):
        self.directory, self.num_shards, self.compression = directory, num_shards, compression
        self.shuffle_buffer_size, self.seed = shuffle_buffer_size, seed

    def __call__(self, element):
        import tensorflow as tf

        from albert_keras.data.writer import ShuffleBuffer
        from albert_keras.data.writer import shard_file_name

        shard, parts = element
        parts = sorted(parts)
        # Parts in a seeded order, so neighbouring ranges of the input do not stay neighbours.
        random.Random(f"albert-keras/beam-parts/{self.seed}/{shard}").shuffle(parts)
        name = shard_file_name(shard, self.num_shards, self.compression == "GZIP")
        temporary = f"{self.directory}/.{name}.{uuid.uuid4().hex}.tmp"
        # The local run shuffles through one buffer, then spreads records over the shards; a
        # shard's share of it bounds how far its records are mixed. The same share per shard here
        # gives the same mixing and the same total memory.
        capacity = -(-self.shuffle_buffer_size // self.num_shards)
        buffer = ShuffleBuffer(capacity, f"{self.seed}/shard{shard}")
        count = 0
        options = tf.io.TFRecordOptions(compression_type=self.compression or "")
        with tf.io.TFRecordWriter(temporary, options) as writer:
            for _, part, _ in parts:
                for record in _read_part(part):
                    out = buffer.push(record)
                    if out is not None:
                        writer.write(out)
                        count += 1
            for out in buffer.drain():
                writer.write(out)
                count += 1
        yield (shard, temporary, count)


class _WriteCommit:
    def __init__(self, path):
        self.path = path

    def __call__(self, _, shards, stats, infos):
        import tensorflow as tf

        total, peak = stats
        commit = {"shards": sorted(shards), "statistics": total.to_dict(), "peak_rss_mb_worker": peak, "ranges": infos}
        with tf.io.gfile.GFile(self.path, "w") as f:
            f.write(json.dumps(commit))


# ----------------------------------------------------------------------------- driver


def _expand_inputs(patterns):
    """Input patterns -> [(path, size, fingerprint)]: local ones as the local run does (same
    fingerprints), others through Beam's filesystems (gs://, s3://, hdfs:// with their extras)."""
    from apache_beam.io.filesystems import FileSystems

    files = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        if not ranges_lib.is_url(pattern):
            paths = reader_lib.expand_inputs([pattern])
            for path, fingerprint in zip(paths, reader_lib.check_input_files(paths)):
                files.append((fingerprint[0], fingerprint[1], fingerprint))
            continue
        try:
            metadata = FileSystems.match([pattern])[0].metadata_list
        except Exception as error:  # Beam raises BeamIOError; its message names the pattern
            raise AlbertInputError(f"{pattern}: cannot list it ({str(error).splitlines()[0]})") from None
        if not metadata:
            what = "no input file matches this pattern" if re.search(r"[*?\[]", pattern) else "input file not found"
            raise AlbertInputError(f"{pattern}: {what}")
        for m in sorted(metadata, key=lambda m: m.path):
            files.append((m.path, m.size_in_bytes, [m.path, m.size_in_bytes, m.last_updated_in_seconds]))
    if not files:
        raise AlbertInputError("create-data: no input files given")
    return files


def _read_spm(spm_model):
    """`(path, bytes)` of the vocabulary (local, a directory holding one, or `gs://`)."""
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(spm_model)
    return vocabulary.source, vocabulary.data


def _read_manifest(output_dir):
    import tensorflow as tf

    path = f"{output_dir}/{create_lib.MANIFEST_NAME}"
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except (tf.errors.OpError, ValueError):
        return None


def create_pretraining_data_beam(
    input_files,
    spm_model,
    output_dir,
    beam_options=None,
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
    num_shards=8,
    shuffle_buffer_size=20000,
    compression=None,
    input_format="sentences",
    on_bad_line="skip",
    max_line_bytes=reader_lib.DEFAULT_MAX_LINE_BYTES,
    max_document_bytes=reader_lib.DEFAULT_MAX_DOCUMENT_BYTES,
    chunk_bytes=reader_lib.DEFAULT_CHUNK_BYTES,
    split_bytes=DEFAULT_SPLIT_BYTES,
    official_nondeterministic=False,
    official_random_negatives=False,
    official_random_replacement=False,
    overwrite=False,
    whole_word_segmenter=None,
    chinese_ref=None,
):
    """`create_pretraining_data` as an Apache Beam pipeline: the same multiset of records.

    Takes the local function's arguments (minus `workers` and `progress`; parallelism is the
    runner's) and writes the same layout: `output_dir/part-NNNNN-of-MMMMM.tfrecord[.gz]` and
    `manifest.json`. The records equal the local run's as a multiset; which shard holds a record
    and the order inside a shard differ. `official_random_negatives` is not offered: it draws from
    the local run's work chunks, which span files and are not reproduced here. Nor is
    `chinese_ref`: its files pair with input lines by their count from the start of the file,
    which a work unit starting mid-file does not know (`whole_word_segmenter="jieba"` works).

    Args:
        input_files: file paths or patterns, local or on any filesystem Beam reads (`gs://...`).
        spm_model: the ALBERT SentencePiece model (local or `gs://`); its bytes travel with the
            pipeline, so workers need no copy of it.
        output_dir: the output directory, local or `gs://` (written with `tf.io.gfile`). With a
            distributed runner it must be on storage every worker can write.
        beam_options: Beam pipeline options, a string (`"--runner=DataflowRunner --project=..."`)
            or a list; default: the DirectRunner.
        split_bytes: target size of one work unit; a file larger than this is split at blank lines.
        max_seq_length, ..., overwrite: as in `create_pretraining_data`.

    Returns:
        The manifest dict (also written to `output_dir/manifest.json`).

    Raises:
        AlbertInputError: apache-beam missing, no file matching a pattern, binary or unusable
            input, a bad SentencePiece model, no instances, or an existing output with other
            settings (without `overwrite`).

    Example:
    ```python
    from albert_keras.data.beam import create_pretraining_data_beam
    manifest = create_pretraining_data_beam(
        ["corpus/*.txt"], "spiece.model", "tfrecords/demo",
        beam_options="--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing")
    ```
    """
    if chinese_ref:
        raise AlbertInputError(
            "create-data --runner beam: --chinese-ref pairs reference lines with input lines counted from "
            "the start of each file; use the local runner for it, or --whole-word-segmenter jieba")
    beam = import_beam()
    if official_random_negatives:
        raise AlbertInputError(
            "create-data --runner beam: --official-random-negatives draws from the local run's work "
            "chunks, which span files; use the local runner for it")
    from apache_beam.options.pipeline_options import PipelineOptions

    from albert_keras.data.vocab import MaskingVocab
    from albert_keras.tokenization.vocabulary import load_vocabulary

    # official_random_negatives is False here (rejected above), as the local run records it.
    compression, options, settings = create_lib.checked_settings(
        counts=(("num_shards", num_shards), ("dupe_factor", dupe_factor), ("split_bytes", split_bytes)),
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        dupe_factor=dupe_factor, masked_lm_prob=masked_lm_prob, short_seq_prob=short_seq_prob,
        ngram=ngram, favor_shorter_ngram=favor_shorter_ngram, do_whole_word_mask=do_whole_word_mask,
        lowercase=lowercase, seed=seed, num_shards=num_shards,
        shuffle_buffer_size=shuffle_buffer_size, compression=compression,
        input_format=input_format, on_bad_line=on_bad_line, max_line_bytes=max_line_bytes,
        max_document_bytes=max_document_bytes, chunk_bytes=chunk_bytes,
        official_nondeterministic=official_nondeterministic, official_random_negatives=False,
        official_random_replacement=official_random_replacement,
    )
    settings["split_bytes"] = split_bytes  # the local run's settings (so manifests compare) + this
    if isinstance(beam_options, str):
        beam_options = shlex.split(beam_options)
    beam_options = list(beam_options or [])
    if not any(o.startswith("--runner") for o in beam_options):
        beam_options.insert(0, "--runner=DirectRunner")

    files = _expand_inputs(input_files)
    paths = [f[0] for f in files]
    sizes = [f[1] for f in files]
    spm_path, spm_proto = _read_spm(spm_model)
    # A clear error here for a file that is neither vocabulary kind (not in every worker).
    if whole_word_segmenter:
        settings["whole_word_segmenter"] = whole_word_segmenter  # as the local run records it
    masking_vocab = MaskingVocab(load_vocabulary(spm_proto, lowercase=lowercase),
                                 official_random_replacement=official_random_replacement,
                                 whole_word_segmenter=whole_word_segmenter)
    spm_sha256 = masking_vocab.vocabulary.sha256()
    fingerprint = create_lib._fingerprint(settings, spm_sha256, [f[2] for f in files])

    import tensorflow as tf

    gfile = tf.io.gfile
    output_dir = os.fspath(output_dir).rstrip("/")
    if not ranges_lib.is_url(output_dir):
        output_dir = os.path.abspath(output_dir)
    existing = _read_manifest(output_dir)
    if create_lib.up_to_date(output_dir, existing, fingerprint, overwrite, official_nondeterministic):
        return existing

    parent, name = output_dir.rsplit("/", 1)
    gfile.makedirs(parent)
    lock_path = f"{parent}/.{name}.lock"
    local = not ranges_lib.is_url(output_dir)
    if local:  # an exclusive-create lock needs a local filesystem
        create_lib._acquire_lock(lock_path)
    partial = f"{parent}/.{name}.partial"
    started = time.monotonic()
    try:
        if gfile.exists(partial):
            gfile.rmtree(partial)  # left over from a killed run
        gfile.makedirs(partial)
        count_items = [
            (i, path, size, k, ranges_lib.num_ranges(size, split_bytes))
            for i, (path, size) in enumerate(zip(paths, sizes))
            for k in range(ranges_lib.num_ranges(size, split_bytes))
        ]
        commit_path = f"{partial}/{COMMIT_NAME}"
        parts_dir = f"{partial}/{PARTS_NAME}"
        gfile.makedirs(parts_dir)
        with beam.Pipeline(options=PipelineOptions(beam_options)) as pipeline:
            infos = (
                pipeline
                | "Ranges" >> beam.Create(count_items)
                | "SpreadRanges" >> beam.Reshuffle()
                | "Count" >> beam.FlatMap(_CountRanges(settings, split_bytes))
                | "Plan" >> beam.combiners.ToList()
            )
            made = (
                infos
                | "WorkItems" >> beam.FlatMap(_PlanRecords(paths, sizes, dupe_factor))
                | "SpreadWork" >> beam.Reshuffle()
                | "Records" >> beam.FlatMap(_MakeRecords(spm_proto, options, settings, num_shards, parts_dir))
                .with_outputs("stats", main="records")
            )
            stats = made.stats | "Statistics" >> beam.CombineGlobally(_MergeStats(options.ngram))
            shards = (
                made.records
                | "ByShard" >> beam.GroupByKey()
                | "WriteShards"
                >> beam.FlatMap(_WriteShard(partial, num_shards, compression, shuffle_buffer_size, seed))
            )
            _ = (
                pipeline
                | "One" >> beam.Create([None])
                | "Commit" >> beam.Map(
                    _WriteCommit(commit_path), beam.pvalue.AsList(shards), beam.pvalue.AsSingleton(stats),
                    beam.pvalue.AsSingleton(infos))
            )
        manifest = _finalize(
            partial, commit_path, paths, files, settings, options, num_shards, compression,
            fingerprint, spm_path, spm_sha256, masking_vocab.manifest_entry(), beam_options, started)
        if gfile.exists(output_dir):
            old = f"{parent}/.{name}.old"
            if gfile.exists(old):
                gfile.rmtree(old)
            gfile.rename(output_dir, old)
            gfile.rename(partial, output_dir)
            gfile.rmtree(old)
        else:
            gfile.rename(partial, output_dir)
    except BaseException:
        if gfile.exists(partial):
            gfile.rmtree(partial)
        raise
    finally:
        if local and os.path.exists(lock_path):
            os.remove(lock_path)
    return manifest


def _finalize(partial, commit_path, paths, files, settings, options, num_shards, compression,
              fingerprint, spm_path, spm_sha256, vocabulary_entry, beam_options, started):
    """Raise input errors; rename committed shards, write empty ones, delete orphans; manifest."""
    import tensorflow as tf

    from albert_keras.data.schema import FEATURE_NAMES
    from albert_keras.data.writer import shard_file_name

    gfile = tf.io.gfile
    with gfile.GFile(commit_path) as f:
        commit = json.load(f)
    _, skips, digests, error = ranges_lib.merge_range_counts(paths, commit["ranges"])
    if error is not None:
        raise AlbertInputError(error)
    statistics = commit["statistics"]
    if statistics["instances"] == 0:
        raise AlbertInputError(
            f"{', '.join(paths)}: no training instances could be made (empty input, or every line "
            "skipped; see the skipped-line counts)")
    names = [shard_file_name(i, num_shards, compression == "GZIP") for i in range(num_shards)]
    counts = [0] * num_shards
    committed = set()
    for shard, temporary, count in commit["shards"]:
        gfile.rename(temporary, f"{partial}/{names[shard]}", overwrite=True)
        counts[shard] = count
        committed.add(shard)
    for shard in set(range(num_shards)) - committed:  # a shard no record was drawn for
        record_options = tf.io.TFRecordOptions(compression_type=compression or "")
        with tf.io.TFRecordWriter(f"{partial}/{names[shard]}", record_options):
            pass
    for leftover in gfile.glob(f"{partial}/.*"):  # retried or failed attempts, parts, the commit file
        if gfile.isdir(leftover):
            gfile.rmtree(leftover)
        else:
            gfile.remove(leftover)
    elapsed = time.monotonic() - started
    statistics.update(skips)
    input_bytes = sum(f[1] for f in files)
    statistics["input_bytes"] = input_bytes
    manifest = {
        "format_version": create_lib.MANIFEST_VERSION,
        "created_by": "albert-keras create-data (Apache Beam)",
        "settings": settings,
        "schema": {
            "features": list(FEATURE_NAMES),
            "max_seq_length": options.max_seq_length,
            "max_predictions_per_seq": options.max_predictions_per_seq,
        },
        "shards": [{"file": n, "instances": c} for n, c in zip(names, counts)],
        "statistics": statistics,
        "run": {
            "seconds": round(elapsed, 3),
            "mb_per_second": round(input_bytes * settings["dupe_factor"] / 1e6 / max(elapsed, 1e-9), 3),
            "runner": "beam",
            "beam_options": beam_options,
            "peak_rss_mb_main": round(create_lib.peak_rss_mb(), 1),
            "peak_rss_mb_worker": round(commit["peak_rss_mb_worker"], 1),
        },
        "fingerprint": fingerprint,
        "vocabulary": {"path": spm_path, "sha256": spm_sha256, **vocabulary_entry},
        "inputs": [{"path": f[0], "bytes": f[1], "sha256": digests.get(f[0])} for f in files],
    }
    with gfile.GFile(f"{partial}/{create_lib.MANIFEST_NAME}", "w") as f:
        f.write(json.dumps(manifest, indent=2))
    return manifest

