"""One optimizer update of ALBERT-base's variables: the official AdamW and LAMB next to Keras' own.

Isolates the update from the model: every optimizer applies the same gradients (dense, except the
word embedding's, an `IndexedSlices` of `--rows` rows, as `fit` produces it) to the encoder's
trainable variables inside one `tf.function`, timed over `--steps` calls after one traced call.
Random weights and gradients; nothing is downloaded.

    python benchmarks/optimizer_update.py --steps 5

Prints a table; writes `benchmarks/results/optimizer_update.json`.
"""

import argparse
import json
import os
import statistics
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "optimizer_update.json")


def _optimizers(learning_rate):
    import keras

    from albert_keras.training.optimization import create_optimizer

    return {
        "albert AdamW (official, clip 1.0)": lambda: create_optimizer("adamw", learning_rate, 1000, 100),
        "albert LAMB (official, clip 1.0)": lambda: create_optimizer("lamb", learning_rate, 1000, 100),
        "keras Adam": lambda: keras.optimizers.Adam(learning_rate),
        "keras AdamW (clip 1.0)": lambda: keras.optimizers.AdamW(learning_rate, global_clipnorm=1.0),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="albert-base-v2")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1024, help="embedding rows in the sparse gradient (batch x seq)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from albert_keras import AlbertEncoder

    encoder = AlbertEncoder(args.config)
    variables = encoder.trainable_variables
    vocab = encoder.config.vocab_size
    embedding = next(i for i, v in enumerate(variables) if tuple(v.shape)[0] == vocab)
    generator = tf.random.Generator.from_seed(0)
    dense = [generator.normal(v.shape) * 1e-3 for v in variables]
    width = variables[embedding].shape[1]
    rows = generator.uniform([args.rows], 0, vocab, tf.int32)
    sparse = tf.IndexedSlices(generator.normal([args.rows, width]) * 1e-3, rows, tf.constant([vocab, width]))
    gradients = dense[:embedding] + [sparse] + dense[embedding + 1:]

    results = []
    for name, make in _optimizers(2e-5).items():
        optimizer = make()
        optimizer.build(variables)
        step = tf.function(lambda: optimizer.apply(gradients, variables))
        step()
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        results.append({"optimizer": name, "seconds_per_update": statistics.median(times)})

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"{'optimizer':<36} {'s/update':>9}   ({args.config}, {sum(int(tf.size(v)) for v in variables):,} "
          f"parameters, load {load})")
    for row in results:
        print(f"{row['optimizer']:<36} {row['seconds_per_update']:>9.4f}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"config": args.config, "rows": args.rows, "load": float(load), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
