"""Intent-slot serving speed: utterances/s through the SavedModel and TFLite, at batch 1 and 32.

For each model size (`--presets`, default `tiny,albert-base-v2`) an `AlbertIntentSlotTagger` with
RANDOM seeded weights (speed does not depend on them; 4 intents, 7 slot tags) is saved as a
pretrained directory and served three ways, every one taking raw strings (tokenizing included):

- `SavedModel`: `albert_keras.export.exporter.export_model` (what `albert-keras export` writes),
  loaded fresh with `tf.saved_model.load`, `signatures["serving_default"](text=...)`: intent,
  probability, words, tags and slot spans;
- `TFLite float32` / `TFLite dynamic-int8`: the intent-slot TFLite graph with the tokenizer inside
  (`albert_keras.export.intent_slots_tflite`, what `export --format tflite --with-tokenizer`
  converts; here without its verification pass, whose int8 agreement gate a random model need not
  meet), run by ai_edge_litert with `--threads` threads. Its `text` input takes a batch, so batch 32
  is ONE call of 32 utterances, as for the SavedModel.

Each pass sends every utterance (`--utterances`, made-up assistant requests of 3 to 12 words) in
order, one call per batch; utterances/s is the median over `--runs` passes after one warm-up pass.
The implementations alternate pass by pass, so load from other jobs hits them alike. Equal work is
checked: each TFLite file's intents are compared with the SavedModel's (`intent_agreement`).

    .venv/bin/python benchmarks/intent_slots_serving.py [--presets tiny,albert-base-v2]
        [--utterances 256] [--runs 3] [--threads N] [--output PATH]

The SentencePiece model (1,000 pieces) is trained on the embedded corpus. Prints a table and
writes benchmarks/results/intent_slots_serving.json (with the CPU flags and the load average).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "intent_slots_serving.json")
SEQUENCE_LENGTH = 64
BATCHES = (1, 32)
TINY = dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=SEQUENCE_LENGTH)
INTENTS = ["get_weather", "play_music", "set_alarm", "show_item"]
SLOT_LABELS = ["O", "B-city", "I-city", "B-artist", "I-artist", "B-time", "I-time"]
TEMPLATES = (
    "what is the weather in {city} {time}",
    "play something by {artist} please",
    "wake me up {time} and then play {artist}",
    "show me the forecast for {city}",
    "could you put on the new album from {artist} in the kitchen",
    "set an alarm for {time}",
)
VALUES = {
    "city": ["paris", "new york", "san francisco bay area", "tokyo"],
    "artist": ["the beatles", "miles davis", "a band nobody knows"],
    "time": ["tomorrow", "at seven in the morning", "tonight"],
}


def utterances(count, seed=0):
    """`count` made-up assistant requests (3 to 12 words), seeded.

    Example:
    ```python
    utterances(2)  # ["set an alarm for tonight", ...]
    ```
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        out.append(template.format(**{key: values[rng.integers(len(values))] for key, values in VALUES.items()}))
    return out


def build_pretrained(work, preset, seed=0):
    """A random seeded intent-slot model saved as a pretrained directory; `(directory, model, spm)`."""
    import keras

    from albert_keras.config import AlbertConfig
    from albert_keras.corpus import write_embedded_corpus
    from albert_keras.modeling import AlbertEncoder
    from albert_keras.modeling.intent_slots import AlbertIntentSlotTagger
    from albert_keras.tokenization import train_sentencepiece

    spm = os.path.join(work, "spiece.model")
    if not os.path.exists(spm):
        train_sentencepiece(write_embedded_corpus(os.path.join(work, "corpus.txt")), spm, vocab_size=1000)
    config = AlbertConfig(vocab_size=1000, **TINY) if preset == "tiny" else AlbertConfig.from_preset(preset)
    keras.utils.set_random_seed(seed)
    model = AlbertIntentSlotTagger(AlbertEncoder(config), intents=INTENTS, slot_labels=SLOT_LABELS)
    directory = os.path.join(work, preset, "pretrained")
    model.save_pretrained(directory, vocabulary=spm,
                          tokenizer_settings={"lowercase": True, "sequence_length": SEQUENCE_LENGTH})
    return directory, model, spm


def servers(work, preset, threads):
    """`{name: call(texts) -> intent ids}` for the SavedModel and both TFLite files of one model size."""
    import tensorflow as tf

    from albert_keras.export import tflite
    from albert_keras.export.exporter import export_model
    from albert_keras.export.intent_slots_tflite import IntentSlotLiteServer
    from albert_keras.export.intent_slots_tflite import text_bytes

    directory, model, spm = build_pretrained(work, preset)
    version = export_model(directory, os.path.join(work, preset, "saved"), verbose=False)
    serve = tf.saved_model.load(version).signatures["serving_default"]
    intent_index = {name.encode(): i for i, name in enumerate(INTENTS)}
    calls = {"SavedModel": lambda texts: [intent_index[i] for i in serve(text=tf.constant(texts))["intent"].numpy()]}
    sizes = {}
    server = IntentSlotLiteServer(model, spm, SEQUENCE_LENGTH)
    spec = [tf.TensorSpec([None], tf.string, name="text")]
    for quantize, name in (("none", "TFLite float32"), ("dynamic-int8", "TFLite dynamic-int8")):
        tflite_bytes = tflite.convert_function(model, server.__call__, spec, quantize, allow_custom_ops=True)
        sizes[name] = len(tflite_bytes)
        runner = tflite.interpreter(tflite_bytes, num_threads=threads).get_signature_runner()
        calls[name] = lambda texts, runner=runner: list(runner(text=text_bytes(texts))["intent_ids"])
    return calls, sizes


def measure(calls, texts, runs):
    """`{(name, batch): [utterances/s per pass]}` and each implementation's intents (batch 32 pass)."""
    speeds, intents = {}, {}
    for batch in BATCHES:
        chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
        for run in range(runs + 1):  # pass 0 warms up (traces, allocates) and is not counted
            for name, call in calls.items():
                start = time.perf_counter()
                got = [i for chunk in chunks for i in call(chunk)]
                seconds = time.perf_counter() - start
                if run:
                    speeds.setdefault((name, batch), []).append(len(texts) / seconds)
                if batch == BATCHES[-1]:
                    intents[name] = got
    return speeds, intents


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if flag in flags]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tiny,albert-base-v2")
    parser.add_argument("--utterances", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    texts = utterances(args.utterances)
    rows = []
    with tempfile.TemporaryDirectory(prefix="intent_slots_serving_") as work:
        for preset in args.presets.split(","):
            calls, sizes = servers(work, preset, args.threads)
            speeds, intents = measure(calls, texts, args.runs)
            for (name, batch), values in speeds.items():
                rows.append({
                    "preset": preset, "implementation": name, "batch": batch,
                    "utterances_per_s": statistics.median(values), "passes": [round(v, 2) for v in values],
                    "intent_agreement": float(np.mean(np.array(intents[name]) == np.array(intents["SavedModel"]))),
                    "tflite_bytes": sizes.get(name),
                })
    print(f"{'model':<16}{'implementation':<22}{'batch':>6}{'utterances/s':>14}{'intents = SavedModel':>22}")
    for row in rows:
        print(f"{row['preset']:<16}{row['implementation']:<22}{row['batch']:>6}{row['utterances_per_s']:>14.1f}"
              f"{row['intent_agreement']:>22.3f}")
    result = {
        "command": " ".join([os.path.relpath(sys.argv[0])] + (sys.argv[1:] if argv is None else list(argv))),
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "flags": cpu_flags(), "load_average": list(os.getloadavg())},
        "utterances": len(texts), "mean_words": float(np.mean([len(t.split()) for t in texts])),
        "runs": args.runs, "threads": args.threads, "sequence_length": SEQUENCE_LENGTH, "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
