"""`python -m sqz`: a user error is one line on stderr and exit status 2; a bug is a traceback and exit 1.

main() catches sqz.errors.SqzError and nothing else, so every user error must be one (the classes below),
and an internal error -- whatever its type, ValueError and FileNotFoundError included -- is not hidden."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sqz.cli
from sqz.cli import main
from sqz.errors import SqzError

ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["hls", "--bits", "8", "--board", "nexys", "--out", "{tmp}/p"], "unknown board 'nexys'"),
    (["hls", "--spec", "{tmp}/missing.json", "--out", "{tmp}/p"], "cannot read QuantSpec"),
    (["hls", "--model", "squeezenet9", "--bits", "8", "--out", "{tmp}/p"], "unknown model 'squeezenet9'"),
    (["hls", "--model", "squeezenet1_1", "--bits", "8", "--input-size", "20", "--out", "{tmp}/p"],
     "--input-size 20: pool5: input 2x2 is smaller"),
    (["hls", "--model", "squeezenet1_1", "--bits", "8", "--reuse", "{tmp}/missing.json", "--out", "{tmp}/p"],
     "--reuse {tmp}/missing.json: cannot read"),
    (["eval", "--model", "squeezenet9"], "unknown model 'squeezenet9'"),
    (["eval", "--spec", "{tmp}/missing.json"], "cannot read QuantSpec"),
    (["eval", "--data", "{tmp}/nowhere"], "--data {tmp}/nowhere: no such folder"),
    (["eval", "--limit", "-1"], "limit must be >= 0"),
    (["quantize", "--percentile", "200", "--weight-bits", "8", "--activation-bits", "8", "--out", "{tmp}/s.json"],
     "--percentile must be in (0, 100]"),
    (["quantize", "--margin", "0.01", "--calib", "{tmp}/nowhere", "--out", "{tmp}/s.json"],
     "--calib {tmp}/nowhere: no such folder"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message.format(tmp=tmp_path) in _one_line_error(capsys)
    assert not (tmp_path / "p").exists()


def test_bad_labels_line_is_a_user_error(tmp_path, capsys):
    (tmp_path / "labels.txt").write_text("a.jpg 3\nb.jpg three\n")
    assert main(["eval", "--data", str(tmp_path)]) == 2
    assert "line 2" in _one_line_error(capsys)


@pytest.mark.parametrize("bug", [RuntimeError("internal"), KeyError("conv1"), ValueError("internal"),
                                 FileNotFoundError(2, "No such file", "/internal/path")])
def test_an_internal_error_is_not_caught(monkeypatch, capsys, bug):
    def broken(args):
        raise bug

    monkeypatch.setattr(sqz.cli, "cmd_eval", broken)
    with pytest.raises(type(bug)):
        main(["eval"])
    assert capsys.readouterr().err == ""        # nothing printed as if it were the user's fault


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_python_m_sqz_exits_1_with_a_traceback_on_a_bug_and_2_with_one_line_on_a_user_error():
    from model.architecture import CIFAR_CANDIDATES

    bug = _run("import runpy, sqz.cli\n"
               "def broken(args):\n    raise KeyError('a bug')\n"
               "sqz.cli.cmd_eval = broken\n"
               "import sys; sys.argv = ['sqz', 'eval']\n"
               "runpy.run_module('sqz', run_name='__main__')")
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "KeyError: 'a bug'" in bug.stderr
    user = _run("import runpy, sys; sys.argv = ['sqz', 'eval', '--model', 'nonet']\n"
                "runpy.run_module('sqz', run_name='__main__')")
    assert user.returncode == 2 and user.stderr.strip().splitlines() == [
        "error: unknown model 'nonet'; known: squeezenet1_0, squeezenet1_1, squeezenet_cifar, "
        + ", ".join(f"squeezenet_cifar_{v}" for v in CIFAR_CANDIDATES)]


def test_every_user_error_class_is_a_sqz_error_and_old_value_error_catchers_still_work():
    from host.manifest import ManifestError
    from hw.boards import BoardError
    from hw.cli import HlsCliError
    from hw.convert import UnsupportedModelError
    from hw.project import ProjectError
    from model.architecture import ArchitectureError
    from model.deep_compression import WeightFileError
    from model.imagenet import BadImageError, DatasetError, LabelsFormatError, LabelsNotFoundError
    from quant.fixed_point import FormatError
    from quant.spec import SpecError
    from sqz.cli_common import CliError
    from model.cifar10 import Cifar10Error
    from model.trained import WeightsError

    for cls in (Cifar10Error, WeightsError, ManifestError, BoardError, HlsCliError, UnsupportedModelError, ProjectError, ArchitectureError,
                WeightFileError, BadImageError, DatasetError, LabelsFormatError, LabelsNotFoundError, FormatError,
                SpecError, CliError):
        assert issubclass(cls, SqzError), cls
    for cls in (BoardError, HlsCliError, UnsupportedModelError, ProjectError, ArchitectureError, WeightFileError,
                DatasetError, LabelsFormatError, FormatError, SpecError):
        assert issubclass(cls, ValueError), cls       # hw/convert.py and hw/estimate.py still catch ValueError
    assert issubclass(LabelsNotFoundError, FileNotFoundError)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_command_modules_import_the_shared_module_never_sqz_cli():
    for rel in ("quant/cli.py", "hw/cli.py"):
        imports = _imports(ROOT / rel)
        assert "sqz.cli" not in imports, rel
    assert "sqz.cli_common" in _imports(ROOT / "quant/cli.py") and "sqz.cli_common" in _imports(ROOT / "hw/cli.py")
    assert not {"sqz.cli", "quant.cli", "hw.cli"} & _imports(ROOT / "sqz/cli_common.py")
