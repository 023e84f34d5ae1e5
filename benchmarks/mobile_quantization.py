"""Size, LiteRT latency and accuracy of one trained classifier at every TFLite quantization.

Prints a markdown table and writes benchmarks/results/mobile_quantization.json (the full teacher /
student / distilled table is benchmarks/mobile.py).

    .venv/bin/python benchmarks/mobile_quantization.py [--epochs 3] [--output benchmarks/results/mobile_quantization.json]

The classifier is the export tests' task (does a corpus sentence contain a double quote?) on a tiny
ALBERT (hidden 32, 2 layers, vocabulary 1,000 trained on the embedded corpus, 32 positions):
trained here in under a minute, so the figures need no download. Each variant goes through
`convert_to_tflite` (its gate included; full-int8 and int16x8 calibrated on embedded-corpus
sentences) and runs in LiteRT at batch 1 with 1 and 4 threads (XNNPACK where it applies; median
of `--calls` calls) and on 600 held-out sentences (accuracy, agreement with Keras). Not measured
here: teacher / student / distilled rows and MediaPipe latency (benchmarks/mobile.py).
"""

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

SEQUENCE_LENGTH = 32
VARIANTS = ("none", "float16", "dynamic-int8", "full-int8", "int16x8")


def trained_classifier(work_dir, epochs):
    """`(model, spm path, held-out sentences, held-out labels)`: the tests' quote-detection task."""
    import keras
    import tensorflow as tf

    from albert_keras.config import AlbertConfig
    from albert_keras.data.corpus import embedded_corpus
    from albert_keras.data.corpus import write_embedded_corpus
    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.tokenization import train_sentencepiece

    corpus = write_embedded_corpus(os.path.join(work_dir, "corpus.txt"))
    spm = train_sentencepiece(corpus, os.path.join(work_dir, "spiece.model"), vocab_size=1000)
    sentences = [s for document in embedded_corpus() for s in document]
    keras.utils.set_random_seed(0)
    config = AlbertConfig(vocab_size=1000, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=SEQUENCE_LENGTH)
    model = AlbertClassifier(AlbertEncoder(config), 2, dropout=0.0)
    packer = AlbertTextPacker(spm, SEQUENCE_LENGTH)

    def data(texts):
        return ({k: v.numpy() for k, v in packer(tf.constant(texts)).items()},
                np.array(['"' in s for s in texts], np.int32))

    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(*data(sentences[:1500]), batch_size=64, epochs=epochs, verbose=0)
    held_out = sentences[1500:2100]
    return model, spm, held_out, data(held_out)[1]


def latency_ms(path, features, threads, calls):
    from albert_keras.export.tflite import interpreter

    runner = interpreter(path, num_threads=threads).get_signature_runner()
    one = {k: v[:1] for k, v in features.items()}
    runner(**one)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        runner(**one)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "mobile_quantization.json"))
    args = parser.parse_args()

    from albert_keras.export import quantization
    from albert_keras.export.tflite import convert_to_tflite
    from albert_keras.export.tflite import interpreter

    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        model, spm, held_out, labels = trained_classifier(work_dir, args.epochs)
        features = quantization.packed_features(held_out, spm, SEQUENCE_LENGTH)
        keras_ids = np.argmax(np.asarray(model(features, training=False)), -1)
        for quantize in VARIANTS:
            path = os.path.join(work_dir, f"{quantize}.tflite")
            report = convert_to_tflite(model, path, quantize=quantize, spm_model=spm, verbose=False)
            predicted = interpreter(path).get_signature_runner()(**features)["label_ids"]
            rows.append({
                "quantize": quantize,
                "size_kb": round(report["size_bytes"] / 1000, 1),
                "accuracy": round(float(np.mean(predicted == labels)), 4),
                "agreement_with_keras": round(float(np.mean(predicted == keras_ids)), 4),
                "latency_ms_1_thread": round(latency_ms(path, features, 1, args.calls), 3),
                "latency_ms_4_threads": round(latency_ms(path, features, 4, args.calls), 3),
                "float_ops": report.get("float_ops"),
            })
        keras_accuracy = float(np.mean(keras_ids == labels))
    print(f"Keras held-out accuracy {keras_accuracy:.4f} on {len(held_out)} sentences; {platform.processor() or platform.machine()}")
    print("| quantize | size | accuracy | agreement with Keras | batch 1, 1 thread | batch 1, 4 threads |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['quantize']} | {row['size_kb']} KB | {row['accuracy']:.3f} | {row['agreement_with_keras']:.3f} | "
              f"{row['latency_ms_1_thread']:.3f} ms | {row['latency_ms_4_threads']:.3f} ms |")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"keras_accuracy": keras_accuracy, "rows": rows, "machine": platform.uname()._asdict()}, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
