"""Fire modules: sqz's fused kernel, its loadable-weights variant, and hls4ml's unfused graph (for comparison).

FusedFire     sqz::fire (hw/kernels/sqz_fire.h), one kernel: squeeze 1x1 + ReLU -> 2-row line buffer
              (padding is virtual) -> expand 1x1 and expand 3x3 + ReLU side by side -> one concatenated
              stream (expand1x1 channels first). expand1x1 reads the centre tap of the 3x3 window, so both
              expands emit pixel (r, c) together and the concatenation needs no skew buffer. Each of its
              three convolutions has its own reuse factor; its internal streams are 2 deep (registers).
LoadableFire  the same kernel, but every part with a weight memory (R > 1) reads its weights from a
              namespace-scope array `sqz_w_<conv>` bound to UltraRAM and written at start-up through the AXI
              top's load mode (as sqz::conv1x1_rw does; hw/project.py writes the arrays and the loader).
              Parts with R = 1 keep their weights in logic (nothing to load).
GenericFire   what hls4ml 1.3.0 generates for an unfused Fire module, layer for layer as it appears in the
              generated myproject.cpp: pointwise_conv_2d_cl (squeeze) -> relu -> clone_stream (two copies)
              -> [pointwise_conv_2d_cl (expand1x1) -> relu] and [zeropad2d_cl -> conv_2d_cl (expand3x3,
              ap_shift_reg line buffer over the padded width) -> relu] -> concatenate3d: three engines with
              the same reuse factors as the fused kernel, ten streams, each with hls4ml's default FIFO depth
              (the whole feature map: they cannot simply be made shallow -- the 3x3 branch lags the 1x1
              branch by a row, so a short FIFO on the 1x1 side stalls the clone and deadlocks the concat).
              benchmarks/fire_vs_generic.py and tests/test_hw_csim.py check its streams against hls4ml's.
"""
from __future__ import annotations

import numpy as np

from hw.ops.base import GraphRewrite, HwOp, LayerPlan, LoadArray, quantized
from hw.ops.conv import (StockConv, check_keras_conv, conv_result_format, loadable_array, quantize_conv_dict,
                         stock_conv_memories, validate_conv)
from hw.ops.cost import (PAD_LUT_BASE, REGISTER_FIFO_DEPTH, SIMPLE_LAYER_LUT, CostOptions, Engine, Stage, buffer,
                         default_reuse, fifo, fold_factors, fold_matrix, relu_luts, valid_reuse_factors)

HEADER = "sqz_fire.h"
PARTS = ("squeeze", "expand1", "expand3")


class _FireBase(HwOp):
    """What every Fire op shares: its three convolutions' shapes, formats, folding and Keras layers."""
    weighted = True

    def __init__(self, fire, in_shape, out_shape, x, formats: dict):
        super().__init__(fire.name, in_shape, out_shape)
        self.fire, self.x = fire, x
        self.convs = fire.convs
        self.f = {c.name: formats[c.name] for c in self.convs}          # ConvFormats per convolution
        sq, e1, e3 = self.convs
        c = in_shape[2]
        self.sizes = {sq.name: (c, fire.squeeze), e1.name: (fire.squeeze, fire.expand1x1),
                      e3.name: (9 * fire.squeeze, fire.expand3x3)}     # (n_in, n_out) per pixel
        self.inputs = {sq.name: x, e1.name: self.f[sq.name].result, e3.name: self.f[sq.name].result}

    @property
    def pixels(self) -> int:
        return self.in_shape[0] * self.in_shape[1]

    @property
    def result(self):
        return self.f[self.convs[1].name].result

    def foldable(self):
        return {name: valid_reuse_factors(*self.sizes[name]) for name in self.sizes}

    def default_reuse(self, key):
        return default_reuse(*self.sizes[key])

    def reuse_json(self):
        return {c.name.rsplit("_", 1)[1]: self.reuse[c.name] for c in self.convs}

    def engines(self):
        return [Engine(c.name, *self.sizes[c.name], self.reuse[c.name], self.pixels, self.f[c.name].weight,
                       self.inputs[c.name], self.f[c.name].accum, self.f[c.name].result.width) for c in self.convs]

    def validate(self, params):
        for c in self.convs:
            validate_conv(c.name, self.inputs[c.name], self.f[c.name], params)

    def keras_layers(self):
        return {**{c.name: "Conv2D" for c in self.convs}, f"{self.name}_concat": "Concatenate"}

    def check_keras(self, layers: dict, model_name: str) -> None:
        for c in self.convs:
            check_keras_conv(c, layers[c.name], model_name)


class FusedFire(_FireBase):
    """sqz's fused Fire kernel: squeeze engine -> 2-row buffer -> expand1x1 | expand3x3 engines."""
    kind = "fire"
    kernel = "sqz::fire"

    def stages(self):
        sq, e1, e3 = self.convs
        valid = self.foldable()
        return [Stage([(sq.name, valid[sq.name])], self.pixels, 0),
                Stage([(e1.name, valid[e1.name]), (e3.name, valid[e3.name])], self.pixels, self.in_shape[1] + 1)]

    def min_cycles(self):
        return self.pixels

    def cycles(self):
        sq, e1, e3 = (self.reuse[c.name] for c in self.convs)
        return max(self.pixels * sq, self.pixels * max(e1, e3) + self.in_shape[1] + 1)

    def weight_memories(self):
        return [e.weight_memory() for e in self.engines()]

    def memories(self):
        fire, w = self.fire, self.in_shape[1]
        s_bits, e_bits = self.f[self.convs[0].name].result.width, self.result.width
        internal = REGISTER_FIFO_DEPTH  # sqz_fire.h: #pragma HLS STREAM depth=2 on its five internal streams
        return self.weight_memories() + [
            buffer("line buffer", w, 2 * fire.squeeze * s_bits),
            buffer("kernel fifo (squeeze -> window)", internal, fire.squeeze * s_bits),
            buffer("kernel fifo (centre tap)", internal, fire.squeeze * s_bits),
            buffer("kernel fifo (3x3 window)", internal, 9 * fire.squeeze * s_bits),
            buffer("kernel fifo (expand1x1)", internal, fire.expand1x1 * e_bits),
            buffer("kernel fifo (expand3x3)", internal, fire.expand3x3 * e_bits),
            fifo(self.fifo_depth, self.pixels, self.out_shape[2] * e_bits)]  # concatenated output, between layers

    # hls4ml
    def hls_config(self):
        sq, e1, _ = self.convs
        prec = {"result": str(self.result), "squeeze_result": str(self.f[sq.name].result)}
        for part, conv in zip(PARTS, self.convs):
            f = self.f[conv.name]
            prec.update({f"{part}_weight": str(f.weight), f"{part}_bias": str(f.bias), f"{part}_accum": str(f.accum)})
        return {self.name: {"Precision": prec, **{f"{p.capitalize()}Reuse": self.reuse[c.name]
                                                  for p, c in zip(PARTS, self.convs)}}}

    def loaded_parts(self) -> tuple[str, ...]:
        return ()

    def rewrite(self, graph: GraphRewrite):
        sq, e1, e3 = self.convs
        ds = [graph.get(n) for n in (sq.name, f"{sq.name}_relu", e1.name, f"{e1.name}_relu", e3.name,
                                     f"{e3.name}_relu", f"{self.name}_concat")]
        for conv in self.convs:
            graph.check_dims(graph.get(conv.name), conv.name, self.in_shape, self.out_shape)
        h, w, c = self.in_shape
        fire = {"name": self.name, "class_name": "SqzFire", "inputs": list(ds[0]["inputs"]),
                "data_format": "channels_last", "in_height": h, "in_width": w, "n_chan": c,
                "n_squeeze": self.fire.squeeze, "n_expand1": self.fire.expand1x1, "n_expand3": self.fire.expand3x3,
                "loaded_parts": ",".join(self.loaded_parts())}
        for part, conv in zip(PARTS, self.convs):
            f, d = self.f[conv.name], graph.get(conv.name)
            kernel = quantized(f.weight, d["weight_data"])  # HWIO: rows (ky, kx, channel)
            fire[f"{part}_matrix"] = kernel.reshape(self.sizes[conv.name])
            fire[f"{part}_bias_data"] = quantized(f.bias, d["bias_data"])
            fire[f"{part}_conv"] = conv.name
        graph.replace[sq.name] = fire
        graph.drop.update(d["name"] for d in ds[1:])
        graph.rename[f"{self.name}_concat"] = self.name

    def expected_types(self, node):
        n = node(self.name)
        want = []
        for part, conv in zip(PARTS, self.convs):
            f = self.f[conv.name]
            weight = (n.get_attr(f"{part}_weight_t") if part in self.loaded_parts()
                      else n.get_weights(f"{part}_weight").type)
            want += [(f"{conv.name} weight", weight.precision, f.weight),
                     (f"{conv.name} bias", n.get_weights(f"{part}_bias").type.precision, f.bias),
                     (f"{conv.name} accum", n.get_attr(f"{part}_accum_t").precision, f.accum)]
        want.append((f"{self.name} squeeze result", n.get_attr("squeeze_t").precision,
                     self.f[self.convs[0].name].result))
        want.append((f"{self.name} result", n.get_output_variable().type.precision, self.result))
        return want

    def plan(self):
        formats = {c.name: self.f[c.name].to_json() for c in self.convs}
        return LayerPlan(self.name, "fire", self.in_shape, self.out_shape, self.kernel, self.reuse_json(), None,
                         formats)

    # loadable weights
    def load_candidate(self):
        return any(self.reuse[c.name] > 1 for c in self.convs)

    def not_loadable_reason(self):
        return "every part has reuse factor 1 (weights folded into logic: no memory to load)"


class LoadableFire(FusedFire):
    """sqz::fire with the weights of every part with R > 1 in runtime-written UltraRAM arrays."""
    kind = "fire_rw"
    kernel = "sqz::fire"
    loadable = True

    def loaded_parts(self):
        return tuple(p for p, c in zip(PARTS, self.convs) if self.reuse[c.name] > 1)

    def weight_memories(self):
        mems = []
        for part, e in zip(PARTS, self.engines()):
            m = e.weight_memory()
            if part in self.loaded_parts():
                m.style, m.loadable = "uram", True
            mems.append(m)
        return mems

    def plan(self):
        p = super().plan()
        loaded = [c.name for part, c in zip(PARTS, self.convs) if part in self.loaded_parts()]
        p.notes.append(f"weights of {', '.join(loaded)} loaded at start-up (AXI top, mode 1) into "
                       f"{', '.join(loadable_array(n) for n in loaded)}, bound to UltraRAM")
        return p

    def load_arrays(self, params):
        out = []
        for part, conv in zip(PARTS, self.convs):
            if part not in self.loaded_parts():
                continue
            f, r = self.f[conv.name], self.reuse[conv.name]
            codes = f.weight.quantize(np.asarray(params[conv.name][0], np.float64))   # OIHW
            matrix = codes.transpose(2, 3, 1, 0).reshape(self.sizes[conv.name])       # rows (ky, kx, channel)
            folded = fold_matrix(matrix, *fold_factors(*matrix.shape, r)).astype(np.int64)
            out.append(LoadArray(conv.name, loadable_array(conv.name), folded, f.weight, r, self.name,
                                 f"{part}_weight_t"))
        return out


FusedFire.loadable_variant = LoadableFire


class GenericFire(_FireBase):
    """hls4ml's unfused Fire: conv -> relu -> clone -> (conv -> relu) | (zero-pad -> conv -> relu) -> concat."""
    kind = "fire_generic"
    kernel = "hls4ml conv/clone/concatenate"

    @property
    def padded(self) -> int:
        return (self.in_shape[0] + 2) * (self.in_shape[1] + 2)

    def stages(self):
        sq, e1, e3 = self.convs
        valid, px = self.foldable(), self.pixels
        # expand1x1 alone; expand3x3 behind a zero-pad reads (H+2)*(W+2) pixels
        return [Stage([(sq.name, valid[sq.name])], px, 0), Stage([(e1.name, valid[e1.name])], px, 0),
                Stage([(e3.name, valid[e3.name])], px, self.padded - px)]

    def min_cycles(self):
        return self.padded

    def cycles(self):
        sq, e1, e3 = (self.reuse[c.name] for c in self.convs)
        px = self.pixels
        return max(px * sq, px * e1, self.padded, px * e3 + self.padded - px)

    def memories(self):
        h, w, _ = self.in_shape
        fire, (sq, e1, e3), d, px = self.fire, self.convs, self.fifo_depth, self.pixels
        s = fire.squeeze * self.f[sq.name].result.width          # one squeezed pixel after its ReLU
        mems = [e.weight_memory() for e in self.engines()]
        mems += stock_conv_memories(sq, self.in_shape, (h, w, fire.squeeze), self.x, self.f[sq.name], d)
        mems += [fifo(d, px, s, "fifo (clone -> expand1x1)"), fifo(d, px, s, "fifo (clone -> zero-pad)"),
                 fifo(d, self.padded, s, "fifo (zero-pad -> expand3x3)")]
        mems += stock_conv_memories(e1, (h, w, fire.squeeze), (h, w, fire.expand1x1), self.inputs[e1.name],
                                    self.f[e1.name], d)
        mems += stock_conv_memories(e3, (h + 2, w + 2, fire.squeeze), (h, w, fire.expand3x3), self.inputs[e3.name],
                                    self.f[e3.name], d)
        mems.append(fifo(d, px, self.out_shape[2] * self.result.width, "fifo (concatenate)"))
        return mems

    def logic_luts(self, opt: CostOptions):
        relus = sum(relu_luts(c.filters, conv_result_format(c, self.f[c.name]).width) for c in self.convs)
        s = self.fire.squeeze * self.f[self.convs[0].name].result.width
        clone_pad_concat = SIMPLE_LAYER_LUT + (PAD_LUT_BASE + s) + SIMPLE_LAYER_LUT
        return super().logic_luts(opt) + relus + clone_pad_concat

    def _stock(self, conv) -> StockConv:
        """One of its three convolutions as the hls4ml stock conv it is (the 3x3 reads the zero-padded stream)."""
        h, w, _ = self.in_shape
        sq = self.fire.squeeze
        in_shape = {self.convs[0].name: self.in_shape, self.convs[1].name: (h, w, sq),
                    self.convs[2].name: (h + 2, w + 2, sq)}[conv.name]
        op = StockConv(conv, in_shape, (h, w, conv.filters), self.inputs[conv.name], self.f[conv.name])
        op.reuse = {conv.name: self.reuse[conv.name]}
        return op

    def hls_config(self):
        entries = {}
        for conv in self.convs:
            entries.update(self._stock(conv).hls_config())
        entries[f"{self.name}_concat"] = {"Precision": {"result": str(self.result)}}
        return entries

    def rewrite(self, graph: GraphRewrite):
        for conv in self.convs:
            graph.check_dims(quantize_conv_dict(graph.get(conv.name), self.f[conv.name]), conv.name,
                             self.in_shape, self.out_shape)

    def expected_types(self, node):
        want = []
        for conv in self.convs:
            want += self._stock(conv).expected_types(node)
        want.append((f"{self.name}_concat", node(f"{self.name}_concat").get_output_variable().type.precision,
                     self.result))
        return want

    def plan(self):
        formats = {c.name: self.f[c.name].to_json() for c in self.convs}
        return LayerPlan(self.name, "fire", self.in_shape, self.out_shape, self.kernel, self.reuse_json(), None,
                         formats)


# -- hls4ml: the SqzFire layer, its templates ----------------------------------------------------------

CONFIG = """struct config{index} : sqz::fire_config {{
    static const unsigned height = {in_height};
    static const unsigned width = {in_width};
    static const unsigned n_chan = {n_chan};
    static const unsigned n_squeeze = {n_squeeze};
    static const unsigned n_expand1 = {n_expand1};
    static const unsigned n_expand3 = {n_expand3};
    static const unsigned squeeze_fold_in = {squeeze_fold_in};
    static const unsigned squeeze_fold_out = {squeeze_fold_out};
    static const unsigned expand1_fold_in = {expand1_fold_in};
    static const unsigned expand1_fold_out = {expand1_fold_out};
    static const unsigned expand3_fold_in = {expand3_fold_in};
    static const unsigned expand3_fold_out = {expand3_fold_out};
    typedef {squeeze_weight_t} squeeze_weight_t;
    typedef {squeeze_bias_t} squeeze_bias_t;
    typedef {squeeze_accum_t.name} squeeze_accum_t;
    typedef {squeeze_t.name} squeeze_t;
    typedef {expand1_weight_t} expand1_weight_t;
    typedef {expand1_bias_t} expand1_bias_t;
    typedef {expand1_accum_t.name} expand1_accum_t;
    typedef {expand3_weight_t} expand3_weight_t;
    typedef {expand3_bias_t} expand3_bias_t;
    typedef {expand3_accum_t.name} expand3_accum_t;
}};\n"""


def hls4ml_extension():
    """(layer classes, template classes) of sqz::fire, built on first use (hls4ml imports slowly)."""
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute
    from hls4ml.model.layers import Layer

    from hw.ops.registry import named_type

    def loaded(node) -> list[str]:
        return [p for p in str(node.get_attr("loaded_parts") or "").split(",") if p]

    class SqzFire(Layer):
        _expected_attributes = [
            Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"),
            Attribute("n_squeeze"), Attribute("n_expand1"), Attribute("n_expand3"),
            Attribute("loaded_parts", value_type=str, default=""),
            *[ConfigurableAttribute(f"{p}_reuse", default=1) for p in PARTS],
            *[TypeAttribute(f"{p}_accum") for p in PARTS],
            TypeAttribute("squeeze"),
        ]

        def initialize(self):
            a = self.attributes
            self.add_output_variable([a["in_height"], a["in_width"], a["n_expand1"] + a["n_expand3"]])
            sizes = {"squeeze": (a["n_chan"], a["n_squeeze"]), "expand1": (a["n_squeeze"], a["n_expand1"]),
                     "expand3": (9 * a["n_squeeze"], a["n_expand3"])}
            for part, (n_in, n_out) in sizes.items():
                fold_in, fold_out = fold_factors(n_in, n_out, int(self.get_attr(f"{part}_reuse")))
                self.set_attr(f"{part}_fold_in", fold_in)
                self.set_attr(f"{part}_fold_out", fold_out)
                matrix = np.asarray(self.get_attr(f"{part}_matrix"), np.float64)
                if matrix.shape != (n_in, n_out):
                    raise ValueError(f"{self.name}: {part} weights {matrix.shape}, expected {(n_in, n_out)}")
                tag = {"squeeze": "fs", "expand1": "fe1", "expand3": "fe3"}[part]
                if part in loaded(self):   # a runtime-written array (hw/project.py), not an hls4ml weight
                    self.set_attr(f"{part}_weight_t", named_type(self, f"{part}_weight"))
                else:
                    self.add_weights_variable(name=f"{part}_weight", var_name=f"w{tag}_{{index}}",
                                              data=fold_matrix(matrix, fold_in, fold_out))
                self.add_weights_variable(name=f"{part}_bias", var_name=f"b{tag}_{{index}}",
                                          data=np.asarray(self.get_attr(f"{part}_bias_data"), np.float64))
                self.set_attr(f"{part}_accum_t", named_type(self, f"{part}_accum"))
            self.set_attr("squeeze_t", named_type(self, "squeeze_result"))

    def weight_name(node, part: str, kind: str) -> str:
        if kind == "weight" and part in loaded(node):
            return loadable_array(node.get_attr(f"{part}_conv"))
        return node.get_weights(f"{part}_{kind}").name

    class FireConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SqzFire)

        def format(self, node):
            params = self._default_config_params(node)
            for part in PARTS:
                params[f"{part}_weight_t"] = (node.get_attr(f"{part}_weight_t").name if part in loaded(node)
                                              else node.get_weights(f"{part}_weight").type.name)
                params[f"{part}_bias_t"] = node.get_weights(f"{part}_bias").type.name
            return CONFIG.format(**params)

    class FireFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SqzFire, include_header=[f"nnet_utils/{HEADER}"])

        def format(self, node):
            params = self._default_function_params(node)
            weights = ", ".join(weight_name(node, p, k) for p in PARTS for k in ("weight", "bias"))
            return (f"sqz::fire<{params['input_t']}, {params['output_t']}, {params['config']}>"
                    f"({params['input']}, {params['output']}, {weights});")

    return (SqzFire,), (FireConfigTemplate, FireFunctionTemplate)
