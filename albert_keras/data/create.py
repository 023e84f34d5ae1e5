"""`create_pretraining_data`: text files -> sharded ALBERT pretraining TFRecords + manifest.json.

The pipeline, streaming end to end:

    reader.iter_chunks (main process: read, validate, cut into ~1 MB chunks of documents)
      -> workers (normalize, tokenize in batch, SOP pairs, masking, serialize: `work.process_chunk`)
      -> ShuffleBuffer (bounded) -> ShardedWriter (temporary names) -> manifest.json -> rename.

Determinism: chunk boundaries depend only on the input, each document's RNG is keyed by
(seed, dupe pass, document index), results are consumed in chunk order, and the buffer and
shard RNGs are seeded. So the records are identical for any number of workers.

Crash safety and reruns: everything is written to a hidden sibling directory
`.<name>.partial` (shards under temporary names even there) and renamed onto the output directory
only when complete. Rerunning over a finished output with the same inputs, model and settings
does nothing; with different ones it is an error unless `overwrite=True`. Those steps, the
settings (`settings.CreateDataSettings`) and the manifest are the Beam runner's too (`driver.py`).
"""

import collections
import sys
import time

from albert_keras.data import driver
from albert_keras.data import reader as reader_lib
from albert_keras.data import work
from albert_keras.data.instances import Statistics
from albert_keras.data.settings import CreateDataSettings


def create_pretraining_data(input_files, spm_model, output_dir, *, settings=None, overwrite=False, progress=False,
                            **changes):
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
        settings: a `CreateDataSettings` (default: its defaults), or give its fields as keywords
            (`changes`), which are applied to it; they are checked once, there.
        overwrite: replace an existing output made with other inputs or settings.
        progress: show a progress bar on stderr.
        **changes: `CreateDataSettings` fields: the official flags (`max_seq_length`,
            `max_predictions_per_seq`, `dupe_factor`, `masked_lm_prob`, `short_seq_prob`, `ngram`,
            `favor_shorter_ngram`, `do_whole_word_mask`), `lowercase`, `seed` (the same inputs and
            seed give the same records), `workers` (processes that create instances; 1 = in this
            process), `num_shards`, `shuffle_buffer_size`, `compression`, `input_format`,
            `on_bad_line`, the memory bounds, the `official_*` switches, and:
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

    Returns:
        The manifest dict (also written to `output_dir/manifest.json`).

    Raises:
        AlbertInputError: a bad setting, missing/binary inputs, a bad vocabulary, no instances,
            or an existing output with other settings (without `overwrite`).

    Example:
    ```python
    from albert_keras.data.create import create_pretraining_data
    manifest = create_pretraining_data(["corpus.txt"], "spiece.model", "tfrecords/demo",
                                       max_seq_length=128, dupe_factor=2, workers=2)
    print(manifest["statistics"]["instances"])
    ```
    """
    settings = CreateDataSettings.build(settings, **changes)
    plan = driver.prepare(input_files, spm_model, output_dir, settings, "local", overwrite)
    if plan.existing is not None:
        if progress:
            print(f"create-data: {plan.output_dir} is up to date ({plan.existing['statistics']['instances']} "
                  "instances)", file=sys.stderr)
        return plan.existing
    with driver.staged_output(plan.output_dir) as partial:
        manifest = _run(plan, partial, progress)
        driver.write_manifest(partial, manifest)
    return manifest


def _run(plan, directory, progress):
    """Read, make and write every record of `plan` into `directory`; returns the manifest."""
    from albert_keras.data.writer import ShardedWriter
    from albert_keras.data.writer import ShuffleBuffer

    settings, workers = plan.settings, plan.settings.workers
    input_files = [f.path for f in plan.files]
    references = plan.references
    started = time.monotonic()
    stats = Statistics(settings.ngram)
    skips = reader_lib.SkipLog()
    digests = {}
    bar = driver.Progress(progress, sum(f.size for f in plan.files) * settings.dupe_factor)
    buffer = ShuffleBuffer(settings.shuffle_buffer_size, settings.seed)
    pool = None
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        # "spawn": the parent has TensorFlow loaded (for the TFRecord writer) and forking a
        # multi-threaded process is unsafe; workers import only numpy and sentencepiece.
        # A process pool executor (not multiprocessing.Pool): a worker that dies (OOM killer)
        # surfaces as BrokenProcessPool instead of a hang.
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=work.init_worker,
            initargs=(plan.spm_proto, settings),
        )
    else:
        work.init_worker(plan.spm_proto, settings)
    peaks = [0.0]
    bytes_done = 0
    try:
        if pool is not None:
            # Start every worker now, before the writer imports TensorFlow into this process.
            for future in [pool.submit(work.noop) for _ in range(workers)]:
                future.result()
        with ShardedWriter(directory, settings.num_shards, settings.seed, settings.compression) as writer:
            def consume(result):
                records, chunk_stats, worker_peak = result
                peaks[0] = max(peaks[0], worker_peak)
                stats.merge(chunk_stats)
                for record in records:
                    out = buffer.push(record)
                    if out is not None:
                        writer.write(out)

            pending = collections.deque()
            for dupe_pass in range(settings.dupe_factor):
                pass_skips = skips if dupe_pass == 0 else reader_lib.SkipLog()
                chunks = reader_lib.iter_chunks(
                    input_files, pass_skips, digests=digests if dupe_pass == 0 else None,
                    line_keys=references is not None, **settings.reader_options(),
                )
                if references is not None:
                    from albert_keras.data.chinese_ref import with_references

                    chunks = with_references(chunks, references, input_files, pass_skips)
                for first_document, documents, size, *refs in chunks:
                    task = (dupe_pass, first_document, documents, *refs)
                    if pool is None:
                        consume(work.process_chunk(task))
                    else:
                        # At most 2 chunks per worker in flight: memory stays bounded.
                        pending.append((pool.submit(work.process_chunk, task), size))
                        while len(pending) >= 2 * workers:
                            result, done = pending.popleft()
                            consume(result.result())
                            bytes_done += done
                            bar.update(stats, bytes_done, dupe_pass, settings.dupe_factor)
                        continue
                    bytes_done += size
                    bar.update(stats, bytes_done, dupe_pass, settings.dupe_factor)
            while pending:
                result, done = pending.popleft()
                consume(result.result())
                bytes_done += done
            for record in buffer.drain():
                writer.write(record)
            if stats.counts["instances"] == 0:
                raise driver.no_instances_error(input_files)
            bar.update(stats, bytes_done, settings.dupe_factor - 1, settings.dupe_factor, final=True)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    statistics = stats.to_dict()
    statistics.update(skips.to_dict())
    run = driver.run_entry(plan, started, peaks[0] if pool is not None else None, workers=workers)
    return driver.build_manifest(
        plan, "albert-keras create-data", writer.names, writer.counts, statistics, run,
        [None if digests.get(path) is None else digests[path].hexdigest() for path in input_files])
