"""hw.estimate / hw.boards: the pre-synthesis cost model, checked against numbers worked by hand."""
import math

import pytest

from hw.boards import BOARDS, get_board
from hw.estimate import (FEATURE_MAP, bram18_blocks, choose_reuse, dsp_per_multiplier, estimate, hardware_layers,
                         uram_blocks, valid_reuse_factors)
from model.architecture import Architecture, Conv, Fire, get_architecture


def one_conv(name="pw", filters=32, kernel=1, size=8, channels=16):
    return Architecture(name, size, (Conv(name, filters, kernel),), in_channels=channels)


def test_pointwise_conv_dsp_cycles_and_weight_rom_by_hand():
    # 1x1 conv, 8x8x16 -> 32 filters, R = 8: 16*32/8 = 64 multipliers (8x8 bit: one DSP each),
    # 64 output pixels x 8 cycles = 512 cycles per frame, no line-buffer fill for 1x1.
    # Weights: an 8-deep x (64 * 8 = 512)-bit ROM -> best RAMB18 shape 512x36: ceil(512/36) = 15.
    est = estimate(one_conv(), "zcu104", 8, {"pw": 8}, include_shell=False)
    (layer,) = est.layers
    assert (layer.dsp, layer.ii_cycles, layer.bram18, layer.uram) == (64, 512, 15, 0)
    assert layer.macs == 16 * 32 * 64
    assert est.ii_cycles == 512 and est.fps == pytest.approx(300e6 / 512)
    # the same products on a Zynq-7000 DSP48E1 still take one DSP each
    assert estimate(one_conv(), "pynq-z2", 8, {"pw": 8}, include_shell=False).dsp == 64


def test_cycles_halve_and_dsps_double_when_reuse_halves():
    slow = estimate(one_conv(), "zcu104", 8, {"pw": 16}, include_shell=False)
    fast = estimate(one_conv(), "zcu104", 8, {"pw": 8}, include_shell=False)
    assert slow.ii_cycles == 2 * fast.ii_cycles == 1024
    assert 2 * slow.dsp == fast.dsp == 64
    assert fast.fps == pytest.approx(2 * slow.fps)


def test_three_by_three_conv_pays_line_buffer_fill():
    # 3x3 conv, 10x10 input -> 8x8 output, R = 4: 64*4 + (100 - 64) input pixels that finish no window
    est = estimate(one_conv("c3", 8, 3, size=10, channels=4), "zcu104", 8, {"c3": 4}, include_shell=False)
    assert est.ii_cycles == 64 * 4 + 36
    assert est.dsp == 4 * 9 * 8 // 4


def test_operand_widths_decide_dsps_per_product():
    assert dsp_per_multiplier(8, True, 8, False, "DSP48E1") == 1
    assert dsp_per_multiplier(18, True, 17, False, "DSP48E1") == 1      # 18 x (17+1) fits 25x18
    assert dsp_per_multiplier(24, True, 24, True, "DSP48E2") == 2       # 24 > 18 on the short port
    assert dsp_per_multiplier(32, True, 32, True, "DSP48E1") == 2 * 2


def test_bram_and_uram_packing_by_hand():
    assert bram18_blocks(512, 36) == 1
    assert bram18_blocks(2048, 9) == 1
    assert bram18_blocks(2048, 10) == 2
    assert bram18_blocks(16384, 1) == 1
    assert bram18_blocks(1000, 8000) == math.ceil(1000 / 1024) * math.ceil(8000 / 18)
    assert uram_blocks(4096, 72) == 1
    assert uram_blocks(4097, 72) == 2
    assert uram_blocks(100, 73) == 2


def test_weights_larger_than_block_ram_do_not_fit():
    # 3x3x512 -> 1024 at 8 bits: 4.7 M weights = 37.7 Mbit, the PYNQ-Z2 has 280 x 18 Kb = 5 Mbit.
    # R = n_in * n_out leaves one multiplier, so only the memory can fail.
    big = one_conv("big", 1024, 3, size=5, channels=512)
    n = 512 * 9 * 1024
    est = estimate(big, "pynq-z2", 8, {"big": n}, include_shell=False)
    assert est.dsp == 1
    assert not est.fits and "bram18" in est.over_budget and "dsp" not in est.over_budget
    assert est.bram18 > get_board("pynq-z2").bram18 and est.utilisation["bram18"] > 100
    small = estimate(one_conv(), "pynq-z2", 8, {"pw": 8})
    assert small.fits and small.over_budget == ()


def test_uram_takes_weights_only_where_there_is_uram():
    arch = get_architecture("squeezenet1_1")
    reuse = choose_reuse(arch, "zcu104", 8, fps=600, input_size=224)
    with_uram = estimate(arch, "zcu104", 8, reuse, input_size=224, uram="all")
    without = estimate(arch, "zcu104", 8, reuse, input_size=224, uram="none")
    assert without.uram == 0 and with_uram.uram > 0 and with_uram.bram18 < without.bram18
    assert estimate(arch, "ultra96-v2", 8, reuse, input_size=224, uram="all").uram == 0


def test_weights_stay_out_of_uram_unless_a_load_path_is_assumed_and_then_it_is_labelled():
    # UltraRAM has no bitstream initialisation and the generator emits plain ROMs: the default estimate
    # (and the folding chosen with it) must not count on URAM for weights.
    arch = get_architecture("squeezenet1_1")
    default = estimate(arch, "zcu104", 8, input_size=224)
    assert default.uram == 0 and default.assumptions == () and default.to_json()["estimate_assumptions"] == []
    assert all(l.weights_in != "uram" for l in default.layers)
    assumed = estimate(arch, "zcu104", 8, input_size=224, uram="auto")
    assert assumed.uram > 0 and len(assumed.assumptions) == 1
    assert "WEIGHT-LOAD PATH" in assumed.assumptions[0] and "WEIGHT-LOAD PATH" in assumed.table()
    assert assumed.to_json()["estimate_assumptions"] == list(assumed.assumptions)
    with pytest.raises(ValueError, match="uram must be"):
        estimate(arch, "zcu104", 8, input_size=224, uram="yes")


def test_choose_reuse_meets_the_fps_target_it_is_given():
    arch = get_architecture("squeezenet1_1")
    ests = {}
    for fps in (300, 600):
        reuse = choose_reuse(arch, "zcu104", 8, fps=fps, input_size=224)
        est = ests[fps] = estimate(arch, "zcu104", 8, reuse, input_size=224)
        assert est.fps >= fps
        assert all(l.ii_cycles <= 300e6 / fps for l in est.layers)
    assert ests[300].dsp < ests[600].dsp            # the slower target folds more


def test_choose_reuse_respects_max_dsp_and_default_fits_the_board():
    arch = get_architecture("squeezenet1_1")
    few = estimate(arch, "zcu104", 8, choose_reuse(arch, "zcu104", 8, max_dsp=250, input_size=224), input_size=224)
    more = estimate(arch, "zcu104", 8, choose_reuse(arch, "zcu104", 8, max_dsp=600, input_size=224), input_size=224)
    assert few.dsp <= 250 and more.dsp <= 600 and more.fps > few.fps
    default = estimate(arch, "zcu104", 8, input_size=224)
    assert default.fits and all(u <= 100 for u in default.utilisation.values())


def test_valid_reuse_factors_follow_hls4ml():
    import hls4ml.backends.fpga.fpga_backend as fpga
    for n_in, n_out in [(27, 64), (64, 16), (16, 64), (144, 64), (147, 96), (512, 1000)]:
        theirs = [r for r in range(1, n_in * n_out + 1)
                  if fpga.FPGABackend._validate_reuse_factor(None, n_in, n_out, r)]
        assert valid_reuse_factors(n_in, n_out) == theirs


def test_invalid_reuse_factor_is_refused():
    with pytest.raises(ValueError, match="not valid"):
        estimate(one_conv(), "zcu104", 8, {"pw": 7})
    with pytest.raises(ValueError, match="unknown layer"):
        estimate(one_conv(), "zcu104", 8, {"pw": 8, "nope": 2})


def test_all_four_boards_load_with_their_parts():
    parts = {name: get_board(name).part for name in ("pynq-z2", "ultra96-v2", "kv260", "zcu104")}
    assert parts == {"pynq-z2": "xc7z020clg400-1", "ultra96-v2": "xczu3eg-sbva484-1-i",
                     "kv260": "xck26-sfvc784-2LV-c", "zcu104": "xczu7ev-ffvc1156-2-e"}
    for b in BOARDS.values():
        assert b.bram18 % 2 == 0 and b.dsp > 0 and b.lut > 0 and b.clock_mhz > 0
    assert (get_board("zcu104").dsp, get_board("zcu104").uram, get_board("pynq-z2").bram18) == (1728, 96, 280)
    with pytest.raises(ValueError, match="pynq-z2, ultra96-v2, kv260, zcu104"):
        get_board("zcu102")


def test_squeezenet_1_1_at_224_has_the_known_pooled_sizes():
    arch = get_architecture("squeezenet1_1")
    out = {layer.name: o for layer, _, o in arch.shapes(224)}
    assert (out["conv1"], out["pool1"], out["pool3"], out["pool5"]) == \
        ((111, 111, 64), (55, 55, 64), (27, 27, 128), (13, 13, 256))
    assert out["conv10"] == (13, 13, 1000) and out["pool10"] == (1, 1, 1000)
    layers = {l.name: l for l in estimate(arch, "zcu104", 8, choose_reuse(arch, "zcu104", 8, fps=100,
                                                                            input_size=224), input_size=224).layers}
    assert layers["pool5"].out_shape == (13, 13, 256) and layers["pool10"].out_shape == (1, 1, 1000)


def test_json_has_the_cli_contract_and_says_estimate():
    est = estimate(one_conv(), "kv260", 8, {"pw": 8})
    data = est.to_json()
    assert set(data) == {"board", "estimate", "fits", "layers", "estimate_assumptions"}
    assert data["estimate_assumptions"] == []
    assert set(data["estimate"]) == {"dsp", "bram18", "uram", "lut", "ii_cycles", "clock_mhz", "fps"}
    assert data["board"] == "kv260" and est.source == "estimate"
    assert [l["name"] for l in data["layers"]] == ["shell", "pw"]
    assert "ESTIMATE" in est.table()


def test_quantspec_widths_drive_the_estimate():
    from quant.fixed_point import FixedFormat
    from quant.spec import ConvFormats, PoolFormats, QuantSpec

    arch = get_architecture("squeezenet1_1")

    def spec(weight_bits):
        layers = {c.name: ConvFormats(FixedFormat(weight_bits, 1), FixedFormat(16, 8), FixedFormat(40, 20),
                                      FixedFormat(8, 6, signed=False)) for c in arch.convs()}
        layers["pool10"] = PoolFormats(FixedFormat(24, 16), FixedFormat(16, 8), 74565, 24)
        s = QuantSpec("squeezenet1_1", FixedFormat(9, 9), layers)
        s.validate(arch)
        return s

    reuse = choose_reuse(arch, "zcu104", 8, fps=300, input_size=224)
    narrow = estimate(arch, "zcu104", spec(8), reuse, input_size=224, uram="none")
    wide = estimate(arch, "zcu104", spec(16), reuse, input_size=224, uram="none")
    assert wide.bram18 > narrow.bram18 and wide.dsp == narrow.dsp   # 16 x 8 bits still fit one DSP
    assert narrow.ii_cycles == wide.ii_cycles


def fire_only(size=16):
    return Architecture("fire_only", size, (Fire("f", 4, 8, 8),), in_channels=16)


FIRE_REUSE = {"f_squeeze1x1": 4, "f_expand1x1": 2, "f_expand3x3": 9}


def test_generic_fire_models_hls4ml_clone_conv_concatenate_by_hand():
    # 16x16x16 -> squeeze 4 -> expand 8 + 8, 8 bits. Same engines (DSP) both ways:
    # 16*4/4 + 4*8/2 + 36*8/9 = 16 + 16 + 32.
    fused = estimate(fire_only(), "zcu104", 8, FIRE_REUSE, include_shell=False)
    generic = estimate(fire_only(), "zcu104", 8, FIRE_REUSE, include_shell=False, fuse_fire=False)
    (f,), (g,) = fused.layers, generic.layers
    assert (f.kind, g.kind) == ("fire", "fire_generic") and f.dsp == g.dsp == 64
    # cycles: fused max(256*4, 256*9 + W + 1); generic max(256*4, 256*2, 18*18 zero-pad, 256*9 + 324 - 256)
    assert (f.ii_cycles, g.ii_cycles) == (256 * 9 + 17, 256 * 9 + 68)
    # hls4ml's ten streams, each a whole feature map deep (conv results are one bit wider than the ReLU's):
    # squeeze conv->relu 36 b, relu 32 b, two clone copies 32 b, zero-pad (324 deep) 32 b,
    # expand1x1 and expand3x3 conv->relu 72 b and relu 64 b each, concatenate 128 b
    assert g.fifos == 10
    assert g.fifo_bits == 256 * (36 + 3 * 32 + 2 * 72 + 2 * 64 + 128) + 324 * 32
    # fused: five internal 2-deep register streams (32, 32, 9*32, 64, 64 b) and a 32-deep output FIFO
    assert f.fifos == 6 and f.fifo_bits == 2 * (32 + 32 + 288 + 64 + 64) + 32 * 128
    # the generic FIFOs (depth >= 128) are block RAM: 512x36 RAMB18s, 1+1+1+1+1 + 2+2 + 2+2 + 4
    assert g.bram18 - f.bram18 == 17
    assert g.lut > f.lut


def test_fifo_depth_policies():
    # fused design: min(32, pixels) per FIFO (what set_fifo_depths writes); FEATURE_MAP: hls4ml's depths
    layers = hardware_layers(fire_only(4), 8, FIRE_REUSE, include_shell=False)
    assert max(m.depth for m in layers[0].memories() if m.role.startswith("fifo")) == 16
    deep = hardware_layers(fire_only(), 8, FIRE_REUSE, include_shell=False, fifo_depth=FEATURE_MAP)
    assert max(m.depth for m in deep[0].memories() if m.role == "fifo") == 256
    assert sorted(m.depth for m in hardware_layers(fire_only(), 8, FIRE_REUSE, include_shell=False,
                                                   fuse_fire=False)[0].memories() if m.role.startswith("fifo")) \
        == [256] * 9 + [324]
    with pytest.raises(ValueError, match="fifo_depth"):
        hardware_layers(fire_only(), 8, FIRE_REUSE, fifo_depth=0)


def test_choose_reuse_folds_the_unfused_design_with_its_own_stage_timing():
    arch = get_architecture("squeezenet1_0")
    reuse = choose_reuse(arch, "zcu104", 8, fps=200, fuse_fire=False)
    est = estimate(arch, "zcu104", 8, reuse, fuse_fire=False)
    assert est.fps >= 200 and {l.kind for l in est.layers} >= {"fire_generic", "conv"}
    assert not est.fits and "bram18" in est.over_budget   # feature-map-deep FIFOs do not fit SqueezeNet


def test_ops_from_plain_shapes_and_formats_estimate_like_the_architecture_path():
    """A design from elsewhere: ops built by hand from shapes and FixedFormats -- no Keras model, no
    QuantSpec -- estimate exactly as the same layers built from an architecture and uniform formats."""
    from hw.estimate import configure, estimate_ops
    from hw.ops import FusedFire
    from quant.fixed_point import FixedFormat
    from quant.formats import accumulator_format
    from quant.spec import ConvFormats

    fire = Fire("f", 4, 8, 8)
    x = FixedFormat(8, 9, True, "AP_RND", "AP_SAT")           # what uniform_spec gives the network input
    act = FixedFormat(8, 8, False, "AP_RND", "AP_SAT")
    weight = FixedFormat(8, 1, True, "AP_RND", "AP_SAT")
    formats = {}
    for conv, src, n_in in zip(fire.convs, (x, act, act), (16, 4, 36)):
        frac = src.frac + weight.frac
        bias = FixedFormat(8 + frac, 8, True, "AP_RND", "AP_SAT")
        bound = n_in * max(abs(src.min_code), src.max_code) * abs(weight.min_code) + bias.max_code
        formats[conv.name] = ConvFormats(weight, bias, accumulator_format(bound, frac), act)
    by_hand = estimate_ops(configure([FusedFire(fire, (16, 16, 16), (16, 16, 16), x, formats)], FIRE_REUSE),
                           "zcu104")
    from_arch = estimate(fire_only(), "zcu104", 8, FIRE_REUSE, include_shell=False)
    assert by_hand.to_json() == from_arch.to_json()
    assert by_hand.dsp == 16 + 16 + 32 and by_hand.layers[0].kind == "fire"


def test_shell_refuses_what_the_axi_word_cannot_carry():
    from hw.ops import Shell, UnsupportedModelError
    from quant.fixed_point import FixedFormat

    logits = FixedFormat(16, 8, False, "AP_RND", "AP_SAT")
    Shell((8, 8, 3), FixedFormat(16, 16, True, "AP_RND", "AP_SAT"), 10, logits).validate({})   # 3 x 16-bit lanes
    with pytest.raises(UnsupportedModelError, match="3 input channels of 32-bit lanes do not fit one 64-bit beat"):
        Shell((8, 8, 3), FixedFormat(20, 20, True, "AP_RND", "AP_SAT"), 10, logits).validate({})
    with pytest.raises(UnsupportedModelError, match="layer logits field 'result'.* wider than the 32 bits"):
        Shell((8, 8, 3), FixedFormat(9, 9, True, "AP_RND", "AP_SAT"), 10,
              FixedFormat(40, 20, False, "AP_RND", "AP_SAT")).validate({})
