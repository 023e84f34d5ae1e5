"""Dialogue end to end on made-up data: joint intents and slots, then response selection.

1. **Intents and slots** (`--task intent-slots`): a small assistant grammar (four intents, slots
   `object`, `place`, `value` as character spans in JSONL) is written here; the model is fine-tuned,
   scored by intent accuracy, slot F1 and frame accuracy, exported as a SavedModel, and one
   utterance is served: its slots come back as slices of the text sent.
2. **Response selection** (`--task response-selection --architecture bi`): multi-turn contexts
   asking about a topic, each with one true response among candidates about other topics; a
   bi-encoder is fine-tuned with in-batch negatives and scored by R10@1 and MRR against chance.

With `--model DIR` both start from that pretrained directory; without, from a small randomly
initialized ALBERT and a vocabulary trained on the embedded corpus. Nothing is downloaded:

    python examples/dialogue.py --steps 300

Tiny settings for a smoke run: `--examples 64 --steps 20`.
"""

import argparse
import json
import os
import random

from _tiny_model import new_small_model  # examples/_tiny_model.py: the start without --model

# Words that are single pieces of the embedded-corpus vocabulary, so a small model learns fast.
OBJECTS = ["module", "class", "function", "string", "table", "key"]
PLACES = ["line", "code", "this test"]
VALUES = ["one", "none", "all"]
TEMPLATES = {
    "show_item": ["show the {object}", "show {object} in {place}"],
    "set_value": ["set the {object} to {value}", "set {object} to {value} in {place}"],
    "list_items": ["list all {object} in {place}", "list the {object}"],
    "test_item": ["test the {object} on {place}", "test {object} with {value}"],
}
TOPICS = ["class", "object", "function", "method", "value", "module", "list", "string", "key", "table"]
ASKS = ["how do i change the {} ?", "where is the {} defined ?", "why is my {} wrong ?"]
ANSWERS = ["set the {} first", "the {} is in the docs", "print the {} and look"]


def utterances(count, seed):
    """JSONL records `{"text", "intent", "slots": [{"start", "end", "type"}]}`, intents in turn."""
    rng = random.Random(seed)
    names = sorted(TEMPLATES)
    records = []
    for i in range(count):
        intent = names[i % len(names)]
        text, slots = "", []
        for piece in rng.choice(TEMPLATES[intent]).replace("}", "{").split("{"):
            if piece in ("object", "place", "value"):
                value = rng.choice({"object": OBJECTS, "place": PLACES, "value": VALUES}[piece])
                slots.append({"start": len(text), "end": len(text) + len(value), "type": piece})
                text += value
            else:
                text += piece
        records.append({"text": text, "intent": intent, "slots": slots})
    return records


def dialogues(count, seed, candidates):
    """JSONL records `{"context": [turns], "candidates": [...], "label": index of the true one}`."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        topic = rng.choice(TOPICS)
        others = rng.sample([t for t in TOPICS if t != topic], candidates - 1)
        wrong = [rng.choice(ANSWERS).format(other) for other in others]
        label = i % candidates
        records.append({"context": ["hello there", rng.choice(ASKS).format(topic)],
                        "candidates": wrong[:label] + [rng.choice(ANSWERS).format(topic)] + wrong[label:],
                        "label": label})
    return records


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pretrained directory to start from (default: a new small one)")
    parser.add_argument("--output-dir", default="runs/dialogue")
    parser.add_argument("--examples", type=int, default=400, help="training utterances and dialogues (each)")
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps (each task)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from albert_keras.export.exporter import export_model
    from albert_keras.tasks.response_selection import chance_metrics
    from albert_keras.tasks.response_selection import read_dialogues
    from albert_keras.training.finetune import finetune
    from albert_keras.training.finetune_commands import evaluate_directory

    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    init = args.model or new_small_model(out)
    common = {"num_train_steps": args.steps, "global_batch_size": 16, "verbose": 0,
              "learning_rate": 2e-3 if not args.model else 5e-5, "warmup_fraction": 0.05}
    # A new small model is trained from scratch on purpose: say so (--from-scratch).
    options = {"max_seq_length": 32, "from_scratch": not args.model}

    # 1. Intents and slots.
    train = write_jsonl(os.path.join(out, "intents_train.jsonl"), utterances(args.examples, 0))
    dev = write_jsonl(os.path.join(out, "intents_dev.jsonl"), utterances(max(16, args.examples // 4), 1))
    summary = finetune("intent-slots", init, train, None, os.path.join(out, "intents"), options=options, **common)
    intent_dir = summary["pretrained_dir"]
    intent_scores = evaluate_directory(intent_dir, dev)
    print("intents and slots:", json.dumps({k: round(v, 3) for k, v in intent_scores.items()}))
    version = export_model(intent_dir, os.path.join(out, "saved_model", "intents"), overwrite=True, verbose=False)
    text = "set  the table to none in this test"
    served = tf.saved_model.load(version).signatures["serving_default"](text=tf.constant([text]))
    served = {key: value.numpy()[0] for key, value in served.items()}
    slots = [(t.decode(), int(a), int(b)) for t, a, b in
             zip(served["slot_type"], served["slot_start"], served["slot_end"]) if t]
    print(f"served: {served['intent'].decode()} ({served['intent_probability']:.2f}), slots "
          + ", ".join(f"{kind}={text[start:end]!r}" for kind, start, end in slots))

    # 2. Response selection with a bi-encoder.
    train = write_jsonl(os.path.join(out, "responses_train.jsonl"), dialogues(args.examples, 2, candidates=4))
    dev = write_jsonl(os.path.join(out, "responses_dev.jsonl"), dialogues(max(20, args.examples // 8), 3, candidates=10))
    summary = finetune("response-selection", init, train, None, os.path.join(out, "responses"),
                       options={**options, "architecture": "bi", "temperature": 0.1}, **common)
    ranking_scores = evaluate_directory(summary["pretrained_dir"], dev)
    chance = chance_metrics(read_dialogues(dev))
    print(f"response selection: R10@1 {ranking_scores['R10@1']:.3f} (chance {chance['R10@1']:.3f}), "
          f"MRR {ranking_scores['mrr']:.3f} (chance {chance['mrr']:.3f})")
    return {"intent_scores": intent_scores, "text": text, "served": served, "slots": slots,
            "ranking_scores": ranking_scores, "chance": chance, "intent_dir": intent_dir}


if __name__ == "__main__":
    main()
