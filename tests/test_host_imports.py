"""The modules that ship to the board (host.BOARD_MODULES) import, and read a generated project's
manifest.json and weight stream, in a Python where TensorFlow, Keras and hls4ml cannot be imported --
as on a PYNQ image. Also: how hw/project.py treats folders it finds at the output path."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from host import BOARD_MODULES
from host.manifest import MANIFEST_FILE, Manifest
from tests.test_host_manifest import sample

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tensorflow", "keras", "hls4ml")

# Runs in a fresh interpreter: a meta-path finder refuses the forbidden packages before anything is
# imported, then the board modules are imported and the manifest in argv[1] is read.
BOARD_SCRIPT = r"""
import importlib, json, sys
FORBIDDEN = %(forbidden)r

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"{name} is not available on the board")
        return None

sys.meta_path.insert(0, Refuse())
for name in FORBIDDEN:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the blocker failed: {name} imported")

import numpy as np
import host.axi, host.manifest, sqz.passes
from host.manifest import Manifest

m = Manifest.load(sys.argv[1])
out = {"model": m.model, "in_beats": m.axi.in_beats, "out_beats": m.axi.out_beats,
       "repo_modules": sorted(k for k in sys.modules if k.split(".")[0] in %(repo)r),
       "forbidden_loaded": sorted(k for k in sys.modules if k.split(".")[0] in FORBIDDEN)}
codes = np.zeros((m.input.shape[0], m.input.shape[1], m.input.shape[2]), np.int64)
out["packed"] = int(m.axi.pack_input(codes).shape[0])
out["mirror_sum"] = sqz.passes.mirror_sum(lambda x: x[:, 0, :, 0], np.arange(8).reshape(1, 2, 4, 1)).tolist()
if m.weight_load is not None:
    words = np.fromfile(sys.argv[1].rsplit("/", 1)[0] + "/" + m.weight_load_file, dtype="<u8")
    out["stream_ok"] = bool(len(words) == m.weight_load.total_beats and words[0] == m.weight_load.header())
    out["mode_offset"] = m.control.mode
print(json.dumps(out))
"""

REPO_PACKAGES = ("host", "sqz", "hw", "quant", "model", "tests", "benchmarks")


def run_on_board(manifest: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    script = BOARD_SCRIPT % {"forbidden": FORBIDDEN, "repo": REPO_PACKAGES}
    run = subprocess.run([sys.executable, "-c", script, str(manifest)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def check_board_side(result: dict) -> None:
    assert result["forbidden_loaded"] == []
    assert set(result["repo_modules"]) <= set(BOARD_MODULES), "a board module imports something that does not ship"
    assert {"host.axi", "host.manifest", "sqz.errors", "sqz.passes"} <= set(result["repo_modules"])
    assert result["mirror_sum"] == [[3, 3, 3, 3]]     # row 0 of [[0 1 2 3]] plus its mirror [3 2 1 0]


def test_board_modules_read_a_manifest_without_tensorflow_keras_or_hls4ml(tmp_path):
    m = sample(loadable=False)
    m.save(tmp_path)
    result = run_on_board(tmp_path / MANIFEST_FILE)
    check_board_side(result)
    assert result["model"] == "tiny_fire" and result["packed"] == result["in_beats"] == 34 * 34


@pytest.fixture(scope="module")
def generated(tmp_path_factory, tiny, tiny_keras):
    """A real project of the tiny Fire network with loadable conv10 (weight stream and control registers),
    generated without compiling its C simulation."""
    import hls4ml  # noqa: F401  (a requirement: missing, the test fails)
    from hw.convert import plan_design
    from hw.project import build_project
    from tests.tiny_net import REUSE

    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", loadable=("conv10",))
    out = tmp_path_factory.mktemp("generated") / "tiny"
    return design, build_project(design, out, compile=False)


def test_board_modules_read_a_generated_projects_manifest_and_weight_stream(generated):
    design, project = generated
    result = run_on_board(project.path / MANIFEST_FILE)
    check_board_side(result)
    assert result["stream_ok"] and result["mode_offset"] == 0x10
    assert result["out_beats"] == project.manifest.axi.out_beats == 3   # 10 logits, 16-bit lanes


def test_generated_manifest_is_the_designs_and_its_spec_reloads(generated):
    from quant.spec import QuantSpec

    design, project = generated
    m = Manifest.load(project.path)
    assert m == project.manifest and m.key == design.key() and m.board_part == "xilinx.com:zcu104:part0:1.1"
    assert m.resources.source == "estimate" and m.bit_sha256 is None and m.tools.vivado is None
    assert m.weight_load == project.weight_stream and m.weight_load.arrays[0].layer == "conv10"
    assert m.layers == [p.to_json() for p in design.layers] and m.reuse == design.reuse
    spec = QuantSpec.from_json(m.spec, design.arch, base_dir=project.path)   # the embedded spec, with its codes
    assert spec.to_json() == design.spec.to_json() and m.spec_weights_file == "spec.weights.npz"
    for name, codes in design.spec.weights.items():
        assert (spec.weights[name] == codes).all()
    assert not (project.path / "sqz_manifest.json").exists()


def test_a_folder_with_an_older_sqz_manifest_is_regenerated_and_a_foreign_one_refused(generated, tmp_path):
    from hw.project import ProjectError, build_project

    design, project = generated
    old = tmp_path / "old"
    old.mkdir()
    (old / "sqz_manifest.json").write_text(json.dumps({"format": "sqz-hls-project", "version": 1, "key": "x"}))
    (old / "stale.txt").write_text("from an older sqz")
    again = build_project(design, old, compile=False)
    assert not again.cache_hit and again.key == design.key()
    assert not (old / "stale.txt").exists() and (old / MANIFEST_FILE).exists()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / MANIFEST_FILE).write_text(json.dumps({"format": "someone-else"}))
    with pytest.raises(ProjectError, match="refusing to overwrite"):
        build_project(design, foreign, compile=False)
    assert json.loads((foreign / MANIFEST_FILE).read_text()) == {"format": "someone-else"}
    shutil.rmtree(old)
