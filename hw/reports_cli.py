"""`python -m sqz reports PATH... [--json OUT.json]`: read real Xilinx tool reports (hw/reports.py).

Each PATH is a report file, or a folder searched recursively for the report files in it (other files
there are ignored). Prints one table per report; OUT.json: {"reports": [{"path", "source", "part",
"tool_version", "clock_ns", "estimated_clock_ns", "latency_cycles", "ii_cycles", "totals": {"lut", "ff",
"dsp", "bram18", "uram"}, "modules": [...], "wns_ns", "power_w"}]}, null where a report holds no figure.
"""
from __future__ import annotations

from sqz.cli_common import write_json


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("reports", help="read Vivado HLS / Vitis HLS / Vivado reports (csynth, utilization, "
                                              "timing, power) into one JSON structure")
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files, or folders holding them")
    p.add_argument("--json", help="write {\"reports\": [...]} here")
    p.set_defaults(func=cmd_reports)


def cmd_reports(args) -> int:
    from hw.reports import read_reports

    reports = read_reports(args.paths)
    for r in reports:
        print(r.table())
        print()
    print(f"{len(reports)} report(s) read")
    write_json(args.json, {"reports": [r.to_json() for r in reports]})
    return 0
