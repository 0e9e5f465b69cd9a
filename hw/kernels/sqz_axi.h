// sqz AXI4-Stream packing for an AXI DMA: fixed-point codes in, fixed-point codes out.
//
// Word: 64-bit TDATA, TKEEP/TSTRB all ones. The packing (also host/axi.py, which hw/ and the host driver use):
//   input   one beat per pixel, pixels row-major (y, then x); channel c in bits
//           [c*L_in, (c+1)*L_in), L_in = 8, 16 or 32 (the smallest that holds the input width);
//           a lane holds the input code two's complement, sign-extended; only its low W bits are
//           read. Input TLAST is not needed (the frame size is fixed).
//   output  all logits of a frame: logit k in beat k / (64/L_out), lane k % (64/L_out), the code
//           sign-extended (signed format) or zero-extended (unsigned) to L_out bits; unused lanes of
//           the last beat are 0; TLAST = 1 on the frame's last beat only.
// No floats cross the interface: what the DMA moves are the codes the QuantSpec defines.
//
// Weight load (only designs with loadable layers, whose top has an s_axilite `mode`: 0 inference,
// 1 load; host/axi.py WeightStream is the host side):
//   header  one beat: bits [63:32] WEIGHT_MAGIC ("SQZW"), bits [31:0] the number of payload beats
//   payload each loadable weight array in turn (network order), its codes in the order the kernel
//           reads them (hw/ops/cost.py fold_matrix), 64/L codes per beat, L = 8, 16 or 32 (the
//           smallest lane that holds the weight width), code k of an array in beat k / (64/L),
//           lane k % (64/L), two's complement; every array starts on a new beat; unused lanes 0.
//           TLAST on the last payload beat.
//   reply   one output beat, TLAST = 1: bit 0 = 1 when the header matched and TLAST came exactly on
//           the last payload beat; bits [63:32] = the payload beats read. A bad header writes no
//           weight; a stream that ends early or runs long is read up to its TLAST and reported.
#ifndef SQZ_AXI_H_
#define SQZ_AXI_H_

#include "ap_int.h"
#include "hls_stream.h"
#include "sqz_common.h"

#if defined(__has_include)
#if __has_include(<ap_axi_sdata.h>)
#include <ap_axi_sdata.h> // Vitis HLS: hls::axis maps data/keep/strb/last onto the AXIS side channels
#define SQZ_HAVE_AP_AXI_SDATA 1
#endif
#endif

namespace sqz {

static const unsigned AXI_WORD_BITS = 64;

#ifdef SQZ_HAVE_AP_AXI_SDATA
typedef hls::axis<ap_uint<AXI_WORD_BITS>, 0, 0, 0> axi_word;
#else
// C simulation outside Vitis HLS (plain g++): the same fields.
struct axi_word {
    ap_uint<AXI_WORD_BITS> data;
    ap_uint<AXI_WORD_BITS / 8> keep;
    ap_uint<AXI_WORD_BITS / 8> strb;
    ap_uint<1> last;
};
#endif

template <bool SIGNED, unsigned W, unsigned LANE> struct lane_code;
template <unsigned W, unsigned LANE> struct lane_code<true, W, LANE> {
    static ap_uint<LANE> extend(const ap_uint<W> &code) {
        #pragma HLS INLINE
        const ap_int<W> s = code;       // the same bits, read as two's complement
        const ap_int<LANE> wide = s;    // sign extension
        return wide.range(LANE - 1, 0);
    }
};
template <unsigned W, unsigned LANE> struct lane_code<false, W, LANE> {
    static ap_uint<LANE> extend(const ap_uint<W> &code) {
        #pragma HLS INLINE
        return ap_uint<LANE>(code);     // zero extension
    }
};

// Beats -> input pixels (input_t: an array of C codes per pixel, hls4ml's io_stream word).
template <class input_t, unsigned N_PIXELS, unsigned LANE>
void axi_read_input(hls::stream<axi_word> &in, hls::stream<input_t> &out) {
    typedef typename input_t::value_type T;
    static_assert(input_t::size * LANE <= AXI_WORD_BITS, "one pixel must fit one beat");
    static_assert(T::width <= (int)LANE, "input code wider than its lane");
AxiReadPixels:
    for (unsigned p = 0; p < N_PIXELS; p++) {
        #pragma HLS PIPELINE II=1
        const axi_word w = in.read();
        input_t x;
        for (unsigned c = 0; c < input_t::size; c++) {
            #pragma HLS UNROLL
            set_code(x[c], w.data.range(c * LANE + T::width - 1, c * LANE));
        }
        out.write(x);
    }
}

// The logits (one hls4ml stream word holding all of them) -> beats, TLAST on the last.
template <class result_t, unsigned LANE, bool SIGNED>
void axi_write_output(hls::stream<result_t> &in, hls::stream<axi_word> &out) {
    typedef typename result_t::value_type T;
    static const unsigned N = result_t::size;
    static const unsigned LANES = AXI_WORD_BITS / LANE;
    static const unsigned BEATS = (N + LANES - 1) / LANES;
    static_assert(T::width <= (int)LANE, "output code wider than its lane");
    const result_t y = in.read();
AxiWriteBeats:
    for (unsigned b = 0; b < BEATS; b++) {
        #pragma HLS PIPELINE II=1
        axi_word w;
        w.data = 0;
        for (unsigned l = 0; l < LANES; l++) {
            #pragma HLS UNROLL
            const unsigned k = b * LANES + l;
            if (k < N)
                w.data.range(l * LANE + LANE - 1, l * LANE) = lane_code<SIGNED, T::width, LANE>::extend(code_of(y[k]));
        }
        w.keep = -1;
        w.strb = -1;
        w.last = (b == BEATS - 1) ? 1 : 0;
        out.write(w);
    }
}

static const unsigned WEIGHT_MAGIC = 0x53515A57u; // "SQZW"

// Payload beats -> one weight array (N codes of T, LANE-bit lanes). Stops reading at TLAST
// (`ended`), so a short stream never blocks on an empty stream; counts the beats it read.
template <class T, unsigned N, unsigned LANE>
void axi_read_weights(hls::stream<axi_word> &in, T w[N], bool &ended, unsigned &beats) {
    static const unsigned LANES = AXI_WORD_BITS / LANE;
    static const unsigned BEATS = (N + LANES - 1) / LANES;
    static_assert(T::width <= (int)LANE, "weight code wider than its lane");
LoadWeightBeats:
    for (unsigned b = 0; b < BEATS; b++) {
        if (!ended) {
            const axi_word word = in.read();
            beats++;
            ended = word.last == 1;
        LoadWeightLanes:
            for (unsigned l = 0; l < LANES; l++) {
                const unsigned k = b * LANES + l;
                if (k < N)
                    set_code(w[k], word.data.range(l * LANE + T::width - 1, l * LANE));
            }
        }
    }
}

// Discard beats up to and including the next TLAST (the rest of a malformed load stream).
inline void axi_drain(hls::stream<axi_word> &in, bool &ended, unsigned &beats) {
LoadDrain:
    while (!ended) {
        const axi_word word = in.read();
        beats++;
        ended = word.last == 1;
    }
}

inline axi_word axi_load_reply(bool ok, unsigned beats) {
    axi_word w;
    w.data = 0;
    w.data.range(63, 32) = beats;
    w.data[0] = ok ? 1 : 0;
    w.keep = -1;
    w.strb = -1;
    w.last = 1;
    return w;
}

} // namespace sqz

#endif
