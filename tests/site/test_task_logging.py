"""Tasks log what ran, with which arguments and how long it took, as structured records."""

import json
import logging

from digestsite.celery import app


@app.task(name="tests.add_numbers")
def add_numbers(ids, factor):
    return sum(ids) * factor


def test_task_start_and_finish_are_logged_with_duration(caplog):
    caplog.set_level(logging.INFO, logger="digestsite.tasks")
    result = add_numbers.apply(args=[list(range(10)), 2])
    assert result.get() == 90
    started, finished = (r for r in caplog.records if r.name == "digestsite.tasks")
    assert started.getMessage() == "task started"
    assert started.task == "tests.add_numbers"
    assert started.task_args == [{"count": 10, "first": [0, 1, 2, 3, 4]}, 2]
    assert finished.getMessage() == "task finished"
    assert finished.state == "SUCCESS"
    assert finished.duration_s >= 0
    assert finished.result == 90


def test_json_formatter_renders_extra_fields():
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
    record = logging.LogRecord("digestsite.tasks", logging.INFO, __file__, 1, "task finished", None, None)
    record.task = "digests.tasks.deliver_batch"
    record.duration_s = 0.25
    line = json.loads(formatter.format(record))
    assert line == {
        "level": "INFO",
        "name": "digestsite.tasks",
        "message": "task finished",
        "task": "digests.tasks.deliver_batch",
        "duration_s": 0.25,
    }
