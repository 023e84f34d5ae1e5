"""`FinetuneTask` is an abstract interface: every registered task implements it in full."""

import pytest

from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.registry import TASKS
from albert_keras.tasks.registry import get_task


def test_the_interface_cannot_be_instantiated_and_a_partial_task_fails_early():
    with pytest.raises(TypeError, match="abstract"):
        FinetuneTask()

    class Partial(FinetuneTask):
        def read(self, path, options, metadata=None):
            return None

    with pytest.raises(TypeError, match="build_model"):
        Partial()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_registered_task_implements_the_interface(name):
    task = get_task(name)
    assert isinstance(task, FinetuneTask) and task.name == name
