"""sqz's hls4ml extension: four layers, their C++ templates and kernels (hw/kernels/).

  SqzFire            a whole Fire module (sqz::fire): squeeze 1x1 + ReLU, line buffer, expand 1x1 and
                     expand 3x3 (pad 1) + ReLU, one concatenated stream (expand1x1 channels first)
  SqzMaxPool2D       overlapping 3x3 / stride 2 max pool with Caffe's round-up size (sqz::maxpool_3x3s2);
                     hls4ml 1.3.0's io_stream pooling asserts pool == stride and aborts the process
  SqzGlobalAvgPool2D exact sum, reciprocal multiply, one cast (sqz::global_avgpool), as quant/arithmetic.py
  SqzConv1x1         a stand-alone 1x1 convolution (+ ReLU) whose weights are NOT a ROM but a namespace-scope
                     array `sqz_w_<name>` (UltraRAM in synthesis), written at start-up through the AXI top's
                     load mode (sqz::conv1x1_rw, hw/kernels/sqz_conv.h; the array and its loader are written
                     by hw/project.py). Only the bias is an hls4ml weight variable (a ROM).

They are registered through hls4ml's extension API (`register_layer`, `Backend.register_template`,
`Backend.register_source`) on both the Vivado and the Vitis backend: Vitis applies Vivado's templates
after its own, and a header registered on one backend is missing on the other. hw/convert.py puts them
into the graph by rewriting hls4ml's layer list before the ModelGraph is built (see its docstring).

Every precision these layers use comes from the generated HLS config (hw/convert.py): the layer asks
`config.get_precision(layer, var)` for `squeeze_weight`, `expand3_accum`, ... exactly as hls4ml's own
layers ask for `weight` and `accum`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_HEADERS = ("sqz_common.h", "sqz_fire.h", "sqz_pool.h", "sqz_axi.h", "sqz_conv.h")
FIRE_PARTS = ("squeeze", "expand1", "expand3")


# -- folding (pure functions, shared with hw/convert.py) ------------------------------------------

def fold_factors(n_in: int, n_out: int, reuse: int) -> tuple[int, int]:
    """(fold_in, fold_out) with fold_in * fold_out == reuse, fold_in | n_in, fold_out | n_out.

    Every reuse factor hls4ml accepts (R | n_in, or R = n_in * d with d | n_out) has one; among the
    candidates the largest fold_in is taken (R | n_in -> (R, 1); R = n_in * d -> (n_in, d)), which is
    hls4ml's dense_resource structure: inputs are folded first, outputs only beyond n_in.
    """
    for fold_in in sorted((d for d in range(1, n_in + 1) if n_in % d == 0), reverse=True):
        if reuse % fold_in == 0 and n_out % (reuse // fold_in) == 0:
            return fold_in, reuse // fold_in
    raise ValueError(f"reuse factor {reuse} cannot fold a {n_in} x {n_out} product "
                     f"(needs fold_in | {n_in} and fold_out | {n_out} with fold_in * fold_out = {reuse})")


def fold_matrix(matrix: np.ndarray, fold_in: int, fold_out: int) -> np.ndarray:
    """(n_in, n_out) weights -> the flat [fo][fi][po][pi] order sqz::matvec reads (one block per cycle)."""
    n_in, n_out = matrix.shape
    pi, po = n_in // fold_in, n_out // fold_out
    return np.ascontiguousarray(matrix.reshape(fold_in, pi, fold_out, po).transpose(2, 0, 3, 1)).ravel()


def loadable_array(name: str) -> str:
    """The C++ name of the runtime-written weight array of a loadable layer (SqzConv1x1)."""
    return f"sqz_w_{name}"


# -- layers, templates, registration ----------------------------------------------------------------

_registered = False


def register_extensions() -> None:
    """Register the layers, templates and kernel headers with hls4ml (idempotent within a process)."""
    global _registered
    if _registered:
        return
    from hls4ml.backends import get_backend
    from hls4ml.model.layers import register_layer

    layers, templates = _classes()
    for cls in layers:
        register_layer(cls.__name__, cls)
    for backend_name in ("Vivado", "Vitis"):
        backend = get_backend(backend_name)
        for template in templates:
            backend.register_template(template)
        for header in KERNEL_HEADERS:
            backend.register_source(KERNEL_DIR / header)
    _registered = True


def _classes():
    """The hls4ml classes, built on first use (importing hls4ml is slow; hw/ imports this lazily)."""
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute, WeightAttribute
    from hls4ml.model.layers import Layer
    from hls4ml.model.types import FixedPrecisionType, NamedType

    def named(layer, var):
        precision, type_name = layer.model.config.get_precision(layer, var)
        return NamedType(type_name, precision)

    class SqzFire(Layer):
        _expected_attributes = [
            Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"),
            Attribute("n_squeeze"), Attribute("n_expand1"), Attribute("n_expand3"),
            *[ConfigurableAttribute(f"{p}_reuse", default=1) for p in FIRE_PARTS],
            *[WeightAttribute(f"{p}_{k}") for p in FIRE_PARTS for k in ("weight", "bias")],
            *[TypeAttribute(f"{p}_accum") for p in FIRE_PARTS],
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
                self.add_weights_variable(name=f"{part}_weight", var_name=f"w{tag}_{{index}}",
                                          data=fold_matrix(matrix, fold_in, fold_out))
                self.add_weights_variable(name=f"{part}_bias", var_name=f"b{tag}_{{index}}",
                                          data=np.asarray(self.get_attr(f"{part}_bias_data"), np.float64))
                self.set_attr(f"{part}_accum_t", named(self, f"{part}_accum"))
            self.set_attr("squeeze_t", named(self, "squeeze_result"))

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
            self.set_attr("accum_t", named(self, "accum"))
            bits = int(self.attributes["multiplier"]).bit_length()
            self.set_attr("mult_t", NamedType(f"{self.name}_mult_t", FixedPrecisionType(
                bits, bits - int(self.attributes["shift"]), signed=False)))

    class SqzConv1x1(Layer):
        _expected_attributes = [
            Attribute("in_height"), Attribute("in_width"), Attribute("n_chan"), Attribute("n_filt"),
            Attribute("relu", value_type=bool), ConfigurableAttribute("reuse_factor", default=1),
            WeightAttribute("bias"), TypeAttribute("accum"), TypeAttribute("weight"),
        ]

        def initialize(self):
            a = self.attributes
            self.add_output_variable([a["in_height"], a["in_width"], a["n_filt"]])
            fold_in, fold_out = fold_factors(a["n_chan"], a["n_filt"], int(self.get_attr("reuse_factor")))
            self.set_attr("fold_in", fold_in)
            self.set_attr("fold_out", fold_out)
            self.add_weights_variable(name="bias", var_name="b{index}",
                                      data=np.asarray(self.get_attr("bias_data"), np.float64))
            self.set_attr("weight_t", named(self, "weight"))
            self.set_attr("accum_t", named(self, "accum"))
            self.set_attr("weight_array", loadable_array(self.name))

    fire_config = """struct config{index} : sqz::fire_config {{
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

    maxpool_config = """struct config{index} : sqz::maxpool_config {{
    static const unsigned in_height = {in_height};
    static const unsigned in_width = {in_width};
    static const unsigned n_chan = {n_chan};
    static const unsigned reuse_factor = {reuse_factor};
}};\n"""

    avgpool_config = """struct config{index} : sqz::global_avgpool_config {{
    static const unsigned height = {in_height};
    static const unsigned width = {in_width};
    static const unsigned n_chan = {n_chan};
    static const unsigned reuse_factor = {reuse_factor};
    static const unsigned long long multiplier = {multiplier}ULL;
    typedef {accum_t.name} accum_t;
    typedef {mult_t.name} mult_t;
}};\n"""

    conv1x1_config = """struct config{index} : sqz::conv1x1_config {{
    static const unsigned height = {in_height};
    static const unsigned width = {in_width};
    static const unsigned n_in = {n_chan};
    static const unsigned n_out = {n_filt};
    static const unsigned fold_in = {fold_in};
    static const unsigned fold_out = {fold_out};
    static const bool relu = {relu_cpp};
    typedef {weight_t.name} weight_t;
    typedef {bias_t} bias_t;
    typedef {accum_t.name} accum_t;
}};\n"""

    class FireConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SqzFire)

        def format(self, node):
            params = self._default_config_params(node)
            for part in FIRE_PARTS:
                for kind in ("weight", "bias"):
                    params[f"{part}_{kind}_t"] = node.get_weights(f"{part}_{kind}").type.name
            return fire_config.format(**params)

    class FireFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SqzFire, include_header=["nnet_utils/sqz_fire.h"])

        def format(self, node):
            params = self._default_function_params(node)
            weights = ", ".join(node.get_weights(f"{p}_{k}").name for p in FIRE_PARTS for k in ("weight", "bias"))
            return (f"sqz::fire<{params['input_t']}, {params['output_t']}, {params['config']}>"
                    f"({params['input']}, {params['output']}, {weights});")

    class MaxPoolConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SqzMaxPool2D)

        def format(self, node):
            return maxpool_config.format(**self._default_config_params(node))

    class MaxPoolFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SqzMaxPool2D, include_header=["nnet_utils/sqz_pool.h"])

        def format(self, node):
            p = self._default_function_params(node)
            return f"sqz::maxpool_3x3s2<{p['input_t']}, {p['output_t']}, {p['config']}>({p['input']}, {p['output']});"

    class AvgPoolConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SqzGlobalAvgPool2D)

        def format(self, node):
            return avgpool_config.format(**self._default_config_params(node))

    class AvgPoolFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SqzGlobalAvgPool2D, include_header=["nnet_utils/sqz_pool.h"])

        def format(self, node):
            p = self._default_function_params(node)
            return f"sqz::global_avgpool<{p['input_t']}, {p['output_t']}, {p['config']}>({p['input']}, {p['output']});"

    class Conv1x1ConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(SqzConv1x1)

        def format(self, node):
            params = self._default_config_params(node)
            params["bias_t"] = node.get_weights("bias").type.name
            params["relu_cpp"] = "true" if node.get_attr("relu") else "false"
            return conv1x1_config.format(**params)

    class Conv1x1FunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(SqzConv1x1, include_header=["nnet_utils/sqz_conv.h"])

        def format(self, node):
            p = self._default_function_params(node)
            return (f"sqz::conv1x1_rw<{p['input_t']}, {p['output_t']}, {p['config']}>({p['input']}, {p['output']}, "
                    f"{node.get_attr('weight_array')}, {node.get_weights('bias').name});")

    return ((SqzFire, SqzMaxPool2D, SqzGlobalAvgPool2D, SqzConv1x1),
            (FireConfigTemplate, FireFunctionTemplate, MaxPoolConfigTemplate, MaxPoolFunctionTemplate,
             AvgPoolConfigTemplate, AvgPoolFunctionTemplate, Conv1x1ConfigTemplate, Conv1x1FunctionTemplate))
