"""Loadable weights: conv10 as sqz::conv1x1_rw with its weights in a runtime-written (UltraRAM) array,
filled through the AXI top's load mode, on the tiny network of tests/tiny_net.py -- C simulation bit for
bit against the emulator, the load protocol's checks, configuration errors before any C++, and the
estimate placing exactly the generated design's loadable weights in UltraRAM."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)
pytestmark = pytest.mark.usefixtures("gxx")     # no g++: these tests fail, saying so

from host.axi import WEIGHT_MAGIC, WeightStream  # noqa: E402
from hw.convert import UnsupportedModelError, loadable_weight_codes, plan_design  # noqa: E402
from hw.estimate import estimate, loadable_layers, uram_blocks  # noqa: E402
from hw.project import WEIGHT_STREAM, Project, ProjectError, build_project, project_dir_for  # noqa: E402
from tests.tiny_net import REUSE, SIZE  # noqa: E402


@pytest.fixture(scope="module")
def loadable(tiny, tiny_keras, cache_root):
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", loadable=("conv10",))
    return design, build_project(design, project_dir_for(design, cache_root))


def test_loadable_conv10_csim_is_bit_identical_to_emulator(tiny, loadable):
    design, project = loadable
    assert design.loadable == ("conv10",)
    cpp = (project.path / "firmware" / "myproject.cpp").read_text()
    assert "sqz::conv1x1_rw" in cpp and "pointwise_conv_2d_cl" not in cpp and "nnet::relu" not in cpp.split("// conv10")[0][-300:]
    assert "#pragma HLS BIND_STORAGE variable=sqz_w_conv10 type=ram_1p impl=uram" in cpp
    assert "#pragma HLS STABLE variable=sqz_w_conv10" in cpp
    top = (project.path / "firmware" / "sqz_top.cpp").read_text()
    assert "s_axilite port=mode" in top and "ap_ctrl_none" not in top
    assert "sqz/s_axi_control" in (project.path / "sqz_vivado.tcl").read_text()
    # conv10's weights are no ROM: no hls4ml weight header or C-sim codes for them, only its bias
    codes_h = (project.path / "firmware" / "weights" / "sqz_codes.h").read_text()
    assert codes_h.count("_codes[") == 2 * 7 + 1        # conv1, 2 Fire modules x 3 convs (w, b), conv10's bias
    sim = project.simulator()
    want = tiny["emulator"].logit_codes(tiny["x"])
    np.testing.assert_array_equal(sim.logit_codes(tiny["x"]), want)            # every logit of every image
    np.testing.assert_array_equal(sim.axi_logit_codes(tiny["x"][:3]), want[:3])
    assert np.count_nonzero(want) > want.size // 2 and len(np.unique(want)) > 10


def test_weight_stream_file_holds_the_folded_codes(loadable):
    design, project = loadable
    layout = project.weight_stream
    manifest = json.loads((project.path / "manifest.json").read_text())
    assert manifest["weight_load"]["file"] == WEIGHT_STREAM and manifest["weight_load"]["magic"] == WEIGHT_MAGIC
    assert manifest["control"]["mode"] == 0x10 and manifest["control"]["ap_ctrl"] == 0x00   # s_axilite offsets
    words = project.weight_words()
    a = layout.arrays[0]
    assert (a.layer, a.array, a.n, a.lane) == ("conv10", "sqz_w_conv10", 24 * 10, 8)
    assert len(words) == layout.total_beats == 1 + 30 and words[0] == (WEIGHT_MAGIC << 32 | 30)
    got = layout.unpack(words)["conv10"]
    np.testing.assert_array_equal(got, loadable_weight_codes(design)["conv10"])
    w = design.spec.layers["conv10"].weight.quantize(design.params["conv10"][0].astype(np.float64))
    assert sorted(got.tolist()) == sorted(w.ravel().tolist()) and np.count_nonzero(got) > 120


def test_inference_before_loading_runs_on_zero_weights(tiny, loadable):
    """UltraRAM powers up at 0: before the load conv10 outputs ReLU(bias) everywhere, so every image gets the
    same logits -- not the network's."""
    _, project = loadable
    unloaded = project.simulator(load_weights=False).axi_logit_codes(tiny["x"][:3])
    assert (unloaded == unloaded[0]).all()
    assert not np.array_equal(unloaded, tiny["emulator"].logit_codes(tiny["x"][:3]))


def test_load_protocol_reports_bad_streams(loadable):
    _, project = loadable
    sim = project.simulator()
    words = project.weight_words()
    payload = len(words) - 1
    assert sim.load_reply(words) == (1, payload << 32 | 1, 1)                     # accepted, TLAST set
    assert sim.load_reply(words[:-1]) == (1, (payload - 1) << 32, 1)              # short: rejected, counted
    assert sim.load_reply(np.append(words, words[1:3])) == (1, (payload + 2) << 32, 1)   # long: read to TLAST
    bad = words.copy()
    bad[0] ^= np.uint64(1 << 40)                                                 # wrong magic: nothing written
    assert sim.load_reply(bad) == (1, payload << 32, 1)


def test_damaged_weight_stream_file_is_refused_before_cpp(loadable, tmp_path):
    _, project = loadable
    copy = tmp_path / "copy"
    shutil.copytree(project.path, copy)
    words = np.fromfile(copy / WEIGHT_STREAM, "<u8")
    words[:-1].tofile(copy / WEIGHT_STREAM)
    with pytest.raises(ProjectError, match="beats, expected"):
        Project(copy).simulator()


@pytest.mark.parametrize("board, loadable_arg, reuse, message", [
    ("zcu104", ("conv1",), {"conv1": 1}, r"conv1: needs reuse factor > 1 .* reuse 1"),
    ("zcu104", ("conv10",), {"conv10": 1}, r"conv10: needs reuse factor > 1 .* reuse 1"),
    ("zcu104", ("fire2_squeeze1x1",), {}, "a convolution of Fire module fire2, whose weights load as a whole"),
    ("pynq-z2", ("conv10",), {}, "pynq-z2 has none"),
    ("zcu104", "sometimes", {}, "must be one of none, auto, all"),
])
def test_bad_loadable_configs_are_rejected_before_any_cpp(tiny, tiny_keras, tmp_path, board, loadable_arg, reuse,
                                                          message):
    with pytest.raises(UnsupportedModelError, match=message):
        plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse={**REUSE, **reuse}, board=board,
                    loadable=loadable_arg)
    assert not any(tmp_path.iterdir())


def test_estimate_and_design_agree_on_the_loadable_layers(tiny, tiny_keras, loadable):
    design, _ = loadable
    est = estimate(tiny["arch"], "zcu104", tiny["spec"], design.reuse, loadable=design.loadable)
    conv10 = next(l for l in est.layers if l.name == "conv10")
    assert conv10.kind == "conv_rw" and conv10.weights_in == "uram" and conv10.bram18 == 0
    assert conv10.uram == uram_blocks(REUSE["conv10"], 240 // REUSE["conv10"] * 8)   # R deep x 60 weights wide
    assert est.assumptions == () and est.loadable == ("conv10",)
    assert [l.weights_in for l in est.layers if l.weights_in == "uram"] == ["uram"]
    # the policies resolve through the same function for the design and the estimate
    for policy in ("none", "all", "auto"):
        d = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", loadable=policy)
        assert d.loadable == loadable_layers(tiny["arch"], "zcu104", tiny["spec"], d.reuse, policy, input_size=SIZE)
        assert estimate(tiny["arch"], "zcu104", tiny["spec"], d.reuse, loadable=policy).loadable == d.loadable
    # 'all': every op whose weights are a memory -- conv1 (3x3 / 2, R = 3), both Fire modules (REUSE folds
    # a part of each) and conv10
    assert plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104",
                       loadable="all").loadable == ("conv1", "fire2", "fire3", "conv10")


# -- every weight loadable: conv1 (sqz::conv_rw, 3x3 / 2) and the Fire modules (sqz::fire) reading ------
# -- runtime-written UltraRAM arrays, with conv10 ---------------------------------------------------------

@pytest.fixture(scope="module")
def loadable_fire(tiny, tiny_keras, cache_root):
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", loadable="all")
    return design, build_project(design, project_dir_for(design, cache_root))


def test_loadable_fire_csim_is_bit_identical_to_emulator(tiny, loadable_fire):  # noqa: F811
    design, project = loadable_fire
    # fire2 folds all three parts (R = 4): all loaded; fire3 only its expand3x3 (R = 6): the other two
    # parts have R = 1, their weights are logic, nothing to load
    assert design.loadable == ("conv1", "fire2", "fire3", "conv10")
    assert [a.layer for a in design.load_arrays()] == ["conv1", "fire2_squeeze1x1", "fire2_expand1x1",
                                                       "fire2_expand3x3", "fire3_expand3x3", "conv10"]
    assert design.reuse["fire3_squeeze1x1"] == design.reuse["fire3_expand1x1"] == 1
    cpp = (project.path / "firmware" / "myproject.cpp").read_text()
    for a in design.load_arrays():
        assert f"#pragma HLS BIND_STORAGE variable={a.array} type=ram_1p impl=uram" in cpp
        assert f"#pragma HLS STABLE variable={a.array}" in cpp
    call = next(line for line in cpp.splitlines() if "sqz::fire<" in line and "sqz_w_fire2" in line)
    assert all(f"sqz_w_fire2_{c}" in call for c in ("squeeze1x1", "expand1x1", "expand3x3"))
    assert "sqz::conv_rw<" in cpp and "sqz_w_conv1," in cpp and "conv_2d_cl" not in cpp
    # no ROM (header, C-sim codes) for the loaded weights: conv1's bias, fire2's 3 biases, fire3's 2 weights
    # + 3 biases, conv10's bias
    codes_h = (project.path / "firmware" / "weights" / "sqz_codes.h").read_text()
    assert codes_h.count("_codes[") == 1 + 3 + 5 + 1
    sim = project.simulator()
    want = tiny["emulator"].logit_codes(tiny["x"])
    np.testing.assert_array_equal(sim.logit_codes(tiny["x"]), want)
    np.testing.assert_array_equal(sim.axi_logit_codes(tiny["x"][:3]), want[:3])
    # before the load every loaded weight is 0: the network is not the network
    unloaded = project.simulator(load_weights=False).axi_logit_codes(tiny["x"][:3])
    assert not np.array_equal(unloaded, want[:3])


def test_loadable_fire_weight_stream_round_trips(loadable_fire):
    design, project = loadable_fire
    layout, words = project.weight_stream, project.weight_words()
    assert [a.layer for a in layout.arrays] == [a.layer for a in design.load_arrays()]
    got = layout.unpack(words)
    for a in design.load_arrays():
        np.testing.assert_array_equal(got[a.layer], a.codes)
        w = design.spec.layers[a.layer].weight.quantize(design.params[a.layer][0].astype(np.float64))
        assert sorted(got[a.layer].tolist()) == sorted(w.ravel().tolist())     # a permutation of the layer's codes


def test_estimate_of_a_loadable_fire_design_is_the_designs(tiny, loadable_fire):  # noqa: F811
    design, _ = loadable_fire
    est = design.estimate()
    fire2 = next(l for l in est.layers if l.name == "fire2")
    fire3 = next(l for l in est.layers if l.name == "fire3")
    # one UltraRAM memory per loaded part: R deep x (n_in * n_out / R) 8-bit weights wide
    fire2_parts = [(8, 4, 4), (4, 8, 4), (36, 8, 4)]              # (n_in, n_out, R): squeeze, expand1, expand3
    assert fire2.kind == "fire_rw" and fire2.weights_in == "uram" and fire2.bram18 == 0
    assert fire2.uram == sum(uram_blocks(r, n_in * n_out // r * 8) for n_in, n_out, r in fire2_parts)
    assert fire3.kind == "fire_rw" and fire3.weights_in == "mixed"  # expand3x3 in UltraRAM, the rest logic
    assert fire3.uram == uram_blocks(6, 54 * 12 // 6 * 8)
    assert est.loadable == ("conv1", "fire2", "fire3", "conv10") and est.assumptions == ()
    conv1 = next(l for l in est.layers if l.name == "conv1")
    assert conv1.kind == "conv_rw" and conv1.weights_in == "uram" and conv1.bram18 == 0   # 3x3x3 x 8: 216 weights
    assert conv1.uram == uram_blocks(REUSE["conv1"], 27 * 8 // REUSE["conv1"] * 8)
    again = estimate(tiny["arch"], "zcu104", tiny["spec"], design.reuse, loadable=design.loadable)
    assert again.to_json() == est.to_json()


def test_weight_stream_packing_round_trips_and_checks_codes():
    from quant.fixed_point import FixedFormat

    fmt = FixedFormat(12, 2, True, "AP_RND", "AP_SAT")
    layout = WeightStream.for_arrays([("a", "sqz_w_a", 7, fmt), ("b", "sqz_w_b", 4, FixedFormat(5, 1, True))])
    assert [(x.lane, x.beats, x.first_beat) for x in layout.arrays] == [(16, 2, 0), (8, 1, 2)]
    codes = {"a": np.array([-2048, 2047, 0, -1, 5, 6, 7]), "b": np.array([-16, 15, 1, -1])}
    words = layout.pack(codes)
    assert words.dtype == np.uint64 and len(words) == layout.total_beats == 4
    assert int(words[1]) & 0xFFFF == 0xF800 and int(words[3]) >> 24 & 0xFF == 0xFF    # two's complement lanes
    out = layout.unpack(words)
    for k in codes:
        np.testing.assert_array_equal(out[k], codes[k])
    with pytest.raises(ValueError, match="outside a 12-bit"):
        layout.pack({**codes, "a": np.array([2048, 0, 0, 0, 0, 0, 0])})
    with pytest.raises(ValueError, match="3 codes, expected 4"):
        layout.pack({**codes, "b": np.array([1, 2, 3])})
    assert WeightStream.from_json(json.loads(json.dumps(layout.to_json()))) == layout


def test_generated_load_path_compiles_cleanly_with_cpp14_wall_wextra(loadable):
    """The generated loader, arrays, top and harness, and sqz's headers: no warning under -std=c++14 -Wall
    -Wextra (pragmas and loop labels aside; hls4ml's own nnet_* headers are not ours and do warn)."""
    import subprocess

    _, project = loadable
    ours = []
    for src in ("firmware/myproject.cpp", "sqz_csim.cpp"):
        run = subprocess.run(["g++", "-std=c++14", "-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Wno-unused-label",
                              "-fsyntax-only", "-isystem", "firmware/ap_types", "-Ifirmware", src],
                             cwd=project.path, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
        ours += [l for l in run.stderr.splitlines() if ("warning" in l or "error" in l) and "nnet_utils/nnet_" not in l]
    assert ours == []
