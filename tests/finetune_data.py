"""Rule-made fine-tuning data the tests write themselves: the label follows from a word list, so a
tiny model trained from scratch can learn it and chance is known."""

import csv
import json
import random

POSITIVE = ("good", "great", "fine", "nice", "lovely")
NEGATIVE = ("bad", "awful", "dull", "poor", "boring")
NOUNS = ("film", "movie", "story", "plot", "day", "book")


def sentence(positive, rng):
    return f"a {rng.choice(POSITIVE if positive else NEGATIVE)} {rng.choice(NOUNS)}"


def sentiment_rows(n, seed=0):
    """`(sentence, "positive"|"negative")`, balanced."""
    rng = random.Random(seed)
    return [(sentence(i % 2 == 1, rng), "positive" if i % 2 else "negative") for i in range(n)]


def pair_rows(n, seed=0):
    """`(a, b, label)`: the label is the polarity of the second sentence (the model must read B)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        b_positive = i % 2 == 1
        rows.append((sentence(rng.random() < 0.5, rng), sentence(b_positive, rng), "1" if b_positive else "0"))
    return rows


def regression_rows(n, seed=0):
    """`(sentence, target)`: the target is 5 for a positive sentence, 0 for a negative one, plus noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 1
        rows.append((sentence(positive, rng), round((5.0 if positive else 0.0) + rng.uniform(-0.5, 0.5), 3)))
    return rows


def choice_records(n, num_choices=3, seed=0):
    """Plain multiple-choice records: the answer is the one positive choice."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        answer = i % num_choices
        choices = [sentence(k == answer, rng) for k in range(num_choices)]
        records.append({"context": "which one is kind ?", "choices": choices, "label": answer})
    return records


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, records):
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return str(path)
