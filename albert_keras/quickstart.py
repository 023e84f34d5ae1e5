"""`albert-keras quickstart`: the whole life of a model on the embedded corpus, in one command.

Vocabulary -> pretraining TFRecords (training and held-out documents) -> MLM + SOP pretraining,
scored on the held-out records -> fine-tuning on a topic task made from the corpus, against the
same model from random weights -> a versioned SavedModel and an int8 TFLite model, each reloaded
and asked about one sentence. Everything runs on the English text that ships inside CPython
(`albert_keras.corpus`), so it needs no download; the model is small enough to pretrain on a
laptop CPU in a few minutes. Each stage is one documented Python function, and the run prints the
equivalent `albert-keras` command for each stage, then a table of what it made.
"""

import json
import os
import re
import shutil
import sys
import threading
import time

# A small ALBERT: factorized embeddings (E < H) and one shared block, like the published models.
QUICKSTART_CONFIG = dict(
    embedding_size=64,
    hidden_size=64,
    num_hidden_layers=4,
    num_hidden_groups=1,
    num_attention_heads=2,
    intermediate_size=256,
    inner_group_num=1,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    type_vocab_size=2,
    initializer_range=0.02,
)
# Every HELDOUT_EVERY-th document (from the HELDOUT_OFFSET-th) is never pretrained on: the
# pretraining metrics are measured on it.
HELDOUT_EVERY = 8
HELDOUT_OFFSET = 3
STAGES = 6


def split_documents(documents, every=HELDOUT_EVERY, offset=HELDOUT_OFFSET):
    """Split documents into `(train, held_out)`: every `every`-th document is held out.

    Example:
    >>> split_documents([["a."], ["b."], ["c."]], every=3, offset=1)
    ([['a.'], ['c.']], [['b.']])
    """
    train = [d for i, d in enumerate(documents) if i % every != offset]
    held_out = [d for i, d in enumerate(documents) if i % every == offset]
    return train, held_out


def write_documents(path, documents):
    """Write documents as one sentence per line, a blank line between documents (create-data's input)."""
    from albert_keras.io_utils import atomic_write

    with atomic_write(path, "w") as f:
        f.write("\n\n".join("\n".join(document) for document in documents) + "\n")
    return path


def topic_task(documents, directory, topics=4, dev_every=4, per_topic=None):
    """A sentence-classification task from the corpus: which of the `topics` largest documents a
    sentence comes from.

    Every topic keeps the same number of sentences (the smallest chosen document's, or
    `per_topic`), so chance is `1 / topics`; every `dev_every`-th sentence goes to the
    validation file. Labels are `topic<N>` with N the document's index in `documents`.

    Args:
        documents: lists of sentences (`embedded_corpus()` or a part of it).
        directory: receives `train.jsonl` and `dev.jsonl` (`{"text": ..., "label": ...}` lines).
        topics: number of classes.
        dev_every: one validation sentence per this many.
        per_topic: sentences per topic (default: as many as the smallest chosen document has).

    Returns:
        `(train_path, dev_path, labels)`.

    Example:
    ```python
    from albert_keras.corpus import embedded_corpus
    train, dev, labels = topic_task(embedded_corpus(), "/tmp/topics", topics=4)
    ```
    """
    from albert_keras.io_utils import atomic_write

    chosen = sorted(range(len(documents)), key=lambda i: (-len(documents[i]), i))[:topics]
    count = min(len(documents[i]) for i in chosen)
    count = min(count, per_topic) if per_topic else count
    rows = {"train": [], "dev": []}
    for index in sorted(chosen):
        for position, sentence in enumerate(documents[index][:count]):
            split = "dev" if position % dev_every == dev_every - 1 else "train"
            rows[split].append({"text": sentence, "label": f"topic{index}"})
    os.makedirs(directory, exist_ok=True)
    paths = []
    for split in ("train", "dev"):
        path = os.path.join(directory, f"{split}.jsonl")
        with atomic_write(path, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows[split])
        paths.append(path)
    return paths[0], paths[1], [f"topic{index}" for index in sorted(chosen)]


def heldout_baselines(pattern):
    """What answering without the context scores on pretraining records: `(mlm, sop)` accuracies.

    `mlm` is the share of the masked positions whose label is the most frequent label piece (the
    masked LM's answer before it reads any context); `sop` the share of the more frequent
    sentence-order label.

    Example:
    ```python
    mlm, sop = heldout_baselines("runs/quickstart/tfrecords/heldout/part-*")
    ```
    """
    import numpy as np
    import tensorflow as tf

    ids, order = [], []
    for path in sorted(tf.io.gfile.glob(pattern)):
        for record in tf.data.TFRecordDataset(path):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            weights = feature["masked_lm_weights"].float_list.value
            ids.extend(i for i, w in zip(feature["masked_lm_ids"].int64_list.value, weights) if w > 0)
            order.append(feature["next_sentence_labels"].int64_list.value[0])
    if not ids:
        return 0.0, 0.0
    share = float(np.mean(order))
    return float(np.bincount(ids).max() / len(ids)), max(share, 1.0 - share)


def _stage(number, title, command=None):
    print(f"\n[{number}/{STAGES}] {title}" + (f"\n      same as: {command}" if command else ""), file=sys.stderr,
          flush=True)


def _progress_verbosity(verbose):
    """Keras' animated bar (ANSI escapes, carriage returns) on a terminal only; else a line per epoch."""
    if not verbose:
        return 0
    return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2


def format_table(rows):
    """A plain-text table of the quickstart's stages.

    Example:
    >>> print(format_table([("vocabulary", "spiece.model", 1.0, "2000 pieces")]).splitlines()[0].split())
    ['stage', 'made', 'seconds', 'key', 'metric']
    """
    header = ("stage", "made", "seconds", "key metric")
    cells = [header] + [(stage, made, f"{seconds:.1f}", metric) for stage, made, seconds, metric in rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(4)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _predictions_per_seq(max_seq_length):
    return max(5, round(max_seq_length * 20 / 128))  # the official 20 per 128 tokens


def stage_commands(output_dir="runs/quickstart", vocab_size=2000, max_seq_length=64, dupe_factor=10, ngram=1,
                   num_train_steps=4000, global_batch_size=32, learning_rate=2e-3, optimizer="adamw",
                   num_warmup_steps=300, finetune_epochs=10, finetune_learning_rate=2e-4):
    """The `albert-keras` command equivalent to each quickstart stage (printed as "same as: ...").

    Args:
        output_dir, ...: as for `quickstart`.

    Returns:
        `{"vocabulary", "data", "pretrain", "finetune", "export", "tflite"}` -> command line.

    Example:
    ```python
    stage_commands("runs/qs")["export"]  # "albert-keras export --model runs/qs/finetune --output ..."
    ```
    """
    spm_model = os.path.join(output_dir, "spiece.model")
    train_text = os.path.join(output_dir, "corpus", "train.txt")
    train_records = os.path.join(output_dir, "tfrecords", "train")
    heldout_records = os.path.join(output_dir, "tfrecords", "heldout")
    topics = os.path.join(output_dir, "topics")
    finetuned = os.path.join(output_dir, "finetune")  # a run directory: --model takes it as it is
    return {
        "vocabulary": f"albert-keras train-tokenizer --input {train_text} --vocab-size {vocab_size} --output {spm_model}",
        "data": f"albert-keras create-data --input {train_text} --vocab {spm_model} --output {train_records} "
                f"--max-seq-length {max_seq_length} --max-predictions-per-seq {_predictions_per_seq(max_seq_length)} "
                f"--ngram {ngram} --dupe-factor {dupe_factor}",
        "pretrain": f"albert-keras pretrain --config {os.path.join(output_dir, 'albert_config.json')} "
                    f"--train-files '{train_records}/part-*' --eval-files '{heldout_records}/part-*' "
                    f"--output {os.path.join(output_dir, 'pretrain')} --batch-size {global_batch_size} "
                    f"--num-train-steps {num_train_steps} --optimizer {optimizer} --learning-rate {learning_rate:g} "
                    f"--warmup {num_warmup_steps} --vocab {spm_model}",
        "finetune": f"albert-keras finetune --task classification --model {os.path.join(output_dir, 'pretrain')} "
                    f"--train {os.path.join(topics, 'train.jsonl')} --validation {os.path.join(topics, 'dev.jsonl')} "
                    f"--output {finetuned} --epochs {finetune_epochs} --batch-size {global_batch_size} "
                    f"--learning-rate {finetune_learning_rate:g} --max-seq-length {max_seq_length}",
        "export": f"albert-keras export --model {finetuned} --output {os.path.join(output_dir, 'saved_models', 'topics')} "
                  "--model-version 1",
        "tflite": f"albert-keras export --model {finetuned} --output {os.path.join(output_dir, 'tflite', 'topics')} "
                  "--model-version 1 --format tflite --quantize dynamic-int8 --with-tokenizer",
    }


def quickstart(
    output_dir="runs/quickstart",
    vocab_size=2000,
    max_seq_length=64,
    dupe_factor=10,
    ngram=1,
    num_train_steps=4000,
    global_batch_size=32,
    learning_rate=2e-3,
    optimizer="adamw",
    num_warmup_steps=300,
    model_config=None,
    finetune_epochs=10,
    finetune_learning_rate=2e-4,
    topics=4,
    per_topic=None,
    workers=1,
    export=True,
    resume=False,
    verbose=1,
):
    """Pretrain, fine-tune and export a small ALBERT on the embedded corpus; print what it made.

    The defaults are chosen to learn visibly in a few minutes on a 2-core CPU (README has the
    measured table); every size can be shrunk for a smoke test.

    Args:
        output_dir: receives `corpus/` (train and held-out documents), `spiece.model`,
            `tfrecords/{train,heldout}/`, `pretrain/` (checkpoints, TensorBoard logs and the
            `pretrained/` directory), `topics/` (the task files), `finetune/` and
            `finetune_random/` (pretrained and random-weights runs), `saved_models/topics/1/`,
            `tflite/topics/1/model.tflite` and `quickstart.json` (the summary).
        vocab_size: SentencePiece vocabulary size.
        max_seq_length: sequence length of the pretraining records and the task model.
        dupe_factor: passes over the training documents, each with different pairs and masks.
        ngram: longest masked n-gram of whole words. On a corpus this small the official 3 keeps
            the masked LM near its most-frequent-piece answer for thousands of steps (measured:
            held-out accuracy 0.14 after 2,400 steps with 3, 0.17 after 1,000 with 1).
        num_train_steps: pretraining steps. Sentence-order prediction sits at chance for about
            2,000 steps at these settings, then climbs (held-out accuracy 0.60 at 3,000 and 0.66
            at 4,000 in the README's run), so fewer steps show masked-LM learning only.
        global_batch_size: examples per step (pretraining and fine-tuning).
        learning_rate: peak pretraining learning rate.
        optimizer: `"adamw"` or `"lamb"` (on models this small AdamW learns faster).
        num_warmup_steps: linear warmup steps (too short a warmup collapses the representations:
            AdamW at 3e-3 with 60 warmup steps left every token the same vector by step 50).
        model_config: `AlbertConfig` fields replacing `QUICKSTART_CONFIG`'s.
        finetune_epochs: passes over the topic task's training sentences (17 steps each).
        finetune_learning_rate: peak fine-tuning learning rate (AdamW).
        topics: classes of the topic task (the largest training documents).
        per_topic: sentences per topic (default: all the smallest chosen document has).
        workers: processes creating the records.
        export: also write and check the SavedModel and the int8 TFLite model.
        resume: continue an interrupted quickstart's pretraining from its last checkpoint
            instead of starting afresh.
        verbose: progress output (0: only the final table).

    Returns:
        A dict with the paths written, every stage's seconds and metrics, and the table rows.

    Example:
    ```python
    from albert_keras.quickstart import quickstart
    summary = quickstart("/tmp/albert_quickstart", num_train_steps=50, finetune_epochs=1)
    print(summary["pretraining"]["heldout"])
    ```
    """
    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import embedded_corpus
    from albert_keras.data.create import create_pretraining_data
    from albert_keras.tokenization import train_sentencepiece
    from albert_keras.training.pretrain import pretrain

    start = time.time()
    keras_verbose = _progress_verbosity(verbose)
    commands = stage_commands(output_dir, vocab_size, max_seq_length, dupe_factor, ngram, num_train_steps,
                              global_batch_size, learning_rate, optimizer, num_warmup_steps, finetune_epochs,
                              finetune_learning_rate)
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "corpus": os.path.join(output_dir, "corpus"),
        "spm_model": os.path.join(output_dir, "spiece.model"),
        "tfrecords": os.path.join(output_dir, "tfrecords"),
        "pretrain": os.path.join(output_dir, "pretrain"),
        "topics": os.path.join(output_dir, "topics"),
    }
    rows = []
    result = {"paths": paths}

    # --- 1. vocabulary --------------------------------------------------------------------------
    timer = time.time()
    train_docs, heldout_docs = split_documents(embedded_corpus())
    os.makedirs(paths["corpus"], exist_ok=True)
    train_text = write_documents(os.path.join(paths["corpus"], "train.txt"), train_docs)
    heldout_text = write_documents(os.path.join(paths["corpus"], "heldout.txt"), heldout_docs)
    _stage(1, f"Vocabulary: SentencePiece unigram with ALBERT's ids, on {len(train_docs)} training documents "
              f"({len(heldout_docs)} held out)",
           commands["vocabulary"])
    train_sentencepiece(train_text, paths["spm_model"], vocab_size=vocab_size)
    rows.append(("1 vocabulary", paths["spm_model"], time.time() - timer, f"{vocab_size} pieces"))

    # --- 2. pretraining data --------------------------------------------------------------------
    timer = time.time()
    train_records = os.path.join(paths["tfrecords"], "train")
    heldout_records = os.path.join(paths["tfrecords"], "heldout")
    predictions = _predictions_per_seq(max_seq_length)
    _stage(2, "Pretraining data: SOP pairs and n-gram whole-word masks, official TFRecord schema", commands["data"])
    show_progress = bool(verbose) and getattr(sys.stderr, "isatty", lambda: False)()
    common = dict(max_seq_length=max_seq_length, max_predictions_per_seq=predictions, ngram=ngram, workers=workers,
                  overwrite=True, progress=show_progress)
    manifest = create_pretraining_data([train_text], paths["spm_model"], train_records, dupe_factor=dupe_factor,
                                       num_shards=4, **common)
    # Several passes over the held-out documents give more pairs and masks to score on.
    heldout_manifest = create_pretraining_data([heldout_text], paths["spm_model"], heldout_records, dupe_factor=4,
                                               num_shards=1, seed=54321, **common)
    counts = (manifest["statistics"]["instances"], heldout_manifest["statistics"]["instances"])
    result["instances"] = {"train": counts[0], "heldout": counts[1]}
    rows.append(("2 pretraining data", paths["tfrecords"] + "/", time.time() - timer,
                 f"{counts[0]} train + {counts[1]} held-out records"))

    # --- 3. pretraining -------------------------------------------------------------------------
    timer = time.time()
    config = AlbertConfig(vocab_size=vocab_size, max_position_embeddings=max(max_seq_length, 128),
                          **{**QUICKSTART_CONFIG, **(model_config or {})})
    config_path = os.path.join(output_dir, "albert_config.json")
    config.to_json_file(config_path)
    run_dir = paths["pretrain"]
    eval_every = max(num_train_steps // 4, 1)
    _stage(3, f"Pretraining: MLM + SOP, {optimizer} under model.fit, scored on the held-out records",
           commands["pretrain"])
    if os.path.isdir(run_dir) and not resume:
        # A quickstart is a fresh demo: old checkpoints from other settings must not be resumed.
        shutil.rmtree(run_dir)
    summary = pretrain(
        config, os.path.join(train_records, "part-*"), run_dir, eval_files=os.path.join(heldout_records, "part-*"),
        eval_steps=10**6, global_batch_size=global_batch_size, num_train_steps=num_train_steps,
        learning_rate=learning_rate, optimizer=optimizer, num_warmup_steps=num_warmup_steps,
        checkpoint_every=eval_every, eval_every=eval_every, log_every=max(min(100, num_train_steps // 10), 1),
        spm_model=paths["spm_model"], verbose=keras_verbose,
    )
    pretrained_dir = summary["pretrained_dir"]
    heldout = summary["eval"]
    mlm_baseline, sop_baseline = heldout_baselines(os.path.join(heldout_records, "part-*"))
    result["pretraining"] = {"heldout": heldout, "train": summary["train"], "warnings": summary["warnings"],
                             "step": summary["step"], "pretrained_dir": pretrained_dir,
                             "heldout_baselines": {"masked_lm_accuracy": mlm_baseline,
                                                   "sentence_order_accuracy": sop_baseline}}
    rows.append(("3 pretraining", pretrained_dir, time.time() - timer,
                 f"held-out MLM acc {heldout['masked_lm_accuracy']:.3f} (most frequent piece {mlm_baseline:.3f}), "
                 f"SOP acc {heldout['sentence_order_accuracy']:.3f} (majority {sop_baseline:.3f})"
                 + (" COLLAPSE WARNING" if summary["warnings"] else "")))

    # --- 4. fine-tuning: pretrained vs random weights -------------------------------------------
    timer = time.time()
    task_train, task_dev, labels = topic_task(train_docs, paths["topics"], topics=topics, per_topic=per_topic)
    finetuned = _finetune_both(config, pretrained_dir, paths["spm_model"], task_train, task_dev, output_dir,
                               max_seq_length, global_batch_size, finetune_epochs, finetune_learning_rate,
                               len(labels), keras_verbose, commands["finetune"])
    result["finetuning"] = finetuned
    rows.append(("4 fine-tuning (topic of a sentence)", finetuned["pretrained"]["dir"], time.time() - timer,
                 f"dev accuracy {finetuned['pretrained']['accuracy']:.3f} pretrained vs "
                 f"{finetuned['random']['accuracy']:.3f} from random weights (chance {1 / len(labels):.2f})"))

    # --- 5, 6. export and check ------------------------------------------------------------------
    if export:
        sentence, label = _first_row(task_dev)
        rows.extend(_export_and_check(finetuned["pretrained"]["dir"], output_dir, sentence, label, result, commands))

    result["seconds"] = round(time.time() - start, 1)
    result["table"] = [list(row) for row in rows]
    from albert_keras.io_utils import atomic_write

    with atomic_write(os.path.join(output_dir, "quickstart.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True, default=str)
    print(f"\nquickstart: done in {result['seconds']:.0f}s; summary in {os.path.join(output_dir, 'quickstart.json')}\n",
          file=sys.stderr, flush=True)
    print(format_table(rows), flush=True)
    return result


def _first_row(path):
    with open(path) as f:
        row = json.loads(f.readline())
    return row["text"], row["label"]


def _finetune_both(config, pretrained_dir, spm_model, task_train, task_dev, output_dir, max_seq_length,
                   global_batch_size, epochs, learning_rate, num_labels, keras_verbose, command):
    """Fine-tune the pretrained encoder and the same architecture from random weights on the task."""
    import keras

    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.training.finetune import finetune

    random_dir = os.path.join(output_dir, "random_init")
    keras.utils.set_random_seed(12345)
    AlbertEncoder(config).save_pretrained(random_dir, spm_model=spm_model)
    results = {}
    for name, init_dir, out in (("pretrained", pretrained_dir, "finetune"), ("random", random_dir, "finetune_random")):
        _stage(4, f"Fine-tuning ({name} weights): topic of a sentence, {num_labels} classes",
               command if name == "pretrained" else None)
        run_dir = os.path.join(output_dir, out)
        if os.path.isdir(run_dir):
            shutil.rmtree(run_dir)
        summary = finetune(
            "classification", init_dir, task_train, task_dev, run_dir,
            # The random-weights run is the comparison, from untrained weights on purpose (--from-scratch).
            options={"max_seq_length": max_seq_length, "from_scratch": name == "random"},
            epochs=epochs, learning_rate=learning_rate, global_batch_size=global_batch_size, verbose=keras_verbose,
        )
        best = summary["best"]["metrics"] if summary.get("best") else summary["validation"]
        results[name] = {"dir": summary["pretrained_dir"], "accuracy": float(best["accuracy"]),
                         "steps": summary["step"]}
    return results


def _export_and_check(model_dir, output_dir, sentence, label, result, commands):
    """Export the fine-tuned model as a SavedModel and an int8 TFLite file; ask each about `sentence`."""
    import numpy as np
    import tensorflow as tf

    from albert_keras.export.exporter import REPORT_FILE
    from albert_keras.export.exporter import TFLITE_FILE
    from albert_keras.export.exporter import export_model
    from albert_keras.export.tflite import interpreter

    rows = []
    timer = time.time()
    saved_model = os.path.join(output_dir, "saved_models", "topics")
    _stage(5, "Export: versioned SavedModel for TF Serving, raw-text signature; reloaded and asked one sentence",
           commands["export"])
    version_dir = export_model(model_dir, saved_model, version=1, overwrite=True, verbose=False)
    outputs = tf.saved_model.load(version_dir).signatures["serving_default"](text=tf.constant([sentence]))
    answer = outputs["labels"].numpy()[0].decode()
    result["saved_model"] = {"dir": version_dir, "sentence": sentence, "label": label, "answer": answer,
                             "probability": float(np.max(outputs["probabilities"].numpy()[0]))}
    rows.append(("5 SavedModel", version_dir, time.time() - timer, f"answers {answer!r} (true {label!r})"))

    timer = time.time()
    tflite_dir = os.path.join(output_dir, "tflite", "topics")
    _stage(6, "Export: int8 TFLite with the tokenizer inside; run by ai_edge_litert on one sentence",
           commands["tflite"])
    tflite_version = export_model(model_dir, tflite_dir, version=1, format="tflite", quantize="dynamic-int8",
                                  with_tokenizer=True, overwrite=True, verbose=False)
    path = os.path.join(tflite_version, TFLITE_FILE)
    with open(os.path.join(tflite_version, REPORT_FILE)) as f:
        report = json.load(f)
    runner = interpreter(path).get_signature_runner()
    answer_ids = runner(text=np.array([sentence.encode()], dtype=object))["label_ids"]
    labels = json.load(open(os.path.join(model_dir, "finetune.json")))["metadata"]["labels"]
    tflite_answer = labels[int(np.asarray(answer_ids).reshape(-1)[0])]
    result["tflite"] = {"path": path, "size_bytes": report["size_bytes"], "label_agreement": report["label_agreement"],
                        "max_diff": report["max_diff"], "answer": tflite_answer}
    rows.append(("6 TFLite int8", path, time.time() - timer,
                 f"{report['size_bytes'] / 1e6:.1f} MB, answers {tflite_answer!r}, agrees with Keras on "
                 f"{report['label_agreement']:.0%} of the check texts"))
    return rows


# TensorFlow's C++ start-up lines ("I0000 ... port.cc:153] oneDNN custom operations are on", "Could
# not find cuda drivers", the CPU-instructions notice; LiteRT's XNNPACK notice) are written to file descriptor 2 before
# absl's logging is initialized, so TF_CPP_MIN_LOG_LEVEL does not silence them (TF 2.21); only a
# filter on the descriptor itself does.
_NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions:"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


class NativeLogFilter:
    """Context manager: drops TensorFlow's C++ log lines from stderr (fd 2), passes the rest through.

    Lines are forwarded as soon as they end in a newline or a carriage return, so progress bars
    still move.

    Example:
    ```python
    with NativeLogFilter():
        import tensorflow as tf
        tf.constant(1)
    ```
    """

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self._thread.start()
        return self

    def _pump(self, read_end):
        pending = b""
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            pending += chunk
            while True:
                match = re.search(rb"[\r\n]", pending)
                if not match:
                    break
                piece, pending = pending[: match.end()], pending[match.end() :]
                if not _NATIVE_LOG_LINE.match(piece):
                    os.write(self._saved, piece)
        if pending and not _NATIVE_LOG_LINE.match(pending):
            os.write(self._saved, pending)
        os.close(read_end)

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump drains and stops
        self._thread.join(timeout=10)
        os.close(self._saved)
        return False


def quiet_tensorflow():
    """Silence TensorFlow's and absl's Python-level start-up and AutoGraph messages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with tensorflow; nothing to quiet without it
        pass


def register(subparsers):
    """Add the `quickstart` subcommand (flags in the vocabulary of `albert_keras.cli_args`)."""
    from albert_keras.cli_args import add_alias
    from albert_keras.cli_args import add_batch_size
    from albert_keras.cli_args import add_command
    from albert_keras.cli_args import add_max_seq_length
    from albert_keras.cli_args import add_quiet

    parser = add_command(
        subparsers, "quickstart",
        help="pretrain, fine-tune and export a small ALBERT on the embedded corpus (no download)",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--output", default="runs/quickstart", help="directory for everything the run makes")
    add_alias(parser, "--output-dir", "--output", "output")
    parser.add_argument("--vocab-size", type=int, default=2000, help="SentencePiece pieces")
    add_max_seq_length(parser, 64, "tokens per record and per fine-tuning example")
    parser.add_argument("--dupe-factor", type=int, default=10, help="passes over the training documents")
    parser.add_argument("--ngram", type=int, default=1, help="longest masked n-gram (official: 3)")
    parser.add_argument("--num-train-steps", type=int, default=4000, help="pretraining steps")
    add_batch_size(parser, 32, help="examples per step (global), pretraining and fine-tuning")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="peak pretraining learning rate")
    parser.add_argument("--optimizer", choices=("adamw", "lamb"), default="adamw", help="pretraining optimizer")
    parser.add_argument("--warmup", type=int, default=300, help="pretraining warmup steps")
    add_alias(parser, "--num-warmup-steps", "--warmup", "warmup", type=int)
    parser.add_argument("--hidden-size", type=int, default=None,
                        help="override the model's hidden size (embedding size, heads and FFN follow)")
    parser.add_argument("--num-hidden-layers", type=int, default=None)
    parser.add_argument("--finetune-epochs", type=int, default=10, help="passes over the topic task")
    parser.add_argument("--topics", type=int, default=4, help="classes of the fine-tuning task")
    parser.add_argument("--per-topic", type=int, default=None, help="sentences per topic (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="processes creating pretraining records")
    parser.add_argument("--no-export", action="store_true", help="stop after fine-tuning")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run's pretraining")
    add_quiet(parser)
    parser.set_defaults(func=_run)


def _run(args):
    model_config = {}
    if args.hidden_size:
        hidden = args.hidden_size
        model_config.update(hidden_size=hidden, intermediate_size=4 * hidden, embedding_size=min(64, max(hidden // 2, 8)),
                            num_attention_heads=max(hidden // 32, 1))
    if args.num_hidden_layers:
        model_config["num_hidden_layers"] = args.num_hidden_layers
    with NativeLogFilter():
        quiet_tensorflow()
        quickstart(
            args.output, vocab_size=args.vocab_size, max_seq_length=args.max_seq_length,
            dupe_factor=args.dupe_factor, ngram=args.ngram, num_train_steps=args.num_train_steps,
            global_batch_size=args.batch_size, learning_rate=args.learning_rate, optimizer=args.optimizer,
            num_warmup_steps=args.warmup, model_config=model_config, finetune_epochs=args.finetune_epochs,
            topics=args.topics, per_topic=args.per_topic, workers=args.workers, export=not args.no_export,
            resume=args.resume, verbose=0 if args.quiet else 1,
        )
