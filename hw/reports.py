"""Readers of real Xilinx tool reports: what Vivado HLS / Vitis HLS and Vivado actually built.

The estimates (hw/estimate.py) are models, labelled ``source == "estimate"``; these readers turn the
tools' own reports into one structure, `Report`, whose ``source`` says which tool and stage the
figures come from, so a comparison never mistakes one for the other:

=============================  ===================================================================
source                         file (recognised by its content, not its name)
=============================  ===================================================================
vivado_hls_csynth              Vivado HLS (<= 2020.1) ``*_csynth.rpt`` ("== Vivado HLS Report for")
vitis_hls_csynth               Vitis HLS ``*_csynth.rpt`` ("== Vitis HLS Report for"), Vitis HLS
                               ``csynth.rpt`` ("== Synthesis Summary Report of", the hierarchical
                               table), and the csynth ``.xml`` of either tool (``<profile>``;
                               ``vivado_hls_csynth`` when its version is before 2020.2)
vivado_synth_utilization       Vivado ``report_utilization`` / ``report_accelerator_utilization``,
vivado_place_utilization       by their "Design State" (Synthesized / Placed / Routed:
vivado_route_utilization       ``vivado_route_utilization``)
vivado_timing                  ``report_timing_summary``: WNS and the clock's period
vivado_power                   ``report_power``: Total On-Chip Power, and its On-Chip Components
                               table as ``power_components`` (what an energy estimate scales)
=============================  ===================================================================

Conventions: ``clock_ns`` is the TARGET clock period (the HLS target, or the constrained clock of a
timing summary), ``estimated_clock_ns`` the HLS estimate; ``latency_cycles`` is the worst case and
``ii_cycles`` the largest interval; ``bram18`` counts RAMB18 halves (a RAMB36 is two; the accelerator
utilization report gives only 36K tiles, counted as two each); ``lut`` includes LUT as memory (Vivado's
"Slice LUTs" / "CLB LUTs"). A figure the report does not hold is None, never 0. The HLS tables print
"-" for a resource a module does not use; that is read as 0 (the .xml of the same run says 0).
Resources of FIFOs are in a csynth report's totals (its "FIFO" summary row), not in ``modules``.

A file that is not one of these, or that is cut short (a csynth/Vivado table or section missing, an
.xml that does not parse), raises `ReportError` naming the file and what is missing.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqz.errors import SqzError

REPORT_SUFFIXES = (".rpt", ".xml")
RESOURCES = ("lut", "ff", "dsp", "bram18", "uram")


class ReportError(SqzError, ValueError):
    """A report file that cannot be read: unknown kind, truncated, or missing a figure's table."""


@dataclass
class ModuleFigures:
    """One module (HLS instance, hierarchy row or Vivado cell) of a report; None: not in the report."""
    name: str
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram18: int | None = None
    uram: int | None = None
    latency_cycles: int | None = None
    ii_cycles: int | None = None


@dataclass
class Report:
    """What one tool report holds, in the names the estimates use (dsp, bram18, uram, lut, ii_cycles)."""
    path: str
    source: str
    part: str | None = None
    tool_version: str | None = None
    clock_ns: float | None = None
    estimated_clock_ns: float | None = None
    latency_cycles: int | None = None
    ii_cycles: int | None = None
    totals: dict = field(default_factory=lambda: dict.fromkeys(RESOURCES))
    modules: list[ModuleFigures] = field(default_factory=list)
    wns_ns: float | None = None
    power_w: float | None = None
    # report_power's On-Chip Components: snake_case row name ("clocks", "lut_as_logic", "dsps", "ps7",
    # "static_power", ...) -> {"w": watts, "used": count}; a "<0.001" cell is read as its bound, 0.001
    power_components: dict | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["totals"] = {k: self.totals.get(k) for k in RESOURCES}
        return out

    def table(self) -> str:
        """A readable summary: the scalar figures, the totals and one line per module."""
        def fmt(v):
            return "-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

        lines = [f"{self.path}", f"  source {self.source}   part {fmt(self.part)}   tool {fmt(self.tool_version)}"]
        scalars = [("clock (target)", self.clock_ns, "ns"), ("clock (estimated)", self.estimated_clock_ns, "ns"),
                   ("latency", self.latency_cycles, "cycles"), ("interval", self.ii_cycles, "cycles"),
                   ("WNS", self.wns_ns, "ns"), ("power", self.power_w, "W")]
        held = [f"{name} {fmt(v)} {unit}" for name, v, unit in scalars if v is not None]
        if held:
            lines.append("  " + "   ".join(held))
        if self.power_components:
            lines.append("  power (W): " + "  ".join(f"{k} {fmt(v['w'])}" for k, v in self.power_components.items()))
        if any(v is not None for v in self.totals.values()):
            lines.append("  totals: " + "  ".join(f"{k.upper()} {fmt(self.totals.get(k))}" for k in RESOURCES))
        if self.modules:
            width = min(max(len(m.name) for m in self.modules), 60)
            head = f"  {'module':<{width}} {'LUT':>8} {'FF':>8} {'DSP':>6} {'BRAM18':>7} {'URAM':>5} {'latency':>9} {'II':>8}"
            lines += [head, "  " + "-" * (len(head) - 2)]
            for m in self.modules:
                name = m.name if len(m.name) <= width else m.name[:width - 3] + "..."
                lines.append(f"  {name:<{width}} {fmt(m.lut):>8} {fmt(m.ff):>8} {fmt(m.dsp):>6} {fmt(m.bram18):>7} "
                             f"{fmt(m.uram):>5} {fmt(m.latency_cycles):>9} {fmt(m.ii_cycles):>8}")
        return "\n".join(lines)


# -- finding and recognising report files ------------------------------------------------------------

def detect_kind(text: str) -> str | None:
    """The reader a file's content calls for ("csynth_rpt", "csynth_summary", "csynth_xml",
    "vivado_utilization", "vivado_timing", "vivado_power"), or None for any other file."""
    head = text[:4000]
    if re.search(r"^== (Vivado|Vitis) HLS Report for '", head, re.M):
        return "csynth_rpt"
    if re.search(r"^== Synthesis Summary Report of '", head, re.M):
        return "csynth_summary"
    if re.match(r"\s*<profile>\s*<ReportVersion>", head):
        return "csynth_xml"
    command = re.search(r"^\| Command\s*:\s*(\S+)", head, re.M)
    if command and head.lstrip().startswith("Copyright"):
        return {"report_utilization": "vivado_utilization", "report_accelerator_utilization": "vivado_utilization",
                "report_timing_summary": "vivado_timing", "report_power": "vivado_power"}.get(command.group(1))
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise ReportError(f"{path}: cannot read ({e.strerror})") from None


def find_reports(paths) -> list[Path]:
    """The report files named: a file as given (checked when read), a folder expanded recursively to the
    .rpt/.xml files whose content is a known report (others are ignored; a folder with none is an error)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in REPORT_SUFFIXES
                           and detect_kind(_read_text(f)) is not None)
            if not found:
                raise ReportError(f"{p}: no synthesis, utilization, timing or power report in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise ReportError(f"{p}: no such file or folder")
    return out


def read_report(path) -> Report:
    """Parse one report file; ReportError names the file when it is unknown or truncated."""
    path = Path(path)
    text = _read_text(path)
    kind = detect_kind(text)
    if kind is None:
        raise ReportError(f"{path}: not a report this reader knows (Vivado HLS / Vitis HLS csynth .rpt or .xml, "
                          f"Vivado report_utilization, report_timing_summary or report_power)")
    return _READERS[kind](path, text)


def read_reports(paths) -> list[Report]:
    return [read_report(p) for p in find_reports(paths)]


# -- text tables ---------------------------------------------------------------------------------

def _is_border(line: str) -> bool:
    s = line.strip()
    return len(s) > 2 and s[0] == "+" and set(s) <= set("+-")


def _cells(line: str) -> list[str]:
    s = line.strip()
    return [c.strip() for c in s.strip("|").split("|")]


def _table(path, lines, start, what):
    """The first +---+ table at or after line `start` (before the next section): (header rows, body
    rows, index after it). The table must be closed by a border line, or the file was cut short."""
    i = start
    while i < len(lines) and not _is_border(lines[i]):
        if i > start and lines[i].startswith("== "):
            raise ReportError(f"{path}: no {what} table: truncated or not a complete report")
        i += 1
    if i >= len(lines):
        raise ReportError(f"{path}: no {what} table: truncated or not a complete report")
    header, body, borders, j = [], [], 1, i + 1
    while j < len(lines) and lines[j].strip().startswith(("|", "+")):
        if _is_border(lines[j]):
            borders += 1
        elif borders == 1:
            header.append(_cells(lines[j]))
        else:
            body.append(_cells(lines[j]))
        j += 1
    if not _is_border(lines[j - 1]) or borders < 2:
        raise ReportError(f"{path}: the {what} table is cut short: truncated report")
    return header, body, j


def _find(path, lines, pattern, start=0, what=None, stop=None, kind="csynth"):
    """Index of the first line at or after `start` matching `pattern` (before a line matching `stop`)."""
    rx = re.compile(pattern)
    for i in range(start, len(lines)):
        if stop is not None and i > start and re.match(stop, lines[i]):
            break
        if rx.match(lines[i]):
            return i
    if what is None:
        return None
    raise ReportError(f"{path}: no {what}: truncated or not a {kind} report")


def _int(cell: str, dash_is_zero: bool = True) -> int | None:
    """An HLS/Vivado count: '1234', '58 (3%)', '9613 [  8.55%]'; '-' (unused) is 0; '?' or '' is None."""
    s = cell.strip()
    if s == "-" and dash_is_zero:
        return 0
    m = re.match(r"^(\d+(?:\.\d+)?)", s)
    if not m:
        return None
    v = float(m.group(1))
    return int(v) if v.is_integer() else v


def _float(cell: str) -> float | None:
    m = re.match(r"^\s*([-+]?\d+(?:\.\d+)?)", cell)
    return float(m.group(1)) if m else None


# -- HLS C synthesis (.rpt, per-module layout of Vivado HLS and Vitis HLS) ---------------------------

_RESOURCE_COLUMNS = {"BRAM_18K": "bram18", "DSP48E": "dsp", "DSP48E2": "dsp", "DSP": "dsp", "FF": "ff",
                     "LUT": "lut", "URAM": "uram"}


def _resource_row(names, row) -> dict:
    out = {}
    for name, cell in zip(names, row):
        key = _RESOURCE_COLUMNS.get(name)
        if key is not None:
            out[key] = _int(cell)
    return out


def _csynth_header(path, text):
    tool = re.search(r"^== (Vivado|Vitis) HLS Report for '", text, re.M).group(1)
    version = re.search(r"^\s*\* Version:\s*(\S+)", text, re.M)
    part = re.search(r"^\s*\* Target device:\s*(\S+)", text, re.M)
    return tool, version.group(1) if version else None, part.group(1) if part else None


def _read_csynth_rpt(path: Path, text: str) -> Report:
    tool, version, part = _csynth_header(path, text)
    lines = text.splitlines()
    perf = _find(path, lines, r"^== Performance Estimates", what="'Performance Estimates' section")
    timing = _find(path, lines, r"^\+ Timing:", perf, what="'Timing' summary in Performance Estimates")
    header, body, _ = _table(path, lines, timing, "Timing")
    clock = next((r for r in body if r and r[0] == "ap_clk"), body[0] if body else None)
    if clock is None or len(clock) < 3:
        raise ReportError(f"{path}: the Timing table holds no clock row")
    latency = _find(path, lines, r"^\+ Latency:", perf, what="'Latency' summary in Performance Estimates")
    _, body, after = _table(path, lines, latency, "Latency summary")
    if not body or len(body[0]) < 6:
        raise ReportError(f"{path}: the Latency summary holds no row")
    lat = body[0]          # min, max (cycles), min, max (absolute), interval min, max, pipeline type

    # per-instance latency (Detail > Instance of the Latency part), keyed by instance name
    inst_latency = {}
    util = _find(path, lines, r"^== Utilization Estimates", perf,
                 what="'Utilization Estimates' section")
    inst = _find(path, lines, r"^\s*\* Instance:", after, stop=r"^\s*\* Loop:|^==")
    if inst is not None and inst < util and not lines[inst + 1].strip().startswith("N/A"):
        _, rows, _ = _table(path, lines, inst, "latency Detail > Instance")
        for r in rows:
            if len(r) >= 8 and r[0] and r[0] != "Total":
                inst_latency[r[0]] = (_int(r[3], False), _int(r[7], False))

    summary = _find(path, lines, r"^\* Summary:", util, what="'Summary' table in Utilization Estimates")
    header, rows, after = _table(path, lines, summary, "Utilization Estimates Summary")
    names = header[-1]
    total = next((r for r in rows if r[0] == "Total"), None)
    if total is None:
        raise ReportError(f"{path}: the Utilization Estimates Summary has no Total row")
    totals = dict.fromkeys(RESOURCES)
    totals.update(_resource_row(names, total))

    modules = []
    inst = _find(path, lines, r"^\s*\* Instance:", after, stop=r"^==")
    if inst is not None and not lines[inst + 1].strip().startswith("N/A"):
        header, rows, _ = _table(path, lines, inst, "utilization Detail > Instance")
        names = header[-1]
        for r in rows:
            if not r[0] or r[0] == "Total":
                continue
            lat_max, ii_max = inst_latency.pop(r[0], (None, None))
            modules.append(ModuleFigures(name=r[1] or r[0], **_resource_row(names, r),
                                         latency_cycles=lat_max, ii_cycles=ii_max))
    interface = _find(path, lines, r"^== Interface", util, what="'Interface' section (the report's last)")
    _table(path, lines, interface, "Interface summary")
    source = "vivado_hls_csynth" if tool == "Vivado" else "vitis_hls_csynth"
    return Report(path=str(path), source=source, part=part, tool_version=version,
                  clock_ns=_float(clock[1]), estimated_clock_ns=_float(clock[2]),
                  latency_cycles=_int(lat[1], False), ii_cycles=_int(lat[5], False),
                  totals=totals, modules=modules)


# -- Vitis HLS csynth.rpt: the hierarchical "Synthesis Summary Report" ---------------------------------

def _read_csynth_summary(path: Path, text: str) -> Report:
    lines = text.splitlines()
    version = re.search(r"^\s*\* Version:\s*(\S+)", text, re.M)
    part = re.search(r"^\s*\* Target device:\s*(\S+)", text, re.M)
    est = _find(path, lines, r"^\+ Performance & Resource Estimates:",
                what="'Performance & Resource Estimates' table")
    header, rows, _ = _table(path, lines, est, "Performance & Resource Estimates")
    # two header lines whose cells join into the column names ("Latency (cycles)", "BRAM", ...)
    names = [" ".join(p for p in parts if p) for parts in zip(*header)]
    col = {n: i for i, n in enumerate(names)}
    for need in ("Latency (cycles)", "Interval", "BRAM", "DSP", "FF", "LUT", "URAM"):
        if need not in col:
            raise ReportError(f"{path}: the Performance & Resource Estimates table has no {need!r} column")
    # the report's last section closes it; a cut-short copy lacks it
    pragma = _find(path, lines, r"^== Pragma Report", what="'Pragma Report' section (the report's last)")
    _table(path, lines, pragma, "Pragma Report")

    def figures(r):
        return {"bram18": _int(r[col["BRAM"]]), "dsp": _int(r[col["DSP"]]), "ff": _int(r[col["FF"]]),
                "lut": _int(r[col["LUT"]]), "uram": _int(r[col["URAM"]]),
                "latency_cycles": _int(r[col["Latency (cycles)"]], False),
                "ii_cycles": _int(r[col["Interval"]], False)}

    modules, top = [], None
    for r in rows:
        m = re.match(r"^(\s*)([+o])\s+(\S+)", r[0])
        if not m or m.group(2) != "+":
            continue                                # loops ('o') are not modules
        name = m.group(3).rstrip("*")
        if top is None:
            top = figures(r)
        else:
            modules.append(ModuleFigures(name=name, **figures(r)))
    if top is None:
        raise ReportError(f"{path}: the Performance & Resource Estimates table holds no module row")
    return Report(path=str(path), source="vitis_hls_csynth", part=part.group(1) if part else None,
                  tool_version=version.group(1) if version else None,
                  latency_cycles=top.pop("latency_cycles"), ii_cycles=top.pop("ii_cycles"),
                  totals=top, modules=modules)


# -- HLS C synthesis .xml ----------------------------------------------------------------------------

def _xml_int(node, tag):
    el = node.find(tag) if node is not None else None
    if el is None or el.text is None:
        return None
    return _int(el.text, False)


def _xml_float(node, tag):
    el = node.find(tag) if node is not None else None
    return _float(el.text) if el is not None and el.text else None


def _xml_resources(node) -> dict:
    return {"lut": _xml_int(node, "LUT"), "ff": _xml_int(node, "FF"),
            "dsp": _xml_int(node, "DSP") if node.find("DSP") is not None else
            (_xml_int(node, "DSP48E") if node.find("DSP48E") is not None else _xml_int(node, "DSP48E2")),
            "bram18": _xml_int(node, "BRAM_18K"), "uram": _xml_int(node, "URAM")}


def _xml_latency(perf):
    lat = perf.find("SummaryOfOverallLatency") if perf is not None else None
    if lat is None:
        return None, None
    ii = _xml_int(lat, "Interval-max")
    if ii is None:
        ii = _xml_int(lat, "PipelineInitiationInterval")
    return _xml_int(lat, "Worst-caseLatency"), ii


def _read_csynth_xml(path: Path, text: str) -> Report:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ReportError(f"{path}: not well-formed XML ({e}): truncated csynth report") from None
    version = root.findtext("ReportVersion/Version")
    user = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates/Resources")
    if perf is None or area is None:
        raise ReportError(f"{path}: no <PerformanceEstimates> / <AreaEstimates> in this csynth .xml")
    latency, ii = _xml_latency(perf)
    modules = []
    for m in root.findall("ModuleInformation/Module"):
        mperf = m.find("PerformanceEstimates")
        mlat, mii = _xml_latency(mperf)
        res = m.find("AreaEstimates/Resources")
        modules.append(ModuleFigures(name=m.findtext("Name"), **(_xml_resources(res) if res is not None else {}),
                                     latency_cycles=mlat, ii_cycles=mii))
    major = re.match(r"(\d+)\.(\d+)", version or "")
    vivado = major is not None and (int(major.group(1)), int(major.group(2))) < (2020, 2)
    return Report(path=str(path), source="vivado_hls_csynth" if vivado else "vitis_hls_csynth",
                  part=user.findtext("Part") if user is not None else None, tool_version=version,
                  clock_ns=_xml_float(user, "TargetClockPeriod"),
                  estimated_clock_ns=_xml_float(perf.find("SummaryOfTimingAnalysis"), "EstimatedClockPeriod"),
                  latency_cycles=latency, ii_cycles=ii, totals=_xml_resources(area), modules=modules)


# -- Vivado reports --------------------------------------------------------------------------------

def _vivado_header(text):
    version = re.search(r"^\| Tool Version\s*:\s*Vivado v\.(\S+)", text, re.M)
    device = re.search(r"^\| Device\s*:\s*(\S+)", text, re.M)
    state = re.search(r"^\| Design State\s*:\s*(.+?)\s*$", text, re.M)
    return (version.group(1) if version else None, device.group(1) if device else None,
            state.group(1) if state else None)


def _check_contents(path: Path, text: str, lines) -> None:
    """Every section the Table of Contents lists must be there, and the last table closed."""
    toc = _find(path, lines, r"^Table of Contents", what="'Table of Contents'", kind="Vivado")
    entries = []
    for line in lines[toc + 2:]:
        if not line.strip():
            break
        entries.append(line.strip())
    body = lines[toc + 2 + len(entries):]
    headings = {l.strip() for l, nxt in zip(body, body[1:]) if nxt.strip().startswith("---")}
    missing = [e for e in entries if e not in headings]
    if missing:
        raise ReportError(f"{path}: section {missing[0]!r} of its Table of Contents is missing: truncated report")
    last = next((l for l in reversed(lines) if l.strip()), "")
    if not _is_border(last):
        raise ReportError(f"{path}: the last table is not closed: truncated report")


def _site_rows(path, lines):
    """{site type: used} from every Site Type table, the first row of each name winning."""
    used = {}
    i = 0
    while True:
        i = _find(path, lines, r"^\|\s+Site Type\s+\|", i)
        if i is None:
            return used
        names = _cells(lines[i])
        if "Used" not in names:
            i += 1
            continue
        col = names.index("Used")
        j = i + 2
        while j < len(lines) and lines[j].strip().startswith(("|", "+")):
            if not _is_border(lines[j]):
                r = _cells(lines[j])
                used.setdefault(r[0].rstrip("*").strip(), r[col])
            j += 1
        i = j


def _stage(path, state, command) -> str:
    s = (state or "").lower()
    for key, stage in (("rout", "route"), ("placed", "place"), ("synth", "synth")):
        if key in s:
            return stage
    raise ReportError(f"{path}: {command} with an unknown Design State {state!r}")


def _read_vivado_utilization(path: Path, text: str) -> Report:
    lines = text.splitlines()
    version, device, state = _vivado_header(text)
    _check_contents(path, text, lines)
    stage = _stage(path, state, "report_utilization")
    if re.search(r"^\| Command\s*:\s*report_accelerator_utilization", text, re.M):
        return _read_accelerator_utilization(path, lines, version, device, stage)
    used = _site_rows(path, lines)
    lut = used.get("Slice LUTs", used.get("CLB LUTs"))
    ff = used.get("Slice Registers", used.get("CLB Registers"))
    if lut is None or ff is None:
        raise ReportError(f"{path}: no 'Slice LUTs'/'CLB LUTs' or 'Slice Registers'/'CLB Registers' row")
    ramb36 = next((v for k, v in used.items() if k.startswith("RAMB36")), None)
    ramb18 = used.get("RAMB18")
    if ramb36 is None or ramb18 is None:
        raise ReportError(f"{path}: no RAMB36/RAMB18 rows in its Memory table")
    if "DSPs" not in used:
        raise ReportError(f"{path}: no 'DSPs' row")
    totals = {"lut": _int(lut, False), "ff": _int(ff, False), "dsp": _int(used["DSPs"], False),
              "bram18": 2 * _int(ramb36, False) + _int(ramb18, False),
              "uram": _int(used["URAM"], False) if "URAM" in used else None}   # 7-series: no URAM row
    return Report(path=str(path), source=f"vivado_{stage}_utilization", part=device, tool_version=version,
                  totals=totals)


def _read_accelerator_utilization(path, lines, version, device, stage) -> Report:
    i = _find(path, lines, r"^\|\s+Name\s+\|\s+LUT\s+\|", what="'System Utilization' table", kind="Vivado")
    names = _cells(lines[i])
    col = {n: k for k, n in enumerate(names)}
    rows = []
    j = i + 2
    while j < len(lines) and lines[j].strip().startswith(("|", "+")):
        if not _is_border(lines[j]):
            rows.append(_cells(lines[j]))
        j += 1

    def figures(r):
        return {"lut": _int(r[col["LUT"]], False), "ff": _int(r[col["REG"]], False),
                "dsp": _int(r[col["DSP"]], False), "bram18": 2 * _int(r[col["BRAM"]], False),  # 36K tiles
                "uram": _int(r[col["URAM"]], False)}

    total = next((r for r in rows if r[0] == "Used Resources"), None)
    if total is None:
        raise ReportError(f"{path}: the System Utilization table has no 'Used Resources' row")
    modules = [ModuleFigures(name=r[0], **figures(r)) for r in rows
               if r[0] not in ("User Budget", "Used Resources", "Unused Resources")]
    return Report(path=str(path), source=f"vivado_{stage}_utilization", part=device, tool_version=version,
                  totals=figures(total), modules=modules)


def _read_vivado_timing(path: Path, text: str) -> Report:
    lines = text.splitlines()
    version, device, _ = _vivado_header(text)
    summary = _find(path, lines, r"^\| Design Timing Summary", what="'Design Timing Summary' section", kind="Vivado")
    head = _find(path, lines, r"^\s+WNS\(ns\)", summary, what="WNS in the Design Timing Summary", kind="Vivado")
    values = lines[head + 2].split()
    wns = _float(values[0]) if values else None
    clocks = _find(path, lines, r"^\| Clock Summary", summary, what="'Clock Summary' section", kind="Vivado")
    head = _find(path, lines, r"^Clock\s+Waveform", clocks, what="Clock Summary table", kind="Vivado")
    periods = {}
    for line in lines[head + 2:]:
        if not line.strip():
            break
        parts = re.match(r"^\s*(\S+)\s+\{[^}]*\}\s+(\S+)", line)
        if parts:
            periods[parts.group(1)] = _float(parts.group(2))
    # the clock whose intra-clock WNS is the design's (the only one, in a one-clock design)
    clock_ns = next(iter(periods.values())) if len(periods) == 1 else None
    if len(periods) > 1:
        intra = _find(path, lines, r"^\| Intra Clock Table", clocks)
        for line in lines[(intra or 0) + 6:]:
            if not line.strip():
                break
            p = line.split()
            if p[0] in periods and _float(p[1]) == wns:
                clock_ns = periods[p[0]]
                break
    _find(path, lines, r"^\| Timing Details", clocks, what="'Timing Details' section", kind="Vivado")
    last = next((l for l in reversed(lines) if l.strip()), "")
    if not last.strip().startswith("slack"):
        raise ReportError(f"{path}: the Timing Details end mid-path: truncated report")
    return Report(path=str(path), source="vivado_timing", part=device, tool_version=version,
                  clock_ns=clock_ns, wns_ns=wns)


def _read_vivado_power(path: Path, text: str) -> Report:
    lines = text.splitlines()
    version, device, _ = _vivado_header(text)
    _check_contents(path, text, lines)
    total = re.search(r"^\| Total On-Chip Power \(W\)\s*\|\s*([\d.]+)", text, re.M)
    if total is None:
        raise ReportError(f"{path}: no 'Total On-Chip Power' in its Summary")
    return Report(path=str(path), source="vivado_power", part=device, tool_version=version,
                  power_w=float(total.group(1)), power_components=_power_components(path, lines))


def _power_components(path, lines) -> dict:
    """report_power's "On-Chip Components" table (indented rows are parts of the row above them)."""
    # the section heading (underlined), not its line in the Table of Contents
    start = next((i for i, (l, nxt) in enumerate(zip(lines, lines[1:]))
                  if re.match(r"^\d+\.\d+ On-Chip Components", l) and nxt.startswith("---")), None)
    if start is None:
        raise ReportError(f"{path}: no 'On-Chip Components' section: truncated or not a Vivado power report")
    header, body, _ = _table(path, lines, start, "On-Chip Components")
    if not header or header[0][:2] != ["On-Chip", "Power (W)"]:
        raise ReportError(f"{path}: the On-Chip Components table has columns {header[:1]}, not On-Chip | Power (W)")
    used_col = header[0].index("Used") if "Used" in header[0] else None
    out = {}
    for row in body:
        name = re.sub(r"[^a-z0-9]+", "_", row[0].lower()).strip("_")
        if not name or name == "total":
            continue
        used = _int(row[used_col], dash_is_zero=False) if used_col is not None and used_col < len(row) else None
        out[name] = {"w": _float(row[1].lstrip("<")), "used": used}
    if "ps7" not in out and "ps8" not in out and "static_power" not in out:
        raise ReportError(f"{path}: the On-Chip Components table has no PS or static power row")
    return out


_READERS = {"csynth_rpt": _read_csynth_rpt, "csynth_summary": _read_csynth_summary,
            "csynth_xml": _read_csynth_xml, "vivado_utilization": _read_vivado_utilization,
            "vivado_timing": _read_vivado_timing, "vivado_power": _read_vivado_power}
