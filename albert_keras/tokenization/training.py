"""Training ALBERT SentencePiece vocabularies (`train_sentencepiece`).

Also importable as `albert_keras.tokenization.train_sentencepiece`.
"""

import io
import os
import re
import sys

from albert_keras.errors import AlbertInputError
from albert_keras.io_utils import atomic_write
from albert_keras.tokenization.sentencepiece import (
    CLS_PIECE,
    MASK_PIECE,
    OFFICIAL_USER_DEFINED_SYMBOLS,
    PAD_ID,
    PAD_PIECE,
    SEP_PIECE,
    SPECIAL_PIECES,
    UNK_ID,
    UNK_PIECE,
    load_sentencepiece,
    preprocess_text,
)


def _looks_like_files(texts_or_files):
    if isinstance(texts_or_files, (str, os.PathLike)):
        return [texts_or_files]
    if isinstance(texts_or_files, (list, tuple)) and texts_or_files:
        if all(isinstance(item, os.PathLike) for item in texts_or_files):
            return list(texts_or_files)
        if all(isinstance(item, (str, os.PathLike)) for item in texts_or_files) and any(
            os.path.isfile(os.fspath(item)) for item in texts_or_files
        ):
            return list(texts_or_files)
    return None


def _iter_file_lines(paths):
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise AlbertInputError(f"{path}: input file not found")
        with open(path, "rb") as f:
            for line_number, raw in enumerate(f, start=1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise AlbertInputError(
                        f"{path}:{line_number}: not valid UTF-8 (byte {error.start}); "
                        f"convert the file to UTF-8"
                    ) from None


def _iter_text_lines(texts):
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise AlbertInputError(f"training text must be str, got {type(text).__name__}")
        yield from text.splitlines()


def _fit_line(line, max_bytes):
    """Cut a line longer than `max_bytes` (UTF-8) into sentences, then into word runs that fit.

    SentencePiece silently skips training lines longer than its `max_sentence_length`, which
    would drop whole paragraph-per-line corpora; cutting them keeps their text.
    """
    if len(line) * 4 <= max_bytes or len(line.encode("utf-8")) <= max_bytes:
        yield line
        return
    from albert_keras.corpus import split_sentences

    for sentence in split_sentences(line):
        if len(sentence.encode("utf-8")) <= max_bytes:
            yield sentence
            continue
        chunk, size = [], 0
        for word in sentence.split():
            length = len(word.encode("utf-8")) + 1
            if chunk and size + length > max_bytes:
                yield " ".join(chunk)
                chunk, size = [], 0
            chunk.append(word)
            size += length
        if chunk:
            yield " ".join(chunk)


class _Sentences:
    """Normalised sentences for SentencePiece; counts them and shows a counter if verbose.

    SentencePiece wraps exceptions raised by its `sentence_iterator` into a RuntimeError with a
    traceback in the message, so an input error is caught here, iteration stops, and the caller
    re-raises `self.error` as it was.
    """

    def __init__(self, lines, lowercase, max_bytes, verbose):
        self.lines, self.lowercase, self.max_bytes, self.verbose = lines, lowercase, max_bytes, verbose
        self.sentences = 0
        self.bytes = 0
        self.error = None

    def __iter__(self):
        try:
            yield from self._sentences()
        except AlbertInputError as error:
            self.error = error

    def _sentences(self):
        for line in self.lines:
            # Cut before normalising (sentence boundaries need case), and again after (NFKD can
            # make text longer).
            for part in _fit_line(line, self.max_bytes):
                for text in _fit_line(preprocess_text(part, self.lowercase), self.max_bytes):
                    if text:
                        yield self._count(text)
        if self.verbose:
            print(f"\rread {self.sentences:,} sentences, {self.bytes / 1e6:,.1f} MB", file=sys.stderr)

    def _count(self, text):
        self.sentences += 1
        self.bytes += len(text)
        if self.verbose and self.sentences % 100_000 == 0:
            print(
                f"\rread {self.sentences:,} sentences, {self.bytes / 1e6:,.1f} MB",
                end="", file=sys.stderr, flush=True,
            )
        return text


def train_sentencepiece(
    texts_or_files,
    output_path,
    vocab_size=30000,
    lowercase=True,
    model_type="unigram",
    character_coverage=0.99995,
    user_defined_symbols=OFFICIAL_USER_DEFINED_SYMBOLS,
    input_sentence_size=10_000_000,
    max_sentence_length=4192,
    num_threads=1,
    seed=12345,
    verbose=False,
):
    """Train a SentencePiece model with ALBERT's special ids, as the released models were.

    Every line is normalised with `preprocess_text` (so the vocabulary sees the text the model
    will see) and empty lines are skipped. The SentencePiece flags are the official ones (§5.2 of
    the reference): `pad_id=0 unk_id=1 bos_id=-1 eos_id=-1 control_symbols=[CLS],[SEP],[MASK]`
    plus the official user-defined symbols at ids 5-12, unigram, `character_coverage=0.99995`,
    shuffled sampling of at most `input_sentence_size` sentences. `[CLS]`/`[SEP]`/`[MASK]` are
    control symbols: SentencePiece never produces them from text.

    Training is deterministic for the same inputs, arguments and `num_threads` (SentencePiece's
    result depends on the thread count, so the default is 1; raise it for big corpora).
    `output_path` and the matching `.vocab` file (piece and score per line) are written
    atomically.

    Args:
        texts_or_files: a file path, a list of file paths (UTF-8, one sentence or paragraph per
            line), or an iterable of strings (each may hold several lines). A list of `str` is
            taken as files if any of them names an existing file; pass a generator to force text.
        output_path: where to write the `.model` file.
        vocab_size: number of pieces, including the 5 special ones.
        lowercase: lowercase while normalising (the English ALBERT models are uncased).
        model_type: SentencePiece model type (`"unigram"` as ALBERT, or `"bpe"`).
        character_coverage: fraction of characters covered by the vocabulary.
        user_defined_symbols: pieces always cut out as single tokens (ids from 5 on).
        input_sentence_size: at most this many sentences are sampled for training.
        max_sentence_length: the longest training sentence in bytes. Longer lines are cut into
            sentences (`split_sentences`), then into runs of words, instead of being skipped as
            SentencePiece would skip them.
        num_threads: training threads.
        seed: SentencePiece's random seed (sentence sampling).
        verbose: show SentencePiece's log and a sentence counter on stderr.

    Returns:
        `output_path` as a string.

    Raises:
        AlbertInputError: missing or non-UTF-8 input, no text, or a vocabulary too large for the
            corpus.

    Example:
    >>> from albert_keras.corpus import embedded_corpus
    >>> texts = (s for doc in embedded_corpus() for s in doc)
    >>> path = train_sentencepiece(texts, "/tmp/demo.model", vocab_size=500)  # doctest: +SKIP
    """
    import sentencepiece

    output_path = os.fspath(output_path)
    files = _looks_like_files(texts_or_files)
    for path in files or ():
        if not os.path.isfile(os.fspath(path)):  # before SentencePiece starts logging
            raise AlbertInputError(f"{os.fspath(path)}: input file not found")
    lines = _iter_file_lines(files) if files is not None else _iter_text_lines(texts_or_files)
    sentences = _Sentences(lines, lowercase, max_sentence_length, verbose)
    symbols = [s for s in user_defined_symbols if s not in SPECIAL_PIECES]
    model = io.BytesIO()
    sentencepiece.set_random_generator_seed(seed)
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            eos_id=-1,
            pad_piece=PAD_PIECE,
            unk_piece=UNK_PIECE,
            control_symbols=[CLS_PIECE, SEP_PIECE, MASK_PIECE],
            user_defined_symbols=symbols,
            character_coverage=character_coverage,
            shuffle_input_sentence=True,
            input_sentence_size=input_sentence_size,
            max_sentence_length=max_sentence_length,
            num_threads=num_threads,
            minloglevel=0 if verbose else 2,
        )
    except RuntimeError as error:
        if sentences.error is not None:
            raise sentences.error from None
        message = str(error)
        if sentences.sentences == 0:
            raise AlbertInputError("no training text: every input line is empty") from None
        if "sentences_.empty()" in message:
            raise AlbertInputError(
                f"no usable training text: all {sentences.sentences:,} sentences are single words "
                f"longer than max_sentence_length ({max_sentence_length} bytes)"
            ) from None
        too_high = re.search(r"Vocabulary size too high \((\d+)\).*<= (\d+)", message)
        if too_high:
            raise AlbertInputError(
                f"vocab_size {too_high.group(1)} is too large for this corpus "
                f"({sentences.sentences:,} sentences): SentencePiece can make at most "
                f"{too_high.group(2)} pieces from it; pass a smaller --vocab-size or more text"
            ) from None
        if "Vocabulary size" in message or "vocab_size" in message:
            detail = message.rsplit("] ", 1)[-1].strip()
            raise AlbertInputError(f"vocab_size {vocab_size} does not fit: {detail}") from None
        raise
    if sentences.error is not None:
        raise sentences.error
    proto = model.getvalue()
    sp = load_sentencepiece(proto)  # guards against a flag change breaking ALBERT's ids
    with atomic_write(output_path, "wb") as f:
        f.write(proto)
    vocab_path = (output_path[: -len(".model")] if output_path.endswith(".model") else output_path) + ".vocab"
    lines = (f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.get_piece_size()))
    with atomic_write(vocab_path, "wb") as f:
        f.write("".join(lines).encode("utf-8"))
    return output_path
