"""The one reader of user text files (`albert_keras.text_files`): a `.txt` file is one text a line,
CSV/TSV/JSONL hold columns, and every problem is one line naming the file and line."""

import csv

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.text_files import allow_large_fields
from albert_keras.text_files import check_table
from albert_keras.text_files import check_utf8
from albert_keras.text_files import read_column
from albert_keras.text_files import read_lines
from albert_keras.text_files import text_format


def test_format_comes_from_the_extension_and_txt_is_lines():
    assert [text_format(name) for name in ("a.txt", "a.TSV", "a.csv", "a.jsonl", "a.json", "a")] == \
        ["lines", "tsv", "csv", "jsonl", "jsonl", "lines"]
    assert text_format("a.txt", "tsv") == "tsv"
    with pytest.raises(AlbertInputError, match="--format: unknown 'xml'"):
        text_format("a.txt", "xml")


def test_lines_keep_row_i_as_line_i(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffFirst text.\r\nSecond\ttext, with a tab.\n\n".encode("utf-8"))
    assert read_lines(path) == ["First text.", "Second\ttext, with a tab."]  # BOM, CRLF, trailing blank
    path.write_text("one\n\nthree\n")
    with pytest.raises(AlbertInputError, match=r"t.txt line 2: blank line"):
        read_lines(path)
    assert read_lines(path, skip_blank=True) == ["one", "three"]


@pytest.mark.parametrize("name, content, message", [
    ("bin.txt", b"\x89PNG\r\n\x1a\n\x00", r"bin.txt line 1: not UTF-8 text \(invalid start byte at byte 0"),
    ("late.tsv", b"text\tlabel\nfine\t1\ncaf\xe9\t0\n", r"late.tsv line 3: not UTF-8 text \(invalid continuation"),
    ("empty.txt", b"", r"empty.txt: no texts \(empty file\)"),
])
def test_bad_files_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AlbertInputError, match=message) as error:
        read_column(path, column="text")
    assert "\n" not in str(error.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AlbertInputError, match="nope.txt: file not found"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(AlbertInputError, match="is a directory"):
        read_lines(tmp_path)


def test_columns_by_name_index_and_jsonl(tmp_path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text('sentence\tlabel\n"quoted" stays\t1\nsecond\t0\n')
    assert read_column(tsv, column="sentence") == ['"quoted" stays', "second"]  # TSV quotes are text (GLUE)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('a,b\n"x, y",1\n')
    assert read_column(csv_path, column="a") == ["x, y"]
    assert read_column(csv_path, column=1, header=False) == ["b", "1"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "one"}\n\n{"text": "two"}\n')
    assert read_column(jsonl) == ["one", "two"]
    with pytest.raises(AlbertInputError, match=r"d.tsv line 1: no column 'text' in the header \(sentence, label\)"):
        read_column(tsv)
    with pytest.raises(AlbertInputError, match="is a name but the file has no header"):
        read_column(tsv, column="sentence", header=False)
    jsonl.write_text('{"text": "one"}\n{"other": 1}\n')
    with pytest.raises(AlbertInputError, match=r"d.jsonl line 2: no field 'text' \(other\)"):
        read_column(jsonl)


def test_header_only_files_hold_no_texts(tmp_path):
    path = tmp_path / "h.tsv"
    path.write_text("text\tlabel\n\n")
    with pytest.raises(AlbertInputError, match=r"h.tsv: no texts \(only a header row\)"):
        read_column(path)
    with pytest.raises(AlbertInputError, match=r"h.tsv: no examples \(only a header row\)"):
        check_table(path)
    check_table(path, header=False)  # one headerless row is one example
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(AlbertInputError, match=r"e.jsonl: no examples \(empty file\)"):
        check_table(tmp_path / "e.jsonl")


def test_fields_of_any_size(tmp_path):
    path = tmp_path / "big.tsv"
    big = "word " * 500_000  # 2.5 MB, past the csv module's default 131072
    path.write_text(f"text\n{big}\nsmall\n")
    assert [len(t) for t in read_column(path)] == [len(big), 5]
    allow_large_fields()
    assert csv.field_size_limit() > 2_000_000


def test_check_utf8_passes_directories_and_counts_lines(tmp_path):
    assert check_utf8(tmp_path) is None  # a GLUE task directory: its reader checks it
    path = tmp_path / "a.txt"
    path.write_text("x\ny\n")
    assert check_utf8(path) == 2
