"""The shell: what surrounds the network on the chip -- the AXI4-Stream top sqz_top (hw/project.py,
hw/kernels/sqz_axi.h), the AXI DMA and interconnect -- as an op: the AXI packing's validation, its input
stream FIFO, and an allowance for the DMA and interconnect in the cost model."""
from __future__ import annotations

from hw.ops.base import HwOp, UnsupportedModelError
from hw.ops.cost import REGISTER_FIFO_DEPTH, SHELL_BRAM18, SHELL_LUT, buffer


class Shell(HwOp):
    kind = "shell"
    kernel = "sqz_top (AXI4-Stream)"

    def __init__(self, in_shape, x, n_out: int, logits):
        super().__init__("shell", in_shape, in_shape)
        self.x, self.n_out, self.logits = x, n_out, logits

    def packing(self):
        """The AXI4-Stream packing of the accelerator's interface (pixels in, logits out)."""
        from host.axi import AxiPacking

        h, w, c = self.in_shape
        try:
            return AxiPacking.for_formats(h, w, c, self.x, self.n_out, self.logits)
        except ValueError as e:
            raise UnsupportedModelError(f"AXI interface: {e}") from None

    def validate(self, params):
        self.packing()

    def cycles(self):
        return self.in_shape[0] * self.in_shape[1]  # the DMA delivers one pixel per cycle

    def min_cycles(self):
        return self.cycles()

    def memories(self):
        # sqz_top's input stream (#pragma HLS STREAM depth=2, hw/project.py): registers
        return [buffer("fifo", REGISTER_FIFO_DEPTH, self.in_shape[2] * self.x.width)]

    def logic_luts(self, opt):
        return SHELL_LUT

    def extra_bram18(self):
        return SHELL_BRAM18
