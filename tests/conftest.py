import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SAMPLE_DIR = ROOT / "data" / "imagenet_sample"


@pytest.fixture(scope="session")
def gxx():
    """The C++ tests need g++: without it they fail (never skip), saying so."""
    assert shutil.which("g++"), ("g++ is not installed: the C++ tests (ap_fixed oracle, hw kernels, C simulation) "
                                 "need it; `bash .ci/run` installs it, or `apt-get install g++`")


@pytest.fixture(scope="session")
def tclsh():
    """The script check (hw/tclcheck.py) runs the generated tcl under a real Tcl: without it those tests fail."""
    assert shutil.which("tclsh"), ("tclsh is not installed: the Vivado / Vitis HLS script check needs Tcl; "
                                   "`bash .ci/run` installs it, or `apt-get install tcl`")


@pytest.fixture(scope="session")
def tiny():
    """The tiny network (tests/tiny_net.py) calibrated on 16 random images, its 8-bit spec (GPTQ codes
    included) and emulator, and 8 other images."""
    from quant.calibrate import Calibration, make_spec
    from quant.emulator import FixedPointEmulator
    from tests.tiny_net import tiny_arch, tiny_images, tiny_params

    arch = tiny_arch()
    params = tiny_params(arch)
    cal = Calibration(arch, params)
    cal.add_batch(tiny_images(16, seed=7))
    spec = make_spec(cal, 8, 8)
    return {"arch": arch, "params": params, "cal": cal, "spec": spec, "x": tiny_images(8, seed=3),
            "emulator": FixedPointEmulator(arch, params, spec)}


@pytest.fixture(scope="session")
def tiny_keras(tiny):
    """The tiny network in Keras with exactly the weights the 8-bit spec's codes stand for."""
    from tests.tiny_net import keras_model

    return keras_model(tiny["arch"], tiny["spec"].effective_params(tiny["params"]))


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    """One content-keyed HLS build cache for every C-simulation test."""
    return tmp_path_factory.mktemp("hls_cache")
