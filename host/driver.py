"""The PYNQ driver: SqueezeNet on the board through the AXI DMA, everything model-specific from manifest.json.

    from host.driver import SqzOverlay
    ov = SqzOverlay("bitstreams/zcu104")              # .bit, the .hwh beside it, manifest.json
    logits = ov.classify(images)                      # float NHWC images (Caffe-preprocessed) -> logit codes
    codes = ov.run(input_codes)                       # integer input codes -> logit codes
    print(ov.timing.summary(), ov.throughput_test())

Board module (numpy and pynq only, plus host/ and quant/fixed_point.py, the one definition of the formats).

- `SqzOverlay` is a pynq.Overlay: the DMA and the accelerator are found by VLNV in the .hwh's IP dict
  (`xilinx.com:ip:axi_dma:*`, `sqz.local:hls:sqz_squeezenet:*`, host/manifest.py IP_VLNV), never by instance name; pynq binds its own
  `pynq.lib.dma.DMA` to the DMA, and `SqzTop` (below) to the accelerator.
- Buffers: two input and two output buffers from `pynq.allocate`, made once and reused; the batch is sized
  against the DMA's length register (c_sg_length_width) and the free CMA. Per batch: the first frame's
  receive is posted before the send, the next batch is packed while the accelerator runs (double
  buffering), each frame's receive is re-posted after its TLAST (the simple DMA ends a transfer there).
  pynq's transfer() flushes before the send; the receive is invalidated after it (pynq's wait(), called
  only once the channel reads idle, so it cannot spin).
- Every wait has a deadline (`timeout_s`, default from the manifest's frame rate). pynq's DMA.wait() is an
  unbounded busy loop (hls4ml issue #776); here a timeout raises `DmaTimeout` saying what was in flight
  (channel, bytes, batch, frame, both status registers decoded), then the DMA is soft-reset (PG021 DMACR.Reset),
  restarted and drained, and the driver stays usable. DMA error bits become `DmaError` (internal: LENGTH 0 or
  a packet longer than the buffer, e.g. a missing TLAST; slave; decode: a bad address).
- Designs with UltraRAM weights: `load_weights()` (mode = 1, the stream, the reply beat checked) runs before
  the first frame; frames are refused until it succeeded.
- Timing per batch: preprocessing (float -> codes), packing, DMA + compute, unpacking; frames/s and latency
  percentiles (`Timing`), and `throughput_test()` (FINN's: runtime, images/s, MB/s, batch size, clock).
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pynq
from pynq import DefaultIP

from host.axi import LOAD_MODE, WeightStream
from host.manifest import IP_VLNV, Manifest, ManifestError
from quant.fixed_point import FixedFormat
from sqz.errors import SqzError

DMA_VLNV_PREFIX = "xilinx.com:ip:axi_dma:"
SQZ_VLNV_PREFIX = IP_VLNV.rsplit(":", 1)[0] + ":"     # any version
MM2S, S2MM = 0x00, 0x30                    # channel register bases (PG021)
DMACR, DMASR = 0x00, 0x04
SR_BITS = {0: "halted", 1: "idle", 3: "sg_included", 4: "internal_error", 5: "slave_error", 6: "decode_error",
           12: "ioc_irq", 14: "err_irq"}
ERR_MASK = 0x70
BOARD_NAMES = {"pynq-z2": ("pynq-z2", "pynqz2"), "ultra96-v2": ("ultra96", "ultra96v2", "ultra96-v2"),
               "kv260": ("kv260", "kv260_som", "kria"), "zcu104": ("zcu104",)}


class DriverError(SqzError):
    """The overlay cannot be used: missing or mismatching files, wrong board, refused frames."""


class DmaError(DriverError):
    """The DMA flagged an error (status bits in the message); the DMA was reset and the driver is usable."""

    def __init__(self, message: str, state: dict):
        super().__init__(message)
        self.state = state


class DmaTimeout(DmaError):
    """A wait passed its deadline; the message says what was in flight."""


class WeightLoadError(DriverError):
    """The accelerator refused the weight-load stream (its reply beat in the message)."""


def decode_status(sr: int) -> str:
    bits = [name for bit, name in SR_BITS.items() if sr >> bit & 1]
    return f"{sr:#06x} ({', '.join(bits) or 'running, busy'})"


def find_by_vlnv(ip_dict, prefix: str) -> list[str]:
    """Names of the IP dict's entries whose VLNV starts with prefix (e.g. "xilinx.com:ip:axi_dma:")."""
    return sorted(name for name, ip in ip_dict.items() if str(ip.get("type", "")).startswith(prefix))


def cma_free_bytes(device) -> int | None:
    """Free contiguous memory for pynq.allocate: the device's own figure, else /proc/meminfo CmaFree."""
    if hasattr(device, "cma_free"):
        return int(device.cma_free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("CmaFree:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class SqzTop(DefaultIP):
    """The accelerator's s_axilite (designs with a `mode` argument); offsets from the manifest."""
    bindto = [IP_VLNV]

    def __init__(self, description):
        super().__init__(description=description)


@dataclass
class Timing:
    """Seconds per batch of each stage, and the frames of each batch."""
    preprocess: list = field(default_factory=list)
    pack: list = field(default_factory=list)
    dma_compute: list = field(default_factory=list)
    unpack: list = field(default_factory=list)
    frames: list = field(default_factory=list)

    def add(self, pre, pack, dma, unpack, n):
        for name, v in (("preprocess", pre), ("pack", pack), ("dma_compute", dma), ("unpack", unpack), ("frames", n)):
            getattr(self, name).append(v)

    def summary(self) -> dict:
        n = int(np.sum(self.frames)) if self.frames else 0
        total = [sum(t) for t in zip(self.preprocess, self.pack, self.dma_compute, self.unpack)]
        per_image = np.repeat(np.asarray(total) / np.maximum(self.frames, 1), self.frames) if n else np.zeros(0)
        batch_ms = np.asarray(total) * 1e3
        out = {"frames": n, "batches": len(self.frames),
               "seconds": {k: float(np.sum(getattr(self, k))) for k in ("preprocess", "pack", "dma_compute", "unpack")},
               "frames_per_s": float(n / np.sum(total)) if n and np.sum(total) > 0 else None,
               "batch_latency_ms": {"p50": float(np.percentile(batch_ms, 50)), "p99": float(np.percentile(batch_ms, 99))}
               if n else None,
               "per_image_ms": {"p50": float(np.percentile(per_image * 1e3, 50)),
                                "p99": float(np.percentile(per_image * 1e3, 99))} if n else None}
        host = out["seconds"]["pack"] + out["seconds"]["unpack"]
        out["host_us_per_frame"] = 1e6 * host / n if n else None
        return out


class SqzOverlay(pynq.Overlay):
    """The sqz design on the board. `folder`: bitstreams/<board>/ (or a project folder with a bitstream).

    device: a pynq.Device (default: the active one; host/sim.py SimBoard for the simulated board).
    batch_size: frames per DMA transfer (capped by the DMA length register and the free CMA).
    timeout_s: the deadline of one batch (default: 20x the manifest's frame time, at least 5 s)."""

    def __init__(self, folder, device=None, batch_size: int = 8, timeout_s: float | None = None,
                 board: str | None = None, download: bool = True, load_weights: bool = True):
        folder = Path(folder)
        try:
            manifest = Manifest.load(folder)
        except ManifestError as e:
            raise DriverError(f"{folder}: {e}") from None
        device = device or pynq.Device.active_device
        bit = self._bitfile(folder, manifest, device)
        self._check_board(manifest, device, board)
        object.__setattr__(self, "manifest", manifest)
        super().__init__(bit, download=download, device=device)
        self.folder = folder
        self.described_by = getattr(device, "described_by", None) or f"{Path(bit).with_suffix('.hwh').name}"
        self.in_fmt = FixedFormat.parse(manifest.input.format)
        self.axi = manifest.axi
        self.in_bytes, self.out_bytes = 8 * self.axi.in_beats, 8 * self.axi.out_beats
        self.dma_name = self._one(DMA_VLNV_PREFIX, "AXI DMA")
        self._precheck_dma()
        self.dma = getattr(self, self.dma_name)             # pynq's DMA driver (its start() spins: checked above)
        self.accel_name = self._one(SQZ_VLNV_PREFIX, "sqz_top accelerator") if manifest.control else None
        self.accel = getattr(self, self.accel_name) if self.accel_name else None
        per_frame = getattr(device, "seconds_per_frame", None) or 1.0 / max(manifest.resources.fps, 1e-3)
        self.timeout_s = timeout_s
        self._per_frame_s = per_frame
        self.batch_size = self._size_batch(batch_size)
        self.timing = Timing()
        self.recoveries: list[dict] = []
        self._alloc()
        self.weights_loaded = manifest.weight_load is None
        if not self.weights_loaded and load_weights:
            self.load_weights()
        elif self.accel is not None and self.weights_loaded:
            self._start_frames()

    # -- set-up ----------------------------------------------------------------------------------
    @staticmethod
    def _bitfile(folder: Path, m: Manifest, device) -> str:
        bit = folder / f"{m.model}.bit"
        if hasattr(device, "bitfile_for"):                 # the simulated board: a placeholder where none exists
            return device.bitfile_for(folder)
        for f in (bit, bit.with_suffix(".hwh")):
            if not f.exists():
                raise DriverError(f"{f}: missing (a board needs the bitstream and the .hwh beside it; "
                                  f"`sqz build` writes both where Vivado ran)")
        if m.bit_sha256 is None:
            raise DriverError(f"{folder / 'manifest.json'}: bit_sha256 is null but {bit.name} exists: the manifest "
                              f"is not the one `sqz build` wrote for this bitstream")
        digest = hashlib.sha256(bit.read_bytes()).hexdigest()
        if digest != m.bit_sha256:
            raise DriverError(f"{bit}: sha256 {digest[:12]}... differs from the manifest's bit_sha256 "
                              f"{m.bit_sha256[:12]}...: the manifest describes another bitstream")
        return str(bit.resolve())

    @staticmethod
    def _check_board(m: Manifest, device, board: str | None):
        board = board or getattr(device, "board", None) or os.environ.get("BOARD")
        if board is None:
            return
        names = BOARD_NAMES.get(m.board, (m.board,))
        if board.lower().replace("_", "-") not in names and board.lower() not in names:
            raise DriverError(f"manifest.json is for {m.board}, this board is {board}: use bitstreams/"
                              f"{board.lower()}/ or build the design for it")

    def _one(self, prefix: str, what: str) -> str:
        names = find_by_vlnv(self.ip_dict, prefix)
        if len(names) != 1:
            raise DriverError(f"{self.bitfile_name}: expected one {what} ({prefix}*) in the metadata, found "
                              f"{names or 'none'} ({self.described_by})")
        return names[0]

    def _precheck_dma(self, within_s: float = 1.0):
        """pynq's DMA constructor starts both channels and spins until they run; a DMA that never leaves
        halt would hang it. So first: soft reset and start through a plain MMIO, with a deadline."""
        ip = self.ip_dict[self.dma_name]
        mmio = pynq.MMIO(ip["phys_addr"], ip["addr_range"], device=self.device)
        mmio.write(MM2S + DMACR, 0x4)
        end = time.monotonic() + within_s
        while mmio.read(MM2S + DMACR) & 0x4:
            if time.monotonic() > end:
                raise DriverError(f"{self.dma_name}: the AXI DMA did not leave its soft reset within {within_s} s "
                                  f"(DMACR {mmio.read(MM2S + DMACR):#x}): is the bitstream loaded and clocked?")
        for base in (MM2S, S2MM):
            mmio.write(base + DMACR, 0x1)
            while mmio.read(base + DMASR) & 0x1:
                if time.monotonic() > end:
                    raise DriverError(f"{self.dma_name}: the DMA channel at {base:#x} stays halted after RS = 1 "
                                      f"(status {decode_status(mmio.read(base + DMASR))})")

    def _size_batch(self, want: int) -> int:
        if want < 1:
            raise DriverError(f"batch size must be >= 1, got {want}")
        max_len = self.dma.buffer_max_size               # 2**c_sg_length_width - 1 (pynq read it from the .hwh)
        by_length = max_len // self.in_bytes
        if by_length < 1:
            raise DriverError(f"one frame is {self.in_bytes} bytes, more than the DMA's length register allows "
                              f"({max_len}); rebuild with a wider c_sg_length_width")
        free = cma_free_bytes(self.device)
        by_cma = (free // 2) // (2 * (self.in_bytes + self.out_bytes)) if free else want   # half the CMA at most
        if by_cma < 1:
            raise DriverError(f"{free} bytes of CMA free: not enough for two frame buffers")
        return int(min(want, by_length, by_cma))

    def _alloc(self):
        b = self.batch_size
        self.in_bufs = [pynq.allocate((b, self.axi.in_beats), np.uint64, target=self.device) for _ in range(2)]
        self.out_bufs = [pynq.allocate((b, self.axi.out_beats), np.uint64, target=self.device) for _ in range(2)]
        self.scratch = pynq.allocate((max(self.axi.out_beats, 64),), np.uint64, target=self.device)

    def deadline(self, frames: int) -> float:
        return self.timeout_s if self.timeout_s is not None else max(5.0, 20 * frames * self._per_frame_s)

    # -- accelerator control -----------------------------------------------------------------------
    def _start_frames(self):
        c = self.manifest.control
        self.accel.write(c.mode, 0)
        self.accel.write(c.ap_ctrl, (1 << c.auto_restart_bit) | (1 << c.ap_start_bit))

    def load_weights(self, words: np.ndarray | None = None) -> tuple[bool, int]:
        """Send the weight-load stream (default: the folder's weights_stream.bin) with mode = 1; frames are
        refused until this succeeded. Returns (accepted, payload beats the accelerator read)."""
        m, c = self.manifest, self.manifest.control
        if m.weight_load is None:
            raise DriverError("this design has no loadable weights (manifest weight_load is null)")
        if words is None:
            path = self.folder / m.weight_load_file
            try:
                words = np.fromfile(path, dtype="<u8")
            except OSError as e:
                raise DriverError(f"{path}: cannot read the weight-load stream ({e})") from None
        words = np.asarray(words, np.uint64)
        self.weights_loaded = False
        self.accel.write(c.ap_ctrl, 0)
        self.accel.write(c.mode, LOAD_MODE)
        self.accel.write(c.ap_ctrl, 1 << c.ap_start_bit)
        buf = pynq.allocate((len(words),), np.uint64, target=self.device)
        try:
            buf[:] = words
            reply = self.scratch
            deadline = time.monotonic() + max(5.0, self.deadline(1) * 4)
            self._recv(reply, 0, 8)
            self._send(buf, 8 * len(words))
            self._wait(S2MM, "weight load reply", 8, deadline)
            self._wait(MM2S, "weight load", 8 * len(words), deadline)
            accepted, beats = WeightStream.reply(int(reply[0]))
            while self.accel.read(c.ap_ctrl) & (1 << c.ap_idle_bit) == 0:
                if time.monotonic() > deadline:
                    raise DmaTimeout("weight load: the accelerator did not return to idle (ap_ctrl "
                                     f"{self.accel.read(c.ap_ctrl):#x})", self.state("weight load", 0, 0))
        finally:
            buf.freebuffer()
        if not accepted or beats != m.weight_load.payload_beats:
            raise WeightLoadError(f"weight load refused by the accelerator: reply {int(reply[0]):#018x} (accepted "
                                  f"{accepted}, {beats} payload beats read of {m.weight_load.payload_beats}); "
                                  f"frames stay refused")
        self.weights_loaded = True
        self._start_frames()
        return accepted, beats

    # -- DMA with deadlines --------------------------------------------------------------------------
    def _sr(self, base: int) -> int:
        return self.dma.mmio.read(base + DMASR)

    def state(self, what: str, nbytes: int, batch: int, frame: int | None = None) -> dict:
        return {"in_flight": what, "bytes": nbytes, "batch": batch, "frame": frame,
                "mm2s_status": decode_status(self._sr(MM2S)), "s2mm_status": decode_status(self._sr(S2MM))}

    def _send(self, buf, nbytes: int):
        self.dma.sendchannel.transfer(buf, nbytes=nbytes)   # pynq flushes the buffer first

    def _recv(self, buf, start: int, nbytes: int):
        self.dma.recvchannel.transfer(buf, start=start, nbytes=nbytes)

    def _wait(self, base: int, what: str, nbytes: int, deadline: float, batch: int = 0, frame: int | None = None):
        """Poll the channel's status until idle, an error bit or the deadline; then pynq's wait() (which no
        longer spins: the channel is idle) invalidates a receive buffer and reads the bytes moved."""
        channel = self.dma.sendchannel if base == MM2S else self.dma.recvchannel
        spins = 0
        while True:
            sr = self._sr(base)
            other = self._sr(S2MM if base == MM2S else MM2S)      # an error on either channel ends the wait
            if (sr | other) & ERR_MASK:
                state = self.state(what, nbytes, batch, frame)
                bad_base = base if sr & ERR_MASK else (S2MM if base == MM2S else MM2S)
                bad = sr if sr & ERR_MASK else other
                kinds = [SR_BITS[b] for b in (4, 5, 6) if bad >> b & 1]
                self._recover(state)
                raise DmaError(f"DMA {'MM2S' if bad_base == MM2S else 'S2MM'} {', '.join(kinds)} during {what} "
                               f"({nbytes} bytes, batch {batch}, frame {frame}): status {state['mm2s_status']} / "
                               f"{state['s2mm_status']}; the DMA was reset", state)
            if sr & 0x2:
                break
            if time.monotonic() > deadline:
                state = self.state(what, nbytes, batch, frame)
                self._recover(state)
                raise DmaTimeout(f"timeout: {what} on {'MM2S' if base == MM2S else 'S2MM'} ({nbytes} bytes, batch "
                                 f"{batch}, frame {frame}) not done by its deadline ({self.deadline(self.batch_size):.1f} s per batch); "
                                 f"MM2S {state['mm2s_status']}, S2MM {state['s2mm_status']}; the DMA was reset",
                                 state)
            spins += 1
            if spins > 64:
                time.sleep(20e-6)
        channel.wait()
        return channel.transferred

    def _reset_dma(self, within_s: float = 1.0):
        mmio = self.dma.mmio
        mmio.write(MM2S + DMACR, 0x4)                       # PG021 soft reset: both channels, self-clearing
        end = time.monotonic() + within_s
        while mmio.read(MM2S + DMACR) & 0x4 or mmio.read(S2MM + DMACR) & 0x4:
            if time.monotonic() > end:
                raise DriverError(f"the AXI DMA did not leave reset within {within_s} s (DMACR "
                                  f"{mmio.read(MM2S + DMACR):#x}); reload the overlay")
        for base, ch in ((MM2S, self.dma.sendchannel), (S2MM, self.dma.recvchannel)):
            mmio.write(base + DMACR, 0x1)
            while self._sr(base) & 0x1:
                if time.monotonic() > end:
                    raise DriverError(f"the AXI DMA channel at {base:#x} did not start after its reset "
                                      f"(status {decode_status(self._sr(base))}); reload the overlay")
            ch.start()                                       # running already: pynq's loop ends at once

    def _recover(self, state: dict):
        """After an error or a timeout: reset the DMA, then drain what the accelerator still had to say."""
        self._reset_dma()
        drained = 0
        for _ in range(8):
            self.dma.recvchannel.transfer(self.scratch)
            end = time.monotonic() + 0.05
            while not self._sr(S2MM) & 0x72 and time.monotonic() < end:
                pass
            if self._sr(S2MM) & 0x2:
                self.dma.recvchannel.wait()
                drained += self.dma.recvchannel.transferred
                continue
            break
        self._reset_dma()
        if self.accel is not None and self.weights_loaded:
            self._start_frames()
        self.recoveries.append({**state, "drained_bytes": drained})

    # -- frames ---------------------------------------------------------------------------------------
    def quantize(self, images: np.ndarray) -> np.ndarray:
        """Float NHWC images -> input codes, exactly as the accelerator's input cast (quant/fixed_point.py)."""
        x = np.asarray(images)
        if x.shape[-3:] != tuple(self.manifest.input.shape):
            raise DriverError(f"images of shape {x.shape}, the design takes (N, "
                              f"{', '.join(map(str, self.manifest.input.shape))})")
        return self.in_fmt.quantize(x.astype(np.float64))

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Float NHWC images (Caffe-preprocessed) -> int64 logit codes (N, classes)."""
        t0 = time.perf_counter()
        codes = self.quantize(images)
        return self.run(codes, preprocess_s=time.perf_counter() - t0)

    def run(self, codes: np.ndarray, preprocess_s: float = 0.0) -> np.ndarray:
        """Integer input codes (N, H, W, C) -> int64 logit codes (N, classes), batch by batch, double-buffered."""
        codes = np.asarray(codes)
        if codes.ndim == 3:
            codes = codes[None]
        if not self.weights_loaded:
            raise DriverError("frames refused: the weights are not loaded (load_weights() must succeed first; "
                              "UltraRAM holds zeros until then)")
        n, b = len(codes), self.batch_size
        out = np.zeros((n, self.axi.n_out), np.int64)
        starts = list(range(0, n, b))
        pre = preprocess_s / max(len(starts), 1)
        if not starts:
            return out
        t = time.perf_counter()
        self.in_bufs[0][:min(b, n)] = self.axi.pack_input(codes[:b])
        pack_s = time.perf_counter() - t
        for k, s in enumerate(starts):
            cur, m = k % 2, min(b, n - s)
            t0 = time.perf_counter()
            deadline = time.monotonic() + self.deadline(m)
            self._recv(self.out_bufs[cur], 0, self.out_bytes)
            self._send(self.in_bufs[cur], m * self.in_bytes)
            next_pack = 0.0
            if k + 1 < len(starts):                          # pack the next batch while this one runs
                tp = time.perf_counter()
                nxt = starts[k + 1]
                self.in_bufs[1 - cur][:min(b, n - nxt)] = self.axi.pack_input(codes[nxt:nxt + b])
                next_pack = time.perf_counter() - tp
            for i in range(m):
                got = self._wait(S2MM, "receive", self.out_bytes, deadline, k, i)
                if got != self.out_bytes:
                    state = self.state("receive", self.out_bytes, k, i)
                    self._recover(state)
                    raise DmaError(f"short output: frame {i} of batch {k} ended (TLAST) after {got} of "
                                   f"{self.out_bytes} bytes; the DMA was reset", {**state, "received": got})
                if i + 1 < m:
                    self._recv(self.out_bufs[cur], (i + 1) * self.out_bytes, self.out_bytes)
            self._wait(MM2S, "send", m * self.in_bytes, deadline, k)
            dma_s = time.perf_counter() - t0 - next_pack
            tu = time.perf_counter()
            out[s:s + m] = self.axi.unpack_output(self.out_bufs[cur][:m])
            unpack_s = time.perf_counter() - tu
            self.timing.add(pre, pack_s, dma_s, unpack_s, m)
            pack_s = next_pack
        return out

    def throughput_test(self, n_images: int = 64) -> dict:
        """FINN's throughput test: zero frames through the design, n_images of them."""
        codes = np.zeros((n_images, *self.manifest.input.shape), np.int64)
        t0 = time.perf_counter()
        self.run(codes)
        runtime = time.perf_counter() - t0
        moved = n_images * (self.in_bytes + self.out_bytes)
        try:
            fclk = float(pynq.Clocks.fclk0_mhz)
        except Exception:                                    # no PS clock registers (e.g. another device)
            fclk = None
        return {"runtime_s": runtime, "images": n_images, "images_per_s": n_images / runtime,
                "mb_per_s": moved / runtime / 1e6, "batch_size": self.batch_size, "fclk_mhz": fclk,
                "manifest_clock_mhz": self.manifest.clock_mhz}

    def close(self):
        for buf in (*self.in_bufs, *self.out_bufs, self.scratch):
            buf.freebuffer()

