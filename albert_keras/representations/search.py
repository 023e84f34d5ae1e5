"""Exact semantic search: cosine similarity over sentence embeddings stored on disk.

An index is a directory:

```
my_index/
  index.json        {"format": 1, "count": N, "dimension": H, "model": {"fingerprint": ..., "path": ...}, ...}
  embeddings.npy    float32 [N, H], L2-normalized rows (memory-mapped when searching)
  texts.jsonl       one JSON string per line: the texts, in row order
  offsets.npy       int64 [N + 1]: byte offset of each line of texts.jsonl (reads only the hits)
```

Search is exact: the query's embedding against every row, a block of rows at a time, so any index
that fits on disk can be searched in bounded memory. Results are deterministic: the same index and
query give the same hits in the same order, equal scores ordered by row. The index records the
model's fingerprint (`model_fingerprint`: weights, config, tokenizer); querying with any other
model is an error, because its embeddings live in another space.

No approximate-nearest-neighbour library is used: exact search over a memory-mapped float32 matrix
is one matrix product per block (docs/representations.md has the measured speed).
"""

import json
import os

import numpy as np

from albert_keras.errors import AlbertInputError

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
TEXTS_FILE = "texts.jsonl"
OFFSETS_FILE = "offsets.npy"
# Rows scored per block: 65,536 x 768 float32 is 192 MB.
DEFAULT_BLOCK_ROWS = 65536


def build_index(model, texts, output, batch_size=32, sequence_length=None, precision="auto", overwrite=False,
                progress=None):
    """Embed `texts` and write a search index directory (written under a temporary name, renamed when complete).

    Args:
        model: a pretrained directory, model object, or `SentenceEmbedder`.
        texts: list of strings (or a path of a text file, one text per line, blank lines skipped).
        output: the index directory.
        batch_size, sequence_length, precision: embedding settings (see `embed`).
        overwrite: replace an existing index.
        progress: progress on stderr (default: for long inputs).

    Returns:
        the `index.json` contents.

    Example:
    ```python
    build_index("runs/simcse", ["The for statement loops.", "Functions return values."], "runs/index")
    search("runs/index", "how do loops work?", k=1)[0]["text"]
    ```
    """
    from albert_keras.io_utils import atomic_directory
    from albert_keras.representations.embeddings import SentenceEmbedder
    from albert_keras.representations.embeddings import read_texts

    if isinstance(texts, (str, os.PathLike)):
        texts = read_texts(texts, skip_blank=True)
    texts = list(texts)
    if not texts:
        raise AlbertInputError("texts: nothing to index")
    embedder = model if isinstance(model, SentenceEmbedder) else SentenceEmbedder(
        model, sequence_length=sequence_length, precision=precision
    )
    with atomic_directory(output, overwrite=overwrite) as tmp:
        embedder.embed_to_file(texts, os.path.join(tmp, EMBEDDINGS_FILE), batch_size=batch_size, progress=progress)
        offsets = np.zeros([len(texts) + 1], np.int64)
        with open(os.path.join(tmp, TEXTS_FILE), "wb") as f:
            for i, text in enumerate(texts):
                line = (json.dumps(text, ensure_ascii=False) + "\n").encode("utf-8")
                f.write(line)
                offsets[i + 1] = offsets[i] + len(line)
        np.save(os.path.join(tmp, OFFSETS_FILE), offsets)
        info = {
            "format": FORMAT_VERSION,
            "count": len(texts),
            "dimension": embedder.dimension,
            "metric": "cosine",
            "model": {"fingerprint": embedder.fingerprint, "path": embedder.source},
            "lowercase": embedder.lowercase,
            "sequence_length": embedder.predictor.packer.sequence_length,
        }
        with open(os.path.join(tmp, INDEX_FILE), "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
    return info


class SearchIndex:
    """An index directory opened for searching (embeddings memory-mapped, texts read per hit).

    Args:
        path: the directory `build_index` wrote.

    Example:
    ```python
    index = SearchIndex("runs/index")
    ids, scores = index.nearest(query_vectors, k=5)
    index.text(int(ids[0, 0]))
    ```
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        info_path = os.path.join(self.path, INDEX_FILE)
        if not os.path.isfile(info_path):
            raise AlbertInputError(f"{self.path}: not a search index (no {INDEX_FILE}; build one with albert-keras index)")
        try:
            with open(info_path) as f:
                self.info = json.load(f)
        except (OSError, ValueError) as error:
            raise AlbertInputError(f"{info_path}: unreadable ({error})") from None
        if self.info.get("format") != FORMAT_VERSION:
            raise AlbertInputError(f"{info_path}: format {self.info.get('format')!r}, expected {FORMAT_VERSION}")
        try:
            self.embeddings = np.load(os.path.join(self.path, EMBEDDINGS_FILE), mmap_mode="r")
            self.offsets = np.load(os.path.join(self.path, OFFSETS_FILE))
        except (OSError, ValueError) as error:
            raise AlbertInputError(f"{self.path}: damaged index ({error})") from None
        expected = (self.info["count"], self.info["dimension"])
        if self.embeddings.shape != expected or self.embeddings.dtype != np.float32 or len(self.offsets) != expected[0] + 1:
            raise AlbertInputError(
                f"{self.path}: damaged index ({EMBEDDINGS_FILE} is {self.embeddings.dtype} {self.embeddings.shape}, "
                f"{INDEX_FILE} says float32 {expected})"
            )

    def __len__(self):
        return int(self.info["count"])

    @property
    def fingerprint(self):
        return self.info["model"]["fingerprint"]

    def check_model(self, embedder):
        """Raise `AlbertInputError` unless `embedder`'s model is the one the index was built with."""
        if embedder.fingerprint != self.fingerprint:
            built = self.info["model"].get("path") or "a model object"
            given = embedder.source or "a model object"
            raise AlbertInputError(
                f"{self.path}: built with another model ({built}, fingerprint {self.fingerprint[:12]}) "
                f"than the query's ({given}, fingerprint {embedder.fingerprint[:12]}); "
                "rebuild the index with this model or query with the index's"
            )

    def text(self, row):
        """The text of row `row`."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        with open(os.path.join(self.path, TEXTS_FILE), "rb") as f:
            f.seek(start)
            return json.loads(f.read(end - start).decode("utf-8"))

    def nearest(self, queries, k=5, block_rows=DEFAULT_BLOCK_ROWS):
        """Exact top-`k` rows by cosine for each query vector.

        Args:
            queries: float32 `[Q, H]`, L2-normalized.
            k: hits per query (at most the index size).
            block_rows: rows scored at a time (bounds memory).

        Returns:
            `(ids int64 [Q, k], scores float32 [Q, k])`, best first; equal scores by lower row.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.embeddings.shape[1]:
            raise AlbertInputError(f"queries: expected [Q, {self.embeddings.shape[1]}], got {list(queries.shape)}")
        if k < 1:
            raise AlbertInputError(f"k: must be at least 1, got {k}")
        k = min(int(k), len(self))
        best_ids = [np.zeros([0], np.int64) for _ in queries]
        best_scores = [np.zeros([0], np.float32) for _ in queries]
        for start in range(0, len(self), block_rows):
            block = np.asarray(self.embeddings[start : start + block_rows])
            scores = queries @ block.T  # [Q, rows]
            keep = min(k, block.shape[0])
            # The keep-th largest score of each query: every row scoring at least that is a
            # candidate, so ties at the cut are all kept and ordered by row below.
            cut = np.partition(scores, block.shape[0] - keep, axis=1)[:, block.shape[0] - keep]
            for q in range(len(queries)):
                rows = np.flatnonzero(scores[q] >= cut[q])
                ids = np.concatenate([best_ids[q], rows + start])
                values = np.concatenate([best_scores[q], scores[q, rows]])
                order = np.lexsort((ids, -values))[:k]
                best_ids[q], best_scores[q] = ids[order], values[order]
        return np.stack(best_ids), np.stack(best_scores)


def search(index, query, k=5, model=None, block_rows=DEFAULT_BLOCK_ROWS):
    """The `k` indexed texts most similar to `query` (exact cosine search).

    Args:
        index: an index directory or `SearchIndex`.
        query: a string, or a list of strings.
        k: hits per query.
        model: the model to embed the query with (directory, model object or `SentenceEmbedder`);
            default: the directory the index was built from. It must be the index's model.
        block_rows: rows scored at a time.

    Returns:
        for a string, a list of `{"rank", "id", "score", "text"}` dicts, best first; for a list of
        strings, one such list per query.

    Raises:
        AlbertInputError: another model than the index's, or the index's model directory is gone.

    Example:
    ```python
    for hit in search("runs/index", "how do loops work?", k=3):
        print(f"{hit['score']:.3f}  {hit['text']}")
    ```
    """
    from albert_keras.representations.embeddings import SentenceEmbedder

    index = index if isinstance(index, SearchIndex) else SearchIndex(index)
    if model is None:
        model = index.info["model"].get("path")
        if model is None:
            raise AlbertInputError(f"{index.path}: built from a model object; pass the model to search with")
        if not os.path.isdir(model):
            raise AlbertInputError(f"{index.path}: its model directory {model} is gone; pass the model to search with")
    embedder = model if isinstance(model, SentenceEmbedder) else SentenceEmbedder(
        model, sequence_length=index.info.get("sequence_length")
    )
    index.check_model(embedder)
    single = isinstance(query, str)
    queries = [query] if single else list(query)
    ids, scores = index.nearest(embedder.embed(queries, progress=False), k=k, block_rows=block_rows)
    results = [
        [
            {"rank": rank + 1, "id": int(row), "score": float(score), "text": index.text(int(row))}
            for rank, (row, score) in enumerate(zip(row_ids, row_scores))
        ]
        for row_ids, row_scores in zip(ids, scores)
    ]
    return results[0] if single else results
