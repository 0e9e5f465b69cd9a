"""Convolutions outside Fire modules (conv1, conv10): hls4ml's stock Conv2D, and sqz's loadable 1x1 conv.

StockConv      hls4ml's conv_2d_cl / pointwise_conv_2d_cl (io_stream, Latency or Resource strategy) and its
               separate nnet::relu layer: (K-1)-row ap_shift_reg line buffer (SRL LUTs), one dense engine,
               weights a ROM (block RAM for R > 1, logic for R = 1).
LoadableConv   sqz::conv1x1_rw (1x1 / stride 1, conv10) or sqz::conv_rw (K x K / stride S, conv1; its own
               (K-1)-row line buffer) in hw/kernels/sqz_conv.h: weights in a namespace-scope array
               `sqz_w_<name>` bound to UltraRAM and written at start-up through the AXI top's load mode
               (hw/project.py); ReLU and the cast to the result inside the kernel.

Arithmetic (quant/arithmetic.py is the definition): accum_t = the spec's accum (exact). hls4ml casts the
accumulator to the conv's result_t and its ReLU layer casts again; "ReLU, then one cast to the result
format R" is preserved by choosing result_t = `conv_result_format`: ap_fixed<W+1, I+1, same modes> for an
unsigned R = ap_ufixed<W, I> (R itself for a signed R) -- same fractional bits and the same largest value,
so positive values round and saturate exactly as R does, negative ones stay <= 0 and the ReLU makes them 0,
and R's cast of the (already representable) result is exact. That holds for the saturating overflow modes;
with AP_WRAP result_t is the accumulator itself and the ReLU layer does the only cast.
tests/test_hw_kernels.py checks it exhaustively for every rounding and saturating mode. The cost model
charges the conv -> ReLU stream at exactly this width.
"""
from __future__ import annotations

import math

import numpy as np

from hw.ops.base import (MAX_ACCUM_BITS, MAX_DATA_BITS, SATURATING, GraphRewrite, HwOp, LayerPlan, LoadArray,
                         SingleEngineOp, UnsupportedModelError, check_width, quantized)
from hw.ops.cost import CostOptions, Engine, Memory, Stage, buffer, fifo, fold_factors, fold_matrix, relu_luts, strategy
from quant.fixed_point import FixedFormat
from quant.formats import check_accumulator, to_accumulator

HEADER = "sqz_conv.h"


def conv_result_format(conv, f) -> FixedFormat:
    """result_t of a stock hls4ml conv such that conv -> ReLU layer equals "ReLU, then cast to f.result"."""
    r = f.result
    if not conv.relu:
        return r
    if r.overflow in SATURATING:
        return r if r.signed else FixedFormat(r.width + 1, r.integer + 1, True, r.rounding, r.overflow)
    return f.accum  # AP_WRAP: keep the exact accumulator, the ReLU layer casts once


def loadable_array(name: str) -> str:
    """The C++ name of the runtime-written weight array of a loadable layer."""
    return f"sqz_w_{name}"


def check_keras_conv(conv, layer, model_name: str) -> None:
    """The Keras Conv2D must be the architecture's convolution (sizes, stride, filters, activation, bias)."""
    act = getattr(layer.activation, "__name__", str(layer.activation))
    if tuple(layer.kernel_size) != (conv.kernel,) * 2 or tuple(layer.strides) != (conv.stride,) * 2 \
            or layer.filters != conv.filters or act != ("relu" if conv.relu else "linear") \
            or tuple(layer.dilation_rate) != (1, 1) or not layer.use_bias:
        raise UnsupportedModelError(
            f"Keras model {model_name}: layer {conv.name} ({layer.kernel_size} / {layer.strides}, {layer.filters} "
            f"filters, activation {act}) does not match {conv}")


def validate_conv(name: str, x: FixedFormat, f, params: dict) -> None:
    """Widths the kernels support, and exact accumulation with these weights (quant/formats.py)."""
    for k in ("weight", "bias", "result"):
        check_width(name, k, getattr(f, k), MAX_DATA_BITS)
    check_width(name, "accum", f.accum, MAX_ACCUM_BITS)
    w, b = params[name]
    w_acc, b_acc = to_accumulator(f, x, f.weight.quantize(np.asarray(w, np.float64)),
                                  f.bias.quantize(np.asarray(b, np.float64)))
    check_accumulator(name, f, x, w_acc, b_acc)


def quantize_conv_dict(d: dict, f) -> dict:
    d["weight_data"] = quantized(f.weight, d["weight_data"])
    d["bias_data"] = quantized(f.bias, d["bias_data"])
    return d


def stock_conv_memories(conv, in_shape, out_shape, x: FixedFormat, f, depth) -> list[Memory]:
    """Line buffer and stream FIFOs of hls4ml's conv_2d_cl / pointwise_conv_2d_cl (+ its ReLU layer)."""
    w, c = in_shape[1], in_shape[2]
    px, n = out_shape[0] * out_shape[1], out_shape[2]
    mems = []
    if conv.kernel > 1:  # ap_shift_reg<T, in_width> line_buffer[K-1][n_chan]: SRLs whatever the depth
        mems.append(Memory("line buffer", w, (conv.kernel - 1) * c * x.width, "lut"))
    mems.append(fifo(depth, px, n * conv_result_format(conv, f).width,
                     "fifo (conv -> relu)" if conv.relu else "fifo"))
    if conv.relu:
        mems.append(fifo(depth, px, n * f.result.width, "fifo (relu)"))
    return mems


class StockConv(SingleEngineOp):
    """hls4ml's stock Conv2D + ReLU layer. in_shape is the stream it reads, already zero-padded by a
    preceding ZeroPad op."""
    kind = "conv"
    kernel = "nnet::conv_2d_cl (hls4ml)"

    def __init__(self, conv, in_shape, out_shape, x: FixedFormat, formats, zeros: int = 0, codes=None):
        super().__init__(conv.name, in_shape, out_shape)
        self.conv, self.x, self.f = conv, x, formats
        self.zeros = zeros          # weights pruned to zero (hls4ml's n_zeros; designs from elsewhere)
        self.codes = codes          # the weights' integer codes where known (CostOptions.const_mult "csd")
        # hls4ml >= 0.7 line-buffer conv, Latency, R = 1 (Vitis HLS): compute_output_buffer_2d runs once per input
        # pixel, not overlapped, so a pixel costs its latency: 1 + ceil(log2(n_in) / levels) cycles, `levels`
        # adder-tree levels per cycle. None: one pixel per cycle (the model for sqz's designs).
        self.adder_levels_per_cycle: float | None = None
        self.n_in, self.n_out = in_shape[2] * conv.kernel * conv.kernel, conv.filters


    def out_pixels(self) -> int:
        return self.out_shape[0] * self.out_shape[1]

    def stages(self):
        px = self.out_pixels()
        return [Stage([(self.name, self.foldable()[self.name])], px, self.in_shape[0] * self.in_shape[1] - px)]

    def min_cycles(self):
        return self.in_shape[0] * self.in_shape[1]

    # cost
    def engines(self):
        return [Engine(self.name, self.n_in, self.n_out, self.r, self.out_pixels(), self.f.weight, self.x,
                       self.f.accum, self.f.result.width, zeros=self.zeros, codes=self.codes)]

    def memories(self):
        return [self.engines()[0].weight_memory()] + stock_conv_memories(
            self.conv, self.in_shape, self.out_shape, self.x, self.f, self.fifo_depth)

    def cycles(self):
        px = self.out_pixels()
        if self.adder_levels_per_cycle and self.r == 1:
            per_pixel = 1 + math.ceil(math.log2(self.n_in) / self.adder_levels_per_cycle)
            return self.in_shape[0] * self.in_shape[1] * per_pixel
        return px * self.r + (self.in_shape[0] * self.in_shape[1] - px)

    def logic_luts(self, opt: CostOptions):
        relu = relu_luts(self.n_out, conv_result_format(self.conv, self.f).width) if self.conv.relu else 0
        return super().logic_luts(opt) + relu

    # validation and generation
    def validate(self, params):
        validate_conv(self.name, self.x, self.f, params)

    def keras_layers(self):
        return {self.name: "Conv2D"}

    def check_keras(self, layers: dict, model_name: str) -> None:
        check_keras_conv(self.conv, layers[self.name], model_name)

    def hls_config(self):
        f = self.f
        entries = {self.name: {"Precision": {"weight": str(f.weight), "bias": str(f.bias), "accum": str(f.accum),
                                             "result": str(conv_result_format(self.conv, f))},
                               "Strategy": strategy(self.n_in, self.n_out), "ReuseFactor": self.r}}
        if self.conv.relu:
            entries[f"{self.name}_relu"] = {"Precision": {"result": str(f.result)}}
        return entries

    def rewrite(self, graph: GraphRewrite):
        d = quantize_conv_dict(graph.get(self.name), self.f)
        graph.check_dims(d, self.name, (d["in_height"], d["in_width"]), self.out_shape)

    def expected_types(self, node):
        n, f = node(self.name), self.f
        want = [(f"{self.name} weight", n.get_weights("weight").type.precision, f.weight),
                (f"{self.name} bias", n.get_weights("bias").type.precision, f.bias),
                (f"{self.name} accum", n.get_attr("accum_t").precision, f.accum),
                (f"{self.name} result", n.get_output_variable().type.precision, conv_result_format(self.conv, f))]
        if self.conv.relu:
            want.append((f"{self.name} relu", node(f"{self.name}_relu").get_output_variable().type.precision,
                         f.result))
        return want

    def plan(self):
        return LayerPlan(self.name, "conv", self.in_shape, self.out_shape, self.kernel, self.r,
                         strategy(self.n_in, self.n_out),
                         {**self.f.to_json(), "conv_result_t": str(conv_result_format(self.conv, self.f))})

    # loadable weights
    def load_candidate(self):
        """A conv whose weights are a memory (R > 1; R = 1 folds them into logic) that a loadable kernel
        runs: sqz::conv1x1_rw (1x1 / stride 1) or sqz::conv_rw (K x K, K >= 2, any stride)."""
        from hw.ops.pad import same_padding

        if self.conv.pad and same_padding(self.conv):   # hls4ml pads "same" convs itself, not ours: refuse
            return False
        return self.r > 1 and (self.conv.kernel > 1 or self.conv.stride == 1)

    def not_loadable_reason(self):
        return (f"needs reuse factor > 1 (weights in a memory) and, for a 1x1 kernel, stride 1 (it is "
                f"{self.conv.kernel}x{self.conv.kernel} / stride {self.conv.stride}, reuse {self.r})")


class LoadableConv(StockConv):
    """sqz::conv1x1_rw: weights in a runtime-written UltraRAM array; ReLU and cast inside (one output FIFO)."""
    kind = "conv_rw"
    loadable = True

    @property
    def kernel(self) -> str:
        return "sqz::conv1x1_rw" if self.conv.kernel == 1 else "sqz::conv_rw"

    def memories(self):
        weights = self.engines()[0].weight_memory()
        weights.style, weights.loadable = "uram", True
        mems = [weights]
        if self.conv.kernel > 1:   # sqz::conv_rw's lines[K-1][W][C]
            w, c = self.in_shape[1], self.in_shape[2]
            mems.append(buffer("line buffer", w, (self.conv.kernel - 1) * c * self.x.width))
        return mems + [fifo(self.fifo_depth, self.out_pixels(), self.n_out * self.f.result.width)]

    def logic_luts(self, opt):
        return HwOp.logic_luts(self, opt)   # the engine only: no separate hls4ml ReLU layer

    def hls_config(self):
        f = self.f
        return {self.name: {"Precision": {"weight": str(f.weight), "bias": str(f.bias), "accum": str(f.accum),
                                          "result": str(f.result)}, "ReuseFactor": self.r}}

    def rewrite(self, graph: GraphRewrite):
        d = graph.get(self.name)
        graph.check_dims(d, self.name, (d["in_height"], d["in_width"]), self.out_shape)
        k = self.conv.kernel
        graph.replace[self.name] = {
            "name": self.name, "class_name": "SqzConv1x1" if k == 1 else "SqzConvKxK", "inputs": list(d["inputs"]),
            "data_format": "channels_last", "in_height": d["in_height"], "in_width": d["in_width"],
            "n_chan": d["n_chan"], "n_filt": self.n_out, "relu": bool(self.conv.relu),
            "bias_data": quantized(self.f.bias, d["bias_data"]),
            **({} if k == 1 else {"kernel": k, "stride": self.conv.stride, "out_height": self.out_shape[0],
                                  "out_width": self.out_shape[1]})}
        if self.conv.relu:
            graph.drop.add(graph.get(f"{self.name}_relu")["name"])
            graph.rename[f"{self.name}_relu"] = self.name

    def expected_types(self, node):
        n, f = node(self.name), self.f
        return [(f"{self.name} weight", n.get_attr("weight_t").precision, f.weight),
                (f"{self.name} bias", n.get_weights("bias").type.precision, f.bias),
                (f"{self.name} accum", n.get_attr("accum_t").precision, f.accum),
                (f"{self.name} result", n.get_output_variable().type.precision, f.result)]

    def plan(self):
        return LayerPlan(self.name, "conv", self.in_shape, self.out_shape, self.kernel, self.r, None,
                         self.f.to_json(), [f"weights loaded at start-up (AXI top, mode 1) into "
                                            f"{loadable_array(self.name)}, bound to UltraRAM"])

    def load_arrays(self, params):
        codes = self.f.weight.quantize(np.asarray(params[self.name][0], np.float64))        # OIHW
        codes = codes.transpose(2, 3, 1, 0).reshape(self.n_in, self.n_out)                  # rows (ky, kx, channel)
        folded = fold_matrix(codes, *fold_factors(*codes.shape, self.r)).astype(np.int64)
        return [LoadArray(self.name, loadable_array(self.name), folded, self.f.weight, self.r, self.name, "weight_t")]


StockConv.loadable_variant = LoadableConv


# -- hls4ml: the SqzConv1x1 layer, its templates ---------------------------------------------------------

def _config(base: str, extra: str = "") -> str:
    """The config struct of a loadable conv kernel (the 1x1 one has no kernel / stride fields)."""
    return ("struct config{index} : sqz::" + base + " {{\n"
            "    static const unsigned height = {in_height};\n"
            "    static const unsigned width = {in_width};\n"
            "    static const unsigned n_in = {n_chan};\n"
            "    static const unsigned n_out = {n_filt};\n" + extra +
            "    static const unsigned fold_in = {fold_in};\n"
            "    static const unsigned fold_out = {fold_out};\n"
            "    static const bool relu = {relu_cpp};\n"
            "    typedef {weight_t.name} weight_t;\n"
            "    typedef {bias_t} bias_t;\n"
            "    typedef {accum_t.name} accum_t;\n"
            "}};\n")


CONFIG = _config("conv1x1_config")
CONFIG_KXK = _config("conv_rw_config", "    static const unsigned kernel = {kernel};\n"
                                       "    static const unsigned stride = {stride};\n")


def hls4ml_extension():
    """(layer classes, template classes) of sqz::conv1x1_rw and sqz::conv_rw, built on first use (hls4ml imports
    slowly)."""
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute, WeightAttribute
    from hls4ml.model.layers import Layer

    from hw.ops.registry import named_type

    def layer_class(name: str, kxk: bool):
        """SqzConv1x1 (sqz::conv1x1_rw) or SqzConvKxK (sqz::conv_rw): bias an hls4ml weight (a ROM), the
        weights a runtime-written array `sqz_w_<name>` (hw/project.py writes it and its loader)."""
        extra = [Attribute("kernel"), Attribute("stride"), Attribute("out_height"), Attribute("out_width")] if kxk \
            else []

        class SqzLoadableConv(Layer):
            _expected_attributes = [
                Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"), Attribute("n_filt"),
                Attribute("relu", value_type=bool), ConfigurableAttribute("reuse_factor", default=1),
                WeightAttribute("bias"), TypeAttribute("accum"), TypeAttribute("weight"), *extra,
            ]

            def initialize(self):
                a = self.attributes
                out = (a["out_height"], a["out_width"]) if kxk else (a["in_height"], a["in_width"])
                self.add_output_variable([*out, a["n_filt"]])
                n_in = (a["kernel"] ** 2 if kxk else 1) * a["n_chan"]
                fold_in, fold_out = fold_factors(n_in, a["n_filt"], int(self.get_attr("reuse_factor")))
                self.set_attr("fold_in", fold_in)
                self.set_attr("fold_out", fold_out)
                self.add_weights_variable(name="bias", var_name="b{index}",
                                          data=np.asarray(self.get_attr("bias_data"), np.float64))
                self.set_attr("weight_t", named_type(self, "weight"))
                self.set_attr("accum_t", named_type(self, "accum"))
                self.set_attr("weight_array", loadable_array(self.name))

        SqzLoadableConv.__name__ = SqzLoadableConv.__qualname__ = name
        return SqzLoadableConv

    def templates(layer_cls, config: str, function: str):
        class Config(LayerConfigTemplate):
            def __init__(self):
                super().__init__(layer_cls)

            def format(self, node):
                params = self._default_config_params(node)
                params["bias_t"] = node.get_weights("bias").type.name
                params["relu_cpp"] = "true" if node.get_attr("relu") else "false"
                return config.format(**params)

        class Function(FunctionCallTemplate):
            def __init__(self):
                super().__init__(layer_cls, include_header=[f"nnet_utils/{HEADER}"])

            def format(self, node):
                p = self._default_function_params(node)
                return (f"{function}<{p['input_t']}, {p['output_t']}, {p['config']}>({p['input']}, {p['output']}, "
                        f"{node.get_attr('weight_array')}, {node.get_weights('bias').name});")

        Config.__name__, Function.__name__ = f"{layer_cls.__name__}Config", f"{layer_cls.__name__}Function"
        return Config, Function

    one, kxk = layer_class("SqzConv1x1", False), layer_class("SqzConvKxK", True)
    return (one, kxk), (*templates(one, CONFIG, "sqz::conv1x1_rw"), *templates(kxk, CONFIG_KXK, "sqz::conv_rw"))
