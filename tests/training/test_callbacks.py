from albert_keras.training.callbacks import PretrainingLogger


def test_throughput_is_defined_before_any_fit():
    """A resumed run that had already reached its last step runs no `fit` and still reports."""
    logger = PretrainingLogger(None, global_batch_size=8)
    assert logger.examples_per_second == 0.0
