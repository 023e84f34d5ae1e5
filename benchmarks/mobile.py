"""Teacher, student and distilled student x float32 / float16 / dynamic-int8 / full-int8: one table.

Size, LiteRT latency at batch 1 (1, 2 and 4 threads, XNNPACK), MediaPipe TextClassifier latency
and held-out accuracy, each model exported with `--metadata` (what the phone apps load). Prints a
markdown table and writes benchmarks/results/mobile.json.

    .venv/bin/python benchmarks/mobile.py [--teacher-epochs 10] [--student-epochs 12] [--calls 100] [--work-dir DIR]

The task, trained here from the embedded corpus (no download): which of six Python-reference
topics does a sentence come from (special method names, compound statements, the standard type
hierarchy, pdb, string methods, sequence types; the corpus' six longest documents, 1,520
sentences; every 5th sentence held out for the table, the next every 5th for validation, the rest
(about 910) train). Vocabulary: a 2,000-piece SentencePiece model trained on the corpus.

- teacher: hidden 128, 3 layers sharing one block, 4 heads, intermediate 512, embedding 64, 48
  positions, randomly initialized (range 0.1, as the fine-tuning tests' tiny models: at 0.05 and
  learning rate 1e-3 the teacher predicted one class for every sentence; no pretraining fits the
  time budget) and fine-tuned on the labels (`finetune`, classification, AdamW at 3e-4, batch 16).
- student: hidden 64, 2 layers sharing one block, 2 heads, intermediate 128, embedding 32 (a
  tiny ALBERT), fine-tuned on the labels alone (`distill(alpha=1)`: no teacher term; Adam at 2e-3).
- distilled: the same student through `distill` with the teacher's soft targets (T=2, alpha=0.5)
  on the labelled texts plus transfer texts the teacher labels: the corpus' other sentences and
  a word-dropped copy of every training sentence (15 % of the words dropped at random).
- student initialization: the distilled student is trained again from the teacher's weights
  truncated to the student's sizes (`--student-init teacher`), and measured at float32 beside the
  randomly initialized one.

Each model goes through `export_mobile_tflite` (its gate included; full-int8 calibrated on 200
other corpus sentences) at a sequence length of 48 (the apps pad every text to it). Latency:
median of `--calls` calls on one packed sentence, after a warm-up call; MediaPipe's includes its
tokenization (MediaPipe's default CPU settings). The machine's cores are reported: more threads
than cores is oversubscribed. `--work-dir` keeps the trained models; a rerun reuses them.
"""

import argparse
import csv
import json
import os
import platform
import random
import tempfile
import time

import numpy as np

SEQUENCE_LENGTH = 48
QUANTIZATIONS = ("none", "float16", "dynamic-int8", "full-int8")
TOPICS = 6
THREADS = (1, 2, 4)
TEACHER = dict(embedding_size=64, hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=512)
STUDENT = dict(embedding_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


def _config(shape, vocab_size):
    return dict(vocab_size=vocab_size, max_position_embeddings=SEQUENCE_LENGTH, num_hidden_groups=1, inner_group_num=1,
                type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                initializer_range=0.1, **shape)


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("sentence", "label"))
        writer.writerows(rows)
    return path


def task_files(work_dir, seed=0):
    """The topic task: `(files, held-out rows, label names, calibration texts)`."""
    from albert_keras.corpus import embedded_corpus

    documents = embedded_corpus()
    order = sorted(range(len(documents)), key=lambda i: -len(documents[i]))
    topics = order[:TOPICS]
    names = [f"topic{i}" for i in range(TOPICS)]
    train, validation, test = [], [], []
    for label, index in enumerate(topics):
        for i, sentence in enumerate(documents[index]):
            (test if i % 5 == 0 else validation if i % 5 == 1 else train).append((sentence, names[label]))
    others = [s for i in order[TOPICS:] for s in documents[i]]
    rng = random.Random(seed)
    augmented = []
    for sentence, _ in train:
        words = sentence.split()
        for _ in range(1):
            kept = [w for w in words if rng.random() > 0.15] or words
            augmented.append(" ".join(kept))
    calibration, transfer = others[::8][:200], [s for i, s in enumerate(others) if i % 8] + augmented
    files = {"train": _write_csv(os.path.join(work_dir, "train.csv"), train),
             "validation": _write_csv(os.path.join(work_dir, "validation.csv"), validation),
             "transfer": os.path.join(work_dir, "transfer.txt")}
    with open(files["transfer"], "w", encoding="utf-8") as f:
        f.write("\n".join(t.replace("\n", " ") for t in transfer) + "\n")
    return files, test, names, calibration, {"train": len(train), "validation": len(validation), "test": len(test),
                                             "transfer": len(transfer)}


def latency_ms(call, calls):
    call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def measure(path, test, names, reference, calls):
    """Accuracy (LiteRT, the apps' packing), LiteRT latency per thread count, MediaPipe latency."""
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    from albert_keras.export.tflite import interpreter
    from albert_keras.export.tflite_metadata import mobile_features

    texts, labels = [t for t, _ in test], np.array([names.index(label) for _, label in test])
    features = mobile_features(reference, texts, SEQUENCE_LENGTH)
    runner = interpreter(path, num_threads=1).get_signature_runner()
    predicted = np.array([int(np.argmax(runner(**{k: v[i : i + 1] for k, v in features.items()})["probability"]))
                          for i in range(len(texts))])
    one = {k: v[:1] for k, v in features.items()}
    row = {"accuracy": float(np.mean(predicted == labels))}
    for threads in THREADS:
        threaded = interpreter(path, num_threads=threads).get_signature_runner()
        row[f"litert_ms_{threads}"] = latency_ms(lambda: threaded(**one), calls)
    options = text_classifier.TextClassifierOptions(base_options=BaseOptions(model_asset_path=path))
    with text_classifier.TextClassifier.create_from_options(options) as classifier:
        row["mediapipe_ms"] = latency_ms(lambda: classifier.classify(texts[0]), calls)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--work-dir", default=None,
                        help="keep the trained models here; a rerun reuses the ones already there (default: a temporary folder)")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "mobile.json"))
    args = parser.parse_args()

    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.export.albert_spm import folded_spm_model
    from albert_keras.export.tflite import TFLiteVerificationError
    from albert_keras.export.tflite_metadata import export_mobile_tflite
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.tokenization import train_sentencepiece
    from albert_keras.training.distill import distill
    from albert_keras.training.finetune import finetune

    started = time.perf_counter()
    timings, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="albert_mobile_") as scratch:
        work_dir = args.work_dir or scratch
        os.makedirs(work_dir, exist_ok=True)
        spm = os.path.join(work_dir, "spiece.model")
        if not os.path.exists(spm):
            train_sentencepiece(write_embedded_corpus(os.path.join(work_dir, "corpus.txt")), spm, vocab_size=2000)
        files, test, names, calibration, counts = task_files(work_dir)
        keras.utils.set_random_seed(0)
        init_dir = os.path.join(work_dir, "teacher_init")
        if not os.path.isdir(init_dir):
            save_pretrained(AlbertEncoder(AlbertConfig(**_config(TEACHER, 2000))), init_dir, spm_model=spm)
        student_config = os.path.join(work_dir, "student.json")
        with open(student_config, "w") as f:
            json.dump(_config(STUDENT, 2000), f)
        clock = time.perf_counter()
        teacher_dir = os.path.join(work_dir, "teacher", "pretrained")
        if not os.path.isdir(teacher_dir):
            finetune("classification", init_dir, files["train"], files["validation"], os.path.join(work_dir, "teacher"),
                     options={"text_column": "sentence", "max_seq_length": SEQUENCE_LENGTH, "from_scratch": True},
                     epochs=args.teacher_epochs, global_batch_size=16, learning_rate=3e-4, verbose=0)
            timings["teacher_training_s"] = time.perf_counter() - clock
        models, students = {"teacher": teacher_dir}, {}
        for name, init, alpha, transfer in (("student", "random", 1.0, None), ("distilled", "random", 0.5, files["transfer"]),
                                            ("distilled, teacher-init", "teacher", 0.5, files["transfer"])):
            clock = time.perf_counter()
            output = os.path.join(work_dir, name.replace(", ", "_"))
            if os.path.exists(os.path.join(output, "summary.json")):
                with open(os.path.join(output, "summary.json")) as f:
                    summary = json.load(f)
            else:
                summary = distill(teacher_dir, student_config, files["train"], files["validation"], output,
                                  temperature=2.0, alpha=alpha, transfer=transfer, epochs=args.student_epochs,
                                  learning_rate=2e-3, student_init=init, verbose=False)
                timings[f"{name}_training_s"] = time.perf_counter() - clock
            students[name] = {"validation_accuracy": summary["student"]["accuracy"],
                              "teacher_validation_accuracy": summary["teacher"]["accuracy"],
                              "parameters": summary["student"]["parameters"], "init": init, "alpha": alpha,
                              "transfer_texts": summary["settings"]["transfer_texts"]}
            models[name] = summary["pretrained_dir"]
            teacher_parameters = summary["teacher"]["parameters"]
        with open(spm, "rb") as f:
            reference = folded_spm_model(f.read())
        clock = time.perf_counter()
        for name, model_dir in models.items():
            model = load_pretrained(model_dir)
            # The teacher-initialized students are compared at float32 only (initialization, not quantization).
            for quantize in QUANTIZATIONS if "teacher-init" not in name else ("none",):
                path = os.path.join(work_dir, f"{name}_{quantize}.tflite")
                try:
                    report = export_mobile_tflite(model, path, spm, SEQUENCE_LENGTH, quantize=quantize, labels=names,
                                                  calibration=calibration if quantize == "full-int8" else None)
                except TFLiteVerificationError as error:  # the gate refused the file: a row that says so
                    rows.append({"model": name, "quantize": quantize, "refused": str(error)})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                row = {"model": name, "quantize": quantize, "size_kb": report["size_bytes"] / 1000,
                       "model_kb": report["model_bytes"] / 1000, "label_agreement": report["label_agreement"],
                       "parameters": int(model.count_params())}
                row.update(measure(path, test, names, reference, args.calls))
                rows.append(row)
                print(json.dumps(row), flush=True)
        timings["export_and_measure_s"] = time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - started
    print_report(rows, students, counts, timings, teacher_parameters, args)


def print_report(rows, students, counts, timings, teacher_parameters, args):
    by = {(r["model"], r["quantize"]): r for r in rows}
    print(f"\nheld-out {counts['test']} sentences, {TOPICS} topics; train {counts['train']}, validation "
          f"{counts['validation']}, transfer {counts['transfer']}; {os.cpu_count()} cores; {platform.processor()}")
    print("\n| model | quantize | file (model + vocabulary) | accuracy | LiteRT 1 thread | LiteRT 2 threads | "
          "LiteRT 4 threads | MediaPipe |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "refused" in row:
            print(f"| {row['model']} | {row['quantize']} | refused by the gate: {row['refused'].split(';')[0]} "
                  "| | | | | |")
            continue
        print(f"| {row['model']} | {row['quantize']} | {row['size_kb']:.0f} KB ({row['model_kb']:.0f} + "
              f"{row['size_kb'] - row['model_kb']:.0f}) | {row['accuracy']:.3f} | {row['litert_ms_1']:.3f} ms | "
              f"{row['litert_ms_2']:.3f} ms | {row['litert_ms_4']:.3f} ms | {row['mediapipe_ms']:.3f} ms |")
    print("\n| student | init | alpha | transfer texts | validation accuracy (Keras) |\n|---|---|---|---|---|")
    for name, s in students.items():
        print(f"| {name} | {s['init']} | {s['alpha']} | {s['transfer_texts']} | {s['validation_accuracy']:.3f} |")
    aim = {}
    for quantize in QUANTIZATIONS:
        teacher, distilled = by[("teacher", quantize)], by[("distilled", quantize)]
        if "refused" in teacher or "refused" in distilled:
            continue
        aim[quantize] = {"accuracy_ratio": distilled["accuracy"] / max(teacher["accuracy"], 1e-9),
                         "speedup_1_thread": teacher["litert_ms_1"] / distilled["litert_ms_1"],
                         "speedup_mediapipe": teacher["mediapipe_ms"] / distilled["mediapipe_ms"]}
        print(f"aim at {quantize}: distilled/teacher accuracy {aim[quantize]['accuracy_ratio']:.3f} (>= 0.97), "
              f"LiteRT 1-thread speed-up {aim[quantize]['speedup_1_thread']:.1f}x, MediaPipe "
              f"{aim[quantize]['speedup_mediapipe']:.1f}x (>= 5)")
    print("timings: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"rows": rows, "students": students, "counts": counts, "timings": timings, "aim": aim,
                   "teacher_parameters": teacher_parameters, "settings": vars(args), "cores": os.cpu_count(),
                   "machine": platform.uname()._asdict()}, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
