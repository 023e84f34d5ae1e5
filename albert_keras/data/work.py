"""The work both create-data runners hand out: one chunk of documents -> serialized records.

The local runner's worker processes and the Beam runner's record stage call the same two
functions, with the same per-document seeds, which is why their records are the same.
Workers import only numpy and sentencepiece (no TensorFlow): the local runner spawns them.
"""

from albert_keras.data.instances import Statistics

# Per-process state, set once by `init_worker`; `owner` says who set it up (see `ensure_worker`).
STATE = {}


def init_worker(spm_proto, settings, owner=None):
    """Set up this process to make records: the masking vocabulary and the instance maker.

    Args:
        spm_proto: the vocabulary file's bytes (they travel with the work: workers need no copy).
        settings: the run's `CreateDataSettings`.
        owner: any key naming who set the state up (`ensure_worker`).
    """
    from albert_keras.data.instances import InstanceMaker
    from albert_keras.data.vocab import MaskingVocab
    from albert_keras.tokenization.vocabulary import load_vocabulary

    options = settings.instance_options()
    vocabulary = load_vocabulary(spm_proto, lowercase=settings.lowercase)
    vocab = MaskingVocab(vocabulary, official_random_replacement=settings.official_random_replacement,
                         whole_word_segmenter=settings.whole_word_segmenter,
                         reference_marks=bool(settings.chinese_ref))
    STATE.clear()
    STATE.update(vocab=vocab, maker=InstanceMaker(vocab, options), options=options, settings=settings, owner=owner)


def ensure_worker(spm_proto, settings, owner):
    """`init_worker` unless `owner` already set this process up (an in-process Beam runner shares
    the module with local runs and other pipelines, so the owner key tells them apart)."""
    if STATE.get("owner") != owner:
        init_worker(spm_proto, settings, owner)


def process_chunk(task):
    """One chunk of raw documents -> `(serialized records, Statistics, this process's peak MB)`.

    Args:
        task: `(dupe_pass, first_document_index, raw_documents[, references])`; `references`
            (`--chinese-ref`) per document, per line.
    """
    from albert_keras.corpus import split_sentences
    from albert_keras.data.driver import peak_rss_mb
    from albert_keras.data.instances import document_rng
    from albert_keras.data.schema import serialize_instances

    dupe_pass, first_document_index, raw_documents = task[:3]
    references = task[3] if len(task) > 3 else None
    vocab, maker, options, settings = (STATE[k] for k in ("vocab", "maker", "options", "settings"))
    paragraphs = settings.input_format == "paragraphs"
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
    for local_index, key in enumerate(keys):
        rng = document_rng(settings.seed, dupe_pass, key, options.official_nondeterministic)
        instances += maker.document_instances(documents, local_index, rng, stats)
    records = serialize_instances(instances, options.max_seq_length, options.max_predictions_per_seq)
    return records, stats, peak_rss_mb()


def noop():
    """A task that does nothing: submitted once per worker to start them all early."""
    return None
