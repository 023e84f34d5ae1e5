"""Pretrain a small ALBERT on the embedded corpus (no download), then ask its masked LM.

The steps behind `albert-keras quickstart`, as Python calls: a SentencePiece vocabulary, pretraining
records (SOP pairs, n-gram masks), MLM + SOP pretraining with `fit`, and the pretrained model
filling a `[MASK]` in a sentence.

    python examples/pretrain_small.py --output-dir /tmp/albert_small --num-train-steps 2000

Tiny settings for a smoke run: `--vocab-size 1000 --max-seq-length 32 --hidden-size 32
--num-train-steps 10`.
"""

import argparse
import os

import numpy as np


def fill_mask(model, sp, text, word, top_k=5):
    """Mask the pieces of `word` in `text` and return the masked LM's top pieces for the first one."""
    from albert_keras.tokenization import CLS_ID, MASK_ID, SEP_ID, convert_ids_to_pieces, encode_for_albert

    before, _, after = text.partition(word)
    left, right = encode_for_albert(sp, before), encode_for_albert(sp, after)
    ids = [CLS_ID] + left + [MASK_ID] + right + [SEP_ID]
    batch = {
        "input_ids": np.array([ids], "int32"),
        "input_mask": np.ones((1, len(ids)), "int32"),
        "segment_ids": np.zeros((1, len(ids)), "int32"),
        "masked_lm_positions": np.array([[len(left) + 1]], "int32"),
    }
    logits = np.asarray(model(batch)["mlm_logits"])[0, 0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    best = np.argsort(-probabilities)[:top_k]
    return list(zip(convert_ids_to_pieces(sp, [int(i) for i in best]), probabilities[best].round(3).tolist()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/pretrain_small")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--max-seq-length", type=int, default=64)
    parser.add_argument("--dupe-factor", type=int, default=10)
    parser.add_argument("--ngram", type=int, default=1, help="longest masked n-gram (official 3; 1 learns faster here)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-hidden-layers", type=int, default=4)
    parser.add_argument("--num-train-steps", type=int, default=2000)
    parser.add_argument("--global-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--num-warmup-steps", type=int, default=None, help="default: 15%% of the steps")
    args = parser.parse_args(argv)

    from albert_keras import AlbertConfig
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.data.create import create_pretraining_data
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.tokenization import load_sentencepiece, train_sentencepiece
    from albert_keras.training.pretrain import pretrain

    out = args.output_dir
    os.makedirs(out, exist_ok=True)
    corpus = write_embedded_corpus(os.path.join(out, "corpus.txt"))  # CPython's docs: real English prose
    spm_model = train_sentencepiece(corpus, os.path.join(out, "spiece.model"), vocab_size=args.vocab_size)
    records = os.path.join(out, "tfrecords")
    create_pretraining_data(
        [corpus], spm_model, records, max_seq_length=args.max_seq_length,
        max_predictions_per_seq=max(5, args.max_seq_length * 20 // 128), dupe_factor=args.dupe_factor,
        ngram=args.ngram, num_shards=2, overwrite=True,
    )
    hidden = args.hidden_size
    config = AlbertConfig(
        vocab_size=args.vocab_size, embedding_size=min(64, hidden), hidden_size=hidden,
        num_hidden_layers=args.num_hidden_layers, num_attention_heads=max(hidden // 32, 1),
        intermediate_size=4 * hidden, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        max_position_embeddings=max(args.max_seq_length, 64),
    )
    steps = args.num_train_steps
    # Too short a warmup collapses a model this small (every token the same vector): the collapse
    # watch in `pretrain` then warns in summary["warnings"].
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else max(steps * 3 // 20, 1)
    summary = pretrain(
        config, os.path.join(records, "part-*"), os.path.join(out, "run"), global_batch_size=args.global_batch_size,
        num_train_steps=steps, learning_rate=args.learning_rate, optimizer="adamw", num_warmup_steps=warmup,
        checkpoint_every=steps, log_every=max(steps // 10, 1), spm_model=spm_model, verbose=2,
    )
    for warning in summary["warnings"]:  # the collapse watch: learning rate or warmup to fix
        print("warning:", warning)

    model = load_pretrained(summary["pretrained_dir"])
    sentence = "A list is a mutable sequence of objects."
    print(f"{sentence!r} with 'mutable' masked ->", fill_mask(model, load_sentencepiece(spm_model), sentence, "mutable"))
    return summary


if __name__ == "__main__":
    main()
