import subprocess
import sys

import pytest

from albert_keras.lazy import lazy_exports


def test_names_resolve_on_first_use_and_unknown_names_fail():
    getattr_, dir_ = lazy_exports("albert_keras", {"dumps": "json"})
    import json

    assert getattr_("dumps") is json.dumps
    assert "dumps" in dir_()
    with pytest.raises(AttributeError, match="'albert_keras' has no attribute 'nope'"):
        getattr_("nope")


def test_packages_stay_light_until_a_name_is_used():
    code = (
        "import sys, albert_keras, albert_keras.convert, albert_keras.tokenization\n"
        "print('tensorflow' in sys.modules)\n"
        "albert_keras.AlbertConfig, albert_keras.tokenization.train_sentencepiece\n"
        "assert 'AlbertEncoder' in dir(albert_keras) and 'from_official' in dir(albert_keras.convert)\n"
        "print(albert_keras.convert.safe_extract.__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "albert_keras.convert.archive"]
