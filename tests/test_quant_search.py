"""The bit-width search keeps its margin; the quantize command writes its contract."""
import json
import math

import numpy as np
import pytest

from model.architecture import squeezenet1_0
from quant.calibrate import Calibration
from quant.emulator import FixedPointEmulator, FloatNetwork
from quant.search import SearchSet, pareto_front, search, weight_bytes
from tests.tiny_net import tiny_arch, tiny_images, tiny_params


@pytest.mark.parametrize("margin", [0.0, 0.05])
def test_search_keeps_its_margin_and_saves_bits(tmp_path, margin):
    arch = tiny_arch()
    params = tiny_params(arch)
    images = tiny_images(60, seed=4)
    float_logits = FloatNetwork(arch, params).logits(images)
    labels = float_logits.argmax(1)               # the float model is right on every image: top-1 = 100 %
    cal = Calibration(arch, params)
    cal.add_batch(images)
    sset = SearchSet(images, labels, float_logits, tmp_path / "scores.jsonl")
    result = search(cal, sset, margin, progress=lambda m: None)
    # the chosen spec, scored afresh, is within the margin
    codes = FixedPointEmulator(arch, params, result.spec).logit_codes(images)
    assert np.mean(codes.argmax(1) == labels) >= 1.0 - margin - 1e-9
    assert result.search_top1 >= 1.0 - margin - 1e-9
    assert result.kl_slope > 0
    if margin > 0:      # the per-layer criterion: layers narrowed along the path, predicted within the margin
        assert result.weight_bits != result.path[0] and result.predicted_loss <= margin + 1e-6
    else:               # no margin to spend: any narrower configuration predicts a loss, the start is kept
        assert result.weight_bits == result.path[0]
    sizes = [weight_bytes(arch, w) for w in result.path]
    assert sizes == sorted(sizes, reverse=True) and result.weight_bits in result.path
    assert weight_bytes(arch, result.weight_bits) < weight_bytes(arch, dict.fromkeys(result.weight_bits, 16))
    front = result.pareto
    assert all(a["weight_bytes"] < b["weight_bytes"] and a["top1"] < b["top1"] for a, b in zip(front, front[1:]))
    # scores were logged as they were computed: a second search recomputes nothing
    n_logged = len((tmp_path / "scores.jsonl").read_text().splitlines())
    again = search(cal, SearchSet(images, labels, float_logits, tmp_path / "scores.jsonl"), margin,
                   progress=lambda m: None)
    assert again.weight_bits == result.weight_bits
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == n_logged


def test_pareto_front_drops_dominated_points():
    pts = [{"weight_bytes": 10, "top1": 0.5}, {"weight_bytes": 12, "top1": 0.4}, {"weight_bytes": 20, "top1": 0.7},
           {"weight_bytes": 5, "top1": 0.1}]
    assert [p["weight_bytes"] for p in pareto_front(pts)] == [5, 10, 20]


def test_quantize_cli_writes_spec_and_report(tmp_path):
    from sqz.cli import main
    from tests.conftest import SAMPLE_DIR

    out, report = tmp_path / "spec.json", tmp_path / "report.json"
    assert main(["quantize", "--calib", str(SAMPLE_DIR), "--calib-stop", "8", "--data", str(SAMPLE_DIR),
                 "--start", "8", "--limit", "8", "--weight-bits", "8", "--activation-bits", "8",
                 "--out", str(out), "--json", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    assert {"float", "fixed", "weight_bits", "activation_bits", "weight_bytes", "pareto", "saturations"} <= set(r)
    assert set(r["float"]) >= {"top1", "top5"} and set(r["fixed"]) >= {"top1", "top5"}
    assert set(r["weight_bits"].values()) == {8} and len(r["weight_bits"]) == 26
    # every weight of every convolution (pruned zeros included: dense storage) at one byte
    n_weights = sum(math.prod(t["weight"]) for t in squeezenet1_0().conv_shapes().values())
    assert r["weight_bytes"] == n_weights * 8 / 8
    assert r["n"] == 8 and r["calibration"]["images"] == 8
    assert r["calibration"]["selection"]["stop"] == 8 and r["evaluation"]["selection"]["start"] == 8
    for png in r["plots"]:
        assert open(png, "rb").read(4) == b"\x89PNG"
    # the spec evaluates through the emulator
    ev = tmp_path / "eval.json"
    assert main(["eval", "--data", str(SAMPLE_DIR), "--start", "8", "--limit", "8", "--spec", str(out),
                 "--json", str(ev), "--quiet"]) == 0
    e = json.loads(ev.read_text())
    assert e["precision"] == "fixed" and e["top1"] == r["fixed"]["top1"]


def test_quantize_refuses_overlapping_images(tmp_path, capsys):
    from sqz.cli import main
    from tests.conftest import SAMPLE_DIR

    assert main(["quantize", "--calib", str(SAMPLE_DIR), "--calib-stop", "10", "--data", str(SAMPLE_DIR),
                 "--stop", "20", "--weight-bits", "8", "--activation-bits", "8",
                 "--out", str(tmp_path / "s.json"), "--quiet"]) == 2
    assert "overlap" in capsys.readouterr().err


def test_allocation_path_takes_cheapest_bytes_first_and_sees_jumps():
    from quant.search import allocation_path
    sizes = {"a": 100, "b": 100}
    # a: 7 bit is costly but 6 bit is nearly free per byte (a jump over 7); b: steady cost
    cost = {"a": {8: 0.0, 7: 1.0, 6: 0.01}, "b": {8: 0.0, 7: 0.1, 6: 0.3}}
    path = allocation_path(cost, sizes, {"a": 8, "b": 8})
    assert path[0] == {"a": 8, "b": 8}
    assert path[1] == {"a": 6, "b": 8}                  # the jump, not a's costly 7
    assert path[-1] == {"a": 6, "b": 6}
    assert all(sum(p.values()) > sum(q.values()) for p, q in zip(path, path[1:]))


def test_kl_divergence_is_zero_only_for_equal_logits():
    from quant.search import kl_divergence
    z = np.random.default_rng(0).normal(size=(5, 10))
    assert kl_divergence(z, z) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(z, z + 3.0) == pytest.approx(0.0, abs=1e-12)    # softmax ignores a common shift
    assert kl_divergence(z, 0.5 * z) > 0.01


def test_output_rule_never_has_more_output_error_than_minmse():
    from quant.calibrate import weight_integer_bits
    from quant.fixed_point import FixedFormat
    arch = tiny_arch()
    params = tiny_params(arch)
    cal = Calibration(arch, params)
    cal.add_batch(tiny_images(20, seed=1))
    for conv in arch.convs():
        w = params[conv.name][0]
        for width in (3, 4, 6):
            errs = {}
            for rule, il in (("output", cal.output_integer_bits(conv.name, width, "gptq")),
                             ("minmse", weight_integer_bits(w, width, "minmse"))):
                fmt = FixedFormat(width, il, True, "AP_RND", "AP_SAT")
                errs[rule] = cal.output_error(conv.name, cal.weight_codes(conv.name, fmt, "gptq"), fmt)
            assert errs["output"] <= errs["minmse"] + 1e-12


def test_search_falls_back_to_measured_top1_when_no_probe_loses_any(tmp_path):
    # labels the float model never gets right: no configuration can lose top-1, so KL predicts nothing
    arch = tiny_arch()
    params = tiny_params(arch)
    images = tiny_images(30, seed=6)
    float_logits = FloatNetwork(arch, params).logits(images)
    labels = (float_logits.argmax(1) + 1) % float_logits.shape[1]
    cal = Calibration(arch, params)
    cal.add_batch(images)
    sset = SearchSet(images, labels, float_logits)
    assert sset.float_top1 == 0.0
    result = search(cal, sset, 0.0, progress=lambda m: None)
    assert result.kl_slope is None and result.predicted_loss is None
    assert result.weight_bits == result.path[-1]       # measured top-1 never drops: the narrowest is within


def test_pareto_plot_writes_a_png(tmp_path):
    from quant.plots import pareto_plot
    front = [{"weight_bytes": 1.0e6, "top1": 0.70}, {"weight_bytes": 1.2e6, "top1": 0.71}]
    path = pareto_plot(front, front + [{"weight_bytes": 0.9e6, "top1": 0.6}], 0.71, 0.01, tmp_path / "p.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000


class _SyntheticSearchSet(SearchSet):
    """Scores from a formula instead of the emulator: one layer narrowed alone loses 0.2 top-1 per unit of KL,
    several narrowed together 0.3 (what SqueezeNet shows, ~20 vs ~30 points per KL)."""

    def score(self, cal, spec):
        w, a = spec.weight_bits(), spec.activation_bits()
        kl = sum(0.0005 * 4.0 ** (8 - min(b, 8)) for b in w.values())
        kl += sum(0.0 if b >= 8 else 10.0 for b in a.values())
        narrowed = sum(b < 8 for b in w.values())
        loss = min((0.2 if narrowed <= 1 else 0.3) * kl, 1.0)
        return {"top1": 1.0 - loss, "agree": 1.0 - loss, "kl": kl, "saturations": 0}


def test_search_refits_the_slope_on_its_path_and_becomes_more_careful(monkeypatch):
    import quant.search as S
    arch = tiny_arch()
    params = tiny_params(arch)
    images = tiny_images(8, seed=4)
    float_logits = FloatNetwork(arch, params).logits(images)
    cal = Calibration(arch, params)
    cal.add_batch(images)
    sset = _SyntheticSearchSet(images, float_logits.argmax(1), float_logits)
    true_loss = lambda r: 1.0 - sset.score(cal, r.spec)["top1"]
    refitted = search(cal, sset, 0.01, progress=lambda m: None)
    monkeypatch.setattr(S, "REFIT_ROUNDS", 1)                   # step 5 off: the probes' slope alone
    probes_only = search(cal, sset, 0.01, progress=lambda m: None)
    assert probes_only.kl_slope == pytest.approx(0.2) and refitted.kl_slope_probes == pytest.approx(0.2)
    assert refitted.kl_slope > 0.25                              # the path's configurations lose ~0.3 per KL
    # trusting the one-layer probes breaks the margin ...
    assert true_loss(refitted) <= 0.01 < true_loss(probes_only)  # ... the re-fitted slope keeps it
    assert weight_bytes(arch, refitted.weight_bits) > weight_bytes(arch, probes_only.weight_bits)
    assert refitted.predicted_loss <= 0.01 + 1e-12
