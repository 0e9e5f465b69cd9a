// sqz pooling kernels: overlapping 3x3 / stride 2 max pool with Caffe's round-up output size,
// and the global average pool of quant/arithmetic.py (exact sum, reciprocal multiply, one cast).
//
// hls4ml 1.3.0's io_stream pooling asserts pool size == stride, so SqueezeNet's overlapping
// pools need this kernel. Both kernels fold channels by a reuse factor R: C / R channels per
// pipelined cycle, R cycles per input pixel (R = 1: a whole pixel per cycle).
#ifndef SQZ_POOL_H_
#define SQZ_POOL_H_

#include "hls_stream.h"
#include "sqz_common.h"

namespace sqz {

struct maxpool_config {
    static const unsigned in_height = 3;
    static const unsigned in_width = 3;
    static const unsigned n_chan = 1;
    static const unsigned reuse_factor = 1;
};

// Output size ceil((n - 3) / 2) + 1, which is n / 2 for n >= 3 (model/architecture.py pool_out).
// Window (oy, ox) covers input rows 2oy..2oy+2 and columns 2ox..2ox+2; cells beyond the last
// row or column count as 0 (every pool follows a ReLU), as in quant/arithmetic.maxpool.
// Separable: a running maximum along the row (`run`), finished every second column, then a
// running maximum down the columns (`colmax`), finished every second row. Each input pixel
// finishes at most one output pixel, so outputs leave in row-major order at one per input.
template <class data_T, class res_T, class CONFIG_T> void maxpool_3x3s2(hls::stream<data_T> &in, hls::stream<res_T> &out) {
    typedef typename data_T::value_type T;
    static const unsigned H = CONFIG_T::in_height;
    static const unsigned W = CONFIG_T::in_width;
    static const unsigned C = CONFIG_T::n_chan;
    static const unsigned R = CONFIG_T::reuse_factor;
    static const unsigned CP = C / R;
    static const unsigned OH = H / 2;
    static const unsigned OW = W / 2;
    static_assert(H >= 3 && W >= 3, "input smaller than the 3x3 window");
    static_assert(C % R == 0, "reuse factor must divide the channels");
    static_assert(data_T::size == C && res_T::size == C, "stream words must hold one pixel");

    T run[C];        // maximum of the current row window so far
    T colmax[OW][C]; // maximum over the rows seen so far of each output column's window
    #pragma HLS ARRAY_PARTITION variable=run cyclic factor=CP
    #pragma HLS ARRAY_PARTITION variable=colmax cyclic factor=CP dim=2
    for (unsigned c = 0; c < C; c++)
        run[c] = 0;

    data_T px;
    res_T o;
    unsigned x = 0, y = 0, g = 0;
    // One pipelined loop over pixels x channel groups (II = 1): R cycles per input pixel, pixels back to
    // back (a loop per pixel around a pipelined group loop would drain the pipeline at every pixel).
PoolSteps:
    for (unsigned long step = 0; step < (unsigned long)H * W * R; step++) {
        #pragma HLS PIPELINE II=1
        if (g == 0)
            px = in.read();
        const bool x_even = (x % 2) == 0;
        // a row window finishes at its third column, or cut short by the right border
        const bool row_done = x_even ? x >= 2 : x == W - 1;
        const unsigned ox = x_even ? x / 2 - 1 : (x - 1) / 2;
        const bool y_even = (y % 2) == 0;
        const bool emit = row_done && (y_even ? y >= 2 : y == H - 1);
        const bool start = row_done && y_even && y / 2 < OH;
    PoolLanes:
        for (unsigned k = 0; k < CP; k++) {
            #pragma HLS UNROLL
            const unsigned c = g * CP + k;
            const T p = px[c];
            const T m = max_of(run[c], p);
            const T h = x_even ? m : max_zero(m); // odd x finishing: the right border cut it
            run[c] = (x == 0 || x_even) ? p : m;  // an even column starts the next window
            if (row_done) {
                const T v = max_of(colmax[ox][c], h);
                if (y_even) {
                    o[c] = v; // written out only if y >= 2
                    if (start)
                        colmax[ox][c] = h;
                } else if (y == H - 1) {
                    o[c] = max_zero(v); // the bottom border cut this window
                } else {
                    colmax[ox][c] = v;
                }
            }
        }
        if (g + 1 == R && emit)
            out.write(o);
        if (g + 1 < R) {
            g++;
        } else {
            g = 0;
            if (x + 1 < W) {
                x++;
            } else {
                x = 0;
                y++;
            }
        }
    }
}

struct global_avgpool_config {
    static const unsigned height = 1;
    static const unsigned width = 1;
    static const unsigned n_chan = 1;
    static const unsigned reuse_factor = 1;
    static const unsigned long long multiplier = 1;
};

// y = cast<result>(sum_{h,w} x * multiplier / 2**shift): the sum is exact in accum_t (checked
// by hw/convert.py), mult_t = ap_ufixed<B, B - shift> holds the multiplier exactly, the product
// is exact, and the assignment rounds and saturates once, with the result format's modes.
template <class data_T, class res_T, class CONFIG_T>
void global_avgpool(hls::stream<data_T> &in, hls::stream<res_T> &out) {
    typedef typename CONFIG_T::accum_t acc_T;
    typedef typename CONFIG_T::mult_t mult_T;
    typedef typename res_T::value_type out_T;
    static const unsigned C = CONFIG_T::n_chan;
    static const unsigned R = CONFIG_T::reuse_factor;
    static const unsigned CP = C / R;
    static_assert(C % R == 0, "reuse factor must divide the channels");
    static_assert(data_T::size == C && res_T::size == C, "stream words must hold one pixel / all channels");

    acc_T sum[C];
    #pragma HLS ARRAY_PARTITION variable=sum cyclic factor=CP
AvgInit:
    for (unsigned c = 0; c < C; c++) {
        #pragma HLS UNROLL
        sum[c] = 0;
    }
    data_T px;
    unsigned g = 0;
    // one pipelined loop over pixels x channel groups: R cycles per pixel, pixels back to back
AvgSteps:
    for (unsigned long step = 0; step < (unsigned long)CONFIG_T::height * CONFIG_T::width * R; step++) {
        #pragma HLS PIPELINE II=1
        if (g == 0)
            px = in.read();
        for (unsigned k = 0; k < CP; k++) {
            #pragma HLS UNROLL
            sum[g * CP + k] += px[g * CP + k];
        }
        g = (g + 1 < R) ? g + 1 : 0;
    }
    mult_T m;
    set_code(m, CONFIG_T::multiplier);
    res_T y;
AvgScale:
    for (unsigned c = 0; c < C; c++) {
        #pragma HLS PIPELINE II=1
        y[c] = out_T(sum[c] * m);
    }
    out.write(y);
}

} // namespace sqz

#endif
