"""Translation with a warm-started ALBERT encoder-decoder, on a made-up parallel corpus.

The "languages" share one vocabulary: a target sentence is its source with each noun phrase
reversed and the verb moved to the end ("the big cat sees a dog ." -> "cat big the dog a sees .").
Fine-tuning pairs use eight nouns; the test pairs' subjects are eight other nouns, which only
pretraining has seen. The script

1. writes a whole-word WordPiece vocabulary and the pairs (nothing is downloaded);
2. pretrains a tiny ALBERT (MLM + SOP) on bilingual documents, each a source sentence and its
   translation as the two segments (the pair order is what sentence-order prediction predicts);
3. fine-tunes `--task translation` from that directory and from random weights with the same
   budget, and prints both models' BLEU and chrF on the test pairs (a JSON report too).

    python examples/translation.py --output-dir runs/translation_example
    python examples/translation.py --pretrain-steps 3000 --finetune-steps 200   # the docs' table

Tiny settings for a smoke run: `--pretrain-steps 4 --finetune-steps 4 --pairs 64`.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

DETERMINERS = ["the", "a", "this", "that"]
ADJECTIVES = ["big", "small", "red", "blue", "old", "young", "happy", "sad"]
NOUNS = ["cat", "dog", "bird", "fish", "man", "woman", "child", "horse",
         "cow", "pig", "duck", "fox", "king", "queen", "boy", "girl"]
VERBS = ["sees", "likes", "chases", "finds", "helps", "hears"]
SEEN_NOUNS = NOUNS[:8]
WORDS = DETERMINERS + ADJECTIVES + NOUNS + VERBS + ["."]


def made_up_pair(rng, nouns=NOUNS, subject_nouns=None):
    """`(source, target)`: SVO with determiner-adjective-noun phrases -> SOV with reversed phrases."""

    def phrase(choices):
        adjective = [ADJECTIVES[rng.integers(len(ADJECTIVES))]] if rng.random() < 0.5 else []
        return [DETERMINERS[rng.integers(len(DETERMINERS))]] + adjective + [choices[rng.integers(len(choices))]]

    subject, obj = phrase(subject_nouns or nouns), phrase(nouns)
    verb = VERBS[rng.integers(len(VERBS))]
    return " ".join(subject + [verb] + obj + ["."]), " ".join(subject[::-1] + obj[::-1] + [verb, "."])


def pretraining_batches(vocabulary, pairs, rng, batch_size=32, length=24, predictions=4):
    """Official-schema MLM + SOP batches: `[CLS] a [SEP] b [SEP]`, the pair swapped half the time."""
    encoded = [(vocabulary.encode(a), vocabulary.encode(b)) for a, b in pairs]
    while True:
        rows = rng.integers(len(encoded), size=batch_size)
        swapped = rng.integers(2, size=batch_size)
        batch = {name: np.zeros((batch_size, length), "int32") for name in ("input_ids", "input_mask", "segment_ids")}
        for name in ("masked_lm_positions", "masked_lm_ids"):
            batch[name] = np.zeros((batch_size, predictions), "int32")
        batch["masked_lm_weights"] = np.ones((batch_size, predictions), "float32")
        batch["next_sentence_labels"] = swapped.astype("int32")
        for b, (row, swap) in enumerate(zip(rows, swapped)):
            first, second = encoded[row][::-1] if swap else encoded[row]
            ids = [vocabulary.cls_id] + first + [vocabulary.sep_id] + second + [vocabulary.sep_id]
            batch["input_ids"][b, :len(ids)] = ids
            batch["input_mask"][b, :len(ids)] = 1
            batch["segment_ids"][b, len(first) + 2:len(ids)] = 1
            words = [i for i, token in enumerate(ids) if token not in (vocabulary.cls_id, vocabulary.sep_id)]
            for k, position in enumerate(sorted(rng.choice(words, size=predictions, replace=False))):
                batch["masked_lm_positions"][b, k] = position
                batch["masked_lm_ids"][b, k] = ids[position]
                roll = rng.random()  # BERT's 80 / 10 / 10
                if roll < 0.8:
                    batch["input_ids"][b, position] = vocabulary.mask_id
                elif roll < 0.9:
                    batch["input_ids"][b, position] = rng.integers(5, len(vocabulary))
        yield batch


def write_pairs(path, pairs):
    with open(path, "w") as f:
        f.write("source\ttarget\n" + "".join(f"{s}\t{t}\n" for s, t in pairs))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/translation_example")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--finetune-steps", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=200, help="fine-tuning pairs (100 more are the test set)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="fine-tuning learning rate")
    parser.add_argument("--share-decoder", action="store_true", help="tie the decoder to the encoder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from albert_keras import AlbertConfig
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling import AlbertPretrainer
    from albert_keras.modeling import save_pretrained
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.training.finetune_commands import evaluate_directory
    from albert_keras.training.finetune import finetune

    root = args.output_dir
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    vocab = os.path.join(root, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    vocabulary = load_vocabulary(vocab)
    train = write_pairs(os.path.join(root, "train.tsv"), [made_up_pair(rng, SEEN_NOUNS) for _ in range(args.pairs)])
    test = write_pairs(os.path.join(root, "test.tsv"), [made_up_pair(rng, NOUNS, NOUNS[8:]) for _ in range(100)])

    # initializer_range 0.1: at this width attention learns in tens of steps, not hundreds (tests/conftest.py).
    config = AlbertConfig(vocab_size=len(vocabulary), embedding_size=32, hidden_size=64, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=128, max_position_embeddings=32,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.1)
    keras.utils.set_random_seed(args.seed)
    pretrainer = AlbertPretrainer(AlbertEncoder(config))
    save_pretrained(pretrainer.encoder, os.path.join(root, "random"), vocabulary=vocab)
    documents = [made_up_pair(rng) for _ in range(4000)]
    first = next(pretraining_batches(vocabulary, documents, rng))
    dataset = tf.data.Dataset.from_generator(
        lambda: pretraining_batches(vocabulary, documents, np.random.default_rng(args.seed + 1)),
        output_signature={k: tf.TensorSpec(v.shape, v.dtype) for k, v in first.items()})
    pretrainer.compile(optimizer=keras.optimizers.Adam(2e-3))
    started = time.perf_counter()
    history = pretrainer.fit(dataset, steps_per_epoch=args.pretrain_steps, epochs=1, verbose=0).history
    pretrain_seconds = time.perf_counter() - started
    save_pretrained(pretrainer, os.path.join(root, "pretrained"), vocabulary=vocab)
    report = {"pretraining": {"steps": args.pretrain_steps, "seconds": round(pretrain_seconds, 1),
                              "masked_lm_accuracy": round(float(history["masked_lm_accuracy"][-1]), 4),
                              "sentence_order_accuracy": round(float(history["sentence_order_accuracy"][-1]), 4)}}
    options = {"max_target_length": 12, "max_seq_length": 16, "share_decoder": args.share_decoder or None}
    for start in ("pretrained", "random"):
        started = time.perf_counter()
        # The random start is trained from scratch on purpose: say so (--from-scratch).
        summary = finetune("translation", os.path.join(root, start), train, None, os.path.join(root, "ft_" + start),
                           options={**options, "from_scratch": start == "random"}, num_train_steps=args.finetune_steps, learning_rate=args.learning_rate,
                           global_batch_size=32, seed=args.seed, verbose=0)
        metrics = evaluate_directory(summary["pretrained_dir"], test)
        report[start] = {**{k: round(v, 2) for k, v in metrics.items()},
                         "seconds": round(time.perf_counter() - started, 1)}
    print(f"pretraining: {args.pretrain_steps} steps in {pretrain_seconds:.0f} s, masked-LM accuracy "
          f"{report['pretraining']['masked_lm_accuracy']:.3f}")
    print("| start | BLEU | chrF |\n|---|---|---|")
    for start in ("pretrained", "random"):
        print(f"| {start} | {report[start]['bleu']:.1f} | {report[start]['chrf']:.1f} |")
    with open(os.path.join(root, "report.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
