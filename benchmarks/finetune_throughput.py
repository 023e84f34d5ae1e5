"""Fine-tuning throughput on raw strings: our `AlbertClassifier.fit` (preprocessor mapped over
tf.data, official AdamW) next to keras-hub's `AlbertTextClassifier.fit` (its preprocessor, Adam)
and, when torch and transformers (4.x or 5.x) import, Hugging Face's `AlbertForSequenceClassification`
(tokenized outside the timed step, AdamW), in one run.

ALBERT-base (`albert-base-v2` shapes, random weights: nothing is downloaded), batch 32 x 128 by
default, float32, no XLA, two classes. The texts are embedded-corpus sentences joined to fill the
sequence; the SentencePiece model is trained here on the embedded corpus (1000 pieces; the
embedding table keeps ALBERT-base's 30000 rows). The models' steps alternate, so a shared
machine's load hits all alike; a step is timed between Keras batch callbacks, the first `--warmup`
steps (tracing) are dropped, the median of the rest is reported. The in-graph text path's share
is the time to tokenize and pack one batch (our preprocessor alone, eagerly timed over the same
batches) over our median step time; in `fit` it runs in tf.data, overlapped with the step.

    python benchmarks/finetune_throughput.py --steps 3 --warmup 1
    python benchmarks/finetune_throughput.py --batch-size 8 --seq-length 64 --steps 2 --warmup 1
    python benchmarks/finetune_throughput.py --impls ours ours_adam keras_hub huggingface

Prints a table; writes `benchmarks/results/finetune_throughput.json`.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "finetune_throughput.json")


def _texts(count, words):
    from albert_keras.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document]
    texts, i = [], 0
    while len(texts) < count:
        text = []
        while len(" ".join(text).split()) < words:
            text.append(sentences[i % len(sentences)])
            i += 1
        texts.append(" ".join(text))
    return texts


class _StepTimer:
    def __init__(self):
        import keras

        timer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                timer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                timer.times.append(time.perf_counter() - timer.start)

        self.times = []
        self.callback = Callback()


def _ours(spm, config, seq, batch, texts, labels, optimizer="adamw"):
    import keras
    import tensorflow as tf

    from albert_keras.modeling import save_pretrained
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.task_models import AlbertClassifier
    from albert_keras.training.optimization import create_optimizer

    directory = tempfile.mkdtemp(prefix="finetune_bench_")
    save_pretrained(AlbertEncoder(config), directory, spm_model=spm)
    model = AlbertClassifier.from_pretrained(directory, labels=["a", "b"], sequence_length=seq)
    # `--our-optimizer adam` isolates the model from the optimizer when comparing with keras-hub.
    opt = (keras.optimizers.Adam(2e-5) if optimizer == "adam"
           else create_optimizer("adamw", 2e-5, num_train_steps=1000, num_warmup_steps=100))
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).repeat().batch(batch)
    return model, data


def _keras_hub(spm, config, seq, batch, texts, labels):
    import keras
    import keras_hub
    import tensorflow as tf

    backbone = keras_hub.models.AlbertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_hidden_layers, num_heads=config.num_attention_heads,
        embedding_dim=config.embedding_size, hidden_dim=config.hidden_size, intermediate_dim=config.intermediate_size,
        num_groups=config.num_hidden_groups, num_inner_repetitions=config.inner_group_num,
        max_sequence_length=config.max_position_embeddings, dropout=0.1,
    )
    tokenizer = keras_hub.models.AlbertTokenizer(proto=spm)
    preprocessor = keras_hub.models.AlbertTextClassifierPreprocessor(tokenizer, sequence_length=seq)
    model = keras_hub.models.AlbertTextClassifier(backbone, num_classes=2, preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(2e-5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices((texts, labels)).repeat().batch(batch)
    return model, data


def _huggingface(spm, config, seq, batch, texts, labels, steps):
    import torch
    import transformers

    hf_config = transformers.AlbertConfig(
        vocab_size=config.vocab_size, embedding_size=config.embedding_size, hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, num_labels=2,
    )
    model = transformers.AlbertForSequenceClassification(hf_config)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from serving_text import hugging_face_tokenizer  # built the way the installed transformers (4.x or 5.x) takes it

    tokenizer = hugging_face_tokenizer(spm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    times = []
    for step in range(steps):
        chunk = texts[(step * batch) % len(texts):][:batch]
        encoded = tokenizer(chunk, padding="max_length", truncation=True, max_length=seq, return_tensors="pt")
        target = torch.tensor(labels[:len(chunk)])
        start = time.perf_counter()
        loss = model(**encoded, labels=target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def _text_path_seconds(model, texts, batch, repeats):
    """Seconds to tokenize and pack one batch with our preprocessor (median of `repeats`)."""
    times = []
    for r in range(repeats):
        chunk = texts[(r * batch) % len(texts):][:batch]
        start = time.perf_counter()
        model.preprocessor(chunk)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] if len(times) > 1 else times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped (tracing)")
    parser.add_argument("--impls", nargs="+", default=["ours", "keras_hub", "huggingface"],
                        choices=("ours", "ours_adam", "keras_hub", "huggingface"),
                        help="ours_adam: our classifier with Keras Adam, the optimizer keras-hub's run uses")
    parser.add_argument("--our-optimizer", choices=("adamw", "adam"), default="adamw",
                        help="adamw: the official AdamW finetune uses; adam: Keras Adam, as keras-hub's run here")
    args = parser.parse_args(argv)

    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.tokenization import train_sentencepiece

    work = tempfile.mkdtemp(prefix="finetune_bench_")
    spm = train_sentencepiece(write_embedded_corpus(os.path.join(work, "corpus.txt")),
                              os.path.join(work, "spiece.model"), vocab_size=1000)
    config = AlbertConfig.from_preset("albert-base-v2")
    batch, seq = args.batch_size, args.seq_length
    texts = _texts(batch * 8, words=seq)
    labels = [i % 2 for i in range(len(texts))]
    total = args.warmup + args.steps
    keras.utils.set_random_seed(0)
    builders = {"ours": lambda *a: _ours(*a, optimizer=args.our_optimizer),
                "ours_adam": lambda *a: _ours(*a, optimizer="adam"), "keras_hub": _keras_hub}
    runs = {}
    for name in args.impls:
        if name in builders:
            model, data = builders[name](spm, config, seq, batch, texts, labels)
            runs[name] = {"model": model, "iterator": data, "timer": _StepTimer()}
    # Alternate single steps so the machine's load hits every model alike.
    for _ in range(total):
        for run in runs.values():
            run["model"].fit(run["iterator"].take(1), epochs=1, verbose=0, callbacks=[run["timer"].callback])
    results = {}
    for name, run in runs.items():
        step = statistics.median(run["timer"].times[args.warmup:])
        results[name] = {"seconds_per_step": round(step, 4), "examples_per_second": round(batch / step, 3)}
    if "huggingface" in args.impls:
        try:
            times = _huggingface(spm, config, seq, batch, texts, labels, total)
            step = statistics.median(times[args.warmup:])
            results["huggingface"] = {"seconds_per_step": round(step, 4), "examples_per_second": round(batch / step, 3)}
        except ImportError as error:
            results["huggingface"] = {"skipped": f"not importable ({error.name})"}
    if "ours" in runs:
        text_seconds = _text_path_seconds(runs["ours"]["model"], texts, batch, repeats=max(3, args.steps))
        results["ours"]["text_path_seconds_per_batch"] = round(text_seconds, 4)
        results["ours"]["text_path_share_of_step"] = round(text_seconds / results["ours"]["seconds_per_step"], 4)
    record = {"batch_size": batch, "seq_length": seq, "steps": args.steps, "warmup": args.warmup,
              "our_optimizer": args.our_optimizer,
              "preset": "albert-base-v2 (random weights)", "precision": "float32", "results": results,
              "cpu_count": os.cpu_count()}
    print(f"ALBERT-base classifier fit on raw strings, batch {batch} x {seq}, float32, median of {args.steps} steps")
    base = results.get("keras_hub", {}).get("examples_per_second")
    print(f"{'implementation':<14} {'s/step':>8} {'examples/s':>11} {'vs keras-hub':>13}")
    for name, result in results.items():
        if "skipped" in result:
            print(f"{name:<14} {'-':>8} {'-':>11}  ({result['skipped']})")
        else:
            ratio = f"{result['examples_per_second'] / base:.2f}x" if base else "-"
            result["vs_keras_hub"] = round(result["examples_per_second"] / base, 3) if base else None
            print(f"{name:<14} {result['seconds_per_step']:>8.3f} {result['examples_per_second']:>11.2f} {ratio:>13}")
    if "ours" in results:
        print(f"in-graph text path: {results['ours']['text_path_seconds_per_batch']:.4f} s per batch = "
              f"{100 * results['ours']['text_path_share_of_step']:.2f}% of our step")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(record, f, indent=2)
    return record


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
