"""Re-export of host/axi.py, where the AXI packing now lives (it ships to the board; numpy only).

Kept only because hw/convert.py imports `hw.axi` and lists "axi.py" among its GENERATOR_SOURCES (the
project cache key); new code imports host.axi. Remove this file once convert.py points at host/axi.py.
"""
from host.axi import (INFER_MODE, LANE_CHOICES, LOAD_MODE, WEIGHT_MAGIC, WORD_BITS, AxiPacking,  # noqa: F401
                      WeightArray, WeightStream, lane_bits, pack_lanes, unpack_lanes)
