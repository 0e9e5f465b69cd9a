"""Cross-layer equalization (quant/equalize.py, `sqz quantize --equalize`): the float network is unchanged,
the channels' ranges are, and the spec it produces stands on its own (every consumer reads its codes)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "cifar10_sample"


@pytest.fixture(scope="module")
def cifar():
    from model.architecture import get_architecture
    from model.trained import trained_params
    from sqz.cli_common import image_dataset

    arch = get_architecture("squeezenet_cifar")
    x, y, _ = next(image_dataset(str(SAMPLE), arch).batches(64))
    return arch, trained_params("squeezenet_cifar"), x.astype(np.float32)


def test_links_cover_every_consumer_input_channel_once(cifar):
    from quant.equalize import links, scalable

    arch, _, _ = cifar
    shapes = arch.conv_shapes()
    covered = {}
    for link in links(arch):
        covered.setdefault(link.consumer, []).append((link.offset, link.n))
    first = arch.convs()[0].name
    assert first not in covered                                  # conv1 reads the image
    for name, spans in covered.items():
        spans.sort()
        ends = [0] + [o + n for o, n in spans]
        assert [o for o, _ in spans] == ends[:-1], name          # contiguous, no overlap
        assert ends[-1] == shapes[name]["in"][2], name           # every input channel
    assert arch.convs()[-1].name not in scalable(arch)           # conv10 feeds the logits: never rescaled
    # a Fire concat: the next squeeze reads expand1x1's channels, then expand3x3's
    fire3 = [l for l in links(arch) if l.consumer == "fire3_squeeze1x1"]
    assert [(l.producer, l.offset) for l in fire3] == [("fire2_expand1x1", 0), ("fire2_expand3x3", 48)]


@pytest.mark.parametrize("rule", ["weights", "activations", "balanced"])
def test_equalized_network_is_the_same_float_network_with_other_channel_ranges(cifar, rule):
    from quant.emulator import FloatNetwork
    from quant.equalize import equalize

    arch, params, x = cifar
    new, scales = equalize(arch, params, rule, [x[:32], x[32:]])
    want = FloatNetwork(arch, params).logits(x)
    got = FloatNetwork(arch, new).logits(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert max(float(np.abs(np.log(s)).max()) for s in scales.values()) > np.log(1.5)   # channels did move
    name = "fire2_squeeze1x1"
    np.testing.assert_allclose(new[name][1], params[name][1] * scales[name], rtol=1e-6)
    if rule == "weights":    # Nagel's CLE narrows the spread of conv1's per-channel weight ranges
        spread = lambda w: float(np.log(np.abs(w).max(axis=(1, 2, 3))).std())
        assert spread(new["conv1"][0]) < spread(params["conv1"][0])


def test_bad_scales_and_rules_are_refused_with_the_layer_named(cifar):
    from quant.equalize import EqualizeError, equalize, rescale

    arch, params, _ = cifar
    with pytest.raises(EqualizeError, match="conv10"):
        rescale(arch, params, {"conv10": np.ones(10)})
    with pytest.raises(EqualizeError, match="fire2_squeeze1x1.*16 positive"):
        rescale(arch, params, {"fire2_squeeze1x1": -np.ones(16)})
    with pytest.raises(EqualizeError, match="unknown equalization rule 'cle'"):
        equalize(arch, params, "cle")
    with pytest.raises(EqualizeError, match="needs calibration images"):
        equalize(arch, params, "activations")


def test_quantize_equalize_writes_a_spec_that_stands_on_its_own(cifar, tmp_path):
    """Its weight and bias codes are the rescaled network's: the emulator given the *shipped* float weights
    (as hw/, host/ and finetune are) computes exactly what it computes given the rescaled ones."""
    from quant.emulator import FixedPointEmulator
    from quant.equalize import equalize
    from quant.spec import QuantSpec
    from sqz.cli import main

    arch, params, x = cifar
    out, report = tmp_path / "eq" / "spec.json", tmp_path / "eq" / "report.json"
    assert main(["quantize", "--model", "squeezenet_cifar", "--calib-stop", "100", "--start", "100",
                 "--weight-bits", "4", "--activation-bits", "4", "--activation-rule", "minmse",
                 "--equalize", "weights", "--out", str(out), "--json", str(report), "--quiet"]) == 0
    spec = QuantSpec.load(out, arch)
    names = [c.name for c in arch.convs()]
    assert sorted(spec.weights) == sorted(names) and sorted(spec.biases) == sorted(names)
    r = json.loads(report.read_text())
    assert r["rules"]["equalize"] == "weights" and spec.calibration["equalize"]["rule"] == "weights"
    new, _ = equalize(arch, params, "weights")
    codes = FixedPointEmulator(arch, params, spec).logit_codes(x)
    np.testing.assert_array_equal(codes, FixedPointEmulator(arch, new, spec).logit_codes(x))
    # and the codes are the rescaled weights', not the shipped ones'
    f = spec.layers["conv1"].weight
    held = f.to_float(spec.weights["conv1"])
    assert np.abs(held - new["conv1"][0]).mean() < 0.5 * np.abs(held - params["conv1"][0]).mean()
    assert r["fixed"]["top1"] >= 0.8 * r["float"]["top1"]     # 4 bits on 100 sample images: it still classifies
