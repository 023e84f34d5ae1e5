"""The article's example with our API: load a pretrained ALBERT, fine-tune it on labelled
sentences, and predict the sentiment of a new one, all on raw text.

The labelled set is made up here from short review templates (nothing is downloaded). With
`--model DIR` it starts from that pretrained directory (for example one converted from
`albert-base-v2` with `albert-keras convert`); without, from a small randomly initialized ALBERT
with a vocabulary trained on the embedded corpus, which learns the templates but knows no English:

    python examples/sentiment.py --model converted/albert-base-v2 --epochs 3
    python examples/sentiment.py --epochs 20       # from scratch, on this CPU

Tiny settings for a smoke run: `--examples 32 --epochs 1`.
"""

import argparse
import os
import random

from _tiny_model import new_small_model  # examples/_tiny_model.py: the start without --model

POSITIVE = ["wonderful", "moving", "brilliant", "delightful", "great", "superb"]
NEGATIVE = ["dull", "tedious", "awful", "clumsy", "boring", "terrible"]
THINGS = ["film", "plot", "acting", "story", "ending", "soundtrack"]


def made_up_reviews(count, seed):
    """`(texts, labels)`: balanced "The <thing> was <adjective>." reviews."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(count):
        positive = i % 2 == 0
        words = POSITIVE if positive else NEGATIVE
        texts.append(f"The {rng.choice(THINGS)} was {rng.choice(words)}, truly {rng.choice(words)}.")
        labels.append("positive" if positive else "negative")
    return texts, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pretrained directory (default: a new small one)")
    parser.add_argument("--output-dir", default="runs/sentiment")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=None, help="default 3e-5 with --model, else 1e-3")
    args = parser.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    model_dir = args.model or new_small_model(args.output_dir)
    train_texts, train_labels = made_up_reviews(args.examples, seed=0)
    dev_texts, dev_labels = made_up_reviews(max(8, args.examples // 4), seed=1)
    learning_rate = args.learning_rate or (3e-5 if args.model else 1e-3)

    # --- the example: about ten lines of API ---------------------------------------------------
    import keras

    from albert_keras import AlbertClassifier

    classifier = AlbertClassifier.from_pretrained(model_dir, labels=["negative", "positive"], sequence_length=32)
    classifier.compile(
        optimizer=keras.optimizers.AdamW(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(train_texts, train_labels, validation_data=(dev_texts, dev_labels), batch_size=16,
                   epochs=args.epochs, verbose=2)
    review = "The soundtrack was brilliant, truly moving."
    label = classifier.predict_labels([review])[0]
    print(f"{review!r}: {label}")
    # -------------------------------------------------------------------------------------------

    classifier.save_pretrained(os.path.join(args.output_dir, "classifier"))  # `albert-keras export` ready
    accuracy = classifier.evaluate(dev_texts, dev_labels, verbose=0, return_dict=True)["accuracy"]
    print(f"validation accuracy {accuracy:.3f} on {len(dev_texts)} made-up reviews")
    return {"label": label, "accuracy": accuracy, "classifier_dir": os.path.join(args.output_dir, "classifier")}


if __name__ == "__main__":
    main()
