"""docs/names.md is the one table of error codes and classes: the Python SDK follows it, the server's statuses
agree with it, and everything public is importable from ``cove`` itself."""

from __future__ import annotations

import re

import pytest

import cove
import cove.sdk
from cove.api.errors import _STATUS_BY_CODE, status_for
from cove.sdk import _errors
from cove.services import errors as service_errors
from tests.conftest import ROOT

ROW = re.compile(r"^\| `(\w+)` \| (\d+|—) \| `(\w+)` \| `(\w+)` \|$", re.M)
DOCUMENTED = [
    (code, None if status == "—" else int(status), name, parent)
    for code, status, name, parent in ROW.findall((ROOT / "docs" / "names.md").read_text())
]
SERVICE_CLASSES = {cls.code: cls for cls in vars(service_errors).values() if isinstance(cls, type)}
KNOWN_TO_THE_SERVER = {code for code in SERVICE_CLASSES if code != "error"} | set(_STATUS_BY_CODE)


def test_the_table_is_read() -> None:
    assert len(DOCUMENTED) > 40


@pytest.mark.parametrize(("code", "status", "name", "parent"), DOCUMENTED)
def test_each_code_gives_the_documented_class(code: str, status: int | None, name: str, parent: str) -> None:
    error = _errors.error_from(status, code, "a message")
    assert type(error).__name__ == name and type(error).__bases__[0].__name__ == parent
    assert (error.code, error.message, error.status) == (code, "a message", status)
    assert getattr(cove, name) is type(error)


def test_the_sdk_table_is_the_documented_one() -> None:
    assert {code: cls.__name__ for code, cls in _errors.BY_CODE.items()} == {
        code: name for code, _status, name, _parent in DOCUMENTED
    }


def test_every_code_the_server_knows_is_documented_with_the_status_it_sends() -> None:
    documented = {code: status for code, status, _name, _parent in DOCUMENTED}
    assert set(documented) >= KNOWN_TO_THE_SERVER
    for code in KNOWN_TO_THE_SERVER:
        raised = SERVICE_CLASSES.get(code, service_errors.CoveServiceError)("m", code=code)
        assert status_for(raised) == documented[code], code


def test_an_unknown_code_keeps_its_code_and_gets_the_class_of_its_status() -> None:
    for status, cls in [(404, cove.NotFound), (429, cove.RateLimited), (502, cove.ServerError), (418, cove.CoveError)]:
        error = _errors.error_from(status, "something_new", "news")
        assert type(error) is cls and (error.code, error.message, error.status) == ("something_new", "news", status)
    over_websocket = _errors.error_from(0, "something_new", "news")
    assert type(over_websocket) is cove.CoveError and over_websocket.status is None


def test_every_error_class_is_documented_and_public() -> None:
    classes = {
        cls.__name__ for cls in vars(_errors).values() if isinstance(cls, type) and issubclass(cls, cove.CoveError)
    }
    documented = {name for _code, _status, name, _parent in DOCUMENTED} | {"CoveError", "AgentError"}
    assert classes == documented
    assert classes <= set(cove.__all__)


def test_cove_exports_the_whole_sdk() -> None:
    assert sorted(cove.__all__) == sorted(cove.sdk.__all__)
    for name in cove.__all__:
        assert getattr(cove, name) is getattr(cove.sdk, name)
    assert cove.AgentSessionEnded is cove.SessionExited  # the first name, kept (docs/names.md, "Old names")
