"""Mobile TFLite (`export --format tflite --metadata`): tokenizer agreement, then size, latency and
label agreement of float32 / float16 / int8 through MediaPipe's TextClassifier.

Prints markdown tables and writes benchmarks/results/mobile_tflite.json.

    .venv/bin/python benchmarks/mobile_tflite.py [--preset base|tiny] [--sentences 100] [--sequence-length 128]

1. Tokenizer: on every sentence of the embedded corpus, the share whose ids (first
   sequence-length - 2) equal training's (`encode_for_albert`: official normalization, digit-comma
   rewrite), for what an app can be given: the plain `spiece.model` (with and without the ASCII
   lowercasing MediaPipe's BERT preprocessor applies) and the folded model (`albert_spm`). The
   "MediaPipe, measured" column runs MediaPipe itself: a tiny embedder is exported with each
   model in its metadata, and a sentence counts when MediaPipe's embedding equals (max |diff| <
   1e-5) the embedding of training's ids.
2. Variants: a classifier of the preset's shape (random seeded weights: speed does not depend
   on them; with random weights top labels are near ties, so the agreement figure is a lower
   bound, see the tests for a trained model), exported with --metadata at each quantization; size,
   MediaPipe `classify()` latency per sentence (median, includes its tokenization), ai_edge_litert
   latency (one thread), top-label agreement with the Keras model and max |probability diff| on
   held-out corpus sentences.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(fn, items):
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("base", "tiny"), default="base")
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--sequence-length", type=int, default=128)
    args = parser.parse_args()

    import keras
    import sentencepiece
    import tensorflow as tf
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier
    from mediapipe.tasks.python.text import text_embedder

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import embedded_corpus
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.export import signatures as sigs
    from albert_keras.export import tflite_metadata as tm
    from albert_keras.export.albert_spm import folded_spm_model
    from albert_keras.export.text import AlbertTextPacker
    from albert_keras.export.tflite import interpreter
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.tokenization import encode_for_albert
    from albert_keras.tokenization import load_sentencepiece
    from albert_keras.tokenization import train_sentencepiece

    length = args.sequence_length
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
               "sequence_length": length, "preset": args.preset}
    work = tempfile.mkdtemp(prefix="albert_mobile_bench_")
    corpus = write_embedded_corpus(os.path.join(work, "corpus.txt"))
    vocab = 2000 if args.preset == "base" else 1000
    spm_path = train_sentencepiece(corpus, os.path.join(work, "spiece.model"), vocab_size=vocab)
    with open(spm_path, "rb") as f:
        raw = f.read()
    start = time.perf_counter()
    folded = folded_spm_model(raw)
    results["fold_s"] = time.perf_counter() - start
    sentences = [s for document in embedded_corpus() for s in document]
    sp = load_sentencepiece(spm_path)
    training = [encode_for_albert(sp, s)[: length - 2] for s in sentences]

    # --- 1. tokenizer agreement ------------------------------------------------------------
    plain = sentencepiece.SentencePieceProcessor(model_proto=raw)
    folded_sp = sentencepiece.SentencePieceProcessor(model_proto=folded)

    def ascii_lower(text):
        return "".join(c.lower() if c.isascii() else c for c in text)

    configs = {
        "spiece.model as is": lambda s: plain.encode(s),
        "spiece.model, ASCII-lowercased (MediaPipe)": lambda s: plain.encode(ascii_lower(s)),
        "folded spiece.model (chosen)": lambda s: folded_sp.encode(ascii_lower(s)),
    }
    tiny = AlbertConfig(vocab_size=vocab, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=length)
    keras.utils.set_random_seed(0)
    embedder = AlbertEncoder(tiny)
    packer = AlbertTextPacker(spm_path, length)
    want = sigs.task_outputs(embedder, packer(tf.constant(sentences)))["sentence_embedding"].numpy()
    base_bytes = tm.convert_mobile_model(embedder, length)
    rows = []
    for name, encode in configs.items():
        same = np.mean([encode(s)[: length - 2] == ids for s, ids in zip(sentences, training)])
        row = {"tokenizer": name, "python_id_agreement": float(same)}
        if name != "spiece.model as is":
            proto = folded if "folded" in name else raw
            path = os.path.join(work, "embedder.tflite")
            with open(path, "wb") as f:
                f.write(tm.add_metadata(base_bytes, sigs.ENCODER, proto))
            options = text_embedder.TextEmbedderOptions(base_options=BaseOptions(model_asset_path=path))
            with text_embedder.TextEmbedder.create_from_options(options) as mp:
                got = np.array([mp.embed(s).embeddings[0].embedding for s in sentences])
            row["mediapipe_id_agreement"] = float(np.mean(np.max(np.abs(got - want), axis=1) < 1e-5))
        rows.append(row)
        print(row, flush=True)
    results["tokenizer"] = rows

    # --- 2. variants -----------------------------------------------------------------------
    config = AlbertConfig.from_preset("albert-base-v2") if args.preset == "base" else tiny
    if args.preset == "base":
        config = AlbertConfig(**{**config.to_dict(), "vocab_size": 30000})
    keras.utils.set_random_seed(0)
    model = AlbertClassifier(AlbertEncoder(config), 2, dropout=0.0)
    held_out = sentences[-args.sentences:]
    expected = sigs.task_outputs(model, packer(tf.constant(held_out)))
    want_labels = expected["label_ids"].numpy()
    want_probs = expected["probabilities"].numpy()
    variants = []
    for quantize in ("none", "float16", "dynamic-int8"):
        path = os.path.join(work, f"{quantize}.tflite")
        start = time.perf_counter()
        report = tm.export_mobile_tflite(model, path, spm_path, length, quantize=quantize)
        export_s = time.perf_counter() - start
        options = text_classifier.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
        with text_classifier.TextClassifier.create_from_options(options) as classifier:
            outputs, times = [], []
            for sentence in held_out:
                start = time.perf_counter()
                outputs.append(classifier.classify(sentence).classifications[0].categories)
                times.append((time.perf_counter() - start) * 1000)
            latency = statistics.median(times)
        labels = np.array([max(c, key=lambda cat: cat.score).index for c in outputs])
        probs = np.array([[cat.score for cat in sorted(c, key=lambda cat: cat.index)] for c in outputs])
        runner = interpreter(path, num_threads=1).get_signature_runner()
        features = tm.mobile_features(folded, held_out[:1], length)
        litert_ms = median_ms(lambda _: runner(**features), range(10))
        row = {
            "quantize": quantize,
            "size_mb": os.path.getsize(path) / 1e6,
            "mediapipe_ms": latency,
            "litert_1thread_ms": litert_ms,
            "label_agreement": float(np.mean(labels == want_labels)),
            "max_prob_diff": float(np.max(np.abs(probs - want_probs))),
            "export_s": export_s,
            "verify_max_diff": report["max_diff"],
        }
        variants.append(row)
        print(row, flush=True)
    results["variants"] = variants

    print(f"\nmachine: {results['machine']}, preset {args.preset}, sequence length {length}, "
          f"fold {results['fold_s']:.1f} s")
    print("\n| tokenizer in the metadata | ids = training's (Python) | MediaPipe, measured |\n|---|---|---|")
    for row in rows:
        measured = row.get("mediapipe_id_agreement")
        print(f"| {row['tokenizer']} | {row['python_id_agreement']:.2%} | "
              f"{'-' if measured is None else f'{measured:.2%}'} |")
    print(f"\n| variant | size MB | MediaPipe classify ms | LiteRT 1 thread ms | top label = Keras "
          f"({len(held_out)}) | max prob diff |\n|---|---|---|---|---|---|")
    for row in variants:
        print(f"| {row['quantize']} | {row['size_mb']:.1f} | {row['mediapipe_ms']:.1f} | "
              f"{row['litert_1thread_ms']:.1f} | {row['label_agreement']:.1%} | {row['max_prob_diff']:.2g} |")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "mobile_tflite.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
