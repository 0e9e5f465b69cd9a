"""Host tests: run under the second venv (.venv-pynq: the real pynq 4.0.0), started by tests/test_host_sim.py,
which generates the design folders and passes them in SQZ_HOST_FIXTURES (zcu104: no loadable weights;
kv260: conv10's weights in UltraRAM, so the weight load runs)."""
import os
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="No devices found")
SHARED = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "data" / "imagenet_sample"
REAL_HWH = {"hls4ml_pynqz2": SHARED / "hls4ml_pynqz2_reference" / "hls4ml_nn.hwh",
            "aup_zu3": SHARED / "hls_reports" / "aup-zu3-hls4ml-cifar10-hwh" / "xsa_extracted" / "machineLearning_bd.hwh",
            "rn07_pynqz2": SHARED / "hls_reports" / "mlperftiny-rn07-pynqz2" / "hdf_extracted" / "design_1.hwh"}


@pytest.fixture(scope="session")
def folders():
    base = os.environ.get("SQZ_HOST_FIXTURES")
    assert base, "SQZ_HOST_FIXTURES is not set: run these tests through tests/test_host_sim.py (the README's command)"
    out = {"zcu104": Path(base) / "bit_zcu104", "kv260": Path(base) / "bit_kv260",
           "kv260_project": Path(base) / "proj_kv260", "tiny_project": Path((Path(base) / "tiny_project.txt").read_text())}
    for p in out.values():
        assert (p / "manifest.json").exists(), f"{p}: missing (tests/test_host_sim.py generates it)"
    out["tiny_ref"] = Path(base) / "tiny_ref.npz"
    return out


@pytest.fixture(scope="session")
def images():
    import numpy as np

    from model.imagenet import ImageFolderDataset

    ds = ImageFolderDataset(SAMPLE, limit=6)
    return np.stack([ds[i][0] for i in range(6)])
