"""LOG_FORMAT=json: every line the server writes is one JSON object a log pipeline can read."""

import json
import logging
import sys

from app.logs import JsonFormatter


def test_a_traceback_stays_inside_one_json_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.getLogger("app.test").makeRecord(
            "app.test", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "app.test"
    assert entry["message"] == "failed here"
    assert "ValueError: bad\nvalue" in entry["exception"]
