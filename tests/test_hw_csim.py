"""The hls4ml back end end to end on the tiny network of tests/tiny_net.py (both max pools need Caffe's
round-up padding, conv10 1x1 pad 1, two Fire modules, folded both ways by REUSE): conversion, build,
C simulation vs the emulator, with the 8-bit spec of conftest's `tiny` fixture.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)
pytestmark = pytest.mark.usefixtures("gxx")     # no g++: these tests fail, saying so

from hw.convert import UnsupportedModelError, plan_design, stream_fifos, to_hls4ml  # noqa: E402
from hw.csim import CSimError  # noqa: E402
from hw.project import LIBRARY, Project, build_project, project_dir_for  # noqa: E402
from quant.fixed_point import FixedFormat  # noqa: E402
from quant.spec import ConvFormats, SpecError  # noqa: E402
from tests.tiny_net import REUSE, SIZE, keras_model, tiny_arch, tiny_params  # noqa: E402


@pytest.fixture(scope="module")
def fused(tiny, tiny_keras, cache_root):
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104")
    return build_project(design, project_dir_for(design, cache_root))


def test_tiny_fire_network_csim_is_bit_identical_to_emulator(tiny, fused):
    sim = fused.simulator()
    y = sim.predict(tiny["x"])                                  # hls4ml's bridge: doubles out
    frac = tiny["spec"].layers["pool10"].result.frac
    codes = np.ldexp(y, frac)
    assert np.array_equal(codes, np.rint(codes)), "C-sim logits are not codes of the logit format"
    want = tiny["emulator"].logit_codes(tiny["x"])
    np.testing.assert_array_equal(codes.astype(np.int64), want)  # every logit of every image
    assert np.count_nonzero(want) > want.size // 2 and len(np.unique(want)) > 10   # not a trivial network


def test_a_specs_own_bias_codes_reach_the_c_simulation_bit_exact(tiny, cache_root):
    """A spec with trained bias codes (sqz finetune --train-biases): the Keras model built from
    effective_params carries them into the HLS ROMs; a model with the float biases is refused."""
    import dataclasses

    from quant.emulator import FixedPointEmulator
    from tests.tiny_net import moved_biases

    spec = dataclasses.replace(tiny["spec"], biases=moved_biases(tiny["spec"], tiny["params"], seed=1))
    model = keras_model(tiny["arch"], spec.effective_params(tiny["params"]))
    design = plan_design(model, spec, tiny["arch"], reuse=REUSE, board="zcu104")
    project = build_project(design, project_dir_for(design, cache_root))
    want = FixedPointEmulator(tiny["arch"], tiny["params"], spec).logit_codes(tiny["x"])
    np.testing.assert_array_equal(project.simulator().logit_codes(tiny["x"]), want)
    assert not np.array_equal(want, tiny["emulator"].logit_codes(tiny["x"]))      # the moved biases count
    with pytest.raises(UnsupportedModelError, match="biases are not the QuantSpec's bias codes"):
        float_biases = {n: (w, tiny["params"][n][1]) for n, (w, _) in spec.effective_params(tiny["params"]).items()}
        plan_design(keras_model(tiny["arch"], float_biases), spec, tiny["arch"], reuse=REUSE, board="zcu104")


def test_axi_top_carries_the_same_codes_with_tlast(tiny, fused):
    codes = fused.simulator().axi_logit_codes(tiny["x"][:3])   # packed words in, words out, TLAST checked
    np.testing.assert_array_equal(codes, tiny["emulator"].logit_codes(tiny["x"][:3]))


def emulator_fire_outputs(tiny, x) -> dict:
    """The emulator's Fire outputs (codes): expand1x1 and expand3x3 results, concatenated."""
    _, seen = tiny["emulator"].trace(x)
    return {f: np.concatenate([seen[f"{f}_expand1x1"], seen[f"{f}_expand3x3"]], axis=-1).astype(np.int64)
            for f in ("fire2", "fire3")}


def test_fire_kernel_matches_hls4ml_generic_clone_conv_concatenate(tiny, tiny_keras, fused, cache_root):
    """Whole Fire output maps, bit for bit: sqz::fire == hls4ml's Clone/Conv/Concatenate == the emulator."""
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", fuse_fire=False,
                         trace=("fire2_concat", "fire3_concat"))
    generic = build_project(design, project_dir_for(design, cache_root))
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104",
                         trace=("fire2", "fire3"))
    ours = build_project(design, project_dir_for(design, cache_root))
    stock = (generic.path / "firmware" / "myproject.cpp").read_text()
    fused_cpp = (ours.path / "firmware" / "myproject.cpp").read_text()
    assert "nnet::concatenate3d" in stock and "nnet::clone_stream" in stock and "sqz::fire" not in stock
    assert "sqz::fire" in fused_cpp and "concatenate3d" not in fused_cpp
    logits_g, maps_g = generic.simulator().trace(tiny["x"])
    logits_f, maps_f = ours.simulator().trace(tiny["x"])
    want = emulator_fire_outputs(tiny, tiny["x"])
    for fire in ("fire2", "fire3"):
        assert maps_f[fire].shape == want[fire].shape
        np.testing.assert_array_equal(maps_g[f"{fire}_concat"], maps_f[fire])
        np.testing.assert_array_equal(maps_f[fire], want[fire])
    np.testing.assert_array_equal(logits_g, logits_f)
    np.testing.assert_array_equal(logits_f, fused.simulator().logit_codes(tiny["x"]))   # tracing changes nothing


@pytest.mark.parametrize("fuse_fire", [True, False])
def test_estimate_lists_the_fifos_hls4ml_generates_for_a_fire_module(tiny, tiny_keras, tmp_path, fuse_fire):
    """hw.estimate's FIFOs between layers (fused: fire output; generic: hls4ml's ten streams, feature-map
    deep) are the stream variables of the generated graph: same depths, same word widths."""
    from hw.estimate import hardware_layers

    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", fuse_fire=fuse_fire)
    model = to_hls4ml(design, tmp_path / "prj")
    generated = sorted((f["depth"], f["width"]) for f in stream_fifos(
        model, lambda n: n == "fire2" or n.startswith("fire2_") or "_fire2_" in n))
    layer = next(l for l in hardware_layers(tiny["arch"], tiny["spec"], design.reuse, fuse_fire=fuse_fire)
                 if l.name == "fire2")
    modelled = sorted((m.depth, m.width) for m in layer.memories() if m.role.startswith("fifo"))  # not 'kernel fifo'
    assert generated == modelled
    assert len(generated) == (1 if fuse_fire else 10)


def test_unsupported_pooling_is_rejected_before_any_cpp(tmp_path):
    arch = tiny_arch(pool=(2, 2))
    params = tiny_params(arch)
    out = tmp_path / "project"
    with pytest.raises(UnsupportedModelError, match=r"pool1: max pooling 2x2 / stride 2 is not supported"):
        build_project(plan_design(keras_model(arch, params), None, arch), out)
    assert not out.exists()


def test_missing_layer_is_rejected_before_any_cpp(tiny, tiny_keras, tmp_path):
    short = tiny_arch(with_fire3=False)
    model = keras_model(short, tiny_params(short))
    with pytest.raises(UnsupportedModelError, match=r"layer fire3_squeeze1x1 of tiny_fire is missing"):
        plan_design(model, tiny["spec"], tiny["arch"])
    spec = tiny["spec"]
    broken = type(spec)(spec.model, spec.input, {k: v for k, v in spec.layers.items() if k != "fire2_expand1x1"})
    with pytest.raises(SpecError, match="fire2_expand1x1"):
        plan_design(tiny_keras, broken, tiny["arch"])
    assert not any(tmp_path.iterdir())


def test_formats_wider_than_supported_are_rejected(tiny, tiny_keras):
    spec = tiny["spec"]
    f = spec.layers["conv1"]
    wide = dict(spec.layers)
    wide["conv1"] = ConvFormats(f.weight, FixedFormat(40, 40 - f.accum.frac, True, "AP_RND", "AP_SAT"), f.accum, f.result)
    with pytest.raises(UnsupportedModelError, match=r"conv1 field 'bias'.*wider than the 32 bits"):
        plan_design(tiny_keras, type(spec)(spec.model, spec.input, wide), tiny["arch"])
    narrow = dict(spec.layers)
    narrow["conv1"] = ConvFormats(f.weight, f.bias, FixedFormat(8, 8, True, "AP_TRN", "AP_WRAP"), f.result)
    with pytest.raises(SpecError):   # accum keeps too few fractional bits: not exact
        plan_design(tiny_keras, type(spec)(spec.model, spec.input, narrow), tiny["arch"])


def test_build_is_cached_by_content(tiny, tiny_keras, fused, cache_root):
    lib = fused.library
    mtime = lib.stat().st_mtime_ns
    t0 = time.perf_counter()
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104")
    again = build_project(design, project_dir_for(design, cache_root))
    assert again.cache_hit and again.path == fused.path and again.key == fused.key
    assert time.perf_counter() - t0 < 5 and lib.stat().st_mtime_ns == mtime     # no conversion, no g++
    other = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse={**REUSE, "conv1": 9}, board="zcu104")
    assert other.key() != fused.key                                            # reuse is part of the content
    assert sorted(p.name for p in fused.path.rglob("*.so")) == [Path(LIBRARY).name]  # one library per build


def test_moved_project_still_runs(tiny, fused, tmp_path):
    assert not list((fused.path / "firmware" / "weights").glob("*.txt"))      # weights are compiled in
    assert str(fused.path).encode() not in fused.library.read_bytes()       # no absolute path baked in
    moved = tmp_path / "elsewhere" / "moved_project"
    moved.parent.mkdir()
    shutil.move(str(fused.path), moved)                                      # the original is gone meanwhile
    try:
        codes = Project(moved).simulator().logit_codes(tiny["x"][:2])
    finally:
        shutil.move(str(moved), fused.path)
    np.testing.assert_array_equal(codes, tiny["emulator"].logit_codes(tiny["x"][:2]))


def test_crash_in_cpp_is_an_error_not_a_dead_caller(tiny, fused, tmp_path):
    copy = tmp_path / "crashing"
    shutil.copytree(fused.path, copy)
    src = tmp_path / "abort.c"
    src.write_text("#include <stdlib.h>\nvoid myproject_double(double *x, double *y) { (void)x; (void)y; abort(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(copy / LIBRARY)], check=True)
    with pytest.raises(CSimError, match="process was killed by signal SIGABRT"):
        Project(copy).simulator().predict(np.zeros((1, SIZE, SIZE, 3), np.float32))
    # the abort killed a child process only: this one goes on simulating, bit for bit
    x = tiny["x"][:2]
    np.testing.assert_array_equal(fused.simulator().logit_codes(x), tiny["emulator"].logit_codes(x))


def test_images_are_checked_before_cpp(fused):
    sim = fused.simulator()
    with pytest.raises(ValueError, match="shape"):
        sim.predict(np.zeros((2, SIZE + 1, SIZE, 3), np.float32))
    bad = np.zeros((1, SIZE, SIZE, 3), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sim.predict(bad)
