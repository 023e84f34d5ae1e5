"""Fixtures for the data tests: one real create-data run on the embedded corpus, shared."""

import glob
import os

import numpy as np
import pytest

SEQ = 64
PREDICTIONS = 10


def parse_records(directory, max_seq_length=SEQ, max_predictions=PREDICTIONS):
    """Every record under `directory` (shards in name order), parsed with the official spec."""
    import tensorflow as tf

    from albert_keras.data.schema import official_feature_spec

    files = sorted(glob.glob(os.path.join(directory, "part-*")))
    compression = "GZIP" if files and files[0].endswith(".gz") else ""
    records = [r.numpy() for f in files for r in tf.data.TFRecordDataset(f, compression_type=compression)]
    parsed = tf.io.parse_example(records, official_feature_spec(max_seq_length, max_predictions))
    return {name: value.numpy() for name, value in parsed.items()}


@pytest.fixture(scope="session")
def embedded_records(tmp_path_factory, embedded_corpus_path, spm_model_path):
    """(output directory, manifest) of create-data on the embedded corpus: seq 64, 10 predictions,
    dupe factor 3, one worker."""
    from albert_keras.data.create import create_pretraining_data

    output = tmp_path_factory.mktemp("records") / "embedded"
    manifest = create_pretraining_data(
        [embedded_corpus_path], spm_model_path, output, max_seq_length=SEQ,
        max_predictions_per_seq=PREDICTIONS, dupe_factor=3, seed=7, num_shards=4,
    )
    return os.fspath(output), manifest


@pytest.fixture(scope="session")
def embedded_parsed(embedded_records):
    return parse_records(embedded_records[0])
