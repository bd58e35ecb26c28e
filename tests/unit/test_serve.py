"""The node's command line: a port the kernel would not wrap, and one-line refusals."""

from __future__ import annotations

import argparse

import pytest

from server.serve import main, port_number


@pytest.mark.parametrize("text", ["1", "8000", "65535"])
def test_ports_in_range_are_taken(text: str) -> None:
    """1..65535 as given."""
    assert port_number(text) == int(text)


@pytest.mark.parametrize("text", ["0", "65536", "83937", "-1", "abc", "\uff18\uff10", ""])
def test_other_ports_are_refused(text: str) -> None:
    """83937 would bind 18401 (the kernel keeps 16 bits) while the log said 83937."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"port number 1\.\.65535"):
        port_number(text)


def test_a_port_out_of_range_in_the_environment_stops_the_node(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """$PORT goes through the same check as --port."""
    monkeypatch.setenv("PORT", "83937")
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    assert "must be a port number 1..65535, not '83937'" in capsys.readouterr().err


def test_a_setting_that_cannot_work_stops_the_node_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback: the variable and what is wrong with it, exit status 2."""
    monkeypatch.setenv("ACCESS_TOKEN_TTL_S", "-5")
    with pytest.raises(SystemExit) as stopped:
        main(["--port", "18999"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "studybuddy: ACCESS_TOKEN_TTL_S: Expected `int` >= 1\n"
