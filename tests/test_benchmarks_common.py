"""benchmarks/common.run_sqz: the one way the benchmark scripts run the CLI (as a user types it)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_sqz_logs_the_command_first_and_times_the_run(common, tmp_path):
    log = tmp_path / "sub" / "log.txt"
    seconds = common.run_sqz(["hls", "--help"], log=log)
    lines = log.read_text().splitlines()
    assert lines[0] == "python -m sqz hls --help"
    assert any("--max-utilisation" in line for line in lines[1:])      # the command's own output follows
    assert seconds > 0


@pytest.mark.parametrize("with_log", [False, True])
def test_run_sqz_failure_stops_the_benchmark_naming_the_command_and_its_error(common, tmp_path, with_log):
    log = tmp_path / "log.txt" if with_log else None
    with pytest.raises(SystemExit) as e:
        common.run_sqz(["hls", "--board", "no-such-board", "--bits", "8", "--out", str(tmp_path / "p")], log=log)
    text = str(e.value.code)
    assert text.startswith("python -m sqz hls --board no-such-board --bits 8 --out")
    assert "failed (exit 2)" in text.splitlines()[0]
    assert "unknown board 'no-such-board'" in text                    # the CLI's own message, not only ours
    if with_log:
        assert str(log) in text
