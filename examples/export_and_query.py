"""Export a model as a SavedModel, then query it with only `tensorflow` and `tensorflow_text`.

The exported signature takes raw text: normalization, SentencePiece and packing are inside the
graph, so a server needs neither this package nor Keras. The query runs in a fresh Python process
to show exactly that.

    python examples/export_and_query.py --model runs/quickstart/finetune/pretrained \
        "Lists are mutable sequences." "A tuple cannot be changed."

Without `--model` it exports a tiny ALBERT with random weights and a vocabulary trained on the
embedded corpus (shapes and plumbing only: its answers mean nothing).
"""

import argparse
import json
import os
import subprocess
import sys

# What a serving process runs: tensorflow and tensorflow_text (its ops), nothing else.
QUERY = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the SentencePiece and normalization ops)

model = tf.saved_model.load(sys.argv[1])
serve = model.signatures["serving_default"]
outputs = serve(text=tf.constant(sys.argv[2:]))
answer = {name: value.numpy().tolist() for name, value in outputs.items()}
answer["signatures"] = sorted(model.signatures)
answer["albert_keras_imported"] = "albert_keras" in sys.modules or "keras_hub" in sys.modules
print(json.dumps(answer, default=lambda b: b.decode() if isinstance(b, bytes) else str(b)))
"""


def tiny_model(directory):
    """A tiny random-weights encoder with a SentencePiece vocabulary trained on the embedded corpus."""
    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.tokenization import train_sentencepiece

    os.makedirs(directory, exist_ok=True)
    corpus = write_embedded_corpus(os.path.join(directory, "corpus.txt"))
    spm_model = train_sentencepiece(corpus, os.path.join(directory, "spiece.model"), vocab_size=1000)
    config = AlbertConfig(vocab_size=1000, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    model_dir = os.path.join(directory, "model")
    AlbertEncoder(config).save_pretrained(model_dir, spm_model=spm_model)
    return model_dir


def query(saved_model, texts):
    """Run `QUERY` in a fresh interpreter; returns its outputs as a dict."""
    result = subprocess.run([sys.executable, "-c", QUERY, saved_model, *texts], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode:
        raise RuntimeError(f"query failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*", default=["Lists are mutable sequences.", "A tuple cannot be changed."])
    parser.add_argument("--model", default=None, help="a pretrained or fine-tuned directory (default: a tiny one)")
    parser.add_argument("--output", default="runs/export_and_query", help="receives saved_model/1/")
    args = parser.parse_args(argv)

    from albert_keras.export.exporter import export_model

    model_dir = args.model or tiny_model(os.path.join(args.output, "tiny"))
    version_dir = export_model(model_dir, os.path.join(args.output, "saved_model"), version=1, overwrite=True)
    answer = query(version_dir, args.texts)
    for name, value in sorted(answer.items()):
        if name == "sentence_embedding":
            import numpy as np

            vectors = np.asarray(value)
            print(f"{name}: {vectors.shape}, cosine(text 1, text 2) = {float(vectors[0] @ vectors[-1]):.3f}")
        elif name in ("labels", "label_ids", "signatures", "albert_keras_imported"):
            print(f"{name}: {value}")
        else:
            print(f"{name}: shape {list(__import__('numpy').shape(value))}")
    return answer


if __name__ == "__main__":
    main()
