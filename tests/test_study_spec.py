"""Study spec TOML: validation naming the key; storage URL redaction and connection retries."""

import pytest

from regnet_space import UserError
from regnet_space.study.spec import load_study_spec
from regnet_space.study.storage import redact, retry

GOOD = """
name = "t"
seed = 3
[dataset]
name = "synthetic"
[proxy]
epochs = 1
[complexity]
flops = "0:2M"
[[spaces]]
space = "regnetx"
n = 2
[[spaces]]
space = "anynetx_a"
n = 3
params = ":1M"
"""


def write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_good_spec_parses(tmp_path):
    spec = load_study_spec(write(tmp_path, GOOD))
    assert spec.name == "t" and spec.seed == 3 and spec.total == 5
    assert [e.label for e in spec.spaces] == ["regnetx", "anynetx_a"]
    assert spec.spaces[1].windows["flops"] == (0, 2e6)
    assert spec.spaces[1].windows["params"][1] == 1e6


@pytest.mark.parametrize("change, key", [
    (GOOD.replace('seed = 3', 'seed = 3\ncolour = "red"'), "colour: unknown key"),
    (GOOD.replace('n = 2', 'n = 0'), "spaces[0].n: must be >= 1"),
    (GOOD.replace('n = 2', 'n = "two"'), "spaces[0].n: must be an integer"),
    (GOOD.replace('space = "regnetx"\n', ''), "spaces[0].space: missing"),
    (GOOD.replace('epochs = 1', 'epoch = 1'), "proxy.epoch: unknown key"),
    (GOOD.replace('flops = "0:2M"', 'flopz = "0:2M"'), "complexity.flopz: unknown complexity metric"),
    (GOOD.replace('name = "t"', ''), "name: missing"),
    (GOOD.replace('space = "anynetx_a"', 'space = "regnetx"'), "label 'regnetx' appears twice"),
])
def test_bad_spec_names_the_key(tmp_path, change, key):
    with pytest.raises(UserError) as info:
        load_study_spec(write(tmp_path, change))
    assert key in str(info.value)


def test_not_toml(tmp_path):
    with pytest.raises(UserError, match="not valid TOML"):
        load_study_spec(write(tmp_path, "name = ["))


def test_redact_hides_password():
    assert redact("postgresql+psycopg://alice:s3cret@127.0.0.1:5432/db") == "postgresql+psycopg://alice:***@127.0.0.1:5432/db"
    assert redact("runs/x/study.journal") == "runs/x/study.journal"


def test_retry_backs_off_then_fails_with_clear_message():
    from sqlalchemy.exc import OperationalError

    calls = []

    def flaky():
        calls.append(1)
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    with pytest.raises(UserError, match="lost the study storage while testing, after 3 attempts"):
        retry(flaky, what="testing", attempts=3, first_delay=0.01)
    assert len(calls) == 3


def test_retry_recovers_from_a_dropped_connection():
    from sqlalchemy.exc import OperationalError

    calls = []

    def recovers():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, Exception("connection reset"))
        return "ok"

    assert retry(recovers, what="testing", first_delay=0.01) == "ok"
    assert len(calls) == 3
