"""Issue 18's layout target, kept: one warm `POST /predict/digits` (a new connection, as
`python -m bench.walk` sends it) calls into fewer than 12 files of serving/ and models/."""

from __future__ import annotations

from bench.walk import walk

MOST = 11  # issue 18: fewer than the 12 files the request crossed before the layout


def test_a_digit_request_walks_at_most_eleven_files() -> None:
    files = walk()
    assert "serving/http/protocol.py" in files and "serving/engine/backends.py" in files, files
    assert len(files) <= MOST, files
