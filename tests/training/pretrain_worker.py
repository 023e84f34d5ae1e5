"""Subprocess entry for the distribution tests: `python pretrain_worker.py CONFIG RECORDS OUT TAG STRATEGY...`.

Runs `pretrain` once per strategy named (in this one process, to share the TensorFlow start-up),
and writes `OUT/TAG-STRATEGY.npz` (this process's final weights) and `.json` (the summary).
`LOGICAL_CPUS=2` splits the CPU into two logical devices first (for MirroredStrategy).
"""

import json
import os
import sys

import numpy as np

SETTINGS = dict(global_batch_size=16, num_train_steps=10, num_warmup_steps=2, learning_rate=1e-3, checkpoint_every=5, verbose=0)


def main(config, records, out, tag, *strategies):
    import tensorflow as tf

    if os.environ.get("LOGICAL_CPUS"):
        cpus = tf.config.list_physical_devices("CPU")
        count = int(os.environ["LOGICAL_CPUS"])
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)

    import albert_keras.training.pretrain as pretrain_module

    models = []
    build = pretrain_module._build_model
    # Keep a handle on the model each run builds: non-chief workers write no pretrained directory.
    pretrain_module._build_model = lambda *args: models.append(build(*args)) or models[-1]
    for strategy in strategies:
        summary = pretrain_module.pretrain(config, records, os.path.join(out, strategy), strategy=strategy, **SETTINGS)
        name = os.path.join(out, f"{tag}-{strategy}")
        np.savez(name + ".npz", *[np.asarray(w) for w in models[-1].get_weights()])
        with open(name + ".json", "w") as f:
            json.dump(summary, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
