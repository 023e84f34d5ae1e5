"""Subprocess entry for the multi-worker fine-tuning test: `python finetune_worker.py INIT TRAIN DEV OUT TAG`.

Runs `finetune` under MultiWorkerMirroredStrategy (TF_CONFIG names the cluster and this worker)
and writes `OUT/TAG.json`: the summary (every worker scores the validation file itself).
"""

import json
import os
import sys


def main(init_dir, train, dev, out, tag):
    from albert_keras.training.finetune import finetune

    summary = finetune(
        "classification", init_dir, train, dev, os.path.join(out, "run"),
        options={"text_column": "sentence", "max_seq_length": 16, "from_scratch": True},
        epochs=3, strategy="multi-worker", global_batch_size=8, learning_rate=1e-3, verbose=0,
    )
    with open(os.path.join(out, tag + ".json"), "w") as f:
        json.dump(summary, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
