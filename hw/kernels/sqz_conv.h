// sqz::conv1x1_rw -- a stand-alone 1x1 convolution (+ ReLU) whose weights are written at run time;
// sqz::conv_rw    -- the same for a K x K / stride S convolution (conv1), with its own line buffer.
//
//   in (H x W x n_in) -> per pixel y = act(b + W x) (sqz::matvec_stream, folded by FOLD_IN * FOLD_OUT) -> out
//
// The weights are not a ROM: `w` is a namespace-scope array (sqz_w_<layer>, defined and loaded in the
// generated myproject.cpp, hw/project.py) that the AXI top writes in its load mode
// (sqz::axi_read_weights, sqz_axi.h) and this kernel only reads. That is what lets synthesis put
// them in UltraRAM, which has no bitstream initialisation: the generated code binds the array to
// UltraRAM (BIND_STORAGE impl=uram) and marks it STABLE in the dataflow region (it changes only
// between frames, in load mode). Layout: the [fo][fi][po][pi] order matvec_stream reads (hw/ops/cost.py
// fold_matrix), so one reshaped memory word holds the BLOCK = n_in * n_out / R weights of a cycle.
// Arithmetic: quant/arithmetic.py -- exact accumulation in accum_t, then ReLU and one cast, as in
// sqz::fire (and as hls4ml's pointwise conv + ReLU layer, which this kernel replaces).
#ifndef SQZ_CONV_H_
#define SQZ_CONV_H_

#include "hls_stream.h"
#include "sqz_common.h"
#include "sqz_fire.h"

namespace sqz {

// Default sizes; the generated config (hw/ops/) overrides all of them.
struct conv1x1_config {
    static const unsigned height = 1;
    static const unsigned width = 1;
    static const unsigned n_in = 1;
    static const unsigned n_out = 1;
    static const unsigned fold_in = 1;
    static const unsigned fold_out = 1;
    static const bool relu = true;
};

template <class data_T, class res_T, class CONFIG_T>
void conv1x1_rw(hls::stream<data_T> &in, hls::stream<res_T> &out,
                const typename CONFIG_T::weight_t w[CONFIG_T::n_in * CONFIG_T::n_out],
                const typename CONFIG_T::bias_t b[CONFIG_T::n_out]) {
    matvec_stream<data_T, res_T, typename CONFIG_T::weight_t, typename CONFIG_T::bias_t, typename CONFIG_T::accum_t,
                  CONFIG_T::n_in, CONFIG_T::n_out, CONFIG_T::fold_in, CONFIG_T::fold_out, CONFIG_T::relu,
                  CONFIG_T::height * CONFIG_T::width>(in, out, w, b);
}

// K x K / stride S (no padding: a padded conv reads a zero-padded stream, hls4ml's zeropad2d_cl).
struct conv_rw_config {
    static const unsigned height = 1;   // of the (padded) input stream
    static const unsigned width = 1;
    static const unsigned n_in = 1;     // input channels
    static const unsigned n_out = 1;
    static const unsigned kernel = 1;
    static const unsigned stride = 1;
    static const unsigned fold_in = 1;  // of the K*K*n_in x n_out product
    static const unsigned fold_out = 1;
    static const bool relu = true;
};

// Step (i, j) reads input pixel (i, j); the K-1 previous rows live in `lines`, the last K columns of the
// K rows in `win`. When (i, j) completes a window -- i, j >= K-1 and on the stride grid -- it emits the
// window (ky, kx, channel) flattened, Keras' HWIO order, the rows of the weight matrix (fold_matrix).
// Output (r, c) is the window of input rows S*r..S*r+K-1, columns S*c..S*c+K-1 (Caffe's floor size).
template <class data_T, class CONFIG_T>
void conv_rw_window(hls::stream<data_T> &in,
                    hls::stream<vec<typename data_T::value_type, CONFIG_T::kernel * CONFIG_T::kernel *
                                                                 CONFIG_T::n_in> > &windows) {
    typedef typename data_T::value_type T;
    static const unsigned H = CONFIG_T::height;
    static const unsigned W = CONFIG_T::width;
    static const unsigned C = CONFIG_T::n_in;
    static const unsigned K = CONFIG_T::kernel;
    static const unsigned S = CONFIG_T::stride;
    static_assert(K >= 2, "sqz::conv_rw is for K >= 2 (1x1: sqz::conv1x1_rw)");
    static_assert(H >= K && W >= K, "input smaller than the kernel");
    static_assert(data_T::size == C, "input stream word must hold one pixel");

    T lines[K - 1][W][C]; // lines[k]: row i-K+1+k (k = 0 .. K-2), columns not yet overwritten
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=1
    #pragma HLS ARRAY_PARTITION variable=lines complete dim=3
    T win[K][K][C];
    #pragma HLS ARRAY_PARTITION variable=win complete dim=0

ConvRows:
    for (unsigned i = 0; i < H; i++) {
    ConvCols:
        for (unsigned j = 0; j < W; j++) {
            #pragma HLS PIPELINE II=1
            const data_T px = in.read();
            T col[K][C];
            #pragma HLS ARRAY_PARTITION variable=col complete dim=0
            for (unsigned c = 0; c < C; c++) {
                #pragma HLS UNROLL
                for (unsigned k = 0; k + 1 < K; k++) {
                    #pragma HLS UNROLL
                    col[k][c] = lines[k][j][c];
                }
                col[K - 1][c] = px[c];
                for (unsigned k = 0; k + 1 < K; k++) {
                    #pragma HLS UNROLL
                    lines[k][j][c] = col[k + 1][c];
                }
            }
            for (unsigned r = 0; r < K; r++) {
                #pragma HLS UNROLL
                for (unsigned k = 0; k + 1 < K; k++) {
                    #pragma HLS UNROLL
                    for (unsigned c = 0; c < C; c++) {
                        #pragma HLS UNROLL
                        win[r][k][c] = win[r][k + 1][c];
                    }
                }
                for (unsigned c = 0; c < C; c++) {
                    #pragma HLS UNROLL
                    win[r][K - 1][c] = col[r][c];
                }
            }
            if (i + 1 >= K && j + 1 >= K && (i + 1 - K) % S == 0 && (j + 1 - K) % S == 0) {
                vec<T, K * K * C> x;
                for (unsigned r = 0; r < K; r++) {
                    #pragma HLS UNROLL
                    for (unsigned k = 0; k < K; k++) {
                        #pragma HLS UNROLL
                        for (unsigned c = 0; c < C; c++) {
                            #pragma HLS UNROLL
                            x[(r * K + k) * C + c] = win[r][k][c];
                        }
                    }
                }
                windows.write(x);
            }
        }
    }
}

template <class T, class res_T, class CONFIG_T>
void conv_rw_apply(hls::stream<vec<T, CONFIG_T::kernel * CONFIG_T::kernel * CONFIG_T::n_in> > &windows,
                   hls::stream<res_T> &out,
                   const typename CONFIG_T::weight_t w[CONFIG_T::kernel * CONFIG_T::kernel * CONFIG_T::n_in *
                                                       CONFIG_T::n_out],
                   const typename CONFIG_T::bias_t b[CONFIG_T::n_out]) {
    static const unsigned N_IN = CONFIG_T::kernel * CONFIG_T::kernel * CONFIG_T::n_in;
    static const unsigned OUT_PIXELS = ((CONFIG_T::height - CONFIG_T::kernel) / CONFIG_T::stride + 1) *
                                       ((CONFIG_T::width - CONFIG_T::kernel) / CONFIG_T::stride + 1);
    matvec_stream<vec<T, N_IN>, res_T, typename CONFIG_T::weight_t, typename CONFIG_T::bias_t,
                  typename CONFIG_T::accum_t, N_IN, CONFIG_T::n_out, CONFIG_T::fold_in, CONFIG_T::fold_out,
                  CONFIG_T::relu, OUT_PIXELS>(windows, out, w, b);
}

template <class data_T, class res_T, class CONFIG_T>
void conv_rw(hls::stream<data_T> &in, hls::stream<res_T> &out,
             const typename CONFIG_T::weight_t w[CONFIG_T::kernel * CONFIG_T::kernel * CONFIG_T::n_in *
                                                 CONFIG_T::n_out],
             const typename CONFIG_T::bias_t b[CONFIG_T::n_out]) {
    #pragma HLS DATAFLOW
    typedef typename data_T::value_type T;
    hls::stream<vec<T, CONFIG_T::kernel * CONFIG_T::kernel * CONFIG_T::n_in> > windows("conv_rw_windows");
    #pragma HLS STREAM variable=windows depth=2
    conv_rw_window<data_T, CONFIG_T>(in, windows);
    conv_rw_apply<T, res_T, CONFIG_T>(windows, out, w, b);
}

} // namespace sqz

#endif
