"""What fine-tuning needs that is not a model: readers, preprocessing, post-processing, metrics.

One module per concern (readers, metrics, GLUE, SQuAD, tagging, sentence embeddings, ...); each
task family is a `FinetuneTask` (`tasks/base.py`) registered by `--task` name in
`tasks/registry.py`. Layering: `tasks` may import `config`, `tokenization` and `modeling`, never
`training`, `export` or the CLI.
"""
