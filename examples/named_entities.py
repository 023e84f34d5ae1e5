"""Named entities end to end on tiny made-up CoNLL data: fine-tune a tagger, score it with
entity F1 (seqeval's default semantics), export and tag raw text with the SavedModel.

The data is made up here: words of the embedded corpus with people (`B-PER`, `I-PER`) and places
(`B-LOC`) from two small name lists inserted, written as a CoNLL file (`word POS tag`, blank lines
between sentences). With `--model DIR` it starts from that pretrained directory; without, from a
small randomly initialized ALBERT and a vocabulary trained here. Nothing is downloaded:

    python examples/named_entities.py --steps 300

Tiny settings for a smoke run: `--sentences 40 --steps 10`.
"""

import argparse
import json
import os
import random

from _tiny_model import new_small_model  # examples/_tiny_model.py: the start without --model

PEOPLE = ["Capital", "Bytecode", "Docstring", "Brace"]
PLACES = ["Memory", "Symbol", "Interface", "Header"]


def made_up_conll(path, count, seed):
    from albert_keras.corpus import embedded_corpus

    rng = random.Random(seed)
    names = {w.lower() for w in PEOPLE + PLACES}
    words = [w for d in embedded_corpus() for s in d for w in s.split() if w.lower().strip('."(),') not in names]
    sentences = []
    for _ in range(count):
        tokens = [(w, "O") for w in rng.sample(words, rng.randint(4, 10))]
        at = rng.randint(0, len(tokens))
        if rng.random() < 0.5:
            tokens[at:at] = [(rng.choice(PEOPLE), "B-PER"), (rng.choice(PEOPLE), "I-PER")][: rng.randint(1, 2)]
        else:
            tokens[at:at] = [(rng.choice(PLACES), "B-LOC")]
        sentences.append("\n".join(f"{w} X {t}" for w, t in tokens))
    with open(path, "w") as f:
        f.write("-DOCSTART- -X- O\n\n" + "\n\n".join(sentences) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pretrained directory to start from (default: a new small one)")
    parser.add_argument("--output-dir", default="runs/named_entities")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from albert_keras.export.saved_model import export_saved_model
    from albert_keras.training.finetune import finetune
    from albert_keras.training.finetune_commands import evaluate_directory, load_finetuned

    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    train = made_up_conll(os.path.join(out, "train.conll"), args.sentences, 0)
    dev = made_up_conll(os.path.join(out, "dev.conll"), max(8, args.sentences // 5), 1)
    init = args.model or new_small_model(out)
    summary = finetune("token-classification", init, train, None, os.path.join(out, "run"),
                       # A new small model is trained from scratch on purpose: say so (--from-scratch).
                       options={"max_seq_length": 32, "tag_column": 2, "from_scratch": not args.model},
                       num_train_steps=args.steps,
                       global_batch_size=16, learning_rate=2e-3 if not args.model else 5e-5, warmup_fraction=0.05,
                       verbose=0)
    model_dir = summary["pretrained_dir"]
    scores = evaluate_directory(model_dir, dev)
    print(json.dumps({k: round(v, 3) for k, v in scores.items()}, indent=1))

    # Serving: the `tag` signature tags whitespace-separated words and returns entity spans.
    _, model, _, _ = load_finetuned(model_dir)
    export_dir = export_saved_model(model, os.path.join(out, "saved_model", "1"),
                                    spm_model=os.path.join(model_dir, "spiece.model"), sequence_length=32, overwrite=True)
    tag = tf.saved_model.load(export_dir).signatures["tag"]
    text = "Yesterday  Brace Docstring flew to Interface for a meeting."
    served = {k: v.numpy()[0] for k, v in tag(text=tf.constant([text])).items()}
    entities = [(t.decode(), s.decode(), int(a), int(b)) for t, s, a, b in
                zip(served["entity_type"], served["entity_text"], served["entity_start"], served["entity_end"]) if t]
    print(f"served: {entities}")
    return {"scores": scores, "text": text, "served": served, "entities": entities}


if __name__ == "__main__":
    main()
