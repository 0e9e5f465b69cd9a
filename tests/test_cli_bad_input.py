"""Bad input across the whole CLI (issue 12, item 4), in one place: each case is one line on stderr that says
what to do, a non-zero exit status, and nothing half-written left looking complete."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

import sqz.files
from model.architecture import get_architecture
from quant.formats import uniform_spec
from sqz.cli import main

REPORT = Path(__file__).resolve().parents[2] / "shared" / "data" / "hls4ml_pynqz2_reference" / \
    "vivado_hls_myproject_axi_csynth.rpt"


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def spec_with_weights(tmp_path) -> Path:
    """A squeezenet1_0 QuantSpec whose weight codes live in SPEC.weights.npz (as sqz quantize writes it)."""
    arch = get_architecture("squeezenet1_0")
    spec = uniform_spec(arch, 8)
    spec.weights = {n: np.zeros(t["weight"], np.int64) for n, t in arch.conv_shapes().items()}
    path = tmp_path / "spec.json"
    spec.save(path)
    return path


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "squeezenet9"], "unknown model 'squeezenet9'; known: squeezenet1_0"),
    (["demo", "--model", "squeezenet9", "--out", "{tmp}/d"], "unknown model 'squeezenet9'"),
    (["demo", "--board", "nexys", "--out", "{tmp}/d"], "unknown board 'nexys'"),
    (["hls", "--bits", "8", "--board", "nexys", "--out", "{tmp}/p"], "unknown board 'nexys'"),
    (["eval", "--data", "{tmp}"], "--data {tmp}: no labels.txt there"),
    (["eval", "--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such folder"),
    (["quantize", "--weight-bits", "8", "--activation-bits", "8", "--calib", "{tmp}/nowhere", "--out", "{tmp}/s.json"],
     "--calib {tmp}/nowhere: no such folder"),
    (["demo", "--data", "{tmp}/nowhere", "--out", "{tmp}/d"], "--data {tmp}/nowhere: no such folder"),
    (["split", "--data", "{tmp}/nowhere", "--out", "{tmp}/d"], "--data {tmp}/nowhere: no such folder"),
])
def test_unknown_names_and_missing_folders(tmp_path, capsys, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message.format(tmp=tmp_path) in _error(capsys)
    assert not (tmp_path / "d").exists() and not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("command", [["eval"], ["split", "--out", "{tmp}/d"],
                                     ["quantize", "--weight-bits", "8", "--activation-bits", "8", "--calib", "{tmp}",
                                      "--out", "{tmp}/s.json"]])
def test_an_empty_labels_file_is_an_error_not_zero_images(tmp_path, capsys, command):
    (tmp_path / "labels.txt").write_text("\n\n")
    argv = [a.format(tmp=tmp_path) for a in command] + ["--data", str(tmp_path)]
    assert main(argv) == 2
    assert f"{tmp_path / 'labels.txt'} lists no image" in _error(capsys)


def test_a_spec_for_another_model(capsys, spec_with_weights):
    assert main(["eval", "--model", "squeezenet1_1", "--spec", str(spec_with_weights)]) == 2
    assert "a QuantSpec for 'squeezenet1_0', not for 'squeezenet1_1'" in _error(capsys)


def test_a_spec_whose_weight_file_is_missing(capsys, spec_with_weights):
    spec_with_weights.with_name("spec.weights.npz").unlink()
    assert main(["eval", "--spec", str(spec_with_weights)]) == 2
    assert "field 'weights': cannot read" in _error(capsys)


def test_a_spec_whose_weight_file_was_altered(capsys, spec_with_weights):
    npz = spec_with_weights.with_name("spec.weights.npz")
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF                   # one byte changed
    npz.write_bytes(bytes(blob))
    assert main(["eval", "--spec", str(spec_with_weights)]) == 2
    assert "does not match its sha256" in _error(capsys)


@pytest.mark.parametrize("argv", [
    ["hls", "--bits", "8", "--model", "squeezenet1_1", "--out", "{out}"],
    ["split", "--out", "{out}"],
    ["demo", "--out", "{out}"],
])
def test_an_output_folder_holding_something_else_is_left_alone(tmp_path, capsys, argv):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep")
    assert main([a.format(out=out) for a in argv]) == 2
    assert str(out) in _error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sqz.files.os, "fsync", full)
    out = tmp_path / "reports.json"
    assert main(["reports", str(REPORT), "--json", str(out)]) == 2
    assert "No space left on device" in _error(capsys)
    assert list(tmp_path.iterdir()) == []          # neither the file nor its temporary


def test_an_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "reports.json"
    assert main(["reports", str(REPORT), "--json", str(out)]) == 0
    before = out.read_text()

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(sqz.files.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(["reports", str(REPORT), "--json", str(out)])
    assert out.read_text() == before and json.loads(before)["reports"]
    assert [p.name for p in tmp_path.iterdir()] == ["reports.json"]
