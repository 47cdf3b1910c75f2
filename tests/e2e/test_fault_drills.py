"""The fault drills of bench/faults.py, at a small size: nothing lost, nothing sent twice.

Each run is a real pipeline: a scratch PostgreSQL database, a private redis-server, two
Celery worker processes and the counting SMTP sink in its own process, all on loopback.
Drill 1 spends most of its time waiting for the broker's visibility timeout, so it runs
in a process of its own beside drills 2-5 (two cores: the waits overlap the work).
"""

import json
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.smtp_sink import HOST, SinkProcess

REPO = Path(__file__).resolve().parents[2]

SUBSCRIBERS = 150
PAPERS = 200


def _start_drills(drills: str, out_path, *extra: str):
    command = [
        sys.executable,
        "-m",
        "bench.faults",
        "--drills",
        drills,
        "--subscribers",
        str(SUBSCRIBERS),
        "--papers",
        str(PAPERS),
        "--timeout",
        "200",
        "--json",
        str(out_path),
        *extra,
    ]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc) -> str:
    try:
        output, _ = proc.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"the drills did not finish in time:\n{output[-4000:]}")
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.mark.pipeline
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(600)  # about 2 minutes on a quiet machine; a busy one can double that
def test_fault_drills_lose_nothing_and_send_nothing_twice(tmp_path):
    kill = _start_drills("1", tmp_path / "kill.json")
    others = _start_drills("2,3,4,5", tmp_path / "others.json")
    outputs = [_finish(kill), _finish(others)]
    results = json.loads((tmp_path / "kill.json").read_text()) + json.loads((tmp_path / "others.json").read_text())

    assert [r["drill"][0] for r in results] == ["1", "2", "3", "4", "5"]
    by_number = {r["drill"][0]: r for r in results}
    for result in results:
        detail = f"{result['drill']}: {result['notes']}"
        assert result["missing"] == 0, detail
        assert result["problems"] == 0, detail
        assert result["delivered_once"] + result["duplicated"] == result["due"], detail
    # Killed workers included: over SMTP a row is claimed only once the server has the
    # whole message but its final dot, and a claim that was handed over counts as sent.
    for number in "12345":
        assert by_number[number]["duplicated"] == 0, by_number[number]
    rejected = max(3, SUBSCRIBERS // 100)
    assert by_number["3"]["due"] == SUBSCRIBERS - rejected
    assert all(by_number[n]["due"] == SUBSCRIBERS for n in "1245")
    # The faults really happened mid-issue.
    kills = by_number["1"]["notes"][0]
    assert kills.startswith("kills at ") and len(kills.removeprefix("kills at ").split(", ")) == 5, kills
    assert any(note.startswith("451s ") for note in by_number["2"]["notes"]), by_number["2"]["notes"]
    assert by_number["4"]["notes"][0].startswith("restarted at "), by_number["4"]["notes"]
    last_lines = [out.rstrip().splitlines()[-1] for out in outputs]
    assert last_lines == ["missing 0 duplicated 0", "missing 0 duplicated 0"], outputs


@pytest.mark.pipeline
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.timeout(600)
def test_postgres_going_away_and_smtp_refusing_lose_nothing(tmp_path):
    """Drills 6 and 7, smaller: the scratch database's connections are ended and refused for
    5 s (the real server is not restarted: other databases on it stay untouched), and the
    SMTP server refuses connections for 20 s instead of two minutes."""
    proc = _start_drills("6,7", tmp_path / "outages.json", "--postgres", "backends", "--smtp-refuse", "20")
    output = _finish(proc)
    results = json.loads((tmp_path / "outages.json").read_text())
    assert [r["drill"][0] for r in results] == ["6", "7"]
    for result in results:
        detail = f"{result['drill']}: {result['notes']}"
        assert result["missing"] == 0 and result["duplicated"] == 0 and result["problems"] == 0, detail
        assert result["delivered_once"] == result["due"] == SUBSCRIBERS, detail
    postgres, smtp = results
    assert "connections ended, database refused connections for 5 s" in postgres["notes"][0], postgres["notes"]
    assert "SMTP refused connections for 20 s" in smtp["notes"][0], smtp["notes"]
    assert output.rstrip().splitlines()[-1] == "missing 0 duplicated 0"


def test_sink_refuses_connections_for_a_while_and_keeps_its_counts(tmp_path):
    message = b"Subject: drill\r\n\r\nbody\r\n"
    sink = SinkProcess(tmp_path, smtp_port=_free_port(), control_port=_free_port())
    with sink:
        with smtplib.SMTP(HOST, sink.smtp_port, timeout=10) as smtp:
            smtp.sendmail("from@example.com", ["a@example.com"], message)
        sink.refuse_connections(1.5)
        with pytest.raises(ConnectionRefusedError):
            smtplib.SMTP(HOST, sink.smtp_port, timeout=5)
        time.sleep(2.5)
        with smtplib.SMTP(HOST, sink.smtp_port, timeout=10) as smtp:
            smtp.sendmail("from@example.com", ["b@example.com"], message)
        assert sink.stats()["accepted"] == {"a@example.com": 1, "b@example.com": 1}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def test_sink_counts_defers_and_rejects_as_told(tmp_path):
    """The drills' instrument: per-recipient counts, 451 to one message in five, 550 for chosen
    addresses (at RCPT or DATA), and the message bytes unchanged (dot-stuffing undone)."""
    message = b"Subject: drill\r\n\r\n.a line with a leading dot\r\n..two dots\r\nend\r\n"
    sink = SinkProcess(tmp_path, smtp_port=_free_port(), control_port=_free_port())
    with sink, smtplib.SMTP(HOST, sink.smtp_port, timeout=10) as smtp:
        sink.configure(fail_every=5, reject=["gone@example.com"])
        outcomes = []
        for number in range(10):
            try:
                smtp.sendmail("from@example.com", [f"r{number}@example.com"], message)
                outcomes.append(250)
            except smtplib.SMTPDataError as exc:
                outcomes.append(exc.smtp_code)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("from@example.com", ["Gone@example.com"], message)
        sink.configure(reject=["late@example.com"], reject_at="data")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("from@example.com", ["late@example.com"], message)
        smtp.sendmail("from@example.com", ["r0@example.com"], message)
        stats = sink.stats()
        sample = sink.sample()
    # (message has no Message-ID header: the resend to r0 shows as two copies with an empty ID)

    assert outcomes == [250, 250, 250, 250, 451, 250, 250, 250, 250, 451]
    assert refused.value.smtp_code == 550
    assert stats["accepted"] == {f"r{n}@example.com": 1 + (n == 0) for n in (0, 1, 2, 3, 5, 6, 7, 8)}
    assert stats["deferred"] == {"r4@example.com": 1, "r9@example.com": 1}
    assert stats["rejected"] == {"gone@example.com": 1, "late@example.com": 1}
    assert sample == message
    assert stats["repeated"] == [["r0@example.com", ["", ""]]]
