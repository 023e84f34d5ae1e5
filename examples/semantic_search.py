"""Semantic search over the embedded corpus: SimCSE-train sentence embeddings, index, query.

With `--model DIR` (e.g. the quickstart's `runs/quickstart/pretrain/pretrained`) it starts from
that pretrained model; without, from a small randomly initialized ALBERT and a SentencePiece
vocabulary trained here. Either way nothing is downloaded:

    python examples/semantic_search.py --model runs/quickstart/pretrain/pretrained "How does a for loop end?"

Tiny settings for a smoke run: `--sentences 300 --epochs 1`.
"""

import argparse
import os

from _tiny_model import new_small_model  # examples/_tiny_model.py: the start without --model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queries", nargs="*", default=["How does a for loop end?", "What does import do?"])
    parser.add_argument("--model", default=None, help="pretrained directory to start from (default: a new small one)")
    parser.add_argument("--output-dir", default="runs/semantic_search")
    parser.add_argument("--sentences", type=int, default=3000, help="corpus sentences to train on and index")
    parser.add_argument("--epochs", type=int, default=1, help="SimCSE passes (0: search with the model as it is)")
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args(argv)

    from albert_keras.corpus import embedded_corpus
    from albert_keras.representations.search import build_index, search
    from albert_keras.tasks.embedding import train_sentence_embeddings

    out = args.output_dir
    os.makedirs(out, exist_ok=True)  # new_small_model makes it, but not when --model is given
    sentences = [s for document in embedded_corpus() for s in document][: args.sentences]
    model = args.model or new_small_model(out, vocab_size=2000, embedding_size=32, hidden_size=64,
                                          intermediate_size=128)

    if args.epochs:
        # Unsupervised SimCSE: each sentence twice through dropout, the batch as negatives.
        with open(os.path.join(out, "sentences.txt"), "w") as f:
            f.write("\n".join(sentences) + "\n")
        train_sentence_embeddings(model, os.path.join(out, "sentences.txt"), os.path.join(out, "simcse"),
                                  epochs=args.epochs, batch_size=32, learning_rate=1e-3 if not args.model else 3e-5,
                                  sequence_length=32 if not args.model else None)
        model = os.path.join(out, "simcse")

    build_index(model, sentences, os.path.join(out, "index"), overwrite=True)
    results = {}
    for query in args.queries:
        results[query] = search(os.path.join(out, "index"), query, k=args.k)
        print(f"\n{query}")
        for hit in results[query]:
            print(f"  {hit['score']:.3f}  {hit['text']}")
    return results


if __name__ == "__main__":
    main()
