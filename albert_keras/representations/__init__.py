"""Using what a model learned: fill-mask, sentence embeddings, semantic search, attention pictures.

- `fill_mask.fill_mask`: the masked-LM head's top pieces at each `[MASK]` (`albert-keras fill-mask`).
- `embeddings.embed` / `SentenceEmbedder`: mean-pooled, L2-normalized sentence embeddings, batched
  and length-bucketed (`albert-keras embed`).
- `search.build_index` / `search.search`: exact cosine search over embeddings on disk
  (`albert-keras index`, `albert-keras search`).
- `attention.attention_picture`: one heatmap per head of a layer (`albert-keras attention`; needs
  the `plot` extra).

Training embeddings for similarity (SimCSE) is a fine-tuning task: `albert_keras.tasks.embedding`.
See docs/representations.md.
"""

from albert_keras.lazy import lazy_exports

# `fill_mask` and `search` are both a module and its function, so they are not re-exported here
# (the submodule would shadow the function): `from albert_keras.representations.search import search`.

_EXPORTS = {
    "embed": "albert_keras.representations.embeddings",
    "SentenceEmbedder": "albert_keras.representations.embeddings",
    "build_index": "albert_keras.representations.search",
    "SearchIndex": "albert_keras.representations.search",
    "attention_maps": "albert_keras.representations.attention",
    "attention_picture": "albert_keras.representations.attention",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
