// sqz::fire -- a whole SqueezeNet Fire module as one streaming kernel.
//
//   in (H x W x C) -> squeeze 1x1 + ReLU -> 2-row line buffer + 3x3 window (pad 1, virtual)
//                  -> expand 1x1 + ReLU  (reads the window's centre tap)
//                  -> expand 3x3 + ReLU  (reads the whole window)
//                  -> one stream of H x W x (E1 + E3): expand1x1 channels, then expand3x3 channels
//
// Five DATAFLOW processes joined by short FIFOs; each works on one pixel per iteration.
// Every convolution is a matrix-vector product per pixel (sqz::matvec_stream) folded by its own
// reuse factor R = FOLD_IN * FOLD_OUT: R pipelined cycles per pixel, pixels back to back, n_in * n_out / R
// multipliers (hls4ml's meaning of a reuse factor). Arithmetic: quant/arithmetic.py --
// exact accumulation in accum_t (the QuantSpec guarantees it neither rounds nor wraps),
// then ReLU and one cast to the result format.
#ifndef SQZ_FIRE_H_
#define SQZ_FIRE_H_

#include "hls_stream.h"
#include "sqz_common.h"

namespace sqz {

// y = act(b + W x) for every pixel of a stream, folded the way hls4ml's dense_resource folds a product:
// ONE pipelined loop (II = 1) over PIXELS x FOLD_OUT x FOLD_IN steps, accumulation and emission inside it.
// Step (p, fo, fi) reads pixel p at fo = fi = 0, multiplies the BLOCK = PI * PO weights of (fo, fi) -- laid
// out [fo][fi][po][pi] (hw/ops/cost.py fold_matrix), so a cyclic reshape by BLOCK makes them one wide
// memory word -- into PO accumulators, emits fold fo's PO results at fi = FOLD_IN - 1, and writes the
// pixel after its last fold. So a pixel costs R = FOLD_IN * FOLD_OUT cycles and the next pixel follows
// at once (no drain and refill of the pipeline per fold or per pixel): the cycles hw/ops charges.
template <class IN_WORD, class OUT_WORD, class w_T, class b_T, class acc_T, unsigned N_IN, unsigned N_OUT,
          unsigned FOLD_IN, unsigned FOLD_OUT, bool RELU, unsigned PIXELS>
void matvec_stream(hls::stream<IN_WORD> &in, hls::stream<OUT_WORD> &out, const w_T w[N_IN * N_OUT],
                   const b_T b[N_OUT]) {
    typedef typename IN_WORD::value_type in_T;
    typedef typename OUT_WORD::value_type out_T;
    static_assert(IN_WORD::size == N_IN, "input stream word must hold one pixel");
    static_assert(OUT_WORD::size == N_OUT, "output stream word must hold one pixel");
    static_assert(N_IN % FOLD_IN == 0, "FOLD_IN must divide N_IN");
    static_assert(N_OUT % FOLD_OUT == 0, "FOLD_OUT must divide N_OUT");
    static const unsigned PI = N_IN / FOLD_IN;
    static const unsigned PO = N_OUT / FOLD_OUT;
    static const unsigned BLOCK = PI * PO;
    static const unsigned long STEPS = (unsigned long)PIXELS * FOLD_IN * FOLD_OUT;
    #pragma HLS ARRAY_RESHAPE variable=w cyclic factor=BLOCK

    in_T x[N_IN];
    out_T y[N_OUT];
    acc_T acc[PO];
    #pragma HLS ARRAY_PARTITION variable=x cyclic factor=PI
    #pragma HLS ARRAY_PARTITION variable=y cyclic factor=PO
    #pragma HLS ARRAY_PARTITION variable=acc complete
    unsigned fi = 0, fo = 0;

MatvecSteps:
    for (unsigned long step = 0; step < STEPS; step++) {
        #pragma HLS PIPELINE II=1
        if (fi == 0 && fo == 0) {
            const IN_WORD word = in.read();
            for (unsigned k = 0; k < N_IN; k++) {
                #pragma HLS UNROLL
                x[k] = word[k];
            }
        }
    OutLanes:
        for (unsigned po = 0; po < PO; po++) {
            #pragma HLS UNROLL
            acc_T a = (fi == 0) ? acc_T(b[fo * PO + po]) : acc[po];
        InLanes:
            for (unsigned pi = 0; pi < PI; pi++) {
                #pragma HLS UNROLL
                a += x[fi * PI + pi] * w[(fo * FOLD_IN + fi) * BLOCK + po * PI + pi];
            }
            acc[po] = a;
            if (fi == FOLD_IN - 1)
                y[fo * PO + po] = activate<out_T, RELU>(a);
        }
        if (fi == FOLD_IN - 1 && fo == FOLD_OUT - 1) {
            OUT_WORD word;
            for (unsigned k = 0; k < N_OUT; k++) {
                #pragma HLS UNROLL
                word[k] = y[k];
            }
            out.write(word);
        }
        if (fi + 1 < FOLD_IN) {
            fi++;
        } else {
            fi = 0;
            fo = (fo + 1 < FOLD_OUT) ? fo + 1 : 0;
        }
    }
}

// Default sizes; the generated config (hw/ops/) overrides all of them.
struct fire_config {
    static const unsigned height = 1;
    static const unsigned width = 1;
    static const unsigned n_chan = 1;
    static const unsigned n_squeeze = 1;
    static const unsigned n_expand1 = 1;
    static const unsigned n_expand3 = 1;
    static const unsigned squeeze_fold_in = 1;
    static const unsigned squeeze_fold_out = 1;
    static const unsigned expand1_fold_in = 1;
    static const unsigned expand1_fold_out = 1;
    static const unsigned expand3_fold_in = 1;
    static const unsigned expand3_fold_out = 1;
};

template <class data_T, class CONFIG_T>
void fire_squeeze(hls::stream<data_T> &in, hls::stream<vec<typename CONFIG_T::squeeze_t, CONFIG_T::n_squeeze> > &out,
                  const typename CONFIG_T::squeeze_weight_t w[CONFIG_T::n_chan * CONFIG_T::n_squeeze],
                  const typename CONFIG_T::squeeze_bias_t b[CONFIG_T::n_squeeze]) {
    matvec_stream<data_T, vec<typename CONFIG_T::squeeze_t, CONFIG_T::n_squeeze>, typename CONFIG_T::squeeze_weight_t,
                  typename CONFIG_T::squeeze_bias_t, typename CONFIG_T::squeeze_accum_t, CONFIG_T::n_chan,
                  CONFIG_T::n_squeeze, CONFIG_T::squeeze_fold_in, CONFIG_T::squeeze_fold_out, true,
                  CONFIG_T::height * CONFIG_T::width>(in, out, w, b);
}

// 3x3 windows with zero padding 1 over the squeezed image, from a 2-row line buffer.
// Step (i, j) for i <= H, j <= W reads pixel (i, j) when it exists and, for i, j >= 1, emits the
// window centred on (i-1, j-1): rows i-2..i, columns j-2..j, zeros outside the image.
template <class CONFIG_T>
void fire_window(hls::stream<vec<typename CONFIG_T::squeeze_t, CONFIG_T::n_squeeze> > &in,
                 hls::stream<vec<typename CONFIG_T::squeeze_t, CONFIG_T::n_squeeze> > &center,
                 hls::stream<vec<typename CONFIG_T::squeeze_t, 9 * CONFIG_T::n_squeeze> > &window) {
    typedef typename CONFIG_T::squeeze_t sq_t;
    static const unsigned H = CONFIG_T::height;
    static const unsigned W = CONFIG_T::width;
    static const unsigned S = CONFIG_T::n_squeeze;

    sq_t lines[2][W][S]; // lines[0]: row i-2, lines[1]: row i-1 (columns not yet overwritten)
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=1
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=3
    sq_t win[3][3][S];
    #pragma HLS ARRAY_PARTITION variable=win complete dim=0
    const sq_t zero = 0;

WindowRows:
    for (unsigned i = 0; i <= H; i++) {
    WindowCols:
        for (unsigned j = 0; j <= W; j++) {
            #pragma HLS PIPELINE II=1
            sq_t col[3][S];
            #pragma HLS ARRAY_PARTITION variable=col complete dim=0
            if (j < W) {
                vec<sq_t, S> px;
                for (unsigned s = 0; s < S; s++) {
                    #pragma HLS UNROLL
                    px[s] = zero;
                }
                if (i < H)
                    px = in.read();
                for (unsigned s = 0; s < S; s++) {
                    #pragma HLS UNROLL
                    col[0][s] = (i >= 2) ? lines[0][j][s] : zero;
                    col[1][s] = (i >= 1) ? lines[1][j][s] : zero;
                    col[2][s] = (i < H) ? px[s] : zero;
                    lines[0][j][s] = col[1][s];
                    lines[1][j][s] = col[2][s];
                }
            } else {
                for (unsigned s = 0; s < S; s++) {
                    #pragma HLS UNROLL
                    col[0][s] = zero;
                    col[1][s] = zero;
                    col[2][s] = zero;
                }
            }
            for (unsigned r = 0; r < 3; r++) {
                #pragma HLS UNROLL
                for (unsigned s = 0; s < S; s++) {
                    #pragma HLS UNROLL
                    win[r][0][s] = (j == 0) ? zero : win[r][1][s]; // column -1 is padding
                    win[r][1][s] = (j == 0) ? zero : win[r][2][s];
                    win[r][2][s] = col[r][s];
                }
            }
            if (i >= 1 && j >= 1) {
                vec<sq_t, S> c;
                vec<sq_t, 9 * S> w9;
                for (unsigned s = 0; s < S; s++) {
                    #pragma HLS UNROLL
                    c[s] = win[1][1][s];
                }
                for (unsigned r = 0; r < 3; r++) {
                    #pragma HLS UNROLL
                    for (unsigned k = 0; k < 3; k++) {
                        #pragma HLS UNROLL
                        for (unsigned s = 0; s < S; s++) {
                            #pragma HLS UNROLL
                            w9[(r * 3 + k) * S + s] = win[r][k][s]; // (ky, kx, channel): Keras' HWIO order
                        }
                    }
                }
                center.write(c);
                window.write(w9);
            }
        }
    }
}

template <class in_T, class out_T, class w_T, class b_T, class acc_T, unsigned N_IN, unsigned N_OUT, unsigned FOLD_IN,
          unsigned FOLD_OUT, unsigned PIXELS>
void fire_expand(hls::stream<vec<in_T, N_IN> > &in, hls::stream<vec<out_T, N_OUT> > &out, const w_T w[N_IN * N_OUT],
                 const b_T b[N_OUT]) {
    matvec_stream<vec<in_T, N_IN>, vec<out_T, N_OUT>, w_T, b_T, acc_T, N_IN, N_OUT, FOLD_IN, FOLD_OUT, true, PIXELS>(
        in, out, w, b);
}

template <class res_T, class CONFIG_T>
void fire_concat(hls::stream<vec<typename res_T::value_type, CONFIG_T::n_expand1> > &e1,
                 hls::stream<vec<typename res_T::value_type, CONFIG_T::n_expand3> > &e3, hls::stream<res_T> &out) {
    static_assert(res_T::size == CONFIG_T::n_expand1 + CONFIG_T::n_expand3, "output word must hold one pixel");
ConcatPixels:
    for (unsigned p = 0; p < CONFIG_T::height * CONFIG_T::width; p++) {
        #pragma HLS PIPELINE II=1
        vec<typename res_T::value_type, CONFIG_T::n_expand1> a = e1.read();
        vec<typename res_T::value_type, CONFIG_T::n_expand3> c = e3.read();
        res_T y;
        for (unsigned k = 0; k < CONFIG_T::n_expand1; k++) {
            #pragma HLS UNROLL
            y[k] = a[k];
        }
        for (unsigned k = 0; k < CONFIG_T::n_expand3; k++) {
            #pragma HLS UNROLL
            y[CONFIG_T::n_expand1 + k] = c[k];
        }
        out.write(y);
    }
}

template <class data_T, class res_T, class CONFIG_T>
void fire(hls::stream<data_T> &in, hls::stream<res_T> &out,
          const typename CONFIG_T::squeeze_weight_t squeeze_w[CONFIG_T::n_chan * CONFIG_T::n_squeeze],
          const typename CONFIG_T::squeeze_bias_t squeeze_b[CONFIG_T::n_squeeze],
          const typename CONFIG_T::expand1_weight_t expand1_w[CONFIG_T::n_squeeze * CONFIG_T::n_expand1],
          const typename CONFIG_T::expand1_bias_t expand1_b[CONFIG_T::n_expand1],
          const typename CONFIG_T::expand3_weight_t expand3_w[9 * CONFIG_T::n_squeeze * CONFIG_T::n_expand3],
          const typename CONFIG_T::expand3_bias_t expand3_b[CONFIG_T::n_expand3]) {
    #pragma HLS DATAFLOW
    typedef typename CONFIG_T::squeeze_t sq_t;
    typedef typename res_T::value_type ex_t;
    static const unsigned S = CONFIG_T::n_squeeze;
    static const unsigned PIXELS = CONFIG_T::height * CONFIG_T::width;

    hls::stream<vec<sq_t, S> > squeezed("fire_squeezed");
    hls::stream<vec<sq_t, S> > center("fire_center");
    hls::stream<vec<sq_t, 9 * S> > window("fire_window");
    hls::stream<vec<ex_t, CONFIG_T::n_expand1> > e1("fire_expand1");
    hls::stream<vec<ex_t, CONFIG_T::n_expand3> > e3("fire_expand3");
    #pragma HLS STREAM variable=squeezed depth=2
    #pragma HLS STREAM variable=center depth=2
    #pragma HLS STREAM variable=window depth=2
    #pragma HLS STREAM variable=e1 depth=2
    #pragma HLS STREAM variable=e3 depth=2

    fire_squeeze<data_T, CONFIG_T>(in, squeezed, squeeze_w, squeeze_b);
    fire_window<CONFIG_T>(squeezed, center, window);
    fire_expand<sq_t, ex_t, typename CONFIG_T::expand1_weight_t, typename CONFIG_T::expand1_bias_t,
                typename CONFIG_T::expand1_accum_t, S, CONFIG_T::n_expand1, CONFIG_T::expand1_fold_in,
                CONFIG_T::expand1_fold_out, PIXELS>(center, e1, expand1_w, expand1_b);
    fire_expand<sq_t, ex_t, typename CONFIG_T::expand3_weight_t, typename CONFIG_T::expand3_bias_t,
                typename CONFIG_T::expand3_accum_t, 9 * S, CONFIG_T::n_expand3, CONFIG_T::expand3_fold_in,
                CONFIG_T::expand3_fold_out, PIXELS>(window, e3, expand3_w, expand3_b);
    fire_concat<res_T, CONFIG_T>(e1, e3, out);
}

} // namespace sqz

#endif
