"""Sentence embeddings of raw text: mean over real tokens, L2-normalized, batched and bucketed.

The numbers are the exported `sentence_embedding` signature's (`albert_keras.export.signatures`),
computed by `albert_keras.export.inference.Predictor`: texts sorted by length and batched with
their neighbours, each batch padded to its own longest member, bfloat16 only where the hardware
runs it natively. Large inputs go through in chunks, so memory stays bounded and `embed_to_file`
streams rows to disk.
"""

import hashlib
import json
import os
import sys
import time

import numpy as np

from albert_keras.errors import AlbertInputError

# Texts per `Predictor.predict` call: large enough for length bucketing to pay, small enough that
# a chunk's outputs are a few MB.
CHUNK_BATCHES = 64


class _Progress:
    """Texts embedded so far, on stderr.

    Written here rather than with `keras.utils.Progbar`, which emits ANSI escape codes even when
    the output is a file or a pipe (it treats every POSIX system as a dynamic display). On a
    terminal the line is redrawn in place; otherwise a plain line is written every 10 seconds
    and at the end.
    """

    def __init__(self, total, enabled, stream=None):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self.last = self.start

    def update(self, done):
        if not self.enabled:
            return
        now = time.monotonic()
        final = done >= self.total
        if not final and now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        width = 24
        bar = "#" * int(width * done / max(self.total, 1))
        line = f"embed [{bar:<{width}}] {done:,}/{self.total:,} texts | {rate:,.0f} texts/s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _is_directory(model):
    return isinstance(model, (str, os.PathLike)) and os.path.isdir(os.fspath(model))


def _encoder_like(model):
    """The model itself when it serves `sentence_embedding` (an encoder kind), else its encoder."""
    from albert_keras.export import signatures

    try:
        if signatures.model_kind(model) == signatures.ENCODER:
            return model
    except AlbertInputError:
        pass  # a pretrainer: not a serving kind, but it has an encoder
    if hasattr(model, "encoder"):
        return model.encoder
    raise AlbertInputError(f"model: a {type(model).__name__} has no ALBERT encoder")


def model_fingerprint(encoder, spm_proto, lowercase):
    """sha256 over what decides an embedding: config, encoder weights, SentencePiece model, casing.

    Computed from the weights' values, so a model saved anywhere (or held in memory) has the same
    fingerprint as its copy; any retraining changes it.

    Example:
    ```python
    model_fingerprint(encoder, open("spiece.model", "rb").read(), lowercase=True)[:12]
    ```
    """
    config = getattr(encoder, "config", None) or getattr(getattr(encoder, "encoder", None), "config", None)
    digest = hashlib.sha256()
    digest.update(json.dumps(config.to_dict() if config is not None else {}, sort_keys=True).encode())
    for weight in encoder.weights:
        value = np.ascontiguousarray(np.asarray(weight, dtype=np.float32))
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    digest.update(hashlib.sha256(spm_proto).digest())
    digest.update(b"lowercase" if lowercase else b"cased")
    return digest.hexdigest()


class SentenceEmbedder:
    """Embeds raw text with one model: loads it once, then `embed` / `embed_to_file` as often as needed.

    Args:
        model: a pretrained directory (any kind: encoder, pretrainer, task model, SimCSE-trained
            `AlbertSentenceEncoder`; task models and pretrainers embed with their encoder), or a
            model object.
        spm_model: the vocabulary (a `Vocabulary`, a path or bytes); default: the directory's
            (or a `from_pretrained` model's own preprocessor's).
        sequence_length: longest packed sequence (default: the directory's tokenizer.json, else
            the model's maximum).
        precision: `"auto"`, `"float32"` or `"bfloat16"` (see `Predictor`).
        lowercase: default: the directory's tokenizer.json (True without one).

    Attributes:
        fingerprint: `model_fingerprint` of the encoder and tokenizer.
        dimension: embedding width. source: the directory, or None for a model object.

    Example:
    ```python
    embedder = SentenceEmbedder("runs/simcse")
    vectors = embedder.embed(["The for statement loops.", "A while loop repeats."])
    float(vectors[0] @ vectors[1])  # cosine similarity
    ```
    """

    def __init__(self, model, spm_model=None, sequence_length=None, precision="auto", lowercase=None):
        from albert_keras.export.inference import Predictor

        self.source = None
        from albert_keras.tokenization.vocabulary import load_vocabulary
        from albert_keras.tokenization.vocabulary import read_tokenizer_settings
        from albert_keras.tokenization.vocabulary import vocabulary_path

        settings = {"lowercase": None, "sequence_length": None}
        if _is_directory(model):
            from albert_keras.modeling.pretrained import load_pretrained

            self.source = os.path.abspath(os.fspath(model))
            settings = read_tokenizer_settings(model)
            if spm_model is None:
                if vocabulary_path(model) is None:
                    raise AlbertInputError(f"{model}: no vocabulary; embedding raw text needs one (spiece.model or vocab.txt)")
                spm_model = load_vocabulary(model)
            model = load_pretrained(model)
        elif isinstance(model, (str, os.PathLike)):
            raise AlbertInputError(f"{model}: pretrained directory not found")
        elif spm_model is None and getattr(model, "preprocessor", None) is not None:
            tokenizer = getattr(model.preprocessor, "tokenizer", model.preprocessor)
            spm_model = tokenizer.vocabulary
            settings = {"lowercase": tokenizer.lowercase, "sequence_length": tokenizer.sequence_length}
        if spm_model is None:
            raise AlbertInputError("spm_model: needed to embed raw text with a model object")
        vocabulary = load_vocabulary(spm_model, lowercase=settings["lowercase"] if lowercase is None else lowercase)
        self.lowercase = vocabulary.lowercase
        self.model = _encoder_like(model)
        self.fingerprint = model_fingerprint(self.model, vocabulary.data, self.lowercase)
        self.dimension = int(self.model.encoder.config.hidden_size if hasattr(self.model, "encoder")
                             else self.model.config.hidden_size)
        self.predictor = Predictor(
            self.model, vocabulary, sequence_length=sequence_length or settings["sequence_length"],
            precision=precision, lowercase=self.lowercase,
        )

    def iter_embeddings(self, texts, batch_size=32, progress=None):
        """Yield float32 `[n, H]` blocks of embeddings, in input order, a chunk at a time."""
        if batch_size < 1:
            raise AlbertInputError(f"batch_size: must be at least 1, got {batch_size}")
        texts = list(texts)
        chunk = batch_size * CHUNK_BATCHES
        bar = _Progress(len(texts), enabled=len(texts) > chunk if progress is None else progress)
        for start in range(0, len(texts), chunk):
            outputs = self.predictor.predict(texts[start : start + chunk], batch_size=batch_size)
            yield outputs["sentence_embedding"].astype(np.float32, copy=False)
            bar.update(min(start + chunk, len(texts)))

    def embed(self, texts, batch_size=32, progress=None):
        """Embeddings of `texts` (list of str), float32 `[N, H]`, rows L2-normalized.

        Args:
            texts: strings.
            batch_size: sequences per model call.
            progress: show progress on stderr (default: when there is more than one chunk).
        """
        blocks = list(self.iter_embeddings(texts, batch_size=batch_size, progress=progress))
        return np.concatenate(blocks) if blocks else np.zeros([0, self.dimension], np.float32)

    def embed_to_file(self, texts, path, batch_size=32, progress=None):
        """Write the embeddings of `texts` as a float32 `.npy` file, streamed, renamed when complete.

        Returns:
            the path.
        """
        from albert_keras.io_utils import atomic_write

        texts = list(texts)
        with atomic_write(path, "wb") as f:
            header = {"descr": "<f4", "fortran_order": False, "shape": (len(texts), self.dimension)}
            np.lib.format.write_array_header_1_0(f, header)
            for block in self.iter_embeddings(texts, batch_size=batch_size, progress=progress):
                f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        return os.fspath(path)


def embed(model, texts, batch_size=32, sequence_length=None, precision="auto", spm_model=None, progress=None):
    """Sentence embeddings of raw texts: mean over real tokens, L2-normalized, float32 `[N, H]`.

    Args:
        model: a pretrained directory or model object (see `SentenceEmbedder`).
        texts: list of strings.
        batch_size: sequences per model call (texts of similar length are batched together; the
            output keeps the input order).
        sequence_length: longest packed sequence; longer texts are truncated.
        precision: `"auto"`, `"float32"` or `"bfloat16"`.
        spm_model: SentencePiece model for a model object.
        progress: progress on stderr (default: only for long inputs).

    Example:
    ```python
    vectors = embed("runs/simcse", ["The for statement loops.", "A while loop repeats."])
    vectors.shape  # (2, H); vectors @ vectors.T are cosine similarities
    ```
    """
    embedder = SentenceEmbedder(model, spm_model=spm_model, sequence_length=sequence_length, precision=precision)
    return embedder.embed(texts, batch_size=batch_size, progress=progress)


def read_texts(path, skip_blank=False):
    """The lines of a UTF-8 text file, one text per line.

    Args:
        path: the file.
        skip_blank: drop blank lines; otherwise a blank line is an error (its row would be
            meaningless).

    Raises:
        AlbertInputError: missing, unreadable or empty file; a blank line (naming it).

    Example:
    ```python
    texts = read_texts("sentences.txt")
    ```
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise AlbertInputError(f"{path}: is a directory, expected a text file") from None
    except UnicodeDecodeError as error:
        raise AlbertInputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are just the end of the file
    if skip_blank:
        lines = [line for line in lines if line.strip()]
    else:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                raise AlbertInputError(f"{path} line {number}: blank line (one text per line; row i is line i)")
    if not lines:
        raise AlbertInputError(f"{path}: empty file, no texts to embed")
    return lines


def embed_file(model, input_path, output_path, batch_size=32, sequence_length=None, precision="auto", progress=None):
    """`albert-keras embed`: embed every line of `input_path` into a float32 `.npy` file.

    Row `i` of the output is line `i + 1` of the input. The output is written under a temporary
    name and renamed when complete.

    Returns:
        `(number of texts, embedding width)`.

    Example:
    ```python
    embed_file("runs/simcse", "sentences.txt", "sentences.npy")  # (1234, 768)
    ```
    """
    texts = read_texts(input_path)
    embedder = SentenceEmbedder(model, sequence_length=sequence_length, precision=precision)
    embedder.embed_to_file(texts, output_path, batch_size=batch_size, progress=progress)
    return len(texts), embedder.dimension
