import os

import pytest

from albert_keras.data.writer import ShardedWriter
from albert_keras.data.writer import ShuffleBuffer


def _shuffle(items, capacity, seed):
    buffer = ShuffleBuffer(capacity, seed)
    out, held = [], 0
    for item in items:
        emitted = buffer.push(item)
        held = max(held, len(buffer._items))
        if emitted is not None:
            out.append(emitted)
    return out + list(buffer.drain()), held


def test_shuffle_buffer_is_bounded_complete_deterministic_and_mixes():
    items = list(range(5000))
    out, held = _shuffle(items, 100, seed=1)
    assert sorted(out) == items and held <= 100
    assert out == _shuffle(items, 100, seed=1)[0]
    assert out != _shuffle(items, 100, seed=2)[0]
    displacement = sum(abs(i - x) for i, x in enumerate(out)) / len(out)
    assert displacement > 20  # items move by about the buffer size, not 0
    assert _shuffle(items, 0, seed=1)[0] == items


def test_sharded_writer_renames_on_success_and_removes_on_error(tmp_path):
    import tensorflow as tf

    with ShardedWriter(tmp_path, num_shards=3, seed=0) as writer:
        for i in range(30):
            writer.write(b"record-%d" % i)
        assert sorted(os.listdir(tmp_path)) == [f".part-{i:05d}-of-00003.tfrecord.tmp" for i in range(3)]
    assert sorted(os.listdir(tmp_path)) == [f"part-{i:05d}-of-00003.tfrecord" for i in range(3)]
    records = [r.numpy() for name in sorted(os.listdir(tmp_path)) for r in tf.data.TFRecordDataset(str(tmp_path / name))]
    assert sorted(records) == sorted(b"record-%d" % i for i in range(30)) and sum(writer.counts) == 30
    assert all(count > 0 for count in writer.counts)

    failed = tmp_path / "failed"
    failed.mkdir()
    with pytest.raises(RuntimeError):
        with ShardedWriter(failed, num_shards=2, seed=0, compression="GZIP") as writer:
            writer.write(b"x")
            raise RuntimeError("boom")
    assert os.listdir(failed) == []
