"""Zero padding before a padded stock convolution: hls4ml's nnet::zeropad2d_cl.

Where it comes from: the Keras model's own ZeroPadding2D `<conv>_pad` (a padding "same" cannot express,
e.g. v1.0's conv10: pad 1 on a 1x1 kernel), or, for a "same"-padded conv, the `zp2d_<conv>` layer that
hls4ml's io_stream flow inserts itself (InsertZeroPaddingBeforeConv2D). Either way the hardware has the
layer, so the cost model always charges it; only the explicit one takes a precision from sqz's config.
"""
from __future__ import annotations

from hw.ops.base import HwOp, LayerPlan
from hw.ops.cost import PAD_LUT_BASE, fifo


def same_padding(conv) -> bool:
    return conv.stride == 1 and conv.kernel == 2 * conv.pad + 1


class ZeroPad(HwOp):
    kind = "zeropad"
    kernel = "nnet::zeropad2d_cl"

    def __init__(self, conv, in_shape, x):
        h, w, c = in_shape
        self.explicit = not same_padding(conv)
        super().__init__(f"{conv.name}_pad" if self.explicit else f"zp2d_{conv.name}", in_shape,
                         (h + 2 * conv.pad, w + 2 * conv.pad, c))
        self.x = x

    def cycles(self):
        return self.out_shape[0] * self.out_shape[1]   # one cycle per padded pixel

    def memories(self):
        return [fifo(self.fifo_depth, self.out_shape[0] * self.out_shape[1], self.in_shape[2] * self.x.width)]

    def logic_luts(self, opt):
        return PAD_LUT_BASE + self.in_shape[2] * self.x.width

    def keras_layers(self):
        return {self.name: "ZeroPadding2D"} if self.explicit else {}

    def hls_config(self):
        return {self.name: {"Precision": {"result": str(self.x)}}} if self.explicit else {}

    def plan(self):
        return LayerPlan(self.name, "zeropad", self.in_shape, self.out_shape, self.kernel,
                         formats={"result": str(self.x)})
