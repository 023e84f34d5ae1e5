"""Extractive question answering end to end on tiny made-up SQuAD 2.0 data: fine-tune, predict
`predictions.json` / `null_odds.json`, score them officially, export and ask the SavedModel.

The data is made up here: "The password is X." hidden among sentences of the embedded corpus,
sometimes far enough in that only a later window of the context holds it, sometimes absent
(unanswerable). With `--model DIR` it starts from that pretrained directory; without, from a small
randomly initialized ALBERT and a vocabulary trained here. Nothing is downloaded:

    python examples/question_answering.py --steps 300

Tiny settings for a smoke run: `--questions 40 --steps 10`.
"""

import argparse
import json
import os
import random

from _tiny_model import new_small_model  # examples/_tiny_model.py: the start without --model

WORDS = ["Capital", "Bytecode", "Docstring", "Brace", "Memory", "Symbol", "Interface", "Header"]


def made_up_squad(count, seed):
    """SQuAD 2.0 JSON with one question per context."""
    from albert_keras.corpus import embedded_corpus

    rng = random.Random(seed)
    filler = [s for d in embedded_corpus() for s in d
              if len(s) < 120 and "password" not in s.lower() and not any(w.lower() in s.lower() for w in WORDS)]
    paragraphs = []
    for n in range(count):
        sentences = rng.sample(filler, rng.choice([2, 3, 9]))
        qa = {"id": f"q{n}", "question": "What is the password?", "answers": [], "is_impossible": True}
        if rng.random() < 0.75:
            answer = " ".join(rng.sample(WORDS, rng.choice([1, 2])))
            at = rng.randint(0, len(sentences))
            prefix = " ".join(sentences[:at]) + (" " if at else "")
            sentences = sentences[:at] + [f"The password is {answer}."] + sentences[at:]
            qa.update(is_impossible=False, answers=[{"text": answer, "answer_start": len(prefix) + 16}])
        paragraphs.append({"context": " ".join(sentences), "qas": [qa]})
    return {"version": "v2.0", "data": [{"title": "made up", "paragraphs": paragraphs}]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pretrained directory to start from (default: a new small one)")
    parser.add_argument("--output-dir", default="runs/question_answering")
    parser.add_argument("--questions", type=int, default=240, help="training questions (a quarter as many to validate)")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from albert_keras.export.saved_model import export_saved_model
    from albert_keras.tasks import squad
    from albert_keras.training.finetune import finetune
    from albert_keras.training.finetune_commands import load_finetuned, predict_directory

    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    paths = {}
    for name, count, seed in (("train", args.questions, 0), ("dev", max(8, args.questions // 4), 1)):
        paths[name] = os.path.join(out, f"{name}.json")
        with open(paths[name], "w") as f:
            json.dump(made_up_squad(count, seed), f)
    init = args.model or new_small_model(out)

    # Windows of 64 pieces advancing by 24, so long contexts need their later windows.
    # A new small model is trained from scratch on purpose: say so (--from-scratch).
    options = {"max_seq_length": 64, "doc_stride": 24, "from_scratch": not args.model}
    summary = finetune("question-answering", init, paths["train"], paths["dev"], os.path.join(out, "run"),
                       options=options, num_train_steps=args.steps, global_batch_size=16,
                       learning_rate=2e-3 if not args.model else 5e-5, warmup_fraction=0.05, eval_every=args.steps,
                       verbose=0)
    model_dir = summary["pretrained_dir"]
    predict_directory(model_dir, paths["dev"], os.path.join(out, "predictions", "predictions.json"))
    with open(os.path.join(out, "predictions", "predictions.json")) as f:
        predictions = json.load(f)
    with open(os.path.join(out, "predictions", "null_odds.json")) as f:
        null_odds = json.load(f)
    with open(paths["dev"]) as f:
        scores = squad.evaluate(json.load(f), predictions, na_probs=null_odds)
    print(json.dumps({k: round(v, 2) for k, v in scores.items()}, indent=1))

    # Serving: `serving_default` slices the answer from the context the client sent.
    _, model, _, _ = load_finetuned(model_dir)
    export_dir = export_saved_model(model, os.path.join(out, "saved_model", "1"),
                                    spm_model=os.path.join(model_dir, "spiece.model"), sequence_length=64, overwrite=True)
    answer = tf.saved_model.load(export_dir).signatures["serving_default"]
    context = "Some words come first. The password is Brace Header, and more words follow."
    served = answer(question=tf.constant(["What is the password?"]), context=tf.constant([context]))
    served = {k: v.numpy()[0] for k, v in served.items()}
    print(f"served: {served['answer_text'].decode()!r} at {served['answer_start']}:{served['answer_end']} "
          f"(score {served['score']:.2f}, no answer {served['no_answer_score']:.2f})")
    return {"scores": scores, "predictions": predictions, "served": served, "context": context, "model_dir": model_dir}


if __name__ == "__main__":
    main()
