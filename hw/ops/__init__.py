"""sqz's hardware ops: one class per hardware layer kind, each owning its validation, hls4ml config and
graph rewrite, template, plan, memories, engines, cycles, cost and folding (see hw/ops/base.py).

    conv.py    StockConv (hls4ml Conv2D + ReLU), LoadableConv (sqz::conv1x1_rw, UltraRAM weights)
    fire.py    FusedFire (sqz::fire), LoadableFire (sqz::fire, UltraRAM weights), GenericFire (hls4ml unfused)
    pool.py    MaxPool3x3s2 (sqz::maxpool_3x3s2), GlobalAvgPool (sqz::global_avgpool)
    pad.py     ZeroPad (nnet::zeropad2d_cl)
    shell.py   Shell (AXI4-Stream top, DMA allowance)
    cost.py    the cost model's primitives; registry.py: build_ops and the hls4ml extension
"""
from hw.ops.base import GraphRewrite, HwOp, LayerPlan, UnsupportedModelError  # noqa: F401
from hw.ops.conv import LoadableConv, StockConv, conv_result_format, loadable_array  # noqa: F401
from hw.ops.fire import FusedFire, GenericFire, LoadableFire  # noqa: F401
from hw.ops.pad import ZeroPad  # noqa: F401
from hw.ops.pool import GlobalAvgPool, MaxPool3x3s2  # noqa: F401
from hw.ops.registry import build_ops, register_extensions  # noqa: F401
from hw.ops.shell import Shell  # noqa: F401
