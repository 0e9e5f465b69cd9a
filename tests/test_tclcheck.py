"""hw/tclcheck.py: the generated sqz_hls.tcl and sqz_vivado.tcl, run under a real tclsh with recording
stand-ins for the Xilinx commands, name only IP, parameters and interfaces that real Vivado output (three
real .hwh files) shows, and the accelerator's own port names -- for all four boards, with and without
loadable weights; and a typo in any of those names fails the check, naming it."""
from __future__ import annotations

import shutil

import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)
pytestmark = pytest.mark.usefixtures("tclsh")     # no Tcl: these tests fail, saying so

from hw.boards import BOARDS, get_board  # noqa: E402
from hw.convert import plan_design  # noqa: E402
from hw.project import build_project, project_dir_for  # noqa: E402
from hw.scripts import HLS_SCRIPT, IP_VLNV, VIVADO_SCRIPT  # noqa: E402
from hw.tclcheck import (REFERENCE_HWH, TclCheckError, accelerator_pins, check_project,  # noqa: E402
                         load_references, run_script)
from tests.tiny_net import REUSE  # noqa: E402

VARIANTS = [(b, ()) for b in BOARDS] + [("kv260", ("conv10",)), ("zcu104", ("conv10",))]


@pytest.fixture(scope="module")
def projects(tiny, tiny_keras, cache_root):
    """The tiny network's generated project (scripts, sqz_top.cpp) for every board, and with conv10's
    weights loadable on the boards with UltraRAM."""
    out = {}
    for board, loadable in VARIANTS:
        design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board=board,
                             loadable=loadable or "none")
        assert design.loadable == loadable
        out[board, loadable] = build_project(design, project_dir_for(design, cache_root), compile=False).path
        assert design.clock_mhz == get_board(board).clock_mhz        # the clocks the checks below pass
    return out


def test_reference_hwh_files_hold_the_ps_and_dma_parameters():
    refs = load_references()
    assert len(REFERENCE_HWH) == 3
    dma, ps7, psu = refs["xilinx.com:ip:axi_dma"], refs["xilinx.com:ip:processing_system7"], \
        refs["xilinx.com:ip:zynq_ultra_ps_e"]
    assert dma.versions == {"7.1"} and len(dma.sources) == 2            # Zynq-7000 and ZU3EG designs
    assert {"c_include_sg", "c_sg_length_width", "c_m_axi_mm2s_data_width"} <= dma.parameters
    assert {"S_AXI_LITE", "M_AXI_MM2S", "M_AXI_S2MM", "M_AXIS_MM2S", "S_AXIS_S2MM"} == dma.interfaces
    assert ps7.sources == {"hls4ml_nn.hwh", "design_1.hwh"} and "PCW_USE_S_AXI_HP0" in ps7.parameters
    assert {"M_AXI_GP0", "S_AXI_HP0"} <= ps7.interfaces and "FCLK_CLK0" in ps7.ports
    assert psu.versions == {"3.5"} and {"M_AXI_HPM0_LPD", "S_AXI_HP0_FPD"} == psu.interfaces
    assert "PSU__SAXIGP2__DATA_WIDTH" in psu.parameters and "pl_clk0" in psu.ports
    assert "M_AXI_HPM0_FPD" not in psu.interfaces     # why the ZU+ scripts use HPM0_LPD for control


@pytest.mark.parametrize("board, loadable", VARIANTS, ids=[f"{b}-{'loadable' if l else 'fixed'}" for b, l in VARIANTS])
def test_generated_scripts_name_only_real_ip_parameters_and_ports(projects, board, loadable):
    path = projects[board, loadable]
    assert check_project(path, get_board(board), get_board(board).clock_mhz) == []
    interfaces, ports = accelerator_pins((path / "firmware" / "sqz_top.cpp").read_text(), "sqz_top")
    assert interfaces == ({"pixels", "logits", "s_axi_control"} if loadable else {"pixels", "logits"})
    assert ports == ({"ap_clk", "ap_rst_n", "interrupt"} if loadable else {"ap_clk", "ap_rst_n"})
    hls = run_script(path / HLS_SCRIPT, "vitis_hls")
    assert [r.cmd for r in hls][-3:] == ["csynth_design", "export_design", "exit"]
    for board_files in (False, True):
        records = run_script(path / VIVADO_SCRIPT, "vivado", board_files=board_files)
        cells = {r.args[-1]: r.args[r.args.index("-vlnv") + 1] for r in records if r.cmd == "create_bd_cell"}
        assert cells == {"zynq_ps": f"xilinx.com:ip:{get_board(board).ps}", "axi_dma": "xilinx.com:ip:axi_dma",
                         "sqz": IP_VLNV}
        pins = {a for r in records if r.cmd == "get_bd_intf_pins" for a in r.args}
        assert ("sqz/s_axi_control" in pins) == bool(loadable) and {"sqz/pixels", "sqz/logits"} <= pins
        board_part = [r for r in records if r.cmd == "set_property" and r.args[0] == "board_part"]
        assert len(board_part) == board_files       # the board preset only where board files are installed


def _mutated(projects, key, tmp_path, file, old, new):
    src = projects[key]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    text = (dst / file).read_text()
    assert old in text, f"{old!r} is not in the generated {file}: the mutation would prove nothing"
    (dst / file).write_text(text.replace(old, new))
    return dst


ZCU_LOAD, PYNQ = ("zcu104", ("conv10",)), ("pynq-z2", ())
MUTATIONS = [  # (project, file, old, new, what the check must name)
    (ZCU_LOAD, VIVADO_SCRIPT, "CONFIG.c_sg_length_width", "CONFIG.c_sg_lenght_width", "c_sg_lenght_width"),
    (ZCU_LOAD, VIVADO_SCRIPT, "CONFIG.c_m_axi_mm2s_data_width", "CONFIG.c_m_axi_mm2s_data_widht",
     "c_m_axi_mm2s_data_widht"),
    (ZCU_LOAD, VIVADO_SCRIPT, "CONFIG.PSU__SAXIGP2__DATA_WIDTH", "CONFIG.PSU__SAXIGP2_DATA_WIDTH",
     "PSU__SAXIGP2_DATA_WIDTH"),
    (PYNQ, VIVADO_SCRIPT, "CONFIG.PCW_USE_S_AXI_HP0", "CONFIG.PCW_USE_S_AXI_HPO", "PCW_USE_S_AXI_HPO"),
    (PYNQ, VIVADO_SCRIPT, "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ", "PCW_FPGA0_PERIPHERAL_FREQMHZ",
     "PCW_FPGA0_PERIPHERAL_FREQMHZ"),                           # CONFIG. prefix missing
    (ZCU_LOAD, VIVADO_SCRIPT, "xilinx.com:ip:axi_dma ", "xilinx.com:ip:axi_dmaa ", "xilinx.com:ip:axi_dmaa"),
    (PYNQ, VIVADO_SCRIPT, "xilinx.com:ip:processing_system7 ", "xilinx.com:ip:processing_system7:5.4 ",
     "version 5.4"),
    (ZCU_LOAD, VIVADO_SCRIPT, f"-vlnv {IP_VLNV}", "-vlnv sqz.local:hls:sqz_squeezenet:1.1",
     "sqz.local:hls:sqz_squeezenet:1.1"),
    (ZCU_LOAD, VIVADO_SCRIPT, "sqz/pixels", "sqz/pixel", "'pixel'"),
    (PYNQ, VIVADO_SCRIPT, "sqz/logits", "sqz/logit", "'logit'"),
    (ZCU_LOAD, VIVADO_SCRIPT, "sqz/s_axi_control", "sqz/s_axi_ctrl", "'s_axi_ctrl'"),
    (PYNQ, VIVADO_SCRIPT, "sqz/ap_clk", "sqz/ap_clock", "'ap_clock'"),
    (PYNQ, VIVADO_SCRIPT, "assign_bd_address\n",            # s_axi_control on a design without loadable weights
     "apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Master $ps_master Slave /sqz/s_axi_control] "
     "[get_bd_intf_pins sqz/s_axi_control]\nassign_bd_address\n", "no interface 's_axi_control'"),
    (ZCU_LOAD, VIVADO_SCRIPT, "axi_dma/M_AXIS_MM2S", "axi_dma/M_AXIS_MM2", "'M_AXIS_MM2'"),
    (ZCU_LOAD, VIVADO_SCRIPT, "/zynq_ps/M_AXI_HPM0_LPD", "/zynq_ps/M_AXI_HPM0_FPD", "'M_AXI_HPM0_FPD'"),
    (PYNQ, VIVADO_SCRIPT, "/zynq_ps/FCLK_CLK0", "/zynq_ps/FCLK_CLKO", "'FCLK_CLKO'"),
    (PYNQ, VIVADO_SCRIPT, "/zynq_ps/S_AXI_HP0", "/zynq_ps/S_AXI_HP0_FPD", "'S_AXI_HP0_FPD'"),  # the ZU+ name
    (ZCU_LOAD, VIVADO_SCRIPT, "CONFIG.c_include_sg {0}", "CONFIG.c_include_sg {1}", "c_include_sg is '1'"),
    (PYNQ, VIVADO_SCRIPT, "CONFIG.c_sg_length_width {26}", "CONFIG.c_sg_length_width {14}",
     "c_sg_length_width is '14'"),
    (ZCU_LOAD, VIVADO_SCRIPT, "-jobs 4", "-job 4", "unknown flag -job"),
    (ZCU_LOAD, VIVADO_SCRIPT, "PL0_REF_CTRL__FREQMHZ {300}", "PL0_REF_CTRL__FREQMHZ {30}", "is '30'"),
    (PYNQ, VIVADO_SCRIPT, "PCW_FPGA0_PERIPHERAL_FREQMHZ {100}", "PCW_FPGA0_PERIPHERAL_FREQMHZ {150}", "is '150'"),
    (ZCU_LOAD, HLS_SCRIPT, "create_clock -period 3.333 ", "create_clock -period 3.33 ", "-period '3.33'"),
    (ZCU_LOAD, VIVADO_SCRIPT, "bd_rule:clkrst", "bd_rule:clk_rst", "xilinx.com:bd_rule:clk_rst"),
    (PYNQ, VIVADO_SCRIPT, "sqz_vivado.gen/sources_1/bd/sqz/hdl", "sqz_vivado.gen/sources_1/bd/sqz/hdI",
     "hdl/sqz_wrapper.v"),
    (ZCU_LOAD, HLS_SCRIPT, "-ipname sqz_squeezenet", "-ipname sqz_squeezenet2", "sqz.local:hls:sqz_squeezenet2:1.0"),
    (ZCU_LOAD, HLS_SCRIPT, "open_solution -reset solution1", "open_solution -reset solution2", "solution2/impl/ip"),
    (PYNQ, HLS_SCRIPT, "set_top sqz_top", "set_top sqz_tops", "sqz_tops"),
    (PYNQ, HLS_SCRIPT, "firmware/sqz_top.cpp", "firmware/sqz_top.cc", "firmware/sqz_top.cc"),
    (PYNQ, "firmware/sqz_top.cpp", "axis port=pixels", "axis port=pixel_in", "'pixels'"),  # the C top renamed
]


@pytest.mark.parametrize("key, file, old, new, named", MUTATIONS, ids=[m[3].split()[-1][:40] for m in MUTATIONS])
def test_a_typo_in_a_name_fails_the_check_naming_it(projects, tmp_path, key, file, old, new, named):
    b = get_board(key[0])
    problems = check_project(_mutated(projects, key, tmp_path, file, old, new), b, b.clock_mhz)
    assert problems and any(named in p for p in problems), problems


@pytest.mark.parametrize("file, old, new, command", [
    (VIVADO_SCRIPT, "assign_bd_address\n", "create_bd_port -dir O led\nassign_bd_address\n", "create_bd_port"),
    (VIVADO_SCRIPT, "save_bd_design\n", "save_bd_desing\n", "save_bd_desing"),
    (HLS_SCRIPT, "config_compile -name_max_length", "config_compil -name_max_length", "config_compil"),
    (HLS_SCRIPT, "csynth_design\n", "create_bd_design x\ncsynth_design\n", "create_bd_design"),  # Vivado's
])
def test_a_command_without_a_stand_in_stops_the_run(projects, tmp_path, file, old, new, command):
    path = _mutated(projects, ZCU_LOAD, tmp_path, file, old, new)
    with pytest.raises(TclCheckError, match=f"unknown command .*: {command}$"):
        check_project(path, get_board("zcu104"), 300.0)


def test_a_script_that_does_not_reach_its_exit_fails(projects, tmp_path):
    path = _mutated(projects, PYNQ, tmp_path, VIVADO_SCRIPT, "create_bd_design sqz\n",
                    "create_bd_design sqz\nerror {stop here}\n")
    with pytest.raises(TclCheckError, match="stop here"):
        check_project(path, get_board("pynq-z2"), 100.0)


def test_without_tclsh_the_check_refuses_to_run(projects, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(TclCheckError, match="tclsh is not installed"):
        run_script(projects[PYNQ] / VIVADO_SCRIPT, "vivado")
