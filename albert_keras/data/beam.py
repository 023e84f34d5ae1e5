"""`create-data` on Apache Beam: the same records as the local run, from any number of machines.

The local path (`create.py`) reads the input in one process. Here the same work is an Apache Beam
pipeline, so it runs on the DirectRunner or on Dataflow, Flink and Spark:

    plan ranges (driver)      every input file is cut into byte ranges of about `split_bytes`,
                              each starting right after a blank line (`ranges.py`)
      -> count (per range)    `reader.iter_chunks` over the range: documents, skipped lines, errors
      -> plan (one element)   global index of each range's first document (a prefix sum)
      -> records (per range   `work.process_chunk`, the local workers' own function, with the
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
import random
import shlex
import time
import uuid

from albert_keras import io_utils
from albert_keras.data import driver
from albert_keras.data import ranges as ranges_lib
from albert_keras.data import reader as reader_lib
from albert_keras.data import work
from albert_keras.data.instances import Statistics
from albert_keras.data.settings import CreateDataSettings
from albert_keras.errors import AlbertInputError

BEAM_INSTALL_HINT = 'pip install -e ".[beam]"'
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
    def __init__(self, settings):
        self.reader_options, self.split_bytes = settings.reader_options(), settings.split_bytes

    def __call__(self, element):
        file_index, path, size, index, count = element
        yield ranges_lib.count_range(file_index, path, size, index, count, self.reader_options, self.split_bytes)


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
    (Statistics, peak MB) output; through the local path's own `work.process_chunk` with the same
    per-document seeds.

    Only the part names travel through the pipeline, never the records: a runner that keeps
    grouped data in memory (the DirectRunner keeps it in the driver and hands a whole group to one
    worker) then holds a few names per work item, so memory stays flat as the corpus grows.
    """

    def __init__(self, spm_proto, settings, parts_dir):
        self.spm_proto, self.settings, self.parts_dir = spm_proto, settings, parts_dir
        # Which pipeline set up this process's worker state: an in-process runner shares the
        # module with local runs and other pipelines.
        self.key = uuid.uuid4().hex

    def __call__(self, element):
        import tensorflow as tf
        from apache_beam import pvalue

        work.ensure_worker(self.spm_proto, self.settings, self.key)  # once per worker process
        path, size, start, end, base, dupe_pass = element
        stats, peak = Statistics(self.settings.ngram), 0.0
        seed, num_shards = self.settings.seed, self.settings.num_shards
        # Unique names per attempt: a retried bundle writes new parts; only the attempt whose
        # output the runner keeps is named downstream, the others are deleted at the end.
        attempt = uuid.uuid4().hex
        writers, paths, counts = {}, {}, {}
        try:
            with ranges_lib.range_file(path, start, end, size) as (local, _):
                chunks = reader_lib.iter_chunks([local], reader_lib.SkipLog(), **self.settings.reader_options())
                for first, documents, _ in chunks:
                    records, chunk_stats, peak = work.process_chunk((dupe_pass, base + first, documents))
                    stats.merge(chunk_stats)
                    # Seeded by the chunk's first global document: the same shards on every retry.
                    rng = random.Random(f"albert-keras/beam-shards/{seed}/{dupe_pass}/{base + first}")
                    for record in records:
                        shard = rng.randrange(num_shards)
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

    def __init__(self, directory, settings):
        self.directory, self.num_shards, self.compression = directory, settings.num_shards, settings.compression
        self.shuffle_buffer_size, self.seed = settings.shuffle_buffer_size, settings.seed

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


def _match_url(pattern):
    """A URL pattern's files through Beam's filesystems (gs://, s3://, hdfs:// with their extras),
    which is how the workers read them (`reader.list_inputs` lists local paths itself)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        metadata = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError; its message names the pattern
        raise AlbertInputError(f"{pattern}: cannot list it ({str(error).splitlines()[0]})") from None
    return [reader_lib.InputFile(m.path, m.size_in_bytes, [m.path, m.size_in_bytes, m.last_updated_in_seconds])
            for m in sorted(metadata, key=lambda m: m.path)]


def create_pretraining_data_beam(input_files, spm_model, output_dir, beam_options=None, *, settings=None,
                                 overwrite=False, **changes):
    """`create_pretraining_data` as an Apache Beam pipeline: the same multiset of records.

    Takes the local function's settings (a `CreateDataSettings` or its fields as keywords; not
    `workers` or `progress`: parallelism is the runner's) and writes the same layout:
    `output_dir/part-NNNNN-of-MMMMM.tfrecord[.gz]` and `manifest.json`. The records equal the
    local run's as a multiset; which shard holds a record and the order inside a shard differ.
    `official_random_negatives` is not offered: it draws from the local run's work chunks, which
    span files and are not reproduced here. Nor is `chinese_ref`: its files pair with input lines
    by their count from the start of the file, which a work unit starting mid-file does not know
    (`whole_word_segmenter="jieba"` works). `CreateDataSettings.check_runner` says so.

    Args:
        input_files: file paths or patterns, local or on any filesystem Beam reads (`gs://...`).
        spm_model: the ALBERT SentencePiece model (local or `gs://`); its bytes travel with the
            pipeline, so workers need no copy of it.
        output_dir: the output directory, local or `gs://` (written with `tf.io.gfile`). With a
            distributed runner it must be on storage every worker can write.
        beam_options: Beam pipeline options, a string (`"--runner=DataflowRunner --project=..."`)
            or a list; default: the DirectRunner.
        settings, overwrite, **changes: as in `create_pretraining_data`; `split_bytes` (a
            setting) is the target size of one work unit: a larger file is split at blank lines.

    Returns:
        The manifest dict (also written to `output_dir/manifest.json`).

    Raises:
        AlbertInputError: a bad setting or one the Beam runner cannot do, apache-beam missing,
            no file matching a pattern, binary or unusable input, a bad SentencePiece model, no
            instances, or an existing output with other settings (without `overwrite`).

    Example:
    ```python
    from albert_keras.data.beam import create_pretraining_data_beam
    manifest = create_pretraining_data_beam(
        ["corpus/*.txt"], "spiece.model", "tfrecords/demo",
        beam_options="--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing")
    ```
    """
    settings = CreateDataSettings.build(settings, **changes)
    settings.check_runner("beam")  # before the import: these say more than "install Beam"
    beam = import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    if isinstance(beam_options, str):
        beam_options = shlex.split(beam_options)
    beam_options = list(beam_options or [])
    if not any(o.startswith("--runner") for o in beam_options):
        beam_options.insert(0, "--runner=DirectRunner")

    plan = driver.prepare(input_files, spm_model, output_dir, settings, "beam", overwrite, match_url=_match_url)
    if plan.existing is not None:
        return plan.existing
    # Absolute local paths: the workers may run in other directories.
    paths = [io_utils.absolute(f.path) for f in plan.files]
    sizes = [f.size for f in plan.files]
    split_bytes = settings.split_bytes
    started = time.monotonic()
    with driver.staged_output(plan.output_dir) as partial:
        count_items = [
            (i, path, size, k, ranges_lib.num_ranges(size, split_bytes))
            for i, (path, size) in enumerate(zip(paths, sizes))
            for k in range(ranges_lib.num_ranges(size, split_bytes))
        ]
        commit_path = f"{partial}/{COMMIT_NAME}"
        parts_dir = f"{partial}/{PARTS_NAME}"
        io_utils.makedirs(parts_dir)
        with beam.Pipeline(options=PipelineOptions(beam_options)) as pipeline:
            infos = (
                pipeline
                | "Ranges" >> beam.Create(count_items)
                | "SpreadRanges" >> beam.Reshuffle()
                | "Count" >> beam.FlatMap(_CountRanges(settings))
                | "Plan" >> beam.combiners.ToList()
            )
            made = (
                infos
                | "WorkItems" >> beam.FlatMap(_PlanRecords(paths, sizes, settings.dupe_factor))
                | "SpreadWork" >> beam.Reshuffle()
                | "Records" >> beam.FlatMap(_MakeRecords(plan.spm_proto, settings, parts_dir))
                .with_outputs("stats", main="records")
            )
            stats = made.stats | "Statistics" >> beam.CombineGlobally(_MergeStats(settings.ngram))
            shards = (
                made.records
                | "ByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.FlatMap(_WriteShard(partial, settings))
            )
            _ = (
                pipeline
                | "One" >> beam.Create([None])
                | "Commit" >> beam.Map(
                    _WriteCommit(commit_path), beam.pvalue.AsList(shards), beam.pvalue.AsSingleton(stats),
                    beam.pvalue.AsSingleton(infos))
            )
        manifest = _finalize(plan, partial, commit_path, paths, beam_options, started)
    return manifest


def _finalize(plan, partial, commit_path, paths, beam_options, started):
    """Raise input errors; rename committed shards, write empty ones, delete orphans; manifest."""
    import tensorflow as tf

    from albert_keras.data.writer import shard_file_name

    gfile = tf.io.gfile
    num_shards, compression = plan.settings.num_shards, plan.settings.compression
    with gfile.GFile(commit_path) as f:
        commit = json.load(f)
    _, skips, digests, error = ranges_lib.merge_range_counts(paths, commit["ranges"])
    if error is not None:
        raise AlbertInputError(error)
    statistics = commit["statistics"]
    if statistics["instances"] == 0:
        raise driver.no_instances_error(paths)
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
    statistics.update(skips)
    run = driver.run_entry(plan, started, commit["peak_rss_mb_worker"], runner="beam", beam_options=beam_options)
    manifest = driver.build_manifest(plan, "albert-keras create-data (Apache Beam)", names, counts, statistics, run,
                                     [digests.get(path) for path in paths])
    driver.write_manifest(partial, manifest)
    return manifest
