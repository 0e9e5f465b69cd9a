"""Decoder for SqueezeNet-Deep-Compression's `compressed_SqueezeNet.net` (songhan/SqueezeNet-Deep-Compression).

Layout (little-endian):
  26 x uint32           stored-entry count per conv layer, in prototxt order
  then per layer:
    256 x float32       codebook (entry 0 is 0.0)
    O x float32         bias, one per output channel
    count x uint8       codebook index of each stored entry
    ceil(count/2) bytes 4-bit gaps, two per byte, low nibble first
  Absolute position = cumsum(gap + 1) - 1 into the flattened OIHW weight array. Positions not
  listed are zero; a gap longer than 16 is bridged by a filler entry with code 0.

A correct decode consumes every byte; anything else is an error that names the file and layer.
The codebook and code array of each layer are kept: the weights are already pruned and clustered
to 256 values per layer, and quant/ uses that structure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.architecture import Architecture, squeezenet1_0
from sqz.errors import SqzError

DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "compressed_SqueezeNet.net"
FILE_SIZE = 675_763

# Our layer names (model/architecture.py) -> the names in the Deep Compression prototxt.
CAFFE_NAMES = {"conv1": "conv1", "conv10": "conv_final"}
for _n in range(2, 10):
    CAFFE_NAMES[f"fire{_n}_squeeze1x1"] = f"fire{_n}/conv1x1_1"
    CAFFE_NAMES[f"fire{_n}_expand1x1"] = f"fire{_n}/conv1x1_2"
    CAFFE_NAMES[f"fire{_n}_expand3x3"] = f"fire{_n}/conv3x3_2"


class WeightFileError(SqzError, ValueError):
    """The weights file is truncated, altered or does not match the architecture."""


@dataclass
class CompressedLayer:
    name: str                    # our name, e.g. fire2_squeeze1x1
    caffe_name: str              # e.g. fire2/conv1x1_1
    shape: tuple[int, int, int, int]   # OIHW, as Caffe stores it
    codebook: np.ndarray         # (256,) float32, codebook[0] == 0
    bias: np.ndarray             # (O,) float32
    indices: np.ndarray          # flat OIHW positions of stored entries (incl. code-0 fillers)
    codes: np.ndarray            # uint8 codebook index per stored entry

    @property
    def weight_oihw(self) -> np.ndarray:
        flat = np.zeros(math.prod(self.shape), np.float32)
        flat[self.indices] = self.codebook[self.codes]
        return flat.reshape(self.shape)

    @property
    def code_array(self) -> np.ndarray:
        """Dense OIHW array of codebook indices (0 where pruned)."""
        flat = np.zeros(math.prod(self.shape), np.uint8)
        flat[self.indices] = self.codes
        return flat.reshape(self.shape)

    @property
    def density(self) -> float:
        """Fraction of weights that are non-zero."""
        return float(np.count_nonzero(self.weight_oihw)) / math.prod(self.shape)


def decode(path: str | Path = DEFAULT_PATH, arch: Architecture | None = None) -> dict[str, CompressedLayer]:
    """Decode every layer; raises WeightFileError naming the file and layer on any inconsistency."""
    path = Path(path)
    arch = arch or squeezenet1_0()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightFileError(f"{path}: cannot read weights file ({e.strerror})") from None
    shapes = {name: t["weight"] for name, t in arch.conv_shapes().items()}
    names = list(shapes)
    header = 4 * len(names)
    if len(data) < header:
        raise WeightFileError(f"{path}: {len(data)} bytes is shorter than the {header}-byte header")
    counts = np.frombuffer(data, "<u4", len(names), 0)
    pos = header
    layers: dict[str, CompressedLayer] = {}
    for name, count in zip(names, counts.tolist()):
        shape = shapes[name]
        size = math.prod(shape)
        where = f"{path}: layer {name} ({CAFFE_NAMES.get(name, name)})"
        if count > size:
            raise WeightFileError(f"{where}: {count} stored entries for a {size}-weight layer")
        n_bytes = 4 * 256 + 4 * shape[0] + count + (count + 1) // 2
        if pos + n_bytes > len(data):
            raise WeightFileError(f"{where}: file truncated (needs {n_bytes} bytes at offset {pos}, "
                                  f"{len(data) - pos} left)")
        codebook = np.frombuffer(data, "<f4", 256, pos).astype(np.float32); pos += 4 * 256
        bias = np.frombuffer(data, "<f4", shape[0], pos).astype(np.float32); pos += 4 * shape[0]
        codes = np.frombuffer(data, np.uint8, count, pos).copy(); pos += count
        packed = np.frombuffer(data, np.uint8, (count + 1) // 2, pos); pos += (count + 1) // 2
        gaps = np.empty(2 * len(packed), np.int64)
        gaps[0::2] = packed & 0x0F   # low nibble first
        gaps[1::2] = packed >> 4
        gaps = gaps[:count]
        indices = np.cumsum(gaps + 1) - 1
        if count and indices[-1] >= size:
            raise WeightFileError(f"{where}: position {indices[-1]} is outside the {size}-weight array")
        if codebook[0] != 0.0:
            raise WeightFileError(f"{where}: codebook entry 0 is {codebook[0]}, expected 0.0")
        if not (np.isfinite(codebook).all() and np.isfinite(bias).all()):
            raise WeightFileError(f"{where}: codebook or bias holds NaN/inf")
        layers[name] = CompressedLayer(name, CAFFE_NAMES.get(name, name), shape, codebook, bias, indices, codes)
    if pos != len(data):
        raise WeightFileError(f"{path}: {len(data) - pos} bytes left over after the last layer "
                              f"(decoded {pos} of {len(data)}): file altered or wrong architecture")
    return layers


def float_params(layers: dict[str, CompressedLayer]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer (weight OIHW float32, bias): the form quant/ and hw/ take."""
    return {name: (l.weight_oihw, l.bias.copy()) for name, l in layers.items()}
