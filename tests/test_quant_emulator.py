"""The emulator: bit for bit against a scalar reference, close to float with wide formats, overflow counted."""
import numpy as np
import pytest

from model.architecture import Conv, Fire, GlobalAvgPool, MaxPool
from quant import arithmetic as A
from quant.calibrate import Calibration, make_spec
from quant.emulator import FixedPointEmulator, FloatNetwork
from quant.fixed_point import ROUNDING_MODES, OVERFLOW_MODES, FixedFormat
from quant.spec import ConvFormats, SpecError, input_formats
from tests.tiny_net import tiny_images


def scalar_reference(arch, spec, params, image):
    """Direct, unvectorized fixed-point forward pass with Python integers and FixedFormat (the definition)."""
    ins = input_formats(arch, spec)
    x = spec.input.quantize(image.astype(np.float64))           # H, W, C codes
    x = [[[int(v) for v in px] for px in row] for row in x]

    def conv(c: Conv, x):
        f = spec.layers[c.name]
        w = spec.weight_codes(c.name, params[c.name][0])
        b = f.bias.quantize(params[c.name][1].astype(np.float64))
        acc_frac = f.accum.frac
        sx = acc_frac - ins[c.name].frac - f.weight.frac
        h, wd = len(x), len(x[0])
        oh, ow = (h + 2 * c.pad - c.kernel) // c.stride + 1, (wd + 2 * c.pad - c.kernel) // c.stride + 1
        out = [[[0] * c.filters for _ in range(ow)] for _ in range(oh)]
        for oy in range(oh):
            for ox in range(ow):
                for o in range(c.filters):
                    acc = int(b[o]) << (acc_frac - f.bias.frac)
                    for ky in range(c.kernel):
                        for kx in range(c.kernel):
                            iy, ix = oy * c.stride + ky - c.pad, ox * c.stride + kx - c.pad
                            if 0 <= iy < h and 0 <= ix < wd:
                                for i in range(len(x[0][0])):
                                    acc += (int(w[o, i, ky, kx]) * x[iy][ix][i]) << sx
                    acc = max(acc, 0)                                      # ReLU
                    out[oy][ox][o] = int(f.result.requantize(np.array([acc]), acc_frac)[0])
        return out

    def pool(p: MaxPool, x):
        h, wd = len(x), len(x[0])
        oh, ow = -(-(h - p.kernel) // p.stride) + 1, -(-(wd - p.kernel) // p.stride) + 1
        return [[[max(x[iy][ix][c] for iy in range(oy * p.stride, min(oy * p.stride + p.kernel, h))
                      for ix in range(ox * p.stride, min(ox * p.stride + p.kernel, wd)))
                  for c in range(len(x[0][0]))] for ox in range(ow)] for oy in range(oh)]

    for layer in arch.layers:
        if isinstance(layer, Conv):
            x = conv(layer, x)
        elif isinstance(layer, MaxPool):
            x = pool(layer, x)
        elif isinstance(layer, Fire):
            s, e1, e3 = layer.convs
            sq = conv(s, x)
            a, b = conv(e1, sq), conv(e3, sq)
            x = [[a[r][c] + b[r][c] for c in range(len(a[0]))] for r in range(len(a))]
        elif isinstance(layer, GlobalAvgPool):
            p = spec.layers[layer.name]
            total = [sum(x[r][c][k] for r in range(len(x)) for c in range(len(x[0]))) for k in range(len(x[0][0]))]
            frac = ins[layer.name].frac + p.shift
            return [int(p.result.requantize(np.array([t * p.multiplier]), frac)[0]) for t in total]


@pytest.mark.parametrize("bits,rounding", [(8, "AP_RND"), (6, "AP_RND_CONV"), (4, "AP_TRN")])
def test_emulator_equals_scalar_reference_bit_for_bit(tiny, bits, rounding):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, bits, bits, rounding=rounding)
    em = FixedPointEmulator(arch, params, spec)
    images = tiny_images(3, seed=11) * 1.7            # pushes some layers into saturation as well
    codes = em.logit_codes(images)
    for img, got in zip(images, codes):
        assert got.tolist() == scalar_reference(arch, spec, params, img)


def test_emulator_is_close_to_float_with_wide_formats(tiny):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, 24, 24, activation_rule="maxabs", logit_bits=32)
    images = tiny_images(8, seed=3)
    fixed = FixedPointEmulator(arch, params, spec).logits(images)
    ref = FloatNetwork(arch, params).logits(images)
    step = spec.layers["pool10"].result.lsb
    assert np.abs(fixed - ref).max() < 64 * step + 1e-4 * np.abs(ref).max()
    assert (fixed.argmax(1) == ref.argmax(1)).all()


def test_squeezenet_wide_emulator_agrees_with_keras():
    """SqueezeNet v1.0 with its real weights at 16/16 bits: logits within quantization error of Keras."""
    from model.architecture import squeezenet1_0
    from model.deep_compression import decode, float_params
    from model.imagenet import ImageFolderDataset
    from model.squeezenet import load_pretrained
    from tests.conftest import SAMPLE_DIR

    arch = squeezenet1_0()
    params = float_params(decode())
    x, _, _ = next(ImageFolderDataset(SAMPLE_DIR, limit=4).batches(4))
    cal = Calibration(arch, params)
    cal.add_batch(x)
    spec = make_spec(cal, 16, 16, activation_rule="maxabs")
    fixed = FixedPointEmulator(arch, params, spec).logits(x)
    keras_logits = load_pretrained(softmax=False).predict_on_batch(x)
    assert (fixed.argmax(1) == keras_logits.argmax(1)).all()
    assert np.abs(fixed - keras_logits).max() < 0.01 * np.abs(keras_logits).max()


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_requantize_equals_the_definition(rounding, overflow, dtype):
    rng = np.random.default_rng(5)
    for fmt in (FixedFormat(8, 3, True, rounding, overflow), FixedFormat(6, 2, False, rounding, overflow),
                FixedFormat(12, 14, True, rounding, overflow)):
        codes = rng.integers(-(2 ** 22), 2 ** 22, 20000)
        codes[:64] = np.arange(-32, 32) * 2 ** 6 + 2 ** 5            # exact ties at frac_in=7 -> frac 1..
        for frac_in in (0, 3, 7, 12):
            for relu in (False, True):
                want = fmt.requantize(np.maximum(codes, 0) if relu else codes, frac_in)
                got, _ = A.requantize(fmt, codes.astype(dtype), frac_in, relu=relu)
                np.testing.assert_array_equal(got.astype(np.int64), want, err_msg=f"{fmt} frac_in={frac_in} relu={relu}")


def test_fast_quantize_equals_the_definition():
    rng = np.random.default_rng(9)
    values = np.concatenate([rng.normal(0, 40, 5000), np.arange(-300, 300) / 4.0]).astype(np.float32)
    for fmt in (FixedFormat(9, 9), FixedFormat(8, 5, True, "AP_RND_CONV", "AP_SAT"), FixedFormat(8, 4, False, "AP_TRN", "AP_WRAP")):
        got, _ = A.quantize(fmt, values)
        np.testing.assert_array_equal(got.astype(np.int64), fmt.quantize(values.astype(np.float64)))


def test_saturations_are_counted_per_layer(tiny):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, 8, 8, activation_rule="maxabs")
    f = spec.layers["fire2_squeeze1x1"]
    # same fractional bits (nothing downstream changes), three fewer integer bits: large values saturate
    narrow = FixedFormat(f.result.width - 3, f.result.integer - 3, False, "AP_RND", "AP_SAT")
    spec.layers["fire2_squeeze1x1"] = ConvFormats(f.weight, f.bias, f.accum, narrow)
    em = FixedPointEmulator(arch, params, spec)
    em.logit_codes(tiny_images(8, seed=3))
    sat = em.saturation_report()
    assert sat["fire2_squeeze1x1"] > 0
    assert sat["conv1"] == 0


def test_accumulator_too_narrow_for_the_weights_is_rejected(tiny):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, 8, 8)
    f = spec.layers["conv1"]
    spec.layers["conv1"] = ConvFormats(f.weight, f.bias, FixedFormat(f.accum.width - 3, f.accum.integer - 3), f.result)
    with pytest.raises(SpecError, match="conv1.*accum.*overflow"):
        FixedPointEmulator(arch, params, spec)


@pytest.mark.parametrize("rounding", ["gptq", "gptq-inorder"])
def test_gptq_rounding_lowers_layer_output_error_and_keeps_zeros(tiny, rounding):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec_nearest = make_spec(cal, 4, 8, weight_rounding="nearest")
    spec_gptq = make_spec(cal, 4, 8, weight_rounding=rounding)
    assert spec_nearest.weights is None and spec_gptq.weights is not None
    for name in ("conv1", "fire2_expand3x3", "conv10"):
        w = params[name][0].astype(np.float64)
        f = spec_gptq.layers[name].weight
        assert f == spec_nearest.layers[name].weight
        H = cal.hessian(name)
        wm = A.weight_matrix(w).T

        def output_error(codes):
            d = A.weight_matrix(f.to_float(codes)).T - wm
            return np.trace(d @ H @ d.T)

        assert output_error(spec_gptq.weights[name]) < output_error(spec_nearest.weight_codes(name, w))
        assert (spec_gptq.weights[name][w == 0] == 0).all()           # pruned weights stay pruned


def test_gptq_dense_uses_pruned_positions_and_lowers_output_error_further(tiny):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    kept = make_spec(cal, 4, 8, weight_rounding="gptq")
    dense = make_spec(cal, 4, 8, weight_rounding="gptq-dense")
    assert dense.calibration["weight_rounding"] == "gptq-dense"
    moved = 0
    for name in ("fire2_expand3x3", "conv10"):        # (tiny conv1's pruned positions all round back to 0)
        w = params[name][0]
        f = dense.layers[name].weight
        assert f == kept.layers[name].weight
        assert cal.output_error(name, dense.weights[name], f) < cal.output_error(name, kept.weights[name], f)
        moved += int(np.count_nonzero(dense.weights[name][w == 0]))
    assert moved > 0                                        # pruned positions took codes


def test_optimized_weights_travel_with_the_spec(tiny, tmp_path):
    from quant.spec import QuantSpec
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, 6, 8, weight_rounding="gptq")
    spec.save(tmp_path / "s.json")
    assert (tmp_path / "s.weights.npz").exists()
    loaded = QuantSpec.load(tmp_path / "s.json", arch)
    images = tiny_images(4, seed=5)
    want = FixedPointEmulator(arch, params, spec).logit_codes(images)
    np.testing.assert_array_equal(FixedPointEmulator(arch, params, loaded).logit_codes(images), want)
    # consumers that round float weights themselves get the same codes from effective_params
    eff = loaded.effective_params(params)
    for name, (w, _) in eff.items():
        np.testing.assert_array_equal(loaded.layers[name].weight.quantize(w.astype(np.float64)), loaded.weights[name])
    blob = bytearray((tmp_path / "s.weights.npz").read_bytes())
    blob[-30] ^= 0xFF
    (tmp_path / "s.weights.npz").write_bytes(bytes(blob))
    with pytest.raises(SpecError, match="sha256"):
        QuantSpec.load(tmp_path / "s.json", arch)


def test_bias_codes_travel_with_the_spec_and_every_consumer_reads_them(tiny, tmp_path):
    """Trained bias codes (sqz finetune --train-biases) ride in <name>.weights.npz as "<layer>:bias"; the
    emulator computes with them, effective_params gives floats that round back to them, bad ones are named."""
    import dataclasses

    from quant.spec import QuantSpec
    from tests.tiny_net import moved_biases

    arch, params = tiny["arch"], tiny["params"]
    base = make_spec(tiny["cal"], 6, 8, weight_rounding="gptq")
    spec = dataclasses.replace(base, biases=moved_biases(base, params))
    spec.save(tmp_path / "s.json")
    loaded = QuantSpec.load(tmp_path / "s.json", arch)
    assert sorted(loaded.weights) == sorted(base.weights) and sorted(loaded.biases) == sorted(spec.biases)
    for name, codes in spec.biases.items():
        np.testing.assert_array_equal(loaded.bias_codes(name, params[name][1]), codes)
    images = tiny_images(4, seed=5)
    want = FixedPointEmulator(arch, params, spec).logit_codes(images)
    np.testing.assert_array_equal(FixedPointEmulator(arch, params, loaded).logit_codes(images), want)
    assert not np.array_equal(FixedPointEmulator(arch, params, base).logit_codes(images), want)   # they count
    for name, (w, b) in loaded.effective_params(params).items():
        f = loaded.layers[name]
        np.testing.assert_array_equal(f.bias.quantize(b.astype(np.float64)), loaded.biases[name])
        np.testing.assert_array_equal(f.weight.quantize(w.astype(np.float64)), loaded.weights[name])
    # a spec without bias codes still rounds the float biases
    assert QuantSpec.load(tmp_path / "s.json", arch).biases is not None and base.biases is None
    np.testing.assert_array_equal(base.bias_codes("conv1", params["conv1"][1]),
                                  base.layers["conv1"].bias.quantize(params["conv1"][1].astype(np.float64)))
    bad = dict(spec.biases, conv1=spec.biases["conv1"][:-1])
    with pytest.raises(SpecError, match="layer conv1: bias codes have shape"):
        dataclasses.replace(spec, biases=bad).validate(arch)
    f = spec.layers["fire2_squeeze1x1"].bias
    bad = dict(spec.biases, fire2_squeeze1x1=spec.biases["fire2_squeeze1x1"] * 0 + f.max_code + 1)
    with pytest.raises(SpecError, match="layer fire2_squeeze1x1: bias codes outside"):
        dataclasses.replace(spec, biases=bad).validate(arch)


@pytest.mark.parametrize("rounding", ["AP_RND", "AP_TRN"])
@pytest.mark.parametrize("signed", [False, True])
def test_floor_fast_path_equals_relu_then_cast(rounding, signed):
    rng = np.random.default_rng(2)
    fmt = FixedFormat(8, 4, signed, rounding, "AP_SAT")
    codes = np.concatenate([rng.integers(-(2 ** 20), 2 ** 20, 50000), np.arange(-64, 64) * 8 + 4])
    for frac_in in (4, 7, 11):
        offset = A.floor_rounding_offset(fmt, frac_in)
        got, n_over = A.requantize_floor_relu(fmt, (codes + offset).astype(np.float32), frac_in)
        np.testing.assert_array_equal(got.astype(np.int64), fmt.requantize(np.maximum(codes, 0), frac_in))
        assert n_over == int(np.count_nonzero(fmt.overflow_mask(np.maximum(codes, 0), frac_in)))
    assert A.floor_rounding_offset(FixedFormat(8, 4, False, "AP_RND_CONV", "AP_SAT"), 7) is None


def test_trace_returns_every_conv_output_and_the_same_logits(tiny):
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    em = FixedPointEmulator(arch, params, make_spec(cal, 8, 8))
    x = tiny_images(3, seed=8)
    logits, maps = em.trace(x)
    np.testing.assert_array_equal(logits, em.logit_codes(x))
    assert set(maps) == {c.name for c in arch.convs()}
    conv10_out = next(out for layer, _, out in arch.shapes() if layer.name == "conv10")
    assert maps["conv10"].shape == (3, *conv10_out) and maps["conv10"].dtype == np.int64
    assert (maps["fire2_squeeze1x1"] >= 0).all()


def test_average_pool_that_float64_cannot_hold_exactly_is_rejected(tiny):
    from quant.spec import PoolFormats
    arch, params, cal = tiny["arch"], tiny["params"], tiny["cal"]
    spec = make_spec(cal, 8, 8)
    p = spec.layers["pool10"]
    spec.layers["pool10"] = PoolFormats(p.accum, p.result, 2 ** 45, 40)
    with pytest.raises(SpecError, match="pool10.*2\\*\\*52"):
        FixedPointEmulator(arch, params, spec)
