"""The shell: what surrounds the network on the chip -- the AXI4-Stream top sqz_top (hw/project.py,
hw/kernels/sqz_axi.h), the AXI DMA and interconnect -- as an op: the AXI packing's validation, its input
stream FIFO, and an allowance for the DMA and interconnect in the cost model."""
from __future__ import annotations

from hw.ops.base import MAX_DATA_BITS, HwOp, UnsupportedModelError, check_width
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
        return AxiPacking.for_formats(h, w, c, self.x, self.n_out, self.logits)

    def validate(self, params):
        """What the 64-bit AXI4-Stream word can carry (host/axi.py's packing): codes of at most 32 bits,
        and one whole input pixel per beat."""
        from host.axi import WORD_BITS, lane_bits

        check_width("input", "input", self.x, MAX_DATA_BITS)
        check_width("logits", "result", self.logits, MAX_DATA_BITS)
        channels, lane = self.in_shape[2], lane_bits(self.x.width)
        if channels * lane > WORD_BITS:
            raise UnsupportedModelError(f"AXI interface: {channels} input channels of {lane}-bit lanes do not fit "
                                        f"one {WORD_BITS}-bit beat (input format {self.x})")

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
