"""sqz's HLS kernels (hw/kernels/) compiled with plain g++, against quant/'s arithmetic, bit for bit.

No hls4ml conversion here: the kernels are instantiated directly, fed integer codes written into the
C++ source, and their output codes are compared with numpy references built from quant/arithmetic.py
and quant/fixed_point.py. One program holds every check (one g++ run), compiled with
-std=c++14 -Wall -Wextra -Werror (pragmas aside), the project's portability bar for the kernels.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from host.axi import AxiPacking
from hw.convert import conv_result_format
from hw.ops.cost import fold_factors, fold_matrix
from hw.ops.registry import KERNEL_DIR, KERNEL_HEADERS
from model.architecture import Conv
from quant import arithmetic as A
from quant.fixed_point import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat
from quant.spec import ConvFormats

pytestmark = pytest.mark.usefixtures("gxx")     # no g++: these tests fail, saying so


def _hls4ml_templates() -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("hls4ml").origin).parent / "templates" / "vivado"


def _compile_and_run(tmp_path: Path, source: str, name: str, extra_includes=()) -> str:
    cpp = tmp_path / f"{name}.cpp"
    cpp.write_text(source)
    exe = tmp_path / name
    cmd = ["g++", "-std=c++14", "-O0", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label",
           "-isystem", str(_hls4ml_templates() / "ap_types"), "-I", str(KERNEL_DIR),
           *[a for inc in extra_includes for a in ("-isystem", str(inc))], str(cpp), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _ints(values) -> str:
    return ", ".join(str(int(v)) for v in np.ravel(values))


def _signed(raw: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Raw W-bit patterns -> codes (two's complement for signed formats)."""
    if fmt.signed:
        return np.where(raw >= 1 << (fmt.width - 1), raw - (1 << fmt.width), raw)
    return raw


def _blocks(stdout: str) -> dict[str, np.ndarray]:
    """Lines 'name: v v v ...' -> arrays."""
    out = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(":")
        out[name.strip()] = np.array([int(v) for v in rest.split()], object)  # uint64 beats fit no int64
    return out


# -- the reference arithmetic (quant/) on codes ---------------------------------------------------

def _conv_ref(x_codes, x_fmt, w_hwio, w_fmt, b, b_fmt, acc_fmt, res_fmt, pad):
    """quant/arithmetic.py's conv on codes: exact accumulation at acc frac, ReLU, one cast."""
    w_codes = w_fmt.quantize(w_hwio)
    b_codes = b_fmt.quantize(b)
    kernel = w_hwio.shape[0]
    wmat = A.weight_matrix((w_codes << (acc_fmt.frac - x_fmt.frac - w_fmt.frac)).transpose(3, 2, 0, 1)
                           .astype(np.float64))
    acc = A.conv2d(x_codes[None].astype(np.float64), wmat, (b_codes << (acc_fmt.frac - b_fmt.frac))
                   .astype(np.float64), kernel, 1, pad)[0]
    return res_fmt.requantize(np.maximum(acc, 0).astype(np.int64), acc_fmt.frac)


def test_kernels_compile_with_cpp14_wall_and_match_quant_arithmetic(tmp_path):
    rng = np.random.default_rng(5)
    decls, calls = [], []

    # --- Fire: non-square image, every convolution folded along both inputs and outputs -------------
    H, W, C, S, E1, E3 = 5, 4, 6, 4, 6, 8
    x_fmt = FixedFormat(8, 4, False, "AP_RND", "AP_SAT")
    w_fmt = FixedFormat(6, 1, True, "AP_RND", "AP_SAT")
    b_fmt = FixedFormat(12, 3, True, "AP_RND", "AP_SAT")
    acc_fmt = FixedFormat(24, 10, True, "AP_TRN", "AP_WRAP")
    s_fmt = FixedFormat(7, 3, False, "AP_RND_CONV", "AP_SAT")
    e_fmt = FixedFormat(8, 4, False, "AP_RND", "AP_SAT_SYM")
    x_codes = rng.integers(0, 256, (H, W, C))
    ws, w1, w3 = (rng.normal(0, 0.4, shape) for shape in ((1, 1, C, S), (1, 1, S, E1), (3, 3, S, E3)))
    bs, b1, b3 = (rng.normal(0, 1.0, n) for n in (S, E1, E3))
    folds = {"squeeze": fold_factors(C, S, 12), "expand1": fold_factors(S, E1, 8), "expand3": fold_factors(9 * S, E3, 72)}
    assert all(fi > 1 and fo > 1 for fi, fo in folds.values())
    for part, w, b, n_in in (("squeeze", ws, bs, C), ("expand1", w1, b1, S), ("expand3", w3, b3, 9 * S)):
        flat = fold_matrix(w_fmt.quantize(w).reshape(n_in, -1), *folds[part])
        decls.append(f"static const long long {part}_w[] = {{{_ints(flat)}}};")
        decls.append(f"static const long long {part}_b[] = {{{_ints(b_fmt.quantize(b))}}};")
    decls.append(f"static const long long fire_x[] = {{{_ints(x_codes)}}};")
    decls.append(f"""
typedef {x_fmt} fx_t; typedef {w_fmt} fw_t; typedef {b_fmt} fb_t; typedef {acc_fmt} facc_t;
typedef {s_fmt} fs_t; typedef {e_fmt} fe_t;
struct fire_cfg : sqz::fire_config {{
    static const unsigned height = {H}, width = {W}, n_chan = {C}, n_squeeze = {S}, n_expand1 = {E1}, n_expand3 = {E3};
    static const unsigned squeeze_fold_in = {folds['squeeze'][0]}, squeeze_fold_out = {folds['squeeze'][1]};
    static const unsigned expand1_fold_in = {folds['expand1'][0]}, expand1_fold_out = {folds['expand1'][1]};
    static const unsigned expand3_fold_in = {folds['expand3'][0]}, expand3_fold_out = {folds['expand3'][1]};
    typedef fw_t squeeze_weight_t; typedef fb_t squeeze_bias_t; typedef facc_t squeeze_accum_t; typedef fs_t squeeze_t;
    typedef fw_t expand1_weight_t; typedef fb_t expand1_bias_t; typedef facc_t expand1_accum_t;
    typedef fw_t expand3_weight_t; typedef fb_t expand3_bias_t; typedef facc_t expand3_accum_t;
}};""")
    calls.append(f"""{{
    fw_t sw[{C * S}], w1[{S * E1}], w3[{9 * S * E3}]; fb_t sb[{S}], b1[{E1}], b3[{E3}];
    sqz::load_codes<fw_t, {C * S}>(sw, squeeze_w); sqz::load_codes<fb_t, {S}>(sb, squeeze_b);
    sqz::load_codes<fw_t, {S * E1}>(w1, expand1_w); sqz::load_codes<fb_t, {E1}>(b1, expand1_b);
    sqz::load_codes<fw_t, {9 * S * E3}>(w3, expand3_w); sqz::load_codes<fb_t, {E3}>(b3, expand3_b);
    hls::stream<sqz::vec<fx_t, {C}> > in; hls::stream<sqz::vec<fe_t, {E1 + E3}> > out;
    for (unsigned p = 0; p < {H * W}; p++) {{
        sqz::vec<fx_t, {C}> v;
        for (unsigned c = 0; c < {C}; c++) sqz::set_code(v[c], fire_x[p * {C} + c]);
        in.write(v);
    }}
    sqz::fire<sqz::vec<fx_t, {C}>, sqz::vec<fe_t, {E1 + E3}>, fire_cfg>(in, out, sw, sb, w1, b1, w3, b3);
    std::printf("fire:");
    while (!out.empty()) {{ sqz::vec<fe_t, {E1 + E3}> v = out.read(); for (unsigned k = 0; k < {E1 + E3}; k++) std::printf(" %d", (int)sqz::code_of(v[k])); }}
    std::printf("\\n");
}}""")
    squeezed = _conv_ref(x_codes, x_fmt, ws, w_fmt, bs, b_fmt, acc_fmt, s_fmt, 0)
    fire_ref = np.concatenate([_conv_ref(squeezed, s_fmt, w1, w_fmt, b1, b_fmt, acc_fmt, e_fmt, 0),
                               _conv_ref(squeezed, s_fmt, w3, w_fmt, b3, b_fmt, acc_fmt, e_fmt, 1)], axis=-1)

    # --- max pool 3x3 / 2, round-up size: odd and even sizes, signed values, channel folding --------
    p_fmt = FixedFormat(8, 3, True, "AP_RND", "AP_SAT")
    pool_cases = [(3, 3, 2, 1), (4, 5, 2, 2), (7, 6, 3, 3), (8, 8, 4, 2), (15, 15, 2, 1), (16, 9, 2, 2)]
    pool_refs = {}
    for k, (ph, pw, pc, pr) in enumerate(pool_cases):
        codes = rng.integers(-128, 128, (ph, pw, pc))
        decls.append(f"static const long long pool{k}_x[] = {{{_ints(codes)}}};")
        decls.append(f"struct pool{k}_cfg : sqz::maxpool_config {{ static const unsigned in_height = {ph}, "
                     f"in_width = {pw}, n_chan = {pc}, reuse_factor = {pr}; }};")
        calls.append(f"""{{
    typedef {p_fmt} t; hls::stream<sqz::vec<t, {pc}> > in, out;
    for (unsigned p = 0; p < {ph * pw}; p++) {{ sqz::vec<t, {pc}> v; for (unsigned c = 0; c < {pc}; c++) sqz::set_code(v[c], pool{k}_x[p * {pc} + c]); in.write(v); }}
    sqz::maxpool_3x3s2<sqz::vec<t, {pc}>, sqz::vec<t, {pc}>, pool{k}_cfg>(in, out);
    std::printf("pool{k}:");
    while (!out.empty()) {{ sqz::vec<t, {pc}> v = out.read(); for (unsigned c = 0; c < {pc}; c++) std::printf(" %llu", (unsigned long long)sqz::code_of(v[c]).to_uint64()); }}
    std::printf("\\n");
}}""")
        pool_refs[f"pool{k}"] = A.maxpool(codes[None].astype(np.float64), 3, 2)[0].astype(np.int64)

    # --- global average pool: exact sum, reciprocal multiply, one cast (rounding and saturation) -------
    gap_refs = {}
    for k, (res_fmt, reuse) in enumerate([(FixedFormat(12, 4, False, "AP_RND", "AP_SAT"), 2),
                                          (FixedFormat(6, 3, False, "AP_RND_CONV", "AP_SAT"), 3),
                                          (FixedFormat(10, 5, True, "AP_TRN", "AP_SAT"), 1)]):
        gh, gw, gc = 5, 5, 6
        g_in = FixedFormat(8, 4, False, "AP_RND", "AP_SAT")
        g_acc = FixedFormat(8 + 5 + 1, 8 + 5 + 1 - g_in.frac, True, "AP_TRN", "AP_WRAP")
        mult, shift = A.reciprocal(gh * gw)
        codes = rng.integers(0, 256, (gh, gw, gc))
        decls.append(f"static const long long gap{k}_x[] = {{{_ints(codes)}}};")
        decls.append(f"""struct gap{k}_cfg : sqz::global_avgpool_config {{
    static const unsigned height = {gh}, width = {gw}, n_chan = {gc}, reuse_factor = {reuse};
    static const unsigned long long multiplier = {mult}ULL;
    typedef {g_acc} accum_t; typedef ap_ufixed<{mult.bit_length()}, {mult.bit_length() - shift}> mult_t;
}};""")
        calls.append(f"""{{
    typedef {g_in} ti; typedef {res_fmt} to; hls::stream<sqz::vec<ti, {gc}> > in; hls::stream<sqz::vec<to, {gc}> > out;
    for (unsigned p = 0; p < {gh * gw}; p++) {{ sqz::vec<ti, {gc}> v; for (unsigned c = 0; c < {gc}; c++) sqz::set_code(v[c], gap{k}_x[p * {gc} + c]); in.write(v); }}
    sqz::global_avgpool<sqz::vec<ti, {gc}>, sqz::vec<to, {gc}>, gap{k}_cfg>(in, out);
    sqz::vec<to, {gc}> v = out.read();
    std::printf("gap{k}:"); for (unsigned c = 0; c < {gc}; c++) std::printf(" %llu", (unsigned long long)sqz::code_of(v[c]).to_uint64()); std::printf("\\n");
}}""")
        ref, _ = A.global_avgpool(codes[None].astype(np.float64), mult, shift, g_in.frac, res_fmt)
        gap_refs[f"gap{k}"] = (ref[0].astype(np.int64), res_fmt)

    # --- AXI: signed codes into beats (sign extension, lanes, TLAST) and beats into pixels ---------------
    out_fmt, n_out = FixedFormat(12, 4, True, "AP_RND", "AP_SAT"), 9
    in_fmt = FixedFormat(9, 9, True, "AP_RND", "AP_SAT")
    packing = AxiPacking.for_formats(2, 3, 3, in_fmt, n_out, out_fmt)
    logits = rng.integers(-2048, 2048, n_out)
    pixels = rng.integers(-256, 256, (2, 3, 3))
    words = packing.pack_input(pixels)
    decls.append(f"static const long long axi_logits[] = {{{_ints(logits)}}};")
    decls.append(f"static const unsigned long long axi_words[] = {{{', '.join(f'{int(w)}ULL' for w in words)}}};")
    calls.append(f"""{{
    typedef {out_fmt} to; typedef {in_fmt} ti;
    hls::stream<sqz::vec<to, {n_out}> > y; hls::stream<sqz::axi_word> beats, in; hls::stream<sqz::vec<ti, 3> > px;
    sqz::vec<to, {n_out}> v; for (unsigned k = 0; k < {n_out}; k++) sqz::set_code(v[k], axi_logits[k]);
    y.write(v);
    sqz::axi_write_output<sqz::vec<to, {n_out}>, {packing.out_lane}, true>(y, beats);
    std::printf("axi_out:"); while (!beats.empty()) {{ sqz::axi_word w = beats.read(); std::printf(" %llu %d", (unsigned long long)w.data.to_uint64(), (int)w.last.to_uint()); }} std::printf("\\n");
    for (unsigned p = 0; p < {len(words)}; p++) {{ sqz::axi_word w; w.data = axi_words[p]; w.keep = -1; w.strb = -1; w.last = 0; in.write(w); }}
    sqz::axi_read_input<sqz::vec<ti, 3>, {len(words)}, {packing.in_lane}>(in, px);
    std::printf("axi_in:"); while (!px.empty()) {{ sqz::vec<ti, 3> q = px.read(); for (unsigned c = 0; c < 3; c++) std::printf(" %d", q[c].to_int()); }} std::printf("\\n");
}}""")

    includes = "\n".join(f'#include "{h}"' for h in KERNEL_HEADERS)
    source = f"#include <cstdio>\n{includes}\n\n" + "\n".join(decls) + "\n\nint main() {\n" + "\n".join(calls) + "\nreturn 0;\n}\n"
    got = _blocks(_compile_and_run(tmp_path, source, "kernels"))

    got = {k: v.astype(np.uint64) if k == "axi_out" else v.astype(np.int64) for k, v in got.items()}
    np.testing.assert_array_equal(got["fire"], fire_ref.ravel(), err_msg="Fire kernel vs quant arithmetic")
    assert np.count_nonzero(fire_ref) > fire_ref.size // 4   # a test with mostly zeros would prove little
    for name, ref in pool_refs.items():
        np.testing.assert_array_equal(_signed(got[name], p_fmt), ref.ravel(), err_msg=f"{name} vs quant maxpool")
    for name, (ref, fmt) in gap_refs.items():
        np.testing.assert_array_equal(_signed(got[name], fmt), ref, err_msg=f"{name} vs quant global_avgpool")
    assert any(np.any(ref == fmt.max_code) for ref, fmt in gap_refs.values()), "no saturating average pool case"
    beats = got["axi_out"].reshape(-1, 2)
    assert beats[:, 1].tolist() == [0] * (packing.out_beats - 1) + [1], "TLAST only on the last beat"
    np.testing.assert_array_equal(packing.unpack_output(beats[:, 0].astype(np.uint64)), logits)
    np.testing.assert_array_equal(got["axi_in"], pixels.ravel())


def test_stock_conv_result_type_makes_conv_then_relu_equal_relu_then_cast(tmp_path):
    """hls4ml's conv casts acc to result_t, its ReLU layer casts again; with conv_result_format's type
    that equals "ReLU, then one cast to R" (quant/arithmetic.py) for every accumulator value."""
    acc = FixedFormat(12, 6, True, "AP_TRN", "AP_WRAP")          # 6 fractional bits, values -32..32
    codes = np.arange(acc.min_code, acc.max_code + 1)
    cases, decls, calls = [], [], []
    for k, (q, o, signed) in enumerate((q, o, s) for q in ROUNDING_MODES for o in OVERFLOW_MODES for s in (False, True)):
        r = FixedFormat(6, 3, signed, q, o)                     # 3 fractional bits: rounding matters
        c = conv_result_format(Conv("c", 1, 1), ConvFormats(acc, acc, acc, r))
        cases.append((f"case{k}", r, c))
        decls.append(f"typedef {acc} acc{k}_t; typedef {c} c{k}_t; typedef {r} r{k}_t;")
        calls.append(f"""{{
    hls::stream<nnet::array<c{k}_t, N> > conv_out; hls::stream<nnet::array<r{k}_t, N> > relu_out;
    nnet::array<c{k}_t, N> a; static acc{k}_t accs[N];
    for (unsigned i = 0; i < N; i++) {{ sqz::set_code(accs[i], (long long)i + {acc.min_code}); a[i] = (c{k}_t)accs[i]; }}  // hls4ml's dense: res = cast<res_T>(acc)
    conv_out.write(a);
    nnet::relu<nnet::array<c{k}_t, N>, nnet::array<r{k}_t, N>, relu_cfg>(conv_out, relu_out);
    nnet::array<r{k}_t, N> b = relu_out.read();
    std::printf("case{k}:");
    for (unsigned i = 0; i < N; i++) {{ r{k}_t d = sqz::activate<r{k}_t, true>(accs[i]); std::printf(" %lld %lld", (long long)sqz::code_of(b[i]).to_uint64(), (long long)sqz::code_of(d).to_uint64()); }}
    std::printf("\\n");
}}""")
    source = f"""#include <cstdio>
#include "nnet_utils/nnet_activation_stream.h"
#include "sqz_common.h"
static const unsigned N = {len(codes)};
struct relu_cfg : nnet::activ_config {{ static const unsigned n_in = N; }};
{chr(10).join(decls)}
int main() {{
{chr(10).join(calls)}
return 0;
}}
"""
    got = _blocks(_compile_and_run(tmp_path, source, "relu_cast", extra_includes=[_hls4ml_templates()]))
    saturating = 0
    for name, r, c in cases:
        pairs = got[name].reshape(-1, 2)
        want = r.requantize(np.maximum(codes, 0), acc.frac) & ((1 << r.width) - 1)   # raw bits, as printed
        np.testing.assert_array_equal(pairs[:, 1], want, err_msg=f"{name} sqz::activate vs quant ({r})")
        np.testing.assert_array_equal(pairs[:, 0], want, err_msg=f"{name} hls4ml conv({c}) -> relu -> {r}")
        saturating += r.overflow != "AP_WRAP"
    assert saturating == len(ROUNDING_MODES) * 3 * 2


@pytest.mark.parametrize("n_in,n_out,reuse", [(27, 8, 1), (27, 8, 9), (27, 8, 54), (576, 64, 4608), (64, 16, 512)])
def test_fold_factors_cover_hls4ml_reuse_factors(n_in, n_out, reuse):
    fi, fo = fold_factors(n_in, n_out, reuse)
    assert fi * fo == reuse and n_in % fi == 0 and n_out % fo == 0
    m = np.arange(n_in * n_out).reshape(n_in, n_out)
    flat = fold_matrix(m, fi, fo)
    pi, po = n_in // fi, n_out // fo
    for f_o, f_i, p_o, p_i in [(0, 0, 0, 0), (fo - 1, fi - 1, po - 1, pi - 1), (fo // 2, fi // 2, po // 2, pi // 2)]:
        assert flat[((f_o * fi + f_i) * po + p_o) * pi + p_i] == m[f_i * pi + p_i, f_o * po + p_o]
