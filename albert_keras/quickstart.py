"""`albert-keras quickstart`: the whole life of a model on the embedded corpus, in one command.

Vocabulary -> pretraining TFRecords -> MLM + SOP pretraining -> pretrained directory ->
versioned SavedModel with a raw-text signature. Everything runs on the English text that ships
inside CPython (`albert_keras.data.corpus`), so it needs no download; the model is small enough
to pretrain on a laptop CPU in a few minutes. Each stage is one documented Python function, and
the run prints the equivalent `albert-keras` command for each stage.
"""

import json
import os
import shutil
import sys
import time

# A small ALBERT: factorized embeddings (E < H) and one shared block, like the published models.
QUICKSTART_CONFIG = dict(
    embedding_size=64,
    hidden_size=128,
    num_hidden_layers=4,
    num_hidden_groups=1,
    num_attention_heads=4,
    intermediate_size=512,
    inner_group_num=1,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    type_vocab_size=2,
    initializer_range=0.02,
)


def _stage(number, title, command):
    print(f"\n[{number}/5] {title}\n      same as: {command}", file=sys.stderr, flush=True)


def quickstart(
    output_dir="runs/quickstart",
    vocab_size=2000,
    max_seq_length=128,
    dupe_factor=3,
    num_train_steps=300,
    global_batch_size=32,
    learning_rate=2e-3,
    workers=1,
    export=True,
    resume=False,
    verbose=1,
):
    """Train a vocabulary, create data, pretrain and export a small ALBERT on the embedded corpus.

    Args:
        output_dir: receives `corpus.txt`, `spiece.model`, `tfrecords/`, `pretrain/` (checkpoints,
            TensorBoard logs and the `pretrained/` directory) and `saved_models/albert/1/`.
        vocab_size: SentencePiece vocabulary size.
        max_seq_length: sequence length of the pretraining records.
        dupe_factor: passes over the corpus, each with different pairs and masks.
        num_train_steps: pretraining steps.
        global_batch_size: examples per step.
        learning_rate: peak LAMB learning rate.
        workers: processes creating the records.
        export: also write the SavedModel.
        resume: continue an interrupted quickstart from its last checkpoint instead of starting
            pretraining afresh.
        verbose: Keras progress output.

    Returns:
        A dict with the paths written and the final pretraining metrics.

    Example:
    ```python
    from albert_keras.quickstart import quickstart
    summary = quickstart("/tmp/albert_quickstart", num_train_steps=50)
    ```
    """
    from albert_keras.config import AlbertConfig
    from albert_keras.data.corpus import write_embedded_corpus
    from albert_keras.data.create import create_pretraining_data
    from albert_keras.tokenization import train_sentencepiece
    from albert_keras.training.pretrain import pretrain

    start = time.time()
    os.makedirs(output_dir, exist_ok=True)
    corpus = os.path.join(output_dir, "corpus.txt")
    spm_model = os.path.join(output_dir, "spiece.model")
    records = os.path.join(output_dir, "tfrecords")
    run_dir = os.path.join(output_dir, "pretrain")
    saved_model = os.path.join(output_dir, "saved_models", "albert")

    _stage(1, "Vocabulary: SentencePiece unigram with ALBERT's ids, on the embedded corpus",
           f"albert-keras train-tokenizer --embedded-corpus --vocab-size {vocab_size} --output {spm_model}")
    write_embedded_corpus(corpus)
    train_sentencepiece(corpus, spm_model, vocab_size=vocab_size)

    _stage(2, "Pretraining data: SOP pairs and n-gram whole-word masks, official TFRecord schema",
           f"albert-keras create-data --input {corpus} --spm-model {spm_model} --output {records} "
           f"--max-seq-length {max_seq_length} --dupe-factor {dupe_factor}")
    manifest = create_pretraining_data(
        [corpus], spm_model, records, max_seq_length=max_seq_length, dupe_factor=dupe_factor,
        workers=workers, num_shards=4, overwrite=True, progress=bool(verbose),
    )

    config = AlbertConfig(vocab_size=vocab_size, max_position_embeddings=max(max_seq_length, 128), **QUICKSTART_CONFIG)
    config_path = os.path.join(output_dir, "albert_config.json")
    config.to_json_file(config_path)
    _stage(3, "Pretraining: MLM + SOP with LAMB under model.fit",
           f"albert-keras pretrain --config {config_path} --train-files '{records}/part-*' --output-dir {run_dir} "
           f"--global-batch-size {global_batch_size} --num-train-steps {num_train_steps} --spm-model {spm_model}")
    if os.path.isdir(run_dir) and not resume:
        # A quickstart is a fresh demo: old checkpoints from other settings must not be resumed.
        shutil.rmtree(run_dir)
    summary = pretrain(
        config, os.path.join(records, "part-*"), run_dir, global_batch_size=global_batch_size,
        num_train_steps=num_train_steps, learning_rate=learning_rate,
        checkpoint_every=max(num_train_steps // 3, 1), log_every=max(num_train_steps // 10, 1),
        spm_model=spm_model, verbose=verbose,
    )
    pretrained_dir = os.path.join(run_dir, "pretrained")

    result = {
        "corpus": corpus,
        "spm_model": spm_model,
        "tfrecords": records,
        "instances": manifest.get("statistics", {}).get("instances") if isinstance(manifest, dict) else None,
        "pretrained_dir": pretrained_dir,
        "pretraining": summary,
    }
    if export:
        from albert_keras.export.exporter import export_model

        # A pretrainer's directory exports its encoder: pooled output and sentence embedding.
        _stage(4, "Export: versioned SavedModel for TF Serving, raw-text signature",
               f"albert-keras export --model {pretrained_dir} --output {saved_model} --version 1")
        export_model(pretrained_dir, saved_model, version=1, overwrite=True, verbose=bool(verbose))
        result["saved_model"] = os.path.join(saved_model, "1")
    _stage(5, "Done", f"see {output_dir}")
    result["seconds"] = round(time.time() - start, 1)
    print(json.dumps(result, indent=2, default=str))
    return result


def register(subparsers):
    parser = subparsers.add_parser(
        "quickstart",
        help="train a vocabulary, create data, pretrain and export a small ALBERT on the embedded corpus",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--output-dir", default="runs/quickstart")
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--dupe-factor", type=int, default=3)
    parser.add_argument("--num-train-steps", type=int, default=300)
    parser.add_argument("--global-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-export", action="store_true", help="stop after pretraining")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run's pretraining")
    parser.set_defaults(func=_run)


def _run(args):
    quickstart(
        args.output_dir, vocab_size=args.vocab_size, max_seq_length=args.max_seq_length,
        dupe_factor=args.dupe_factor, num_train_steps=args.num_train_steps,
        global_batch_size=args.global_batch_size, learning_rate=args.learning_rate,
        workers=args.workers, export=not args.no_export, resume=args.resume,
    )
