"""The examples' shared start without `--model`: a small randomly initialized ALBERT and a
SentencePiece vocabulary trained on the embedded corpus (nothing is downloaded).

The examples are scripts: `python examples/NAME.py` puts this folder on `sys.path`, so they import
this module by its file name.

Example:
```python
from _tiny_model import new_small_model
model_dir = new_small_model("runs/tiny")   # a pretrained directory: spiece.model + encoder
```
"""

import os


def new_small_model(out, vocab_size=1000, embedding_size=16, hidden_size=32, intermediate_size=64):
    """A randomly initialized 2-layer ALBERT with a vocabulary trained on the embedded corpus.

    Args:
        out: the folder for the corpus, the vocabulary and the pretrained directory (`out/init`).
        vocab_size: SentencePiece vocabulary size (also the model's).
        embedding_size, hidden_size, intermediate_size: the ALBERT sizes (2 heads, 2 layers,
            64 positions).

    Returns:
        The pretrained directory (`out/init`).

    Example:
    ```python
    model_dir = new_small_model("runs/tiny", vocab_size=2000, embedding_size=32, hidden_size=64,
                                intermediate_size=128)
    ```
    """
    from albert_keras import AlbertConfig, AlbertEncoder, save_pretrained
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.tokenization import train_sentencepiece

    os.makedirs(out, exist_ok=True)
    corpus = write_embedded_corpus(os.path.join(out, "corpus.txt"))
    spm = train_sentencepiece(corpus, os.path.join(out, "spiece.model"), vocab_size=vocab_size)
    config = AlbertConfig(vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden_size,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=intermediate_size,
                          max_position_embeddings=64)
    return save_pretrained(AlbertEncoder(config), os.path.join(out, "init"), spm_model=spm)
