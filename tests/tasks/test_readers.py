import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import readers
from albert_keras.tasks.readers import ColumnSpec
from tests.finetune_data import write_csv
from tests.finetune_data import write_jsonl


def test_csv_with_header_collects_sorted_labels(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["id", "sentence", "label"], [(1, "a, quoted text", "pos"), (2, "b", "neg")])
    examples, labels = readers.read_labelled(path, ColumnSpec("sentence", label_column="label"))
    assert labels == ["neg", "pos"]
    assert [(e.text_a, e.label, e.line) for e in examples] == [("a, quoted text", "pos", 2), ("b", "neg", 3)]


def test_tsv_without_header_by_index_keeps_quotes_and_numeric_label_order(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('x\t10\t"quoted" text\tb1\ny\t9\tplain\tb2\n')
    examples, labels = readers.read_labelled(path, ColumnSpec(2, pair_column=-1, label_column="1"))
    assert labels == ["9", "10"]  # numeric labels sort as numbers
    assert (examples[0].text_a, examples[0].text_b) == ('"quoted" text', "b1")


def test_jsonl_regression_and_given_labels(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"s": "a", "y": 1.5}, {"s": "b", "y": "2"}])
    examples, labels = readers.read_labelled(path, ColumnSpec("s", label_column="y"), regression=True)
    assert labels is None and [e.label for e in examples] == [1.5, 2.0]
    path = write_jsonl(tmp_path / "c.jsonl", [{"s": "a", "y": 1}, {"s": "b", "y": 0}])
    examples, labels = readers.read_labelled(path, ColumnSpec("s", label_column="y"), labels=["1", "0"])
    assert labels == ["1", "0"] and [e.label for e in examples] == ["1", "0"]


@pytest.mark.parametrize(
    "content, spec, kwargs, message",
    [
        ("sentence,label\na,pos\n", ColumnSpec("text"), {}, r"t\.csv:1: no column 'text' in the header"),
        ("sentence,label\na,pos\nb,maybe\n", ColumnSpec("sentence"), {"labels": ["neg", "pos"]},
         r"t\.csv:3: label 'maybe' is not one of the labels"),
        ("sentence,label\na,1.5\nb,high\n", ColumnSpec("sentence"), {"regression": True},
         r"t\.csv:3: target 'high' is not a number"),
        ("", ColumnSpec("sentence"), {}, r"t\.csv: no examples \(empty file\)"),
        ("sentence,label\na\n", ColumnSpec("sentence"), {}, r"t\.csv:2: no column 'label'"),
        ("sentence,label\na,x\nb,x\n", ColumnSpec("sentence"), {}, r"only one label"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, spec, kwargs, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(AlbertInputError, match=message):
        readers.read_labelled(path, spec, **kwargs)


def test_jsonl_errors(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b"}\n')
    with pytest.raises(AlbertInputError, match=r"t\.jsonl:2: no field 'label'"):
        readers.read_labelled(path, ColumnSpec())
    path.write_text('{"text": "a", "label": 1}\nnot json\n')
    with pytest.raises(AlbertInputError, match=r"t\.jsonl line 2: not valid JSON"):
        readers.read_labelled(path, ColumnSpec())
    headerless = tmp_path / "x.tsv"
    headerless.write_text("a\tb\n")
    with pytest.raises(AlbertInputError, match="is a name but the file has no header"):
        readers.read_labelled(headerless, ColumnSpec("name", header=False))


def test_large_files_stream_and_make_the_same_dataset(tmp_path):
    rows = [(f"text {i}", str(i % 3)) for i in range(10)]
    path = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    in_memory, labels = readers.read_labelled(path, ColumnSpec())
    streamed, streamed_labels = readers.read_labelled(path, ColumnSpec(), stream_bytes=0)
    assert callable(streamed) and streamed_labels == labels == ["0", "1", "2"]
    assert readers.example_count(streamed) == 10
    a = list(readers.examples_dataset(in_memory, labels).as_numpy_iterator())
    b = list(readers.examples_dataset(streamed, labels).as_numpy_iterator())
    assert [(x, int(y)) for x, y in a] == [(x, int(y)) for x, y in b] == [(t.encode(), int(l)) for t, l in rows]


def test_bad_record_in_a_streamed_file_is_found_before_training(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["text", "label"], [("a", "1")] * 5 + [("b", "seven")])
    with pytest.raises(AlbertInputError, match=r"t\.csv:7: target 'seven'"):
        readers.read_labelled(path, ColumnSpec(), regression=True, stream_bytes=0)
