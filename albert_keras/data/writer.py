"""Bounded-memory shuffling and sharded, crash-safe TFRecord writing.

How the output is shuffled without holding it in memory (the official script keeps every instance
of every dupe pass in RAM, then shuffles):

1. `ShuffleBuffer`: a fixed-size reservoir of serialized records. Once it is full, each new record
   replaces a uniformly chosen one, which is emitted (the same scheme as `tf.data`'s shuffle).
2. Each emitted record goes to a uniformly chosen shard, so every shard samples the whole corpus
   and per-worker file sharding in the reader sees the same distribution everywhere.
3. The reader (`pipeline.py`) interleaves several shards and shuffles again at training time.

The RNGs are seeded, so the output is deterministic. Memory is bounded by the buffer size.
"""

import os
import random

from albert_keras import io_utils


class ShuffleBuffer:
    """A deterministic, fixed-capacity shuffle buffer.

    Args:
        capacity: records held at most (0 disables shuffling).
        seed: seed of the buffer's RNG.

    Example:
    >>> buffer = ShuffleBuffer(2, seed=1)
    >>> out = [r for x in range(5) if (r := buffer.push(x)) is not None] + list(buffer.drain())
    >>> sorted(out)
    [0, 1, 2, 3, 4]
    """

    def __init__(self, capacity, seed):
        self.capacity = capacity
        self._items = []
        self._rng = random.Random(f"albert-keras/shuffle/{seed}")

    def push(self, item):
        """Add `item`; returns a record to emit, or None while the buffer fills."""
        if len(self._items) < self.capacity:
            self._items.append(item)
            return None
        if not self.capacity:
            return item
        j = self._rng.randrange(self.capacity)
        out, self._items[j] = self._items[j], item
        return out

    def drain(self):
        """Emit what is left, shuffled."""
        items, self._items = self._items, []
        self._rng.shuffle(items)
        yield from items


def shard_file_name(index, num_shards, compressed=False):
    """`part-00003-of-00008.tfrecord` (`.tfrecord.gz` when gzip-compressed)."""
    suffix = ".tfrecord.gz" if compressed else ".tfrecord"
    return f"part-{index:05d}-of-{num_shards:05d}{suffix}"


class ShardedWriter:
    """Writes records to `num_shards` TFRecord files, each under a temporary name until `close`.

    A process killed mid-run leaves only `*.tmp` files; no complete-looking shard ever holds a
    partial file. Records are spread over shards by a seeded RNG.

    Args:
        directory: where the shards go.
        num_shards: number of files.
        seed: seed for the shard choice.
        compression: None or `"GZIP"`.

    Example:
    ```python
    with ShardedWriter("out", num_shards=4, seed=0) as writer:
        writer.write(serialized_example)
    ```
    """

    def __init__(self, directory, num_shards, seed, compression=None):
        import tensorflow as tf

        self.directory = directory
        self.num_shards = num_shards
        self.compression = compression
        self.counts = [0] * num_shards
        self.bytes_written = 0
        self._rng = random.Random(f"albert-keras/shards/{seed}")
        options = tf.io.TFRecordOptions(compression_type=compression or "")
        self.names = [shard_file_name(i, num_shards, compression == "GZIP") for i in range(num_shards)]
        self._temporary = [os.path.join(directory, "." + name + ".tmp") for name in self.names]
        self._writers = [tf.io.TFRecordWriter(path, options) for path in self._temporary]
        self._closed = False

    def write(self, record):
        shard = self._rng.randrange(self.num_shards) if self.num_shards > 1 else 0
        self._writers[shard].write(record)
        self.counts[shard] += 1
        self.bytes_written += len(record)

    def close(self):
        """Flush every shard and rename it to its final name."""
        if self._closed:
            return
        self._closed = True
        for writer in self._writers:
            writer.close()
        for temporary, name in zip(self._temporary, self.names):
            io_utils.rename(temporary, os.path.join(self.directory, name), overwrite=True)

    def abort(self):
        """Close and delete the temporary files (on error)."""
        if self._closed:
            return
        self._closed = True
        for writer, temporary in zip(self._writers, self._temporary):
            writer.close()
            io_utils.remove(temporary)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
