"""Progress on a non-terminal: timed plain lines with the rate and the time left, and a closing line."""
import io
import re

from cnnvis.progress import _clock, progress


def test_a_log_gets_lines_with_rate_and_time_left(monkeypatch):
    err = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("CNNVIS_PROGRESS_INTERVAL", "0")
    monkeypatch.delenv("CNNVIS_PROGRESS", raising=False)
    bar = progress(total=10, desc="analysing", unit="img")
    bar.set_postfix(epoch=2)
    for _ in range(4):
        bar.update(1)
    bar.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == 5
    assert re.fullmatch(r"analysing: 1/10 img \(\d+(\.\d)? img/s, (\d+:\d\d|\?) left\) epoch=2", lines[0]), lines[0]
    assert lines[3].startswith("analysing: 4/10 img")
    assert re.fullmatch(r"analysing: 4 img in \d+:\d\d \(\d+(\.\d)? img/s\) epoch=2", lines[-1]), lines[-1]


def test_lines_are_rate_limited_and_can_be_silenced(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setenv("CNNVIS_PROGRESS_INTERVAL", "3600")
    bar = progress(total=100, desc="training")
    for _ in range(100):
        bar.update(1)
    assert err.getvalue() == ""  # within the interval: nothing yet
    bar.close()
    assert err.getvalue().startswith("training: 100 it in ")
    monkeypatch.setenv("CNNVIS_PROGRESS", "0")
    quiet = progress(total=3, desc="x")
    quiet.update(3)
    quiet.close()
    assert err.getvalue().count("\n") == 1


def test_clock_formats():
    assert _clock(0) == "0:00" and _clock(75) == "1:15" and _clock(3725) == "1:02:05"
