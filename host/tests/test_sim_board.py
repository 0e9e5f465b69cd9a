"""The driver (host/driver.py) on the simulated board (host/sim.py) under the unmodified pynq 4.0.0."""
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pynq
import pytest
from pynq.lib.dma import DMA

from host.driver import DmaError, DmaTimeout, DriverError, SqzOverlay, WeightLoadError, find_by_vlnv
from host.manifest import Manifest
from host.sim import FAULTS, SimBoard
from host.tests.conftest import REAL_HWH


def overlay(folder, **kw):
    board = SimBoard.for_folder(folder)
    return board, SqzOverlay(folder, device=board, **kw)


@pytest.mark.parametrize("name", sorted(REAL_HWH))
def test_pynqs_parser_reads_the_real_hwh_files_and_the_dma_is_found_by_vlnv(name):
    from pynqmetadata.frontends import Metadata
    from pynqmetadata.views.runtime import RuntimeMetadataParser

    p = RuntimeMetadataParser(Metadata(input=str(REAL_HWH[name])))
    dmas = find_by_vlnv(p.ip_dict, "xilinx.com:ip:axi_dma:")
    want = {"hls4ml_pynqz2": ["hier_0/axi_dma_0"], "aup_zu3": ["axi_dma_0"], "rn07_pynqz2": []}[name]
    assert dmas == want
    for d in dmas:
        assert p.ip_dict[d]["parameters"]["c_sg_length_width"] == "26"
        assert p.ip_dict[d]["registers"]["S2MM_LENGTH"]["address_offset"] == 0x58


def test_a_real_hwh_beside_a_bit_is_parsed_by_pynq_and_frames_run_through_its_dma(folders, images, tmp_path):
    """A folder with a .bit and a real .hwh (the AUP ZU3 hls4ml design's, instance axi_dma_0): pynq's own
    parser describes the board, pynq binds its DMA driver, the driver finds it by VLNV; frames stay bit-exact."""
    folder = tmp_path / "bit"
    shutil.copytree(folders["zcu104"], folder)
    m = Manifest.load(folder)
    (folder / f"{m.model}.bit").write_bytes(b"not a real bitstream")
    shutil.copy(REAL_HWH["aup_zu3"], folder / f"{m.model}.hwh")
    board, ov = overlay(folder, batch_size=2)
    assert "pynq's parser" in ov.described_by and ov.dma_name == "axi_dma_0"
    assert type(ov.dma) is DMA
    assert np.array_equal(ov.classify(images[:3]), board.backend.emulator.logit_codes(images[:3]))


def test_dry_run_folder_describes_itself_from_the_manifest_placeholders_outside_it(folders, images):
    before = sorted(p.name for p in folders["zcu104"].iterdir())
    board, ov = overlay(folders["zcu104"], batch_size=2)
    assert isinstance(ov, pynq.Overlay) and type(ov.dma) is DMA       # pynq's own classes, bound by VLNV
    assert "manifest" in ov.described_by and ov.dma_name == "axi_dma"
    assert not Path(ov.bitfile_name).is_relative_to(folders["zcu104"].resolve())
    assert sorted(p.name for p in folders["zcu104"].iterdir()) == before
    assert abs(pynq.Clocks.fclk0_mhz - ov.manifest.clock_mhz) < 0.01 * ov.manifest.clock_mhz
    codes = ov.classify(images[:5])                                     # batches 2, 2, 1
    assert np.array_equal(codes, board.backend.emulator.logit_codes(images[:5]))
    assert board.memory.flushes >= 3 and board.memory.invalidates >= 5
    s = ov.timing.summary()
    assert s["frames"] == 5 and s["batches"] == 3 and s["frames_per_s"] > 0
    t = ov.throughput_test(4)
    assert t["images"] == 4 and t["batch_size"] == 2 and t["mb_per_s"] > 0 and abs(t["fclk_mhz"] - 300) < 3


def test_ddr_is_not_coherent_flush_and_invalidate_are_needed(folders):
    board = SimBoard.for_folder(folders["zcu104"])
    buf = pynq.allocate((4,), np.uint64, target=board)
    buf[:] = 7
    assert not board.memory.ddr(buf.physical_address, 32).any()       # not flushed: the DMA sees stale DDR
    buf.flush()
    assert (board.memory.ddr(buf.physical_address, 32).view(np.uint64) == 7).all()
    board.memory.ddr(buf.physical_address, 32)[:] = 0
    assert (buf == 7).all()
    buf.invalidate()
    assert (buf == 0).all()


def test_dma_register_model_follows_pg021(folders):
    board, ov = overlay(folders["zcu104"])
    mm = ov.dma.mmio
    assert mm.read(0x04) & 0x3 == 0                                    # running, Idle 0 before the first transfer
    mm.write(0x18, 0xDEAD0000)                                         # no buffer there: decode error
    mm.write(0x28, 64)
    assert mm.read(0x04) & 0x41 == 0x41 and mm.read(0x00) & 1 == 0   # DMADecErr, halted, RS cleared
    mm.write(0x00, 0x4)                                                # soft reset: both channels halted, clean
    assert mm.read(0x04) == 0x1 and mm.read(0x34) == 0x1
    mm.write(0x00, 0x1)
    mm.write(0x28, 0)                                                  # LENGTH 0: internal error
    assert mm.read(0x04) & 0x10
    mm.write(0x00, 0x4)
    mm.write(0x28, 64)                                                 # halted: LENGTH has no effect
    assert mm.read(0x04) == 0x1
    with pytest.raises(Exception, match="no IP at"):
        pynq.MMIO(0x12340000, 16, device=board).read(0)


def test_weight_load_before_frames_refused_frames_and_a_bad_stream(folders, images):
    board = SimBoard.for_folder(folders["kv260"])
    ov = SqzOverlay(folders["kv260"], device=board, batch_size=2, load_weights=False)
    assert ov.accel_name == "sqz" and not ov.weights_loaded
    with pytest.raises(DriverError, match="refused: the weights are not loaded"):
        ov.classify(images[:1])
    m = ov.manifest
    words = np.fromfile(folders["kv260"] / m.weight_load_file, dtype="<u8")
    with pytest.raises(WeightLoadError, match="refused"):
        ov.load_weights(words[:-3])                                    # ends early: the reply says so
    assert not ov.weights_loaded
    # until a load, the simulated UltraRAM holds zeros: conv10 computes with zero weights
    codes = ov.quantize(images[:2])
    assert not np.array_equal(board.backend.frames(codes), board.backend.emulator.logit_codes(images[:2]))
    assert ov.load_weights() == (True, m.weight_load.payload_beats)
    assert np.array_equal(ov.classify(images[:3]), board.backend.emulator.logit_codes(images[:3]))


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_is_an_error_with_state_and_the_next_batch_works(folders, images, fault):
    board, ov = overlay(folders["kv260"], batch_size=2, timeout_s=0.5)
    board.faults.arm(fault)
    t0 = time.monotonic()
    with pytest.raises(DmaError) as e:
        ov.classify(images[:2])
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    want = {"stall": "timeout", "no_tlast": "internal_error", "decode_error": "decode_error",
            "short_output": "short output"}[fault]
    assert want in msg and "batch 0" in msg and "the DMA was reset" in msg
    assert {"in_flight", "bytes", "batch", "mm2s_status", "s2mm_status"} <= set(e.value.state)
    assert isinstance(e.value, DmaTimeout) == (fault == "stall")
    assert np.array_equal(ov.classify(images[2:5]), board.backend.emulator.logit_codes(images[2:5]))


def test_bad_folders_give_clear_errors(folders, tmp_path):
    with pytest.raises(DriverError, match="manifest.json"):
        SqzOverlay(tmp_path, device=SimBoard.for_folder(folders["zcu104"]))
    with pytest.raises(DriverError, match="is for zcu104, this board is pynq-z2"):
        SqzOverlay(folders["zcu104"], device=SimBoard.for_folder(folders["zcu104"]), board="pynq-z2")
    folder = tmp_path / "b"
    shutil.copytree(folders["zcu104"], folder)
    m = Manifest.load(folder)
    with pytest.raises(DriverError, match=r"squeezenet1_0.bit: missing"):
        SqzOverlay._bitfile(folder, m, object())                       # a real device: the .bit must be there
    (folder / "squeezenet1_0.bit").write_bytes(b"bits")
    (folder / "squeezenet1_0.hwh").write_text("<x/>")
    with pytest.raises(DriverError, match="bit_sha256 is null"):
        SqzOverlay._bitfile(folder, m, object())
    import dataclasses

    m2 = dataclasses.replace(m, bit_sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(DriverError, match="differs from the manifest's bit_sha256"):
        SqzOverlay._bitfile(folder, m2, object())
    m3 = dataclasses.replace(m, bit_sha256=hashlib.sha256(b"bits").hexdigest())
    assert SqzOverlay._bitfile(folder, m3, object()).endswith("squeezenet1_0.bit")


def test_csim_behind_the_board_loads_the_weights_and_is_bit_exact(folders):
    """The compiled C simulation of the AXI top behind the simulated board (the tiny network, conv10 in
    UltraRAM): the weight load goes through the C top's mode 1 with the stream the driver sent; frames before
    it run on zero weights (the C top's real behaviour), after it they equal the emulator's codes."""
    proj = folders["tiny_project"]
    ref = np.load(folders["tiny_ref"])
    board = SimBoard.for_folder(proj, backend="csim", project=proj, workers=2)
    ov = SqzOverlay(proj, device=board, batch_size=4, timeout_s=120, load_weights=False)
    unloaded = board.backend.frames_words(ov.axi.pack_input(ov.quantize(ref["x"][:2])))[0]
    assert not np.array_equal(ov.axi.unpack_output(unloaded), ref["codes"][:2])
    assert ov.load_weights() == (True, ov.manifest.weight_load.payload_beats)
    assert np.array_equal(ov.classify(ref["x"]), ref["codes"])
    assert board.accel.frames_done == len(ref["x"])
