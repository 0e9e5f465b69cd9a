"""The four Zynq boards sqz targets, as data: part, Vivado board part, processing system, default clock
and resource budgets. Every other module (the estimate, the Vivado script, the manifest) reads them here.

Budgets are the whole programmable logic of the part (what Vivado's report_utilization
lists as "Available"); the shell (DMA, interconnect) is charged against them by
hw/estimate.py, not subtracted here.

Where the numbers come from
---------------------------
Resource counts are the device-table figures of the Xilinx/AMD data sheets:
  * DS190  Zynq-7000 SoC Data Sheet: Overview                (XC7Z020)
  * DS891  Zynq UltraScale+ MPSoC Data Sheet: Overview       (XCZU3EG, XCZU7EV)
  * DS987  Kria K26 SOM Data Sheet                           (XCK26, a ZU5EV-class die)
The data-sheet tables themselves were not reachable through this project's search tool,
so every number below was checked against Vivado's own "Available" column in public
report_utilization output for the exact part (Vivado reads them from the device model):
  * xc7z020:  Slice LUTs 53,200; LUT as Memory 17,400; Slice Registers 106,400;
              Block RAM Tile 140 (= 280 RAMB18); DSPs 220.
  * xczu3eg:  CLB LUTs 70,560; LUT as Memory 28,800; CLB Registers 141,120;
              Block RAM Tile 216 (RAMB18 432); DSPs 360; no URAM.
  * xck26:    CLB LUTs 117,120; LUT as Memory 57,600; CLB Registers 234,240;
              Block RAM Tile 144 (RAMB18 288); URAM 64; DSPs 1,248 (also the "Available"
              row of AMD's Kria KV260 Smart Camera utilisation table).
  * xczu7ev:  CLB LUTs 230,400; LUTRAM 101,760; FF 460,800; Block RAM 312 (= 624
              RAMB18); DSPs 1,728; URAM 96 (27 Mb / 288 Kb).
BRAM18 here always counts 18 Kb halves: BRAM18 = 2 x BRAM36 tiles.

Default clocks
--------------
  * pynq-z2 100 MHz: PYNQ's base overlay and hls4ml's VivadoAccelerator pynq-z2 block
    design clock the accelerator from FCLK_CLK0 = 100 MHz (hls4ml 1.3.0
    templates/vivado_accelerator/pynq-z2/tcl_scripts/axi_stream_design.tcl).
  * zcu104 300 MHz: Vitis AI's ZCU104 figures (UG1354, "ZCU104 Performance": dual
    B4096 DPU "running at 300 MHz"), the design the project's 600 fps target comes from.
  * kv260 300 MHz: the Kria KV260 Smart Camera / NLP-SmartVision apps run their
    DPU B3136 at 300 MHz (DSP at 600 MHz) (kria-apps-docs, "Hardware Architecture
    of the Accelerator").
  * ultra96-v2 150 MHz: no Xilinx/Avnet figure was found; 150 MHz is the PL clock of
    public Ultra96-V2 camera designs (pl_clk0 = 150 MHz) and is kept below the
    UltraScale+ boards' 300 MHz because the ZU3EG on this board is speed grade -1.
These are the clocks of hand-written RTL (the DPU) or simple overlays; an HLS dataflow
design may not close timing at 300 MHz. Pass clock_mhz to hw.estimate to change it.

Vivado board parts and the processing system
--------------------------------------------
`board_part` names the board files Vivado uses for the PS preset (DDR, MIO, clocks); the version
suffix is the one these boards' files carried when the Vivado script was written (TUL for the PYNQ-Z2,
Avnet for the Ultra96-V2, Xilinx/AMD's board store for the KV260 and ZCU104). The generated
sqz_vivado.tcl uses it only where those board files are installed and otherwise creates the project for
the bare `part`, without a board preset. `ps` is the Vivado IP of the processing system, which follows
from the family: processing_system7 (Zynq-7000) or zynq_ultra_ps_e (Zynq UltraScale+ MPSoC).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqz.errors import SqzError

PS_IP = {"zynq7": "processing_system7", "zynqmp": "zynq_ultra_ps_e"}   # Vivado IP name by family


class BoardError(SqzError, ValueError):
    """An unknown board name."""


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str          # "zynq7" (7-series fabric) or "zynqmp" (UltraScale+ fabric)
    dsp_type: str        # "DSP48E1" (25x18 multiplier) or "DSP48E2" (27x18)
    clock_mhz: float     # default accelerator clock, see module docstring
    dsp: int
    bram18: int          # 18 Kb block RAM halves (2 per BRAM36 tile)
    uram: int            # 288 Kb UltraRAM blocks (4K x 72)
    lut: int
    lutram: int          # LUTs that can be distributed RAM / SRL (SLICEM LUTs)
    ff: int
    source: str          # where the budget numbers come from
    board_part: str      # Vivado board part (board files; module docstring)

    @property
    def ps(self) -> str:
        """The processing system's Vivado IP: processing_system7 or zynq_ultra_ps_e."""
        return PS_IP[self.family]

    @property
    def bram_kbit(self) -> int:
        return self.bram18 * 18

    @property
    def uram_kbit(self) -> int:
        return self.uram * 288

    def budget(self) -> dict[str, int]:
        return {"dsp": self.dsp, "bram18": self.bram18, "uram": self.uram,
                "lut": self.lut, "lutram": self.lutram}


BOARDS: dict[str, Board] = {
    b.name: b for b in (
        Board("pynq-z2", "xc7z020clg400-1", "zynq7", "DSP48E1", 100.0,
              dsp=220, bram18=280, uram=0, lut=53_200, lutram=17_400, ff=106_400,
              source="DS190 (XC7Z020); Vivado report_utilization 'Available' for xc7z020",
              board_part="tul.com.tw:pynq-z2:part0:1.0"),
        Board("ultra96-v2", "xczu3eg-sbva484-1-i", "zynqmp", "DSP48E2", 150.0,
              dsp=360, bram18=432, uram=0, lut=70_560, lutram=28_800, ff=141_120,
              source="DS891 (ZU3EG); Vivado report_utilization 'Available' for xczu3eg-sbva484-1",
              board_part="avnet.com:ultra96v2:part0:1.2"),
        Board("kv260", "xck26-sfvc784-2LV-c", "zynqmp", "DSP48E2", 300.0,
              dsp=1_248, bram18=288, uram=64, lut=117_120, lutram=57_600, ff=234_240,
              source="DS987 (K26 SOM, XCK26); Vivado report_utilization 'Available' for xck26",
              board_part="xilinx.com:kv260_som:part0:1.3"),
        Board("zcu104", "xczu7ev-ffvc1156-2-e", "zynqmp", "DSP48E2", 300.0,
              dsp=1_728, bram18=624, uram=96, lut=230_400, lutram=101_760, ff=460_800,
              source="DS891 (ZU7EV); Vivado report_utilization 'Available' for xczu7ev-ffvc1156-2-e",
              board_part="xilinx.com:zcu104:part0:1.1"),
    )
}


# issue 13's ceilings for the small boards (PYNQ-Z2, Ultra96-V2), fractions of the board's resources: LUT and
# BRAM headroom for timing closure, the others may be used whole. Here rather than in hw.estimate so that
# sqz.demo's board defaults read it without importing the estimator at every `python -m sqz` start-up.
SMALL_BOARD_LIMITS = {"lut": 0.8, "bram18": 0.9}


def get_board(name: str | Board) -> Board:
    """Board by name (case-insensitive); a Board passes through unchanged."""
    if isinstance(name, Board):
        return name
    key = str(name).strip().lower()
    try:
        return BOARDS[key]
    except KeyError:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
