"""host_sync: host-side step counting, boundary crossing, and counted device reads
(`DeferredLogsCallbackList` in a real `fit` is tested in test_loop.py)."""

from albert_keras.training import host_sync


def test_step_counter_follows_jumping_batch_indices():
    counter = host_sync.StepCounter(batches_per_step=2)
    counter.begin(10)
    counter.epoch_begin()
    assert (counter.batch_end(3), counter.step_done) == (12, True)
    assert (counter.batch_end(4), counter.step_done) == (12, False)
    counter.epoch_begin()  # the next epoch's batch indices start at 0 again
    assert counter.batch_end(0) == 13 and counter.step_done
    assert host_sync.crossed(95, 105, 100) and not host_sync.crossed(100, 104, 100)


def test_to_host_counts_one_read_per_call_and_returns_floats():
    import tensorflow as tf

    host_sync.HOST_READS.clear()
    values = host_sync.to_host({"loss": tf.constant(0.5), "step": tf.Variable(3, dtype=tf.int64)}, reader="test")
    assert values == {"loss": 0.5, "step": 3.0} and all(isinstance(v, float) for v in values.values())
    assert host_sync.to_host(tf.constant(2.0), reader="test") == 2.0
    assert host_sync.HOST_READS["test"] == 2
