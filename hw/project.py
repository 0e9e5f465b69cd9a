"""The generated HLS project on disk: write it, build its C simulation, and cache both by content.

    project = build_project(design, out_dir)       # writes (or reuses) out_dir, builds the .so
    sim = project.simulator()                      # hw.csim.CSimulator, runs in child processes

Layout of a project folder (everything relative: the folder can be moved or copied):
    manifest.json             what it is, for the host: content key, formats, shapes, AXI packing, control
                              registers, board, estimate (host/manifest.py Manifest; written and read only
                              through that type)
    spec.json, spec.weights.npz   the QuantSpec as quant/spec.py saves it (the manifest embeds the same JSON)
    firmware/                 hls4ml's project: myproject.cpp, parameters.h, defines.h, weights/, nnet_utils/
                              (with sqz's kernels), plus sqz_top.cpp/.h: the AXI4-Stream top for Vitis HLS
    firmware/weights/sqz_codes.h  every weight array as integer codes, for C simulation (see below)
    firmware/libsqz_csim.so   the one C-simulation library (hls4ml's bridge + the AXI harness)
    myproject_bridge.cpp      hls4ml's float/double bridge; sqz_csim.cpp: extern "C" AXI harness
    build_csim.sh             g++ build of the library (what `compile()` would run, minus hls4ml's stamps)
    sqz_hls.tcl, sqz_vivado.tcl, BUILD.md   Vitis HLS synthesis and Vivado block design (hw/scripts.py)
    weights_stream.bin        only with loadable layers (Design.loadable): the weight-load stream, uint64
                              little-endian beats (host/axi.py WeightStream; layout in the manifest's
                              "weight_load"), to send with the top's mode = 1 before any image

Loadable layers: their weights are namespace-scope arrays `sqz_w_<layer>` defined in myproject.cpp,
bound to UltraRAM and written by `sqz_load_weights` (also there) when sqz_top runs with mode = 1; the
C simulation sends weights_stream.bin through that path first (hw/csim.py), exactly as a host must.

Weights: hls4ml writes each weight array as a header with an ap_fixed initializer (used by synthesis)
and, for C simulation, a .txt file that the library opens at its first call through an absolute path
baked in at compile time. Here the .txt files are replaced by integer codes compiled into the library
(`sqz::load_codes`): no file is opened at run time (a moved project still runs, and a missing file can
no longer exit() the caller), the codes are exact, and plain integer arrays compile in about a second
where ap_fixed initializers of conv10's 512,000 weights take many minutes of g++.

Cache: the folder's manifest records `Design.key()` -- a hash of the weights, the spec, the reuse
factors, the board, the generator sources and hls4ml's version. `build_project` returns an existing
folder with the same key untouched (no conversion, no compile); anything else is regenerated in a
staging folder and swapped in whole, so an interrupted build never looks finished. A folder that sqz
generated with an older manifest (sqz_manifest.json, or another manifest version) is regenerated; any
other non-empty folder is refused.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from host.axi import AxiPacking, WeightStream
from host.manifest import (MANIFEST_FILE, MANIFEST_FORMAT, ControlRegisters, InputInfo, Manifest, ManifestError,
                           OutputInfo, Resources, ToolVersions)
from hw.convert import PROJECT_NAME, Design, to_hls4ml
from sqz.errors import SqzError

MANIFEST = MANIFEST_FILE
LEGACY_MANIFEST, LEGACY_FORMAT = "sqz_manifest.json", "sqz-hls-project"   # before host/manifest.py
SPEC_FILE = "spec.json"
ESTIMATE_FILE = "estimate.json"   # the per-layer estimate of exactly this design; `sqz build` sets reports against it
LIBRARY = "firmware/libsqz_csim.so"
BUILD_SCRIPT = "build_csim.sh"
TOP = "sqz_top"
WEIGHT_STREAM = "weights_stream.bin"


class ProjectError(SqzError, ValueError):
    """A folder that is not (or no longer) a usable sqz HLS project."""


class BuildError(RuntimeError):
    """g++ failed on the generated project; the message holds the end of its output."""


class Project:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.manifest: Manifest = Manifest.load(self.path / MANIFEST)
        except ManifestError as e:
            raise ProjectError(f"{self.path}: not a usable sqz HLS project ({e})") from None
        self.cache_hit = False
        self.times: dict[str, float] = {}

    @property
    def key(self) -> str:
        return self.manifest.key

    @property
    def library(self) -> Path:
        return self.path / LIBRARY

    @property
    def built(self) -> bool:
        return self.library.exists()

    @property
    def weight_stream(self) -> WeightStream | None:
        """The layout of the weight-load stream, or None for a design without loadable layers."""
        return self.manifest.weight_load

    def weight_words(self) -> np.ndarray | None:
        """weights_stream.bin as uint64 beats (header first), checked against the manifest's layout."""
        layout = self.weight_stream
        if layout is None:
            return None
        path = self.path / (self.manifest.weight_load_file or WEIGHT_STREAM)
        try:
            words = np.fromfile(path, dtype="<u8")
        except OSError as e:
            raise ProjectError(f"{path}: cannot read the weight stream ({e})") from None
        if len(words) != layout.total_beats or (len(words) and words[0] != layout.header()):
            raise ProjectError(f"{path}: {len(words)} beats, expected {layout.total_beats} beginning with the header "
                               f"{int(layout.header()):#018x} ({MANIFEST} weight_load)")
        return words.astype(np.uint64)

    def build(self) -> float:
        """Compile the C-simulation library (g++); returns seconds. Raises BuildError."""
        t0 = time.perf_counter()
        run = subprocess.run(["sh", BUILD_SCRIPT], cwd=self.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        if run.returncode != 0 or not self.library.exists():
            tail = "\n".join(run.stdout.splitlines()[-40:])
            raise BuildError(f"{self.path}: building the C simulation failed (exit {run.returncode}):\n{tail}")
        self.times["compile_s"] = time.perf_counter() - t0
        return self.times["compile_s"]

    def simulator(self, workers: int | None = None, load_weights: bool = True):
        from hw.csim import CSimulator

        if not self.built:
            self.build()
        return CSimulator(self, workers=workers, load_weights=load_weights)


def project_dir_for(design: Design, cache_root: str | Path) -> Path:
    """The cache folder of a design: <cache_root>/<model>-<first 16 hex digits of its key>."""
    return Path(cache_root) / f"{design.arch.name}-{design.key()[:16]}"


def build_project(design: Design, out_dir: str | Path, compile: bool = True) -> Project:
    """Write (or reuse) the project for `design` in out_dir; compile its C simulation if asked."""
    out = Path(out_dir)
    key = design.key()
    if generated_by_sqz(out):
        try:
            existing = Project(out)
        except ProjectError:
            existing = None               # an older manifest version, or damaged: regenerated below
        if existing is not None and existing.key == key:
            existing.cache_hit = True
            if compile and not existing.built:
                existing.build()
            return existing
    elif out.exists() and any(out.iterdir()):
        raise ProjectError(f"{out}: exists, is not empty and is not an sqz HLS project; refusing to overwrite it")

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    times = {}
    try:
        log = io.StringIO()
        t0 = time.perf_counter()
        model = to_hls4ml(design, staging, log=log)
        times["convert_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        from contextlib import redirect_stdout
        with redirect_stdout(log):
            model.write()
        finish_project(staging, model, design, key)
        times["write_s"] = time.perf_counter() - t0
        project = Project(staging)
        if compile:
            project.build()
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(out)
        times.update(project.times)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    project = Project(out)
    project.times = times
    return project


def generated_by_sqz(path: Path) -> bool:
    """Whether the folder holds a manifest sqz wrote (this version or an older one, valid or not)."""
    for name, fmt in ((MANIFEST, MANIFEST_FORMAT), (LEGACY_MANIFEST, LEGACY_FORMAT)):
        try:
            data = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == fmt:
            return True
    return False


# -- what sqz adds to hls4ml's project ---------------------------------------------------------------

def finish_project(path: Path, model, design: Design, key: str) -> None:
    from hw import scripts

    embed_weight_codes(path, model)
    packing = axi_packing(design)
    stream = write_loadable_weights(path, model, design)
    write_axi_top(path, model, packing, stream)
    (path / BUILD_SCRIPT).write_text(BUILD_SCRIPT_TEXT)
    scripts.write_scripts(path, design)
    (path / ESTIMATE_FILE).write_text(json.dumps(design.estimate().to_json(), indent=1) + "\n")
    write_manifest(path, design, key, packing, model, stream)


def _code_ctype(fmt_width: int, signed: bool) -> str:
    bits = fmt_width + (0 if signed else 1)
    return next(f"int{b}_t" for b in (8, 16, 32, 64) if bits <= b)


LOAD_RE = re.compile(r'nnet::load_weights_from_txt<(?P<type>[^,]+), (?P<n>\d+)>\((?P<var>\w+), "\w+\.txt"\);')


def embed_weight_codes(path: Path, model) -> None:
    """weights/*.txt -> integer codes in weights/sqz_codes.h, loaded with sqz::load_codes (see module doc)."""
    from hls4ml.model.types import WeightVariable

    lines = ["// Integer codes of every weight array (value = code * 2**-frac of the array's type), written",
             "// by sqz hw/project.py. C simulation fills the arrays from these; synthesis uses weights/*.h.",
             "#ifndef SQZ_CODES_H_", "#define SQZ_CODES_H_", "", "#include <stdint.h>", "",
             "#ifndef __SYNTHESIS__"]
    names = set()
    for var in model.get_weight_variables():
        if type(var).__name__ not in ("WeightVariable", "StaticWeightVariable") and not isinstance(var, WeightVariable):
            raise RuntimeError(f"internal: weight {var.name} is a {type(var).__name__}; only plain weights are supported")
        p = var.type.precision
        frac = int(p.width) - int(p.integer)
        scaled = np.ldexp(np.asarray(var.data, np.float64), frac)
        codes = np.rint(scaled)
        lo = -(1 << (p.width - 1)) if p.signed else 0
        hi = (1 << (p.width - 1)) - 1 if p.signed else (1 << p.width) - 1
        if not np.array_equal(codes, scaled) or codes.min(initial=0) < lo or codes.max(initial=0) > hi:
            raise RuntimeError(f"internal: weights {var.name} are not codes of {p} (not quantized before writing)")
        body = ",".join(map(str, codes.astype(np.int64).ravel().tolist()))
        lines.append(f"static const {_code_ctype(int(p.width), bool(p.signed))} {var.name}_codes[{codes.size}] = {{{body}}};")
        names.add(var.name)
    lines += ["#endif", "", "#endif", ""]
    (path / "firmware" / "weights" / "sqz_codes.h").write_text("\n".join(lines))

    cpp = path / "firmware" / f"{PROJECT_NAME}.cpp"
    text = cpp.read_text()
    replaced = set()

    def sub(m):
        replaced.add(m["var"])
        return f"sqz::load_codes<{m['type']}, {m['n']}>({m['var']}, {m['var']}_codes);"

    text = LOAD_RE.sub(sub, text)
    if replaced != names or "_from_txt" in text:
        raise RuntimeError(f"internal: could not redirect every weight load in {cpp.name} "
                           f"(codes for {sorted(names - replaced)}, loads left: {'_from_txt' in text})")
    text = text.replace('#include "parameters.h"\n',
                        '#include "parameters.h"\n#include "nnet_utils/sqz_common.h"\n#include "weights/sqz_codes.h"\n', 1)
    cpp.write_text(text)
    for txt in (path / "firmware" / "weights").glob("*.txt"):
        txt.unlink()


def write_loadable_weights(path: Path, model, design: Design) -> WeightStream | None:
    """For loadable layers: their runtime-written arrays and the loader in myproject.cpp, the STABLE
    pragma in the dataflow region, and weights_stream.bin. Returns the stream layout (None: none)."""
    loads = design.load_arrays()
    if not loads:
        return None
    layers = {l.name: l for l in model.get_layers()}
    stream = WeightStream.for_arrays([(a.layer, a.array, a.codes.size, a.fmt) for a in loads])
    stream.pack({a.layer: a.codes for a in loads}).astype("<u8").tofile(path / WEIGHT_STREAM)

    kernels = {op.name: op.kernel for op in design.ops}
    defs, pragmas, reads = [], [], []
    for a, laid in zip(loads, stream.arrays):          # same order: the stream is laid out from `loads`
        w_t = layers[a.node].get_attr(a.type_attr).name
        defs.append(f"// {a.layer}: {a.codes.size} weights, written by sqz_load_weights (mode 1), read by "
                    f"{kernels[a.node]}\n{w_t} {a.array}[{a.codes.size}];")
        pragmas += [f"    #pragma HLS BIND_STORAGE variable={a.array} type=ram_1p impl=uram",
                    f"    #pragma HLS ARRAY_RESHAPE variable={a.array} cyclic factor={a.codes.size // a.reuse}"]
        reads.append(f"        sqz::axi_read_weights<{w_t}, {laid.n}, {laid.lane}>(in, {a.array}, ended, beats);")
    cpp = path / "firmware" / f"{PROJECT_NAME}.cpp"
    text = cpp.read_text()
    anchor = '#include "weights/sqz_codes.h"\n'
    if anchor not in text or text.count("#pragma HLS DATAFLOW") != 1:
        raise RuntimeError(f"internal: unexpected layout of {cpp.name}; cannot add the loadable weight arrays")
    text = text.replace(anchor, anchor + '#include "nnet_utils/sqz_axi.h"\n\n// Loadable weights (sqz hw/project.py): '
                        'UltraRAM has no bitstream initialisation; these arrays start at 0\n'
                        + "\n".join(defs) + "\n", 1)
    stable = "".join(f"\n    #pragma HLS STABLE variable={a.array}" for a in stream.arrays)
    text = text.replace("#pragma HLS DATAFLOW", "#pragma HLS DATAFLOW" + stable, 1)
    text += f"""
// Load mode of sqz_top (generated by sqz hw/project.py): header, payload, one reply beat
// (packing: nnet_utils/sqz_axi.h and host/axi.py WeightStream).
void sqz_load_weights(hls::stream<sqz::axi_word> &in, hls::stream<sqz::axi_word> &reply) {{
{chr(10).join(pragmas)}
    const sqz::axi_word head = in.read();
    bool ended = head.last == 1;
    unsigned beats = 0;
    const bool header_ok = !ended && head.data.range(63, 32) == sqz::WEIGHT_MAGIC &&
                           head.data.range(31, 0) == {stream.payload_beats}u;
    if (header_ok) {{
{chr(10).join(reads)}
    }}
    const bool ok = header_ok && ended && beats == {stream.payload_beats}u;
    sqz::axi_drain(in, ended, beats);
    reply.write(sqz::axi_load_reply(ok, beats));
}}
"""
    cpp.write_text(text)
    return stream


def axi_packing(design: Design) -> AxiPacking:
    s = design.input_size
    gap_in = design.arch.shapes(s)[-1][1]
    return AxiPacking.for_formats(s, s, design.arch.in_channels, design.spec.input, gap_in[2], design.logit_format)


def _io_names(model) -> tuple[str, str]:
    (inp,), (out,) = model.get_input_variables(), model.get_output_variables()
    return inp.type.name, out.type.name


def write_axi_top(path: Path, model, packing: AxiPacking, stream: WeightStream | None = None) -> None:
    """sqz_top.h/.cpp and the C-simulation harness sqz_csim.cpp. Without loadable layers the top is a
    free-running dataflow (ap_ctrl_none); with them it takes an s_axilite `mode` (0 inference, 1 weight
    load) and its control moves to s_axilite too (the host writes mode, then starts it)."""
    in_t, out_t = _io_names(model)
    load = stream is not None
    mode_arg = ", unsigned mode" if load else ""
    (path / "firmware" / f"{TOP}.h").write_text(f"""// AXI4-Stream top for an AXI DMA (generated by sqz hw/project.py). Packing: nnet_utils/sqz_axi.h.
#ifndef SQZ_TOP_H_
#define SQZ_TOP_H_

#include "{PROJECT_NAME}.h"
#include "nnet_utils/sqz_axi.h"

static const unsigned SQZ_IN_PIXELS = {packing.in_beats};  // {packing.height} x {packing.width} pixels, one beat each
static const unsigned SQZ_IN_LANE = {packing.in_lane};     // bits per input channel lane
static const unsigned SQZ_OUT_LANE = {packing.out_lane};    // bits per logit lane
static const bool SQZ_OUT_SIGNED = {str(packing.out_signed).lower()};
static const unsigned SQZ_OUT_BEATS = {packing.out_beats};  // {packing.n_out} logits
""" + (f"""static const unsigned SQZ_MODE_INFER = 0;
static const unsigned SQZ_MODE_LOAD = 1;
static const unsigned SQZ_WEIGHT_BEATS = {stream.total_beats};  // header + {stream.payload_beats} payload beats

// mode 1: weights/load stream in, one reply beat out (defined in {PROJECT_NAME}.cpp, beside the arrays)
void sqz_load_weights(hls::stream<sqz::axi_word> &in, hls::stream<sqz::axi_word> &reply);
""" if load else "") + f"""
void {TOP}(hls::stream<sqz::axi_word> &pixels, hls::stream<sqz::axi_word> &logits{mode_arg});

#endif
""")
    infer_body = f"""    #pragma HLS DATAFLOW
    hls::stream<{in_t}> x("sqz_pixels");
    hls::stream<{out_t}> y("sqz_logits");
    #pragma HLS STREAM variable=x depth=2
    #pragma HLS STREAM variable=y depth=1
    sqz::axi_read_input<{in_t}, SQZ_IN_PIXELS, SQZ_IN_LANE>(pixels, x);
    {PROJECT_NAME}(x, y);
    sqz::axi_write_output<{out_t}, SQZ_OUT_LANE, SQZ_OUT_SIGNED>(y, logits);
"""
    if load:
        top = f"""// AXI4-Stream top (generated by sqz hw/project.py): mode 0 = one frame of codes in, logits out (TLAST on
// the last beat); mode 1 = the weight-load stream in, one reply beat out. Until the first load the
// loadable weights are 0 (UltraRAM's power-up state).
#include "{TOP}.h"

static void sqz_infer(hls::stream<sqz::axi_word> &pixels, hls::stream<sqz::axi_word> &logits) {{
{infer_body}}}

void {TOP}(hls::stream<sqz::axi_word> &pixels, hls::stream<sqz::axi_word> &logits, unsigned mode) {{
    #pragma HLS INTERFACE axis port=pixels
    #pragma HLS INTERFACE axis port=logits
    #pragma HLS INTERFACE s_axilite port=mode bundle=control
    #pragma HLS INTERFACE s_axilite port=return bundle=control
    if (mode == SQZ_MODE_LOAD)
        sqz_load_weights(pixels, logits);
    else
        sqz_infer(pixels, logits);
}}
"""
    else:
        top = f"""// AXI4-Stream top (generated by sqz hw/project.py): codes in, codes out, TLAST on the last output beat.
#include "{TOP}.h"

void {TOP}(hls::stream<sqz::axi_word> &pixels, hls::stream<sqz::axi_word> &logits) {{
    #pragma HLS INTERFACE axis port=pixels
    #pragma HLS INTERFACE axis port=logits
    #pragma HLS INTERFACE ap_ctrl_none port=return
{infer_body}}}
"""
    (path / "firmware" / f"{TOP}.cpp").write_text(top)
    call = f"{TOP}(pixels, logits, mode);" if load else f"(void)mode;\n    {TOP}(pixels, logits);"
    harness = f"""
static int sqz_axi_call(unsigned mode, const unsigned long long *in_words, int n_in, unsigned long long *out_words,
                        unsigned char *out_last, int max_out) {{
    hls::stream<sqz::axi_word> pixels("axi_pixels"), logits("axi_logits");
    for (int i = 0; i < n_in; i++) {{
        sqz::axi_word w;
        w.data = in_words[i];
        w.keep = -1;
        w.strb = -1;
        w.last = (i == n_in - 1) ? 1 : 0;
        pixels.write(w);
    }}
    {call}
    int n = 0;
    while (!logits.empty() && n < max_out) {{
        sqz::axi_word w = logits.read();
        out_words[n] = w.data.to_uint64();
        out_last[n] = (unsigned char)w.last.to_uint();
        n++;
    }}
    if (!pixels.empty())
        return -1;
    return n;
}}

extern "C" {{

// One frame through {TOP} (mode 0): n_in 64-bit input beats in, up to max_out output beats out (data and
// TLAST). Returns the number of output beats, or -1 if the top left input beats unread.
int sqz_axi_run(const unsigned long long *in_words, int n_in, unsigned long long *out_words,
                unsigned char *out_last, int max_out) {{
    return sqz_axi_call(0, in_words, n_in, out_words, out_last, max_out);
}}
""" + ("""
// The weight-load stream through the top's mode 1 (TLAST on its last beat); the reply beat comes back in
// out_words[0]. Same return convention as sqz_axi_run.
int sqz_axi_load(const unsigned long long *in_words, int n_in, unsigned long long *out_words,
                 unsigned char *out_last, int max_out) {
    return sqz_axi_call(1, in_words, n_in, out_words, out_last, max_out);
}
""" if load else "") + "}\n"
    (path / "sqz_csim.cpp").write_text(f"""// C-simulation harness of the AXI top (generated by sqz hw/project.py); part of libsqz_csim.so.
#include "firmware/{TOP}.cpp"
""" + harness)


BUILD_SCRIPT_TEXT = """#!/bin/sh
# Builds firmware/libsqz_csim.so, the C simulation of this project (hls4ml's bridge + sqz's AXI harness).
# Generated by sqz hw/project.py. Paths are relative: the project folder can be moved.
set -e
cd "$(dirname "$0")"
CXX="${CXX:-g++}"
FLAGS="${SQZ_CXXFLAGS:--O2} -std=c++14 -fPIC -fno-gnu-unique -Ifirmware/ap_types"
rm -rf build && mkdir build
$CXX $FLAGS -c firmware/myproject.cpp -o build/myproject.o & a=$!
$CXX $FLAGS -c myproject_bridge.cpp -o build/myproject_bridge.o & b=$!
$CXX $FLAGS -c sqz_csim.cpp -o build/sqz_csim.o & c=$!
status=0
wait $a || status=1
wait $b || status=1
wait $c || status=1
[ $status -eq 0 ] || exit 1
$CXX -shared build/myproject.o build/myproject_bridge.o build/sqz_csim.o -o firmware/libsqz_csim.so.tmp
mv firmware/libsqz_csim.so.tmp firmware/libsqz_csim.so
rm -rf build
"""


def _trace_entries(model, design: Design) -> list[dict]:
    """Traced layers in the order hls4ml's collect_trace_output returns them (a std::map: by name)."""
    from hw.convert import precision_format

    layers = {l.name: l for l in model.get_layers()}
    out = []
    for name in sorted(design.trace):
        var = layers[name].get_output_variable()
        fmt = precision_format(var.type.precision)
        out.append({"name": name, "shape": [int(d) for d in var.shape], "format": str(fmt), "frac": fmt.frac})
    return out


def weights_digest(design: Design) -> str:
    """sha256 of the integer codes the design computes with: for each convolution in name order, its weight
    codes (OIHW) and its bias codes (the spec's bias format), little-endian int64, each block preceded by
    "<layer>.w<shape>:" or "<layer>.b<shape>:"."""
    h = hashlib.sha256()
    for name in sorted(design.params):
        w, b = design.params[name]
        bias = design.spec.bias_codes(name, b)
        for tag, codes in (("w", design.spec.weight_codes(name, w)), ("b", bias)):
            codes = np.ascontiguousarray(codes, dtype="<i8")
            h.update(f"{name}.{tag}{codes.shape}:".encode())
            h.update(codes.tobytes())
    return h.hexdigest()


def design_resources(design: Design) -> Resources:
    """The estimate of exactly the generated design (source "estimate": hw/estimate.py, before synthesis)."""
    est = design.estimate()
    return Resources(source=est.source, dsp=int(est.dsp), bram18=int(est.bram18), uram=int(est.uram),
                     lut=int(est.lut), ii_cycles=int(est.ii_cycles), clock_mhz=float(est.clock_mhz),
                     fps=round(float(est.fps), 2), fits=bool(est.fits))


def class_names(arch) -> list[str] | None:
    """The names of the model's classes, index = logit (the board shows them): CIFAR-10's ten, ImageNet's
    synset words from the shipped sample."""
    if arch.num_classes == 10:
        from model.cifar10 import CLASSES
        return list(CLASSES)
    synsets = Path(__file__).resolve().parents[1] / "data" / "imagenet_sample" / "synset_words.txt"
    if arch.num_classes == 1000 and synsets.exists():
        from model.imagenet import read_synset_words
        return read_synset_words(synsets)[1]
    return None


def write_manifest(path: Path, design: Design, key: str, packing: AxiPacking, model,
                   stream: WeightStream | None = None) -> Manifest:
    """manifest.json (host/manifest.py), and the spec beside it (spec.json + its weight codes, if any)."""
    from importlib import metadata

    in_t, out_t = _io_names(model)
    logit = design.logit_format
    (inp,), (out,) = model.get_input_variables(), model.get_output_variables()
    design.spec.save(path / SPEC_FILE)
    spec = json.loads((path / SPEC_FILE).read_text())
    manifest = Manifest(
        key=key, model=design.arch.name, weights=design.weights_note, weights_sha256=weights_digest(design),
        board=design.board.name, part=design.board.part, board_part=design.board.board_part,
        clock_mhz=design.clock_mhz, top=TOP,
        input=InputInfo(shape=(design.input_size, design.input_size, design.arch.in_channels),
                        format=str(design.spec.input), frac=design.spec.input.frac, layout="HWC, row-major",
                        cpp_type=in_t, bridge_name=inp.name, mean_bgr=tuple(design.arch.mean_bgr),
                        resize=design.arch.resize),
        output=OutputInfo(n=int(np.prod(out.shape)), format=str(logit), frac=logit.frac,
                          meaning="logits (no softmax)", cpp_type=out_t),
        axi=packing, spec=spec, tools=ToolVersions(hls4ml=metadata.version("hls4ml")),
        resources=design_resources(design),
        weight_load=stream, weight_load_file=None if stream is None else WEIGHT_STREAM,
        control=None if stream is None else ControlRegisters(),
        spec_weights_file=(spec.get("weights") or {}).get("file"),
        hls4ml_top=PROJECT_NAME, backend="Vitis", io_type="io_stream", fused_fire=design.fuse_fire,
        fifo_depths=sorted({int(v.pragma[1]) for l in model.get_layers() for v in l.variables.values()
                            if isinstance(getattr(v, "pragma", None), tuple) and v.pragma[0] == "stream"}),
        csim={"library": LIBRARY, "build": BUILD_SCRIPT, "double": f"{PROJECT_NAME}_double",
              "float": f"{PROJECT_NAME}_float", "axi": "sqz_axi_run"},
        reuse=design.reuse, trace=_trace_entries(model, design), layers=[p.to_json() for p in design.layers],
        class_names=class_names(design.arch))
    manifest.save(path / MANIFEST)
    return manifest
