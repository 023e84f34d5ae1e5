"""The examples are scripts: `python examples/NAME.py` puts examples/ on `sys.path`, where they find
their shared `_tiny_model`. The smoke tests load them by file path, so they put it there too."""

import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


@pytest.fixture(autouse=True)
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)
