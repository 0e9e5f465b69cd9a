"""The generated Vitis HLS and Vivado scripts checked without the Xilinx tools, against real Vivado output.

    records = run_script(project / "sqz_vivado.tcl", "vivado")     # real tclsh, recording stand-ins
    problems = check_project(project, board)                        # [] when every check holds

`run_script` runs a script under a real Tcl interpreter (`tclsh`, Debian's `tcl`) after a prelude that
defines a recording stand-in for every Vivado / Vitis HLS command the scripts may call (COMMANDS). Each
stand-in appends one JSON line (command, arguments, and each argument's Tcl list elements) to a log and
returns what the script needs to go on: `get_bd_cells zynq_ps` returns `/zynq_ps`, `create_project`
its name. A command that is not in COMMANDS stops the run (Tcl's `unknown` is replaced), so a new
command in the scripts cannot slip past the check; Tcl's own `file mkdir/copy/delete/rename` and `glob`
are recorded, not run, and `exec` is refused. The script must reach its final `exit 0`.

The checker then reads the records against three real hardware handoffs (`.hwh`, written by Vivado for
real designs: REFERENCE_HWH) and the generated project itself:
  * every `create_bd_cell -vlnv` names an IP that a real .hwh holds (MODULE VLNV; a version, where the
    script gives one, must match too), except the accelerator, whose VLNV must be the one the HLS script
    exports (`export_design -vendor -library -ipname -version`) from the IP repository the Vivado script
    adds (`<hls project>/<solution>/impl/ip`);
  * every `CONFIG.*` set on a cell is a PARAMETER NAME that a real module of the same IP shows, spelled
    exactly (Vivado's user parameters are the lower-case `c_*` of the AXI DMA, `PCW_*` / `PSU__*` of the PS);
  * every pin and interface path (get_bd_pins, get_bd_intf_pins, and the Master/Slave/Clk paths of
    apply_bd_automation -config) is on a created cell, and is a BUSINTERFACE (interfaces) or PORT (pins)
    of a real module of that IP; on the accelerator, one that the generated sqz_top.cpp has (Vitis HLS
    naming: an `axis` port keeps its C name, an `s_axilite` bundle B becomes `s_axi_B`, plus ap_clk and
    ap_rst_n, and `interrupt` with s_axilite control);
  * the design rules the host relies on: the processing system is the board's (hw/boards.py), the DMA is
    simple mode (c_include_sg 0) with a 26-bit length register (c_sg_length_width 26) and streams as wide
    as the accelerator's AXI word (sqz_axi.h AXI_WORD_BITS), the part is the board's in both scripts, the
    HLS clock period and the PS's PL clock are the design's clock;
  * every flag a command is given is one that command takes (COMMANDS), and the files the scripts name
    follow from each other (sources that exist, the HLS top that sqz_top.cpp defines, the wrapper,
    bitstream and .hwh paths of Vivado's project layout).

What it cannot prove: that Vivado accepts the values (a parameter's legal range, a board preset's effect),
that the automation rules connect what they should, that the design meets timing or fits — only a real
Vivado run shows those. It proves that nothing the scripts name is misspelt or invented, against names
real Vivado output uses. Standard library only.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# Real hardware handoffs (see the data READMEs): Zynq-7000 + AXI DMA (hls4ml, Vivado 2019.2), Zynq
# UltraScale+ ZU3EG + AXI DMA simple mode (Vivado 2024.1), PYNQ-Z2 MLPerf Tiny hls4ml design (2019.1).
REFERENCE_HWH = (
    DATA / "hls4ml_pynqz2_reference" / "hls4ml_nn.hwh",
    DATA / "hls_reports" / "aup-zu3-hls4ml-cifar10-hwh" / "xsa_extracted" / "machineLearning_bd.hwh",
    DATA / "hls_reports" / "mlperftiny-rn07-pynqz2" / "hdf_extracted" / "design_1.hwh",
)

# The commands a script may call, per tool: {command: {flag: takes a value}} (UG835 Vivado Tcl commands,
# UG1399 Vitis HLS commands). Positional arguments are free; a flag not listed here is a problem.
_Q = {"-quiet": False, "-verbose": False}
_GET = {**_Q, "-hierarchical": False, "-regexp": False, "-nocase": False, "-filter": True, "-of_objects": True}
COMMANDS: dict[str, dict[str, dict[str, bool]]] = {
    "vivado": {
        "create_project": {**_Q, "-part": True, "-force": False, "-in_memory": False},
        "current_project": dict(_Q),
        "set_property": {**_Q, "-dict": True},
        "get_board_parts": {**_GET, "-latest_file_version": False, "-latest_hw_revision": False},
        "update_ip_catalog": {**_Q, "-rebuild": False, "-scan_changes": False, "-repo_path": True},
        "create_bd_design": {**_Q, "-dir": True},
        "create_bd_cell": {**_Q, "-type": True, "-vlnv": True, "-reference": True},
        "apply_bd_automation": {**_Q, "-rule": True, "-config": True, "-opts": True},
        "connect_bd_intf_net": {**_Q, "-boundary_type": True, "-intf_net": True},
        "connect_bd_net": {**_Q, "-boundary_type": True, "-net": True},
        "get_bd_cells": dict(_GET),
        "get_bd_pins": dict(_GET),
        "get_bd_intf_pins": dict(_GET),
        "assign_bd_address": {**_Q, "-target_address_space": True, "-offset": True, "-range": True,
                              "-force": False, "-external": False},
        "validate_bd_design": {**_Q, "-force": False},
        "save_bd_design": dict(_Q),
        "make_wrapper": {**_Q, "-files": True, "-top": False, "-fileset": True, "-import": False},
        "get_files": {**_GET, "-all": False},
        "add_files": {**_Q, "-norecurse": False, "-fileset": True, "-force": False, "-copy_to": True},
        "current_fileset": {**_Q, "-constrset": False, "-simset": False},
        "launch_runs": {**_Q, "-to_step": True, "-jobs": True, "-next_step": False},
        "wait_on_run": {**_Q, "-timeout": True},
        "write_hw_platform": {**_Q, "-fixed": False, "-include_bit": False, "-force": False, "-file": True},
        "open_run": {**_Q, "-name": True},
        "report_utilization": {**_Q, "-file": True, "-hierarchical": False, "-append": False},
        "report_timing_summary": {**_Q, "-file": True, "-max_paths": True, "-append": False},
        "report_power": {**_Q, "-file": True, "-append": False},
    },
    "vitis_hls": {
        "open_project": {"-reset": False, "-upgrade": False},
        "set_top": {},
        "add_files": {"-cflags": True, "-csimflags": True, "-tb": False},
        "open_solution": {"-reset": False, "-flow_target": True},
        "set_part": {},
        "create_clock": {"-period": True, "-name": True},
        "config_compile": {"-name_max_length": True, "-pipeline_loops": True, "-pipeline_style": True},
        "config_interface": {"-m_axi_addr64": False, "-m_axi_alignment_byte_size": True},
        "config_dataflow": {"-default_channel": True, "-fifo_depth": True},
        "config_export": {"-format": True, "-rtl": True, "-vivado_clock": True},
        "csim_design": {"-clean": False, "-argv": True},
        "csynth_design": {},
        "cosim_design": {"-rtl": True, "-trace_level": True},
        "export_design": {"-format": True, "-vendor": True, "-library": True, "-ipname": True,
                          "-version": True, "-description": True, "-display_name": True, "-rtl": True,
                          "-flow": True, "-output": True, "-taxonomy": True},
        "close_solution": {},
        "close_project": {},
    },
}
# apply_bd_automation rules and the -config keys each takes (Vivado's designer-assistance rules)
AUTOMATION = {
    "xilinx.com:bd_rule:processing_system7": {"make_external", "apply_board_preset", "Master", "Slave"},
    "xilinx.com:bd_rule:zynq_ultra_ps_e": {"apply_board_preset"},
    "xilinx.com:bd_rule:axi4": {"Clk_master", "Clk_slave", "Clk_xbar", "Master", "Slave", "ddr_seg", "intc_ip",
                                "master_apm"},
    "xilinx.com:bd_rule:clkrst": {"Clk", "Freq", "Ref_Clk0", "Ref_Clk1", "Ref_Clk_Sel"},
}
_INTF_KEYS = {"Master", "Slave"}                         # -config values that are interface paths
_PIN_KEYS = {"Clk", "Clk_master", "Clk_slave", "Clk_xbar"}  # ... and pin paths
# properties the scripts set on objects that are not block-design cells
OBJECT_PROPERTIES = {"board_part", "ip_repo_paths", "part", "target_language", "top"}
DMA_REQUIRED = {"c_include_sg": "0", "c_sg_length_width": "26"}   # simple mode; 26-bit length (host/)
# the PS parameter of the PL clock the scripts use (FCLK_CLK0 / pl_clk0), in MHz
PS_CLOCK = {"processing_system7": "PCW_FPGA0_PERIPHERAL_FREQMHZ",
            "zynq_ultra_ps_e": "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"}


class TclCheckError(RuntimeError):
    """tclsh is missing, or a script did not run to its end under the stand-ins."""


@dataclass(frozen=True)
class Record:
    cmd: str
    args: tuple[str, ...]
    lists: tuple[tuple[str, ...] | None, ...]    # each argument's Tcl list elements (None: not a list)

    def parse(self, flags: dict[str, bool]) -> tuple[dict[str, str | bool], list[str], list[str]]:
        """(flag -> value or True, positional arguments, unknown flags)."""
        opts, pos, bad, i = {}, [], [], 0
        while i < len(self.args):
            a = self.args[i]
            if a.startswith("-") and not re.fullmatch(r"-[0-9.]+", a):
                if a not in flags:
                    bad.append(a)
                elif flags[a]:
                    i += 1
                    opts[a] = self.args[i] if i < len(self.args) else ""
                else:
                    opts[a] = True
            else:
                pos.append(a)
            i += 1
        return opts, pos, bad

    def list_of(self, value: str) -> tuple[str, ...]:
        """The Tcl list elements of one of this record's argument values."""
        for a, l in zip(self.args, self.lists):
            if a == value and l is not None:
                return l
        return (value,)


def _prelude(tool: str) -> str:
    names = " ".join(sorted(COMMANDS[tool]))
    return r"""# sqz hw/tclcheck.py: recording stand-ins for the Xilinx tools' commands
set ::sqz_log [open [lindex $argv 0] w]
set ::sqz_script [lindex $argv 1]
set ::sqz_board_files [lindex $argv 2]
set ::sqz_project ""
proc ::sqz_json {s} {
    set s [string map [list \\ \\\\ \" \\\" \n \\n \r \\r \t \\t] $s]
    if {[regexp {[\x00-\x1f]} $s]} {
        set out ""
        foreach c [split $s ""] {
            if {[scan $c %c] < 32} { append out [format "\\u%04x" [scan $c %c]] } else { append out $c }
        }
        set s $out
    }
    return "\"$s\""
}
proc ::sqz_record {cmd argl} {
    set a {}
    set l {}
    foreach x $argl {
        lappend a [::sqz_json $x]
        if {[string is list -strict $x]} {
            set e {}
            foreach y $x { lappend e [::sqz_json $y] }
            lappend l "\[[join $e ", "]\]"
        } else {
            lappend l null
        }
    }
    puts $::sqz_log "{\"cmd\": [::sqz_json $cmd], \"args\": \[[join $a ", "]\], \"lists\": \[[join $l ", "]\]}"
    flush $::sqz_log
}
proc ::sqz_positional {argl} {
    set out {}
    set skip 0
    foreach x $argl {
        if {$skip} { set skip 0; continue }
        if {$x in {-filter -of_objects}} { set skip 1; continue }
        if {[string match -* $x]} continue
        lappend out $x
    }
    return $out
}
proc ::sqz_paths {argl} {
    set out {}
    foreach x [::sqz_positional $argl] {
        foreach p $x { lappend out [expr {[string match /* $p] ? $p : "/$p"}] }
    }
    return $out
}
foreach ::sqz_cmd {""" + names + r"""} {
    proc ::$::sqz_cmd {args} [format {
        ::sqz_record %s $args
        switch -- %s {
            get_bd_cells - get_bd_pins - get_bd_intf_pins { return [::sqz_paths $args] }
            create_bd_cell { return [::sqz_paths $args] }
            create_project { set ::sqz_project [lindex [::sqz_positional $args] 0]; return $::sqz_project }
            current_project { return $::sqz_project }
            current_fileset { return sources_1 }
            get_files { return [::sqz_positional $args] }
            get_board_parts { return [expr {$::sqz_board_files ? [::sqz_positional $args] : ""}] }
        }
        return ""
    } $::sqz_cmd $::sqz_cmd]
}
rename ::file ::sqz_file
proc ::file {sub args} {
    if {$sub in {mkdir copy delete rename link}} { ::sqz_record file [linsert $args 0 $sub]; return "" }
    return [::sqz_file $sub {*}$args]
}
rename ::glob ::sqz_glob
proc ::glob {args} { ::sqz_record glob $args; return [::sqz_positional $args] }
rename ::exec ::sqz_exec
proc ::exec {args} { ::sqz_record exec $args; error "exec is not allowed in the checked scripts" }
rename ::exit ::sqz_exit
proc ::exit {{code 0}} { ::sqz_record exit [list $code]; close $::sqz_log; ::sqz_exit $code }
proc ::unknown {args} {
    ::sqz_record unknown $args
    puts stderr "unknown command (no stand-in in hw/tclcheck.py COMMANDS): [lindex $args 0]"
    close $::sqz_log
    ::sqz_exit 3
}
source $::sqz_script
"""


def tclsh() -> str:
    path = shutil.which("tclsh")
    if path is None:
        raise TclCheckError("tclsh is not installed (Debian: apt-get install tcl); the script check needs it")
    return path


def run_script(script: Path, tool: str, board_files: bool = False, timeout: float = 60.0) -> list[Record]:
    """Run `script` under tclsh with the stand-ins of `tool` ('vivado' or 'vitis_hls'), in its own folder.
    board_files: whether get_board_parts finds the board part (the board files are installed)."""
    script = Path(script).resolve()
    with tempfile.TemporaryDirectory(prefix="sqz_tclcheck_") as tmp:
        prelude, log = Path(tmp) / "prelude.tcl", Path(tmp) / "records.jsonl"
        prelude.write_text(_prelude(tool))
        r = subprocess.run([tclsh(), str(prelude), str(log), str(script), "1" if board_files else "0"],
                           cwd=script.parent, capture_output=True, text=True, timeout=timeout)
        lines = log.read_text().splitlines() if log.exists() else []
    records = [Record(d["cmd"], tuple(d["args"]), tuple(None if l is None else tuple(l) for l in d["lists"]))
               for d in map(json.loads, lines)]
    if r.returncode != 0 or not records or records[-1].cmd != "exit":
        raise TclCheckError(f"{script.name} under tclsh ({tool} stand-ins) stopped with exit status "
                            f"{r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}")
    return records


# --- the real .hwh files ------------------------------------------------------------------------------

@dataclass
class IpReference:
    """What real .hwh files show for one IP (vendor:library:name): versions, parameter, interface and
    port names (union over its modules), and the files they came from."""
    name: str
    versions: set[str] = field(default_factory=set)
    parameters: set[str] = field(default_factory=set)
    interfaces: set[str] = field(default_factory=set)
    ports: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)


def load_references(paths=REFERENCE_HWH) -> dict[str, IpReference]:
    """{vendor:library:name: IpReference} from the MODULE elements of real .hwh files."""
    refs: dict[str, IpReference] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise TclCheckError(f"reference hardware handoff {path} is missing (../shared/data, see its README)")
        for m in ET.parse(path).getroot().iter("MODULE"):
            vlnv = m.get("VLNV") or ""
            if vlnv.count(":") != 3:
                continue
            key, version = vlnv.rsplit(":", 1)
            ref = refs.setdefault(key, IpReference(key))
            ref.versions.add(version)
            ref.sources.add(path.name)
            ref.parameters |= {p.get("NAME") for p in m.findall("./PARAMETERS/PARAMETER")}
            ref.interfaces |= {b.get("NAME") for b in m.findall("./BUSINTERFACES/BUSINTERFACE")}
            ref.ports |= {p.get("NAME") for p in m.findall("./PORTS/PORT")}
    return refs


def accelerator_pins(top_cpp: str, top: str) -> tuple[set[str], set[str]]:
    """(interfaces, ports) Vitis HLS gives the top function `top` of sqz_top.cpp, from its pragmas."""
    m = re.search(rf"\bvoid\s+{re.escape(top)}\s*\([^)]*\)\s*\{{(.*?)\n\}}", top_cpp, re.S)
    if m is None:
        return set(), set()
    interfaces, ports = set(), {"ap_clk", "ap_rst_n"}
    for mode, port, bundle in re.findall(r"#pragma HLS INTERFACE (\w+) port=(\w+)(?: bundle=(\w+))?", m.group(1)):
        if mode == "axis":
            interfaces.add(port)
        elif mode == "s_axilite":
            interfaces.add(f"s_axi_{bundle or 'control'}")
            if port == "return":
                ports.add("interrupt")
    return interfaces, ports


# --- the checks ---------------------------------------------------------------------------------------

def _flags(records: list[Record], tool: str) -> list[str]:
    problems = []
    for r in records:
        if r.cmd in COMMANDS[tool]:
            for flag in r.parse(COMMANDS[tool][r.cmd])[2]:
                problems.append(f"{r.cmd}: unknown flag {flag}")
    return problems


@dataclass
class HlsExport:
    vlnv: str
    repo: str              # <project>/<solution>/impl/ip, where export_design puts the IP
    top: str
    part: str


def check_hls(records: list[Record], project_dir: Path, board, clock_mhz: float) -> tuple[list[str], HlsExport]:
    tool = "vitis_hls"
    problems = _flags(records, tool)
    one = {}
    for r in records:
        if r.cmd in COMMANDS[tool]:
            one.setdefault(r.cmd, r.parse(COMMANDS[tool][r.cmd]))
    for cmd in ("open_project", "set_top", "open_solution", "set_part", "create_clock", "csynth_design",
                "export_design"):
        if cmd not in one:
            problems.append(f"{cmd}: never called")
    get = lambda cmd, i=0: (one[cmd][1][i] if cmd in one and len(one[cmd][1]) > i else "")
    opt = lambda cmd, flag: str(one[cmd][0].get(flag, "")) if cmd in one else ""
    for r in records:
        if r.cmd == "add_files":
            for f in r.parse(COMMANDS[tool]["add_files"])[1]:
                if not (project_dir / f).is_file():
                    problems.append(f"add_files: {f} does not exist in the project")
    if get("set_part") != board.part:
        problems.append(f"set_part: {get('set_part')!r} is not the board's part {board.part!r}")
    try:
        period_ok = abs(float(opt("create_clock", "-period")) - 1000.0 / clock_mhz) < 1e-3
    except ValueError:
        period_ok = False
    if not period_ok:
        problems.append(f"create_clock: -period {opt('create_clock', '-period')!r} ns is not the design's "
                        f"{clock_mhz:g} MHz")
    if opt("export_design", "-format") != "ip_catalog":
        problems.append(f"export_design: -format {opt('export_design', '-format')!r}, not ip_catalog")
    vlnv = ":".join(opt("export_design", f) for f in ("-vendor", "-library", "-ipname", "-version"))
    return problems, HlsExport(vlnv, f"{get('open_project')}/{get('open_solution')}/impl/ip", get("set_top"),
                               get("set_part"))


def check_vivado(records: list[Record], refs: dict[str, IpReference], board, hls: HlsExport,
                 accel: tuple[set[str], set[str]], axi_word_bits: int, clock_mhz: float) -> list[str]:
    """Problems of the Vivado script's records; see the module docstring."""
    tool = "vivado"
    problems = _flags(records, tool)
    cells: dict[str, str] = {}             # cell name -> VLNV
    config: dict[str, dict[str, str]] = {}
    parse = lambda r: r.parse(COMMANDS[tool][r.cmd])

    def ref_of(cell: str) -> IpReference | None:
        vlnv = cells.get(cell, "")
        key = vlnv if vlnv.count(":") == 2 else vlnv.rsplit(":", 1)[0]
        return refs.get(key)

    def check_path(path: str, kind: str, where: str):
        cell, _, pin = path.strip("/").partition("/")
        if cell not in cells:
            problems.append(f"{where}: {path}: no cell {cell!r} was created")
        elif cells[cell] == hls.vlnv:
            names = accel[0] if kind == "interface" else accel[1]
            if pin not in names:
                problems.append(f"{where}: {path}: the accelerator has no {kind} {pin!r} "
                                f"(the HLS top {hls.top} has {', '.join(sorted(names)) or 'none'})")
        elif (ref := ref_of(cell)) is not None:
            names = ref.interfaces if kind == "interface" else ref.ports
            if pin not in names:
                problems.append(f"{where}: {path}: no {kind} {pin!r} on {ref.name} in the real .hwh "
                                f"({', '.join(sorted(ref.sources))})")

    for r in records:
        if r.cmd not in COMMANDS[tool]:
            continue
        opts, pos, _ = parse(r)
        if r.cmd == "create_project":
            if opts.get("-part") != board.part:
                problems.append(f"create_project: -part {opts.get('-part')!r} is not the board's {board.part!r}")
        elif r.cmd == "create_bd_cell":
            vlnv, name = str(opts.get("-vlnv", "")), (pos[0] if pos else "")
            cells[name] = vlnv
            if vlnv == hls.vlnv:
                continue
            parts = vlnv.split(":")
            ref = refs.get(":".join(parts[:3])) if len(parts) in (3, 4) else None
            if ref is None:
                problems.append(f"create_bd_cell {name}: IP {vlnv!r} is neither in a real .hwh nor the "
                                f"accelerator the HLS script exports ({hls.vlnv})")
            elif len(parts) == 4 and parts[3] not in ref.versions:
                problems.append(f"create_bd_cell {name}: version {parts[3]} of {ref.name} not in a real .hwh "
                                f"(seen: {', '.join(sorted(ref.versions))})")
        elif r.cmd == "set_property":
            objects = [o for p in pos for o in r.list_of(p)]
            if "-dict" in opts:
                items = r.list_of(str(opts["-dict"]))
                pairs = list(zip(items[0::2], items[1::2]))
            else:
                pairs, objects = [(pos[0], pos[1])], [o for p in pos[2:] for o in r.list_of(p)]
            for obj in objects:
                cell = obj.strip("/")
                for name, value in pairs:
                    if not obj.startswith("/"):          # the project, a fileset
                        if name not in OBJECT_PROPERTIES:
                            problems.append(f"set_property {name} on {obj}: not a known project property")
                        continue
                    if cell not in cells:
                        problems.append(f"set_property {name}: no cell {cell!r} was created")
                        continue
                    ref = ref_of(cell)
                    pname = name[len("CONFIG."):] if name.startswith("CONFIG.") else None
                    if pname is None or ref is None or pname not in ref.parameters:
                        problems.append(f"set_property {name} on {cell} ({cells[cell]}): not a parameter that "
                                        f"a real .hwh shows for this IP" + (f" ({', '.join(sorted(ref.sources))})"
                                                                            if ref else ""))
                    else:
                        config.setdefault(cell, {})[pname] = value
            if pos and "-dict" not in opts and pos[0] == "ip_repo_paths" and len(pos) > 1:
                repos = [Path(p).as_posix() for p in r.list_of(pos[1])]
                if not any(p.endswith("/" + hls.repo) or p == hls.repo for p in repos):
                    problems.append(f"set_property ip_repo_paths {pos[1]}: not where the HLS script exports "
                                    f"the IP ({hls.repo})")
        elif r.cmd in ("get_bd_pins", "get_bd_intf_pins"):
            for p in pos:
                for path in r.list_of(p):
                    check_path(path, "interface" if r.cmd == "get_bd_intf_pins" else "port", r.cmd)
        elif r.cmd == "get_bd_cells":
            for p in pos:
                for c in r.list_of(p):
                    if c.strip("/") not in cells:
                        problems.append(f"get_bd_cells {c}: no such cell was created")
        elif r.cmd == "apply_bd_automation":
            rule = str(opts.get("-rule", ""))
            if rule not in AUTOMATION:
                problems.append(f"apply_bd_automation: unknown rule {rule!r}")
                continue
            items = r.list_of(str(opts.get("-config", "")))
            for key, value in zip(items[0::2], items[1::2]):
                if key not in AUTOMATION[rule]:
                    problems.append(f"apply_bd_automation {rule}: unknown -config key {key!r}")
                elif value.startswith("/") and key in _INTF_KEYS | _PIN_KEYS:
                    check_path(value, "interface" if key in _INTF_KEYS else "port", f"apply_bd_automation {key}")

    # the design rules the board side relies on
    ps = [c for c, v in cells.items() if v.split(":")[:3] == ["xilinx.com", "ip", board.ps]]
    if len(ps) != 1:
        problems.append(f"the block design needs one {board.ps} (the board's processing system), has {len(ps)}")
    for cell in ps:
        got = config.get(cell, {}).get(PS_CLOCK[board.ps])
        try:
            clock_ok = abs(float(got) - clock_mhz) < 1e-6
        except (TypeError, ValueError):
            clock_ok = False
        if not clock_ok:
            problems.append(f"{board.ps} {cell}: CONFIG.{PS_CLOCK[board.ps]} is {got!r}, the design's clock is "
                            f"{clock_mhz:g} MHz")
    dmas = [c for c, v in cells.items() if v.split(":")[:3] == ["xilinx.com", "ip", "axi_dma"]]
    if len(dmas) != 1:
        problems.append(f"the block design needs one axi_dma, has {len(dmas)}")
    for dma in dmas:
        got = config.get(dma, {})
        for name, want in {**DMA_REQUIRED, "c_m_axis_mm2s_tdata_width": str(axi_word_bits),
                           "c_s_axis_s2mm_tdata_width": str(axi_word_bits)}.items():
            if got.get(name) != want:
                problems.append(f"axi_dma {dma}: CONFIG.{name} is {got.get(name)!r}, must be {want}")
    if hls.vlnv not in cells.values():
        problems.append(f"the accelerator {hls.vlnv} is never instantiated")
    if hls.part != board.part:
        problems.append(f"the HLS part {hls.part!r} is not the board's {board.part!r}")
    problems += _layout(records)
    return problems


def _layout(records: list[Record]) -> list[str]:
    """The wrapper, bitstream and .hwh paths follow from the project and block-design names (Vivado's
    project layout, 2020.2 and later: <dir>/<name>.gen, <dir>/<name>.runs)."""
    problems = []
    proj = next((r for r in records if r.cmd == "create_project"), None)
    bd = next((r for r in records if r.cmd == "create_bd_design"), None)
    if proj is None or bd is None:
        return ["create_project / create_bd_design: never called"]
    _, ppos, _ = proj.parse(COMMANDS["vivado"]["create_project"])
    name, pdir = ppos[0], (ppos[1] if len(ppos) > 1 else ppos[0])
    design = bd.parse(COMMANDS["vivado"]["create_bd_design"])[1][0]
    gen = f"{pdir}/{name}.gen/sources_1/bd/{design}"
    want = {"wrapper": f"{gen}/hdl/{design}_wrapper.v",
            "bitstream": f"{pdir}/{name}.runs/impl_1/{design}_wrapper.bit",
            "handoff": f"{gen}/hw_handoff/{design}.hwh"}
    globbed = [a for r in records if r.cmd == "glob" for a in r.args if not a.startswith("-")]
    copied = [r.args[-2] for r in records if r.cmd == "file" and r.args[0] == "copy" and len(r.args) >= 3]
    if want["wrapper"] not in globbed:
        problems.append(f"the wrapper added is {globbed}, Vivado writes {want['wrapper']}")
    for what in ("bitstream", "handoff"):
        if want[what] not in copied:
            problems.append(f"the {what} copied from {copied}: Vivado writes it to {want[what]}")
    wrappers = [r for r in records if r.cmd == "set_property" and r.args[:1] == ("top",)]
    if not wrappers or wrappers[-1].args[1] != f"{design}_wrapper":
        problems.append(f"set_property top: must be {design}_wrapper")
    return problems


def check_project(project_dir: str | Path, board, clock_mhz: float, references=REFERENCE_HWH) -> list[str]:
    """Run a generated project's sqz_hls.tcl and sqz_vivado.tcl under tclsh (the Vivado one with and
    without board files) and check the records, for the design's board and clock (Design.board,
    Design.clock_mhz); [] when every check holds."""
    from hw.scripts import HLS_SCRIPT, VIVADO_SCRIPT

    project_dir = Path(project_dir)
    refs = load_references(references)
    hls_records = run_script(project_dir / HLS_SCRIPT, "vitis_hls")
    problems, hls = check_hls(hls_records, project_dir, board, clock_mhz)
    sources = [project_dir / f for r in hls_records if r.cmd == "add_files"
               for f in r.parse(COMMANDS["vitis_hls"]["add_files"])[1] if (project_dir / f).is_file()]
    tops = [pins for pins in (accelerator_pins(f.read_text(), hls.top) for f in sources) if pins[0]]
    if len(tops) != 1:
        problems.append(f"set_top {hls.top}: {len(tops)} of the sources added ({', '.join(f.name for f in sources)}) "
                        f"define {hls.top} with AXI interfaces, must be one")
    accel = tops[0] if len(tops) == 1 else (set(), set())
    axi_h = project_dir / "firmware" / "nnet_utils" / "sqz_axi.h"
    m = re.search(r"AXI_WORD_BITS\s*=\s*(\d+)", axi_h.read_text()) if axi_h.is_file() else None
    if m is None:
        problems.append("firmware/nnet_utils/sqz_axi.h: no AXI_WORD_BITS")
    for board_files in (False, True):
        records = run_script(project_dir / VIVADO_SCRIPT, "vivado", board_files=board_files)
        for p in check_vivado(records, refs, board, hls, accel, int(m.group(1)) if m else 0, clock_mhz):
            if p not in problems:
                problems.append(p)
    return problems
