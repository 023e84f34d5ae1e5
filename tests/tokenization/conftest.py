import random

import pytest

from albert_keras.corpus import embedded_corpus
from albert_keras.tokenization.training import train_sentencepiece


@pytest.fixture(scope="session")
def digit_model_path(tmp_path_factory):
    """A vocabulary with "<digit>," pieces, so the official digit-comma rewrite (and its offsets)
    actually fire; shared by the layer and offset tests."""
    rng = random.Random(0)
    words = [s for doc in embedded_corpus()[:10] for s in doc]
    texts = [
        " ".join(f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}, {rng.choice(words)}" for _ in range(3))
        for _ in range(400)
    ]
    path = tmp_path_factory.mktemp("digits") / "digits.model"
    return train_sentencepiece(iter(texts), path, vocab_size=400, character_coverage=1.0)
