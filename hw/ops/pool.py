"""Pools: sqz's overlapping 3x3 / stride 2 max pool and its global average pool (hw/kernels/sqz_pool.h).

MaxPool3x3s2    Caffe's round-up output size; hls4ml 1.3.0's io_stream pooling asserts pool == stride and
                aborts the process, hence sqz's kernel. 2 row buffers + the window, separable maximum.
GlobalAvgPool   exact sum (C/R accumulating adders), then the reciprocal multiply channel after channel on
                one multiplier and one cast, as quant/arithmetic.global_avgpool: the logits, no softmax.
Both fold channels by a reuse factor R: C / R channels per cycle, R cycles per input pixel.
"""
from __future__ import annotations

from hw.ops.base import (MAX_ACCUM_BITS, MAX_DATA_BITS, GraphRewrite, HwOp, LayerPlan, UnsupportedModelError,
                         check_width)
from hw.ops.cost import (LAYER_LUT_BASE, LUT_SCALE, POOL_LUT_PER_BIT, RECIPROCAL_BITS, Stage, buffer,
                         channel_mux_luts, divisors, dsp_per_multiplier, fifo)
from quant.formats import check_avgpool

HEADER = "sqz_pool.h"


class _ChannelFolded(HwOp):
    """An op whose reuse factor R divides its channels (C/R channels per cycle)."""

    @property
    def channels(self) -> int:
        return self.in_shape[2]

    @property
    def r(self) -> int:
        return self.reuse[self.name]

    def foldable(self):
        return {self.name: divisors(self.channels)}

    def reuse_json(self):
        return self.r

    def set_reuse(self, reuse):
        super().set_reuse(reuse)
        if self.channels % self.r:
            raise UnsupportedModelError(f"{self.name}: reuse factor {self.r} must divide its {self.channels} "
                                        f"channels (it processes {self.channels}/R channels per cycle)")


class MaxPool3x3s2(_ChannelFolded):
    """Overlapping max pool: 4 compare-selects per channel processed per cycle, R cycles per input pixel."""
    kind = "maxpool"
    kernel = "sqz::maxpool_3x3s2"

    def __init__(self, pool, in_shape, out_shape, x):
        self.check_layer(pool)
        super().__init__(pool.name, in_shape, out_shape)
        self.pool, self.x = pool, x      # a pool passes values through: its format is its input's

    @staticmethod
    def check_layer(pool) -> None:
        if (pool.kernel, pool.stride) != (3, 2):
            raise UnsupportedModelError(
                f"layer {pool.name}: max pooling {pool.kernel}x{pool.kernel} / stride {pool.stride} is not "
                f"supported; the hardware pools 3x3 / stride 2 (SqueezeNet's overlapping pools)")

    def stages(self):
        return [Stage([(self.name, self.foldable()[self.name])], self.in_shape[0] * self.in_shape[1], 0)]

    def min_cycles(self):
        return self.in_shape[0] * self.in_shape[1]

    def cycles(self):
        return self.in_shape[0] * self.in_shape[1] * self.r

    def memories(self):
        w, c = self.in_shape[1], self.channels
        # row buffers addressed by (column, channel group): W*R deep, 2 rows x C/R channels wide
        return [buffer("line buffer", w * self.r, (self.pool.kernel - 1) * (c // self.r) * self.x.width),
                fifo(self.fifo_depth, self.out_shape[0] * self.out_shape[1], c * self.x.width)]

    def logic_luts(self, opt):
        p = self.channels // self.r
        return LAYER_LUT_BASE + LUT_SCALE * (POOL_LUT_PER_BIT * p * self.x.width
                                             + channel_mux_luts(p, self.x.width, self.r))

    def keras_layers(self):
        return {self.name: "MaxPooling2D", f"{self.name}_ceilpad": "ZeroPadding2D"}

    def check_keras(self, layers, model_name):
        l = layers[self.name]
        if tuple(l.pool_size) != (3, 3) or tuple(l.strides) != (2, 2) or l.padding != "valid":
            raise UnsupportedModelError(f"Keras model {model_name}: layer {self.name} pools {l.pool_size} / "
                                        f"{l.strides} '{l.padding}'; expected 3x3 / 2 'valid'")

    def hls_config(self):
        return {self.name: {"Precision": {"result": str(self.x)}, "ReuseFactor": self.r}}

    def rewrite(self, graph: GraphRewrite):
        pool = graph.get(self.name)
        pad = graph.by_name.get(f"{self.name}_ceilpad")
        first = pad or pool
        if pad is not None:
            if pad.get("pad_top", 0) or pad.get("pad_left", 0):
                raise UnsupportedModelError(f"layer {pad['name']}: round-up padding must be bottom/right only")
            graph.drop.add(pool["name"])
        if (pool.get("pool_height"), pool.get("pool_width"), pool.get("stride_height"),
                pool.get("stride_width")) != (3, 3, 2, 2):
            raise UnsupportedModelError(f"layer {self.name}: pooling must be 3x3 / stride 2")
        graph.check_dims(pool, self.name, (pool["in_height"], pool["in_width"]), self.out_shape)
        graph.replace[first["name"]] = {
            "name": self.name, "class_name": "SqzMaxPool2D", "inputs": list(first["inputs"]),
            "data_format": "channels_last", "in_height": self.in_shape[0], "in_width": self.in_shape[1],
            "n_chan": self.channels, "out_height": self.out_shape[0], "out_width": self.out_shape[1]}

    def expected_types(self, node):
        from hw.ops.registry import precision_format

        n = node(self.name)   # values pass through: its output format is its input's
        return [(self.name, n.get_output_variable().type.precision,
                 precision_format(n.get_input_variable().type.precision))]

    def plan(self):
        return LayerPlan(self.name, "maxpool", self.in_shape, self.out_shape, self.kernel, self.r,
                         formats={"result": str(self.x)})


class GlobalAvgPool(_ChannelFolded):
    """Global average pool: C/R accumulating adders, R cycles per pixel, then C reciprocal products."""
    kind = "gap"
    kernel = "sqz::global_avgpool"

    def __init__(self, pool, in_shape, out_shape, x, formats):
        super().__init__(pool.name, in_shape, out_shape)
        self.pool, self.x, self.p = pool, x, formats     # p: PoolFormats (accum, result, reciprocal)

    @property
    def pixels(self) -> int:
        return self.in_shape[0] * self.in_shape[1]

    def stages(self):
        return [Stage([(self.name, self.foldable()[self.name])], self.pixels, self.channels)]

    def min_cycles(self):
        return self.pixels + self.channels

    def cycles(self):
        return self.pixels * self.r + self.channels   # sum every pixel, then scale channel by channel

    def memories(self):
        mems = [fifo(self.fifo_depth, 1, self.channels * self.p.result.width)]  # one word of logits
        if self.r > 1:  # C accumulators as an R-deep memory of C/R-wide words (R = 1: registers)
            mems.append(buffer("accumulators", self.r, (self.channels // self.r) * self.p.accum.width))
        return mems

    def logic_luts(self, opt):
        p = self.channels // self.r
        return LAYER_LUT_BASE + LUT_SCALE * (p * self.p.accum.width + channel_mux_luts(p, self.x.width, self.r)
                                             + self.p.result.width)  # one reciprocal product and cast at a time

    def extra_dsp(self, opt):
        return dsp_per_multiplier(self.p.accum.width, True, RECIPROCAL_BITS, False, opt.dsp_type)

    def validate(self, params):
        check_width(self.name, "accum", self.p.accum, MAX_ACCUM_BITS)
        check_width(self.name, "result", self.p.result, MAX_DATA_BITS)
        check_avgpool(self.name, self.p, self.x, self.pixels, where="design")

    def keras_layers(self):
        return {self.name: "GlobalAveragePooling2D"}

    def hls_config(self):
        return {self.name: {"Precision": {"accum": str(self.p.accum), "result": str(self.p.result)},
                            "ReuseFactor": self.r}}

    def rewrite(self, graph: GraphRewrite):
        d = graph.get(self.name)
        graph.replace[self.name] = {
            "name": self.name, "class_name": "SqzGlobalAvgPool2D", "inputs": list(d["inputs"]),
            "data_format": "channels_last", "in_height": self.in_shape[0], "in_width": self.in_shape[1],
            "n_chan": self.channels, "multiplier": int(self.p.multiplier), "shift": int(self.p.shift)}

    def expected_types(self, node):
        n = node(self.name)
        return [(f"{self.name} accum", n.get_attr("accum_t").precision, self.p.accum),
                (f"{self.name} result", n.get_output_variable().type.precision, self.p.result)]

    def plan(self):
        return LayerPlan(self.name, "gap", self.in_shape, self.out_shape, self.kernel, self.r,
                         formats=self.p.to_json())


# -- hls4ml: the two pool layers, their templates --------------------------------------------------------

MAXPOOL_CONFIG = """struct config{index} : sqz::maxpool_config {{
    static const unsigned in_height = {in_height};
    static const unsigned in_width = {in_width};
    static const unsigned n_chan = {n_chan};
    static const unsigned reuse_factor = {reuse_factor};
}};\n"""

AVGPOOL_CONFIG = """struct config{index} : sqz::global_avgpool_config {{
    static const unsigned height = {in_height};
    static const unsigned width = {in_width};
    static const unsigned n_chan = {n_chan};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned long long multiplier = {multiplier}ULL;
    typedef {accum_t.name} accum_t;
    typedef {mult_t.name} mult_t;
}};\n"""


def hls4ml_extension():
    """(layer classes, template classes) of the two pools, built on first use."""
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute
    from hls4ml.model.layers import Layer
    from hls4ml.model.types import FixedPrecisionType, NamedType

    from hw.ops.registry import named_type

    class SqzMaxPool2D(Layer):
        _expected_attributes = [
            Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"),
            Attribute("out_height"), Attribute("out_width"),
            ConfigurableAttribute("reuse_factor", default=1),
        ]

        def initialize(self):
            a = self.attributes
            self.add_output_variable([a["out_height"], a["out_width"], a["n_chan"]])

    class SqzGlobalAvgPool2D(Layer):
        _expected_attributes = [
            Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"),
            Attribute("multiplier"), Attribute("shift"),
            ConfigurableAttribute("reuse_factor", default=1),
            TypeAttribute("accum"), TypeAttribute("mult"),
        ]

        def initialize(self):
            self.add_output_variable([self.attributes["n_chan"]])
            self.set_attr("accum_t", named_type(self, "accum"))
            bits = int(self.attributes["multiplier"]).bit_length()
            self.set_attr("mult_t", NamedType(f"{self.name}_mult_t", FixedPrecisionType(
                bits, bits - int(self.attributes["shift"]), signed=False)))

    def simple(layer_cls, config, function):
        class Config(LayerConfigTemplate):
            def __init__(self):
                super().__init__(layer_cls)

            def format(self, node):
                return config.format(**self._default_config_params(node))

        class Function(FunctionCallTemplate):
            def __init__(self):
                super().__init__(layer_cls, include_header=[f"nnet_utils/{HEADER}"])

            def format(self, node):
                p = self._default_function_params(node)
                return f"{function}<{p['input_t']}, {p['output_t']}, {p['config']}>({p['input']}, {p['output']});"

        Config.__name__, Function.__name__ = f"{layer_cls.__name__}Config", f"{layer_cls.__name__}Function"
        return Config, Function

    return ((SqzMaxPool2D, SqzGlobalAvgPool2D),
            (*simple(SqzMaxPool2D, MAXPOOL_CONFIG, "sqz::maxpool_3x3s2"),
             *simple(SqzGlobalAvgPool2D, AVGPOOL_CONFIG, "sqz::global_avgpool")))
