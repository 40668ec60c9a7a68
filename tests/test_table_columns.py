"""The results table read without pandas (``table.load_columns``, what ``edf`` reads) holds what pandas reads
(``table.load``): the same columns, types and values, the same rows kept, the same one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis_tables import table as sampled_table
from regnet_space.analysis import table
from regnet_space.analysis.edf import compare
from regnet_space.errors import UserError

# Integers, numbers with missing cells (pandas' NA tokens), quoted text with commas and quotes, a short row, an
# alias (latency_ms), a blank line, a status that keeps 2 of 4 rows whatever its case.
CSV = """space,error,flops,params,d1,w1,wa,status,spec,note,latency_ms
regnetx,30.5,1000000,2000,1,16,8.5,complete,"{""a"": 1}",hello,1.5
anynetx_a,31,2e6,3000,2,,NA,COMPLETE,,"x, y",
regnetx,29,3000000,4000,3,32,10,failed,,NaN,2

anynetx_a,28,4000000,5000,4,8,n/a,running
"""
RECORDS = [
    {"space": "regnetx", "error": 30.5, "flops": 1000000, "params": 2000, "d1": 1, "w1": 16, "note": "hello"},
    {"space": "anynetx_a", "error": 31, "flops": 2e6, "params": 3000, "d1": 2, "w1": None, "note": None},
    {"space": "regnetx", "error": 29.0, "flops": 3000000, "params": 4000, "d1": 3, "latency_ms": 2.0},
]


def assert_same_columns(plain: dict, reference: dict) -> None:
    assert list(plain) == list(reference)
    for name, values in plain.items():
        expected = reference[name]
        assert values.dtype == expected.dtype, (name, values.dtype, expected.dtype)
        if values.dtype.kind == "f":
            assert np.array_equal(values, expected, equal_nan=True), name
        else:
            assert values.tolist() == expected.tolist(), name


def read_both(path) -> tuple[dict, dict]:
    plain, plain_meta = table.load_columns(str(path))
    frame, meta = table.load(str(path))
    assert plain_meta == meta
    return dict(plain), table.to_columns(frame)


def test_a_csv_file_reads_as_pandas_reads_it(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(CSV)
    plain, reference = read_both(path)
    assert_same_columns(plain, reference)
    assert plain["d1"].tolist() == [1, 2] and plain["d1"].dtype == np.int64
    assert np.isnan(plain["w1"][1]) and np.isnan(plain["wa"][1]) and plain["latency"].tolist()[0] == 1.5
    assert plain["spec"].tolist() == ['{"a": 1}', None] and plain["note"].tolist() == ["hello", "x, y"]


def test_a_jsonl_file_reads_as_pandas_reads_it(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    plain, reference = read_both(path)
    assert_same_columns(plain, reference)
    assert plain["d1"].dtype == np.int64 and np.isnan(plain["w1"][1]) and plain["note"].tolist()[1:] == [None, None]


def test_several_files_and_a_sampled_table_read_as_pandas_reads_them(tmp_path):
    frame = sampled_table(20)  # real specs (JSON text), every parameter column, two spaces
    frame.iloc[:25].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[25:].drop(columns=["acts"]).to_csv(tmp_path / "b.csv", index=False)
    plain, reference = read_both(f"{tmp_path / 'a.csv'},{tmp_path / 'b.csv'}")
    assert_same_columns(plain, reference)
    assert len(plain["error"]) == len(frame) and np.isnan(plain["acts"][25:]).all()


def test_edf_of_the_columns_is_the_edf_of_the_frame(tmp_path):
    path = tmp_path / "results.csv"
    sampled_table(30).to_csv(path, index=False)
    plain, frame = table.load_columns(str(path))[0], table.load(str(path))[0]
    for options in ({}, {"normalize": "flops", "bins": 3}, {"by": "depth"}):
        a, b = compare(plain, **options, permutations=50, ci_samples=50), compare(frame, **options, permutations=50,
                                                                                   ci_samples=50)
        assert a.to_json() == b.to_json()
    # groups in the order of their values, named as pandas names them (depth is a float column: AnyNet rows lack it)
    assert list(compare(plain, by="depth", permutations=10, ci_samples=10).edfs)[:2] == ["6.0", "7.0"]


@pytest.mark.parametrize("text, message", [
    ("space,error,flops,params\nregnetx,30,1,2,3\n", "line 2 has 5 fields, the header 4"),
    ("space,error,flops,space\nregnetx,30,1,2\n", "a column name appears twice"),
    ("", "no header row"),
    ("space,error,flops,params\nregnetx,abc,1,2\n", "row 0: error='abc' is not a finite number"),
    ("space,error,flops,params\nregnetx,130,1,2\n", "row 0: error=130 is not a top-1 error"),
    ("space,error,flops,params,d1\nregnetx,30,1,2,x\nregnetx,30,1,2,\n", "row 0: d1='x' is not a finite number"),
    ("space,error,flops,params,status\nregnetx,30,1,2,failed\n", "no complete models"),
    ("space,error,flops\nregnetx,30,1\n", "missing column 'params'"),
])
def test_bad_csv_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "results.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        table.load_columns(str(path))


@pytest.mark.parametrize("text, message", [
    ('{"space": "a"}\n[1, 2]\n', "line 2 is not an object"),
    ('{"space": "a"\n', "line 1: "),
])
def test_bad_jsonl_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "results.jsonl"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        table.load_columns(str(path))


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(b"space,error,flops,params\n\xff\xfe,30,1,2\n")
    with pytest.raises(UserError, match="cannot read as csv"):
        table.load_columns(str(path))
