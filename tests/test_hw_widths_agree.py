"""The cost model charges exactly the bit widths the generated design has: for every op of a design, the
widths its engines and FIFOs are costed at (hw/ops) equal the C++ types in the hls4ml graph that
hw/convert.to_hls4ml builds -- layer by layer, for SqueezeNet v1.0 and v1.1 and the tiny network,
with stock, loadable and fused ops. (The formats themselves are checked against the spec by
convert.check_types; this holds the ESTIMATE to the same types.)"""
from __future__ import annotations

import numpy as np
import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)

from hw.convert import plan_design, stream_fifos, to_hls4ml  # noqa: E402
from hw.ops import FusedFire, GlobalAvgPool, LoadableConv, MaxPool3x3s2, StockConv  # noqa: E402
from hw.ops.fire import PARTS  # noqa: E402
from model.architecture import get_architecture  # noqa: E402
from quant.formats import uniform_spec  # noqa: E402
from tests.tiny_net import REUSE  # noqa: E402


def width(precision) -> int:
    return int(precision.width)


def charged_vs_generated(design, model) -> list[tuple[str, int, int]]:
    """(what, width the estimate charges, width of the generated C++ type) for every op and engine."""
    nodes = {l.name: l for l in model.get_layers()}
    out = []
    for op in design.ops:
        engines = {e.name: e for e in op.engines()}
        if isinstance(op, StockConv):                 # LoadableConv included
            n, e = nodes[op.name], engines[op.name]
            w_type = n.get_attr("weight_t") if isinstance(op, LoadableConv) else n.get_weights("weight").type
            out += [(f"{op.name} weight", e.weight.width, width(w_type.precision)),
                    (f"{op.name} input", e.act.width, width(n.get_input_variable().type.precision)),
                    (f"{op.name} accum", e.accum.width, width(n.get_attr("accum_t").precision))]
            if not isinstance(op, LoadableConv) and op.conv.relu:   # the conv -> ReLU stream: result_t
                fifo = next(m for m in op.memories() if m.role == "fifo (conv -> relu)")
                out.append((f"{op.name} result_t", fifo.width // op.n_out,
                            width(n.get_output_variable().type.precision)))
                out.append((f"{op.name} relu", e.out_bits,
                            width(nodes[f"{op.name}_relu"].get_output_variable().type.precision)))
            else:
                out.append((f"{op.name} result", e.out_bits, width(n.get_output_variable().type.precision)))
        elif isinstance(op, FusedFire):               # LoadableFire included
            n = nodes[op.name]
            for part, conv in zip(PARTS, op.convs):
                e = engines[conv.name]
                w_type = (n.get_attr(f"{part}_weight_t") if part in op.loaded_parts()
                          else n.get_weights(f"{part}_weight").type)
                out += [(f"{conv.name} weight", e.weight.width, width(w_type.precision)),
                        (f"{conv.name} accum", e.accum.width, width(n.get_attr(f"{part}_accum_t").precision))]
            sq, e1, e3 = (engines[c.name] for c in op.convs)
            out += [(f"{op.name} input", sq.act.width, width(n.get_input_variable().type.precision)),
                    (f"{op.name} squeeze_t", e1.act.width, width(n.get_attr("squeeze_t").precision)),
                    (f"{op.name} squeeze_t (3x3)", e3.act.width, width(n.get_attr("squeeze_t").precision)),
                    (f"{op.name} result", e1.out_bits, width(n.get_output_variable().type.precision))]
        elif isinstance(op, MaxPool3x3s2):
            out.append((f"{op.name} values", op.x.width, width(nodes[op.name].get_input_variable().type.precision)))
        elif isinstance(op, GlobalAvgPool):
            n = nodes[op.name]
            out += [(f"{op.name} accum", op.p.accum.width, width(n.get_attr("accum_t").precision)),
                    (f"{op.name} result", op.p.result.width, width(n.get_output_variable().type.precision))]
    # every FIFO between layers: the estimate's word width is the generated stream's
    charged = {}
    for op in design.ops:
        for m in op.memories():
            if m.role in ("fifo", "fifo (relu)") and op.kind != "shell":
                charged[op.name] = m.width
    for f in stream_fifos(model):
        name = f["layer"][:-len("_relu")] if f["layer"].endswith("_relu") else f["layer"]
        if name in charged and f["layer"] in (name, f"{name}_relu"):
            relu_fifo = any(m.role == "fifo (relu)" for op in design.ops if op.name == name for m in op.memories())
            if relu_fifo == f["layer"].endswith("_relu"):
                out.append((f"{f['layer']} stream", charged[name], f["width"]))
    return out


def design_for(arch, bits, size, board, loadable):
    from model.squeezenet import build_keras, keras_weights

    spec = uniform_spec(arch, bits, size)
    rng = np.random.default_rng(0)
    params = {}
    for name, t in arch.conv_shapes(size).items():
        o, i, kh, kw = t["weight"]
        params[name] = ((rng.standard_normal(t["weight"]) * np.sqrt(2.0 / (i * kh * kw))).astype(np.float32),
                        np.zeros(o, np.float32))
    params = spec.effective_params(params)
    keras = build_keras(arch, size, softmax=False, weights=keras_weights(params))
    return plan_design(keras, spec, arch, board=board, loadable=loadable, fold={})


@pytest.mark.parametrize("model, bits, size, board, loadable", [
    ("squeezenet1_0", 8, 227, "zcu104", "auto"),     # conv10 and a Fire module loadable, the rest stock/fused
    ("squeezenet1_1", 6, 224, "kv260", "auto"),      # fire8, fire9, conv10 loadable
    ("squeezenet1_1", 8, 224, "zcu104", "none"),     # every weight a ROM; conv10 a stock conv + ReLU layer
])
def test_estimate_widths_are_the_generated_types_squeezenet(tmp_path, model, bits, size, board, loadable):
    design = design_for(get_architecture(model), bits, size, board, loadable)
    graph = to_hls4ml(design, tmp_path / "p")
    pairs = charged_vs_generated(design, graph)
    kinds = {op.kind for op in design.ops}
    assert {"conv", "fire", "maxpool", "gap"} <= kinds | {"conv_rw", "fire_rw"}
    assert len(pairs) > 40 and any("stream" in w for w, _, _ in pairs)
    bad = [p for p in pairs if p[1] != p[2]]
    assert not bad, bad


def test_estimate_widths_are_the_generated_types_tiny(tiny, tiny_keras, tmp_path):
    for loadable in ("none", "all"):
        design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104",
                             loadable=loadable)
        pairs = charged_vs_generated(design, to_hls4ml(design, tmp_path / loadable))
        assert len(pairs) > 20
        bad = [p for p in pairs if p[1] != p[2]]
        assert not bad, bad
