"""A simulated board at pynq's device level: the unmodified pynq.Overlay, pynq.lib.dma.DMA and pynq.allocate
run on it, and so does host/driver.py, without a board (the way PYNQ's own tests/mock_devices.py works).

    board = SimBoard.for_folder("bitstreams/zcu104", backend="emulator")    # a pynq.Device
    ov = SqzOverlay("bitstreams/zcu104", device=board)                      # host/driver.py

Not a board module: it needs pynq (x86 wheels: host/requirements-sim.txt) and, behind the accelerator,
quant/'s emulator or hw/'s C simulation.

What is modelled, at the register level (every MMIO access of pynq's drivers lands in read_registers /
write_registers, the REGISTER_RW capability of pynq.mmio.MMIO):
- `AxiDmaModel`: the AXI DMA in direct register mode (PG021 v7.1, "Register Space"): per channel DMACR
  (RS bit 0, Reset bit 2, IOC_IrqEn 12, Err_IrqEn 14), DMASR (Halted 0, Idle 1, DMAIntErr 4, DMASlvErr 5,
  DMADecErr 6, IOC_Irq 12 and Err_Irq 14 write-one-to-clear), the address pair and LENGTH; writing
  LENGTH starts a transfer; MM2S ends the stream with TLAST; S2MM ends at the stream's TLAST and LENGTH
  then reads back the bytes received; LENGTH 0 is an internal error, an address outside every allocated
  buffer a decode error, a packet longer than the S2MM LENGTH an internal error; an error halts the channel
  (RS cleared, Halted set) until a soft reset. Idle reads 0 before the first transfer and while halted.
- `SqzTopModel`: the accelerator behind the DMA: its input FIFO of beats (with TLAST), the s_axilite
  control (ap_ctrl at 0x00 with ap_start / ap_done / ap_idle / auto_restart, `mode` at the manifest's
  offset), the weight-load mode (header, payload up to TLAST, the reply beat) and frames computed by a
  backend: the bit-exact emulator (quant/) or the compiled C simulation of the AXI top (hw/csim.py).
- Memory: `allocate` returns real pynq.buffer.PynqBuffer objects at physical addresses of a CMA region;
  the DMA reads and writes a separate "DDR" copy that only flush() and invalidate() synchronise, so a
  driver that forgets either reads stale data, as on a board with caches.
- PS clock registers (Zynq SLCR, ZynqMP CRL/CRF APB) with reset values, so pynq's own Clocks runs on
  download and `pynq.Clocks.fclk0_mhz` reads back what the overlay asked for.

Metadata: a folder with a real `<model>.bit` / `.hwh` is parsed by pynq's own parser (pynqmetadata's
RuntimeMetadataParser, as EmbeddedDevice does). A folder without them (a dry run of `sqz build`: Vivado
writes the .hwh, and none ran) is described from its manifest (`ManifestMetadata`: the block design
hw/scripts.py generates -- PS, axi_dma with its parameters, sqz_top by VLNV), says so in `described_by`,
and the placeholder .bit pynq.Overlay needs goes into a temporary folder, never into the bitstream folder.

Faults (`board.faults.arm(name)`, one batch each; FAULTS): "stall" (the accelerator stops answering),
"no_tlast" (a frame's last beat without TLAST), "decode_error" (the next DMA read gets DECERR), "short_output"
(a frame ends early, with TLAST). A DMA soft reset also clears the accelerator's stream state, as a design
whose stream reset follows the DMA's mm2s/s2mm_prmry_reset_out_n would (see host/README.md).
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from host.axi import WEIGHT_MAGIC, WORD_BITS, WeightStream, pack_lanes, unpack_lanes
from host.manifest import IP_VLNV, Manifest

DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"
SQZ_VLNV = IP_VLNV                                # Vitis HLS export of sqz_top (hw/scripts.py)
FAULTS = ("stall", "no_tlast", "decode_error", "short_output")
ZYNQ_BOARDS = ("pynq-z2",)                        # the others are ZynqMP (aarch64)

# PG021 register bits
RS, RESET = 1 << 0, 1 << 2
HALTED, IDLE, INT_ERR, SLV_ERR, DEC_ERR, IOC_IRQ, ERR_IRQ = 1, 2, 1 << 4, 1 << 5, 1 << 6, 1 << 12, 1 << 14
ERR_BITS = INT_ERR | SLV_ERR | DEC_ERR


class SimError(RuntimeError):
    """An access the hardware would answer with a bus error (no IP at that address)."""


# -- memory --------------------------------------------------------------------------------------

class _Memory:
    """CMA-like region: PynqBuffers (the CPU's view) and their DDR copies (what the DMA sees)."""

    def __init__(self, base: int, size: int):
        self.base, self.size, self.next = base, size, base
        self.blocks: dict[int, dict] = {}           # bo -> {"phys", "nbytes", "ddr", "cpu"}
        self.flushes = self.invalidates = 0

    def allocate(self, device, shape, dtype) -> PynqBuffer:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        phys = -(-self.next // 4096) * 4096
        if phys + nbytes > self.base + self.size:
            raise RuntimeError(f"simulated CMA exhausted: {nbytes} bytes asked, "
                               f"{self.base + self.size - phys} free of {self.size}")
        self.next = phys + nbytes
        bo = len(self.blocks) + 1
        buf = PynqBuffer(shape, dtype, device=device, bo=bo, coherent=False, device_address=phys)
        buf[...] = 0
        self.blocks[bo] = {"phys": phys, "nbytes": nbytes, "ddr": np.zeros(nbytes, np.uint8), "cpu": weakref.ref(buf)}
        return buf

    @property
    def free(self) -> int:
        return self.base + self.size - self.next

    def _cpu_bytes(self, bo: int) -> np.ndarray:
        cpu = self.blocks[bo]["cpu"]()
        if cpu is None:
            raise RuntimeError("flush/invalidate of a freed buffer")
        return cpu.view(np.uint8).reshape(-1)

    def flush(self, bo, offset, length):
        self.flushes += 1
        self.blocks[bo]["ddr"][offset:offset + length] = self._cpu_bytes(bo)[offset:offset + length]

    def invalidate(self, bo, offset, length):
        self.invalidates += 1
        self._cpu_bytes(bo)[offset:offset + length] = self.blocks[bo]["ddr"][offset:offset + length]

    def ddr(self, phys: int, nbytes: int) -> np.ndarray | None:
        """The DDR bytes [phys, phys + nbytes) of one live buffer, or None (the interconnect's DECERR)."""
        for b in self.blocks.values():
            if b["phys"] <= phys and phys + nbytes <= b["phys"] + b["nbytes"] and b["cpu"]() is not None:
                return b["ddr"][phys - b["phys"]:phys - b["phys"] + nbytes]
        return None


# -- the accelerator -----------------------------------------------------------------------------

class EmulatorBackend:
    """Frames computed by quant/'s bit-exact emulator from the folder's spec.json and spec.weights.npz."""
    name = "emulator"

    def __init__(self, folder: Path, manifest: Manifest):
        from model.architecture import get_architecture
        from quant.emulator import FixedPointEmulator
        from quant.fixed_point import FixedFormat
        from quant.spec import QuantSpec
        from sqz.cli_common import trained_params

        arch = get_architecture(manifest.model)
        spec = QuantSpec.load(folder / "spec.json", arch)
        params = trained_params(manifest.model)
        self.emulator = FixedPointEmulator(arch, params, spec)
        self._unloaded = None
        self._make_unloaded = lambda: FixedPointEmulator(arch, params, _zero_loadable(arch, params, spec, manifest))
        self.in_fmt = FixedFormat.parse(manifest.input.format)
        self.stream = manifest.weight_load
        self.n_out = manifest.output.n
        self.expected_weights = None
        if self.stream is not None:
            words = np.fromfile(folder / manifest.weight_load_file, dtype="<u8")
            self.expected_weights = self.stream.unpack(words)
        self.loaded = self.stream is None

    def frames(self, codes: np.ndarray) -> np.ndarray:
        """(N, H, W, C) input codes -> (N, n_out) logit codes."""
        x = np.ldexp(codes.astype(np.float64), -self.in_fmt.frac)
        if not self.loaded:
            # before a load, UltraRAM holds zeros: the loadable layers compute with zero weights
            if self._unloaded is None:
                self._unloaded = self._make_unloaded()
            return self._unloaded.logit_codes(x)
        return self.emulator.logit_codes(x)

    def load(self, words: np.ndarray) -> tuple[bool, int]:
        """The load-mode stream (header first, up to TLAST) -> (accepted, payload beats read), as sqz_axi.h.
        The emulator computes with the folder's weights, so it accepts only the folder's own stream (a
        different stream of the right length would be taken by the hardware; the csim backend takes it)."""
        payload = len(words) - 1
        ok = (self.stream is not None and len(words) >= 1 and int(words[0]) >> 32 == WEIGHT_MAGIC
              and int(words[0]) & 0xFFFFFFFF == self.stream.payload_beats and payload == self.stream.payload_beats)
        if ok:
            got = self.stream.unpack(words)
            ok = all(np.array_equal(got[k], v) for k, v in self.expected_weights.items())
        self.loaded = self.loaded or ok
        return ok, payload


def _zero_loadable(arch, params, spec, manifest):
    """The spec with the loadable layers' weight codes at zero (their biases stay: only the weight arrays are
    runtime-written; a layer "fire4" names the convs fire4_*)."""
    import dataclasses

    loadable = {a.layer for a in manifest.weight_load.arrays}
    weights = dict(spec.weights or {})
    for conv in arch.convs():
        if conv.name in loadable or any(conv.name.startswith(l + "_") for l in loadable):
            weights[conv.name] = np.zeros_like(spec.weight_codes(conv.name, params[conv.name][0]))
    return dataclasses.replace(spec, weights=weights)


class CSimBackend:
    """Frames through the compiled C simulation of the AXI top (hw/csim.py, child processes): the HLS
    project the bitstream folder was built from (same manifest key). The weight load goes to the top's
    load mode; later frames run with exactly the stream the driver sent."""
    name = "csim"

    def __init__(self, project: Path, manifest: Manifest, workers: int | None = None):
        from hw.project import Project

        self.project = Project(project)
        if self.project.key != manifest.key:
            raise ValueError(f"--project {project}: its manifest key {self.project.key[:12]} differs from the "
                             f"bitstream folder's {manifest.key[:12]}: not the design of this bitstream")
        self.sim = self.project.simulator(workers=workers, load_weights=False)   # UltraRAM at zero until a load
        self.packing = manifest.axi

    def frames_words(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, in_beats) beats -> ((N, out_beats) beats, (N, out_beats) TLAST) from the C top."""
        return self.sim.axi_words(words)

    def load(self, words: np.ndarray) -> tuple[bool, int]:
        n, reply, last = self.sim.load_reply(words)
        accepted, beats = WeightStream.reply(reply)
        if n == 1 and last == 1 and accepted:
            self.sim.weight_words = np.asarray(words, np.uint64)
            self.sim.load_weights = True
        return n == 1 and last == 1 and accepted, beats


class SqzTopModel:
    """sqz_top: AXI4-Stream in (pixels or the load stream), out (logits or the load reply), s_axilite."""

    def __init__(self, manifest: Manifest, backend, faults: "Faults"):
        self.m, self.backend, self.faults = manifest, backend, faults
        self.axi = manifest.axi
        self.control = manifest.control
        self.regs = {}
        self.mode = 0
        self.ctrl = 0x4                                     # ap_idle
        self.reset_streams()
        from quant.fixed_point import FixedFormat
        self.in_fmt = FixedFormat.parse(manifest.input.format)
        self.frames_done = 0

    def reset_streams(self):
        self.in_words: list[np.ndarray] = []               # chunks of beats
        self.in_last: list[int] = []                       # cumulative beat index after which TLAST came
        self.in_count = 0
        self.out_words = np.zeros(0, np.uint64)
        self.out_last = np.zeros(0, bool)
        self.stalled = False

    # s_axilite
    def read(self, offset: int) -> int:
        if self.control is not None and offset == self.control.ap_ctrl:
            value = self.ctrl
            self.ctrl &= ~(1 << self.control.ap_done_bit)   # ap_done: clear on read (UG1399)
            return value
        if self.control is not None and offset == self.control.mode:
            return self.mode
        return self.regs.get(offset, 0)

    def write(self, offset: int, value: int):
        if self.control is not None and offset == self.control.ap_ctrl:
            self.ctrl = (self.ctrl & ~0x81) | (value & 0x81)
            if value & 1:
                self.ctrl &= ~(1 << self.control.ap_idle_bit)
        elif self.control is not None and offset == self.control.mode:
            self.mode = value & 0xFFFFFFFF
        else:
            self.regs[offset] = value

    @property
    def running(self) -> bool:
        return self.control is None or bool(self.ctrl & 0x81)

    def _done(self):
        c = self.control
        if c is None:
            return
        self.ctrl |= (1 << c.ap_done_bit)
        if self.ctrl & (1 << c.auto_restart_bit):
            return
        self.ctrl = (self.ctrl & ~1) | (1 << c.ap_idle_bit)

    # streams
    def push(self, words: np.ndarray):
        self.in_words.append(words)
        self.in_count += len(words)
        self.in_last.append(self.in_count)

    def _take(self, n: int) -> np.ndarray:
        out, need = [], n
        while need:
            w = self.in_words[0]
            if len(w) <= need:
                out.append(w)
                need -= len(w)
                self.in_words.pop(0)
            else:
                out.append(w[:need])
                self.in_words[0] = w[need:]
                need = 0
        self.in_count -= n
        self.in_last = [t - n for t in self.in_last if t - n > 0]
        return np.concatenate(out) if out else np.zeros(0, np.uint64)

    def _emit(self, words: np.ndarray, last: np.ndarray):
        self.out_words = np.concatenate([self.out_words, words.ravel()])
        self.out_last = np.concatenate([self.out_last, last.ravel().astype(bool)])

    def step(self):
        if self.stalled or not self.running or not self.in_count:
            return
        if self.m.weight_load is not None and self.mode == 1:
            if not self.in_last:
                return                                      # the load reads up to TLAST
            words = self._take(self.in_last[0])
            ok, beats = self.backend.load(words)
            reply = np.array([(beats << 32) | int(ok)], np.uint64)
            self._emit(reply, np.array([True]))
            self._done()
            return
        n = self.in_count // self.axi.in_beats
        if self.control is not None and not self.ctrl & (1 << self.control.auto_restart_bit):
            n = min(n, 1)                                   # ap_start without auto-restart: one frame
        if n == 0:
            return
        if self.faults.take("stall"):
            self.stalled = True
            return
        words = self._take(n * self.axi.in_beats).reshape(n, self.axi.in_beats)
        if hasattr(self.backend, "frames_words"):
            out, last = self.backend.frames_words(words)
        else:
            lanes = unpack_lanes(words, self.axi.in_lane, self.in_fmt.signed)[..., :self.axi.channels]
            mask = (1 << self.axi.in_bits) - 1                 # the kernel reads the low W bits of each lane
            codes = lanes & mask
            if self.in_fmt.signed:
                codes = np.where(codes >= 1 << (self.axi.in_bits - 1), codes - (1 << self.axi.in_bits), codes)
            codes = codes.reshape(n, self.axi.height, self.axi.width, self.axi.channels)
            logits = self.backend.frames(codes)
            padded = np.zeros((n, self.axi.out_beats * self.axi.out_lanes), np.int64)
            padded[:, :self.axi.n_out] = logits
            out = pack_lanes(padded.reshape(n, self.axi.out_beats, self.axi.out_lanes), self.axi.out_lane)
            last = np.zeros((n, self.axi.out_beats), bool)
            last[:, -1] = True
        out, last = np.array(out, np.uint64), np.array(last, bool)
        if self.faults.take("no_tlast"):
            last[0, -1] = False
        if self.faults.take("short_output"):
            keep = max(1, self.axi.out_beats // 2)
            first_out, first_last = out[0, :keep].copy(), last[0, :keep].copy()
            first_last[-1] = True
            self._emit(first_out, first_last)
            out, last = out[1:], last[1:]
        self._emit(out, last)
        self.frames_done += n
        self._done()

    def pull(self, max_beats: int) -> tuple[np.ndarray, bool]:
        """Up to max_beats output beats, stopping after TLAST: (beats, TLAST seen)."""
        self.step()
        if not len(self.out_words):
            return np.zeros(0, np.uint64), False
        lasts = np.flatnonzero(self.out_last[:max_beats])
        n = int(lasts[0]) + 1 if len(lasts) else min(max_beats, len(self.out_words))
        words, tlast = self.out_words[:n], bool(len(lasts))
        self.out_words, self.out_last = self.out_words[n:], self.out_last[n:]
        return words, tlast


class Faults:
    """One-shot faults, each armed for the next batch (`arm`), consumed where it acts (`take`)."""

    def __init__(self):
        self.armed: set[str] = set()
        self.fired: list[str] = []

    def arm(self, name: str):
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; choose from {FAULTS}")
        self.armed.add(name)

    def take(self, name: str) -> bool:
        if name in self.armed:
            self.armed.discard(name)
            self.fired.append(name)
            return True
        return False


# -- the AXI DMA (PG021, direct register mode) -----------------------------------------------------

class _Channel:
    def __init__(self, base: int):
        self.base = base
        self.reset()

    def reset(self):
        self.cr, self.sr, self.addr, self.length = 0, HALTED, 0, 0
        self.busy, self.done_bytes = False, 0

    def halt(self, err: int):
        self.sr = (self.sr | err | ERR_IRQ | HALTED) & ~IDLE
        self.cr &= ~RS
        self.busy = False


class AxiDmaModel:
    MM2S, S2MM = 0x00, 0x30

    def __init__(self, board: "SimBoard", data_bytes: int = 8, length_bits: int = 26):
        self.board = board
        self.data_bytes, self.length_bits = data_bytes, length_bits
        self.ch = {self.MM2S: _Channel(self.MM2S), self.S2MM: _Channel(self.S2MM)}

    def read(self, offset: int) -> int:
        self.step()
        base = self.MM2S if offset < 0x30 else self.S2MM
        c, reg = self.ch[base], offset - base
        if reg == 0x00:
            return c.cr
        if reg == 0x04:
            return c.sr
        if reg == 0x18:
            return c.addr & 0xFFFFFFFF
        if reg == 0x1C:
            return c.addr >> 32
        if reg == 0x28:
            return c.done_bytes if base == self.S2MM and not c.busy else c.length
        return 0

    def write(self, offset: int, value: int):
        base = self.MM2S if offset < 0x30 else self.S2MM
        c, reg = self.ch[base], offset - base
        if reg == 0x00:
            if value & RESET:                               # soft reset: both channels (PG021), self-clearing
                for ch in self.ch.values():
                    ch.reset()
                self.board.accel_reset()
                return
            was_running = c.cr & RS
            c.cr = value & ~RESET
            if value & RS and not was_running and not c.sr & ERR_BITS:
                c.sr &= ~(HALTED | IDLE)                    # running; Idle stays 0 until a transfer completes
            elif not value & RS:
                c.sr = (c.sr | HALTED) & ~IDLE
                c.busy = False
        elif reg == 0x04:
            c.sr &= ~(value & (IOC_IRQ | ERR_IRQ))           # write one to clear
        elif reg == 0x18:
            c.addr = (c.addr & ~0xFFFFFFFF) | value
        elif reg == 0x1C:
            c.addr = (c.addr & 0xFFFFFFFF) | (value << 32)
        elif reg == 0x28:
            if c.sr & HALTED:
                return                                      # PG021: LENGTH has no effect while halted
            c.length = value & ((1 << self.length_bits) - 1)
            if c.length == 0:
                c.halt(INT_ERR)
                return
            c.busy, c.done_bytes = True, 0
            c.sr &= ~IDLE
            if base == self.MM2S:
                self._mm2s(c)
        self.step()

    def _mm2s(self, c: _Channel):
        data = self.board.memory.ddr(c.addr, c.length)
        if data is None or self.board.faults.take("decode_error"):
            c.halt(DEC_ERR)
            return
        pad = (-len(data)) % 8
        raw = np.concatenate([data, np.zeros(pad, np.uint8)]) if pad else data
        self.board.accel.push(raw.view("<u8").astype(np.uint64))   # TLAST on the transfer's last beat
        c.busy = False
        c.sr |= IDLE | IOC_IRQ

    def step(self):
        c = self.ch[self.S2MM]
        if not c.busy:
            return
        room = (c.length - c.done_bytes) // 8
        words, tlast = self.board.accel.pull(room) if room else (np.zeros(0, np.uint64), False)
        if len(words):
            dst = self.board.memory.ddr(c.addr + c.done_bytes, 8 * len(words))
            if dst is None:
                c.halt(DEC_ERR)
                return
            dst[:] = words.astype("<u8").view(np.uint8)
            c.done_bytes += 8 * len(words)
        if tlast:
            c.busy = False
            c.sr |= IDLE | IOC_IRQ
        elif c.done_bytes >= c.length and len(self.board.accel.out_words):
            c.halt(INT_ERR)                                 # the packet is longer than LENGTH


# -- PS registers ----------------------------------------------------------------------------------

class _RegisterFile:
    def __init__(self, size: int):
        self.words = np.zeros(size // 4, np.uint32)

    def read(self, offset: int) -> int:
        return int(self.words[offset // 4])

    def write(self, offset: int, value: int):
        self.words[offset // 4] = value & 0xFFFFFFFF


# -- metadata from the manifest ------------------------------------------------------------------------

DMA_BASE = {"zynq": 0x40400000, "zynqmp": 0xA0000000}
SQZ_BASE = {"zynq": 0x43C00000, "zynqmp": 0xA0010000}


def _reg(offset, description, fields):
    return {"address_offset": offset, "size": 32, "access": "read-write", "description": description,
            "fields": {n: {"bit_offset": b, "bit_width": w, "access": a, "description": n} for n, b, w, a in fields}}


class ManifestMetadata:
    """What pynq's parser would give for the block design hw/scripts.py generates, built from the manifest:
    the PS, `axi_dma` (xilinx.com:ip:axi_dma:7.1, 64-bit, c_sg_length_width 26, no scatter-gather, no
    interrupts wired) and `sqz` (IP_VLNV, sqz.local:hls:sqz_squeezenet:1.0) when the design has control registers.
    Addresses are those Vivado's assign_bd_address gives the first M_AXI_GP peripheral on each family."""

    described_by = "manifest (no .hwh: the simulated board describes the block design hw/scripts.py generates)"

    def __init__(self, manifest: Manifest):
        fam = "zynq" if manifest.board in ZYNQ_BOARDS else "zynqmp"
        dma_params = {"c_include_sg": "0", "c_sg_length_width": "26", "c_include_mm2s": "1", "c_include_s2mm": "1",
                      "c_m_axi_mm2s_data_width": "64", "c_m_axi_s2mm_data_width": "64",
                      "c_m_axis_mm2s_tdata_width": "64", "c_s_axis_s2mm_tdata_width": "64",
                      "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0", "c_micro_dma": "0",
                      "c_mm2s_burst_size": "16", "c_s2mm_burst_size": "16"}
        dma_params.update({k.upper(): v for k, v in dma_params.items()})
        status = [("Halted", 0, 1, "read-only"), ("Idle", 1, 1, "read-only"), ("DMAIntErr", 4, 1, "read-only"),
                  ("DMASlvErr", 5, 1, "read-only"), ("DMADecErr", 6, 1, "read-only"),
                  ("IOC_Irq", 12, 1, "read-write"), ("Err_Irq", 14, 1, "read-write")]
        control = [("RS", 0, 1, "read-write"), ("Reset", 2, 1, "read-write"), ("IOC_IrqEn", 12, 1, "read-write"),
                   ("Err_IrqEn", 14, 1, "read-write")]
        regs = {}
        for ch, base in (("MM2S", 0x00), ("S2MM", 0x30)):
            regs[f"{ch}_DMACR"] = _reg(base, f"{ch} DMA Control Register", control)
            regs[f"{ch}_DMASR"] = _reg(base + 4, f"{ch} DMA Status Register", status)
            addr = "SA" if ch == "MM2S" else "DA"
            regs[f"{ch}_{addr}"] = _reg(base + 0x18, f"{ch} address", [("addr", 0, 32, "read-write")])
            regs[f"{ch}_{addr}_MSB"] = _reg(base + 0x1C, f"{ch} address (upper)", [("addr", 0, 32, "read-write")])
            regs[f"{ch}_LENGTH"] = _reg(base + 0x28, f"{ch} buffer length", [("length", 0, 26, "read-write")])
        entry = lambda vlnv, addr, params, registers, mem_id: {
            "type": vlnv, "mem_id": mem_id, "memtype": "REGISTER", "gpio": {}, "interrupts": {}, "driver": None,
            "device": None, "state": None, "bdtype": None, "phys_addr": addr, "addr_range": 0x10000,
            "fullpath": None, "parameters": params, "registers": registers}
        self.ip_dict = {"axi_dma": {**entry(DMA_VLNV, DMA_BASE[fam], dma_params, regs, "S_AXI_LITE"),
                                    "fullpath": "axi_dma"}}
        c = manifest.control
        if c is not None:
            sregs = {"CTRL": _reg(c.ap_ctrl, "Control signals", [("AP_START", c.ap_start_bit, 1, "read-write"),
                                                                  ("AP_DONE", c.ap_done_bit, 1, "read-only"),
                                                                  ("AP_IDLE", c.ap_idle_bit, 1, "read-only"),
                                                                  ("AP_READY", c.ap_ready_bit, 1, "read-only"),
                                                                  ("AUTO_RESTART", c.auto_restart_bit, 1, "read-write")]),
                     "GIER": _reg(c.gier, "Global Interrupt Enable", [("Enable", 0, 1, "read-write")]),
                     "IP_IER": _reg(c.ier, "IP Interrupt Enable", [("CHAN0_INT_EN", 0, 1, "read-write")]),
                     "IP_ISR": _reg(c.isr, "IP Interrupt Status", [("CHAN0_INT_ST", 0, 1, "read-write")]),
                     "mode": _reg(c.mode, "Data signal of mode", [("mode", 0, 32, "read-write")])}
            self.ip_dict["sqz"] = {**entry(SQZ_VLNV, SQZ_BASE[fam], {"C_S_AXI_CONTROL_DATA_WIDTH": "32"}, sregs,
                                           "s_axi_control"), "fullpath": "sqz"}
        self.mem_dict, self.gpio_dict, self.interrupt_pins, self.interrupt_controllers = {}, {}, {}, {}
        self.hierarchy_dict = {}
        self.clock_dict = {0: {"enable": 1, "frequency": float(manifest.clock_mhz), "divisor0": 1, "divisor1": 1,
                               "src_sel": None}}
        self.systemgraph = None
        self.family = fam


# -- the device ----------------------------------------------------------------------------------------

class SimBoard(pynq.Device):
    """A pynq.Device with memory-mapped registers (REGISTER_RW), allocate, download and the models above.

    No _probe_: pynq never enumerates it; pass it as `device=` (or set pynq.Device.active_device)."""

    CMA_BASE, CMA_SIZE = 0x1000_0000, 256 << 20

    def __init__(self, manifest: Manifest, backend, folder: Path | None = None, cma_bytes: int | None = None,
                 tag: str = "sqz-sim"):
        super().__init__(tag)
        self.capabilities = {"REGISTER_RW": True}
        self.manifest, self.backend, self.folder = manifest, backend, folder
        self.name = f"sim-{manifest.board}"
        self.arch = "armv7l" if manifest.board in ZYNQ_BOARDS else "aarch64"
        self.memory = _Memory(self.CMA_BASE, cma_bytes or self.CMA_SIZE)
        self.faults = Faults()
        self.accel = SqzTopModel(manifest, backend, self.faults)
        self.lock = threading.Lock()
        self.ranges: list[tuple[int, int, object]] = []
        self.timestamp = ""
        self.bitfile_name = None
        self.described_by = None
        self._tmp = None
        self._ps = {}
        self.register_accesses = 0                          # MMIO reads and writes (the driver's bookkeeping)
        self._add_ps()

    # -- construction from a folder ------------------------------------------------------------
    @classmethod
    def for_folder(cls, folder, backend: str = "emulator", project=None, workers=None, **kw) -> "SimBoard":
        folder = Path(folder)
        m = Manifest.load(folder)
        if backend == "emulator":
            be = EmulatorBackend(folder, m)
        elif backend == "csim":
            if project is None:
                raise ValueError("--sim csim needs the HLS project the bitstream was built from (--project DIR)")
            be = CSimBackend(Path(project), m, workers)
        else:
            raise ValueError(f"unknown simulation backend {backend!r} (emulator or csim)")
        return cls(m, be, folder, **kw)

    def bitfile_for(self, folder: Path) -> str:
        """The .bit pynq.Overlay should open: the folder's own, or a placeholder in a temporary folder (the
        folder has none: a dry run), with the metadata then coming from the manifest."""
        bit = folder / f"{self.manifest.model}.bit"
        if bit.exists() and bit.with_suffix(".hwh").exists():
            return str(bit.resolve())
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="sqz-sim-")
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
        placeholder = Path(self._tmp, f"{self.manifest.model}.bit")
        placeholder.write_bytes(b"sqz simulated board placeholder: no bitstream\n")
        return str(placeholder)

    # -- pynq.Device interface ------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name, partial=False):
        hwh = Path(bitfile_name).with_suffix(".hwh")
        if hwh.exists():
            from pynqmetadata.frontends import Metadata
            from pynqmetadata.views.runtime import RuntimeMetadataParser

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parser = RuntimeMetadataParser(Metadata(input=str(hwh)))
            self.described_by = f"{hwh.name} (pynq's parser)"
        else:
            parser = ManifestMetadata(self.manifest)
            self.described_by = parser.described_by
        self._map(parser.ip_dict)
        return parser

    def _map(self, ip_dict):
        self.ranges = [r for r in self.ranges if r[2] in self._ps.values()]
        for name, ip in ip_dict.items():
            if "phys_addr" not in ip:
                continue
            model = None
            if ip["type"].startswith("xilinx.com:ip:axi_dma:"):
                p = ip.get("parameters", {})
                self.dma = AxiDmaModel(self, int(p.get("c_m_axi_mm2s_data_width", 32)) // 8,
                                       int(p.get("c_sg_length_width", 26)))
                model = self.dma
            elif ip["type"] == SQZ_VLNV:
                model = _AccelRegs(self.accel)
            else:
                model = _RegisterFile(ip["addr_range"])    # any other IP: plain registers
            self.ranges.append((ip["phys_addr"], ip["addr_range"], model))

    def _add_ps(self):
        from pynq.mmio import MMIO
        from pynq.ps import ZU_CRL_REGISTERS, ZYNQ_SLCR_REGISTERS
        from pynq.registers import RegisterMap

        if self.arch == "armv7l":
            self._ps = {"slcr": _RegisterFile(0x1000)}
            self.ranges.append((0xF8000000, 0x1000, self._ps["slcr"]))
            regs = RegisterMap.create_subclass("SLCR", ZYNQ_SLCR_REGISTERS)(MMIO(0xF8000000, 0x200, device=self).array)
            regs.IO_PLL_CTRL.PLL_FDIV = 20                  # 50 MHz x 20 = 1 GHz
            regs.FPGA0_CLK_CTRL.SRCSEL, regs.FPGA0_CLK_CTRL.DIVISOR0, regs.FPGA0_CLK_CTRL.DIVISOR1 = 0, 10, 1
        else:
            self._ps = {"crl": _RegisterFile(0x1000), "crf": _RegisterFile(0x1000)}
            self.ranges += [(0xFF5E0000, 0x1000, self._ps["crl"]), (0xFD1A0000, 0x1000, self._ps["crf"])]
            crl = RegisterMap.create_subclass("CRL", ZU_CRL_REGISTERS)(MMIO(0xFF5E0000, 0x100, device=self).array)
            crl.IOPLL_CTRL.FBDIV, crl.IOPLL_CTRL.DIV2 = 90, 1   # 33.333 MHz x 90 / 2 = 1.5 GHz
            crl.PL0_REF_CTRL.SRCSEL, crl.PL0_REF_CTRL.DIVISOR0, crl.PL0_REF_CTRL.DIVISOR1 = 0, 15, 1

    def _find(self, address: int, length: int):
        for base, size, model in self.ranges:
            if base <= address and address + length <= base + size:
                return address - base, model
        raise SimError(f"bus error: no IP at {address:#x} (+{length} bytes) on the simulated {self.manifest.board}")

    def read_registers(self, address, length):
        self.register_accesses += 1
        with self.lock:
            offset, model = self._find(address, length)
            return b"".join(int(model.read(offset + i)).to_bytes(4, "little") for i in range(0, length, 4))[:length]

    def write_registers(self, address, data):
        self.register_accesses += 1
        with self.lock:
            offset, model = self._find(address, len(data))
            for i in range(0, len(data), 4):
                model.write(offset + i, int.from_bytes(bytes(data[i:i + 4]).ljust(4, b"\0"), "little"))

    def allocate(self, shape, dtype, **kwargs):
        if isinstance(shape, int):
            shape = (shape,)
        return self.memory.allocate(self, tuple(shape), dtype)

    def flush(self, bo, offset, vaddr, length):
        self.memory.flush(bo, offset, length)

    def invalidate(self, bo, offset, vaddr, length):
        self.memory.invalidate(bo, offset, length)

    @property
    def cma_free(self) -> int:
        return self.memory.free

    def download(self, bitstream, parser=None):
        from pynq.ps import Clocks

        # pynq.Clocks caches one clock object for the process (a board has one PS); a new simulated
        # board has its own PS registers
        if "_real_instance" in Clocks.__dict__:
            delattr(Clocks, "_real_instance")
        Clocks.set_device(self)
        if hasattr(self, "dma"):
            for ch in self.dma.ch.values():
                ch.reset()
        self.accel.reset_streams()
        self.post_download(bitstream, parser)

    def accel_reset(self):
        self.accel.reset_streams()


class _AccelRegs:
    def __init__(self, accel: SqzTopModel):
        self.accel = accel

    def read(self, offset):
        return self.accel.read(offset)

    def write(self, offset, value):
        self.accel.write(offset, value)
        self.accel.step()
