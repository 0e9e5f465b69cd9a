// sqz kernels: helpers shared by the Fire, max-pool, average-pool and AXI kernels.
//
// The arithmetic follows quant/arithmetic.py (the one definition of each layer's fixed-point
// steps). Synthesizable style: static sizes, no dynamic memory, no recursion, and no assert
// (hls4ml's build_lib.sh has no -DNDEBUG: a failed assert would abort the Python process that
// loaded the C simulation). Sizes are checked at compile time with static_assert and, before any
// C++ is generated, by hw/convert.py.
#ifndef SQZ_COMMON_H_
#define SQZ_COMMON_H_

#include "ap_fixed.h"
#include "ap_int.h"

namespace sqz {

// A fixed-size vector for the streams inside a kernel (one pixel of channels per stream word).
template <class T, unsigned N> struct vec {
    typedef T value_type;
    static const unsigned size = N;
    T data[N];
    T &operator[](unsigned i) { return data[i]; }
    const T &operator[](unsigned i) const { return data[i]; }
};

template <class T> inline T max_of(const T &a, const T &b) {
    #pragma HLS INLINE
    return a > b ? a : b;
}

// max(v, 0): a window cell beyond the border counts as 0 (inputs of the pools are post-ReLU).
template <class T> inline T max_zero(const T &v) {
    #pragma HLS INLINE
    const T zero = 0;
    return v > zero ? v : zero;
}

// A convolution's only rounding step: ReLU (if any) on the exact accumulator, then the cast to
// the result format with that format's own rounding and overflow modes (quant/arithmetic.py).
template <class res_T, bool RELU, class acc_T> inline res_T activate(const acc_T &acc) {
    #pragma HLS INLINE
    if (RELU && acc < 0)
        return res_T(0);
    return res_T(acc);
}

// Raw two's complement code of a fixed-point value, and the value of a code.
template <class T> inline ap_uint<T::width> code_of(const T &x) {
    #pragma HLS INLINE
    return x.range(T::width - 1, 0);
}

template <class T, class C> inline void set_code(T &x, C code) { // by value: ODR-safe for static consts
    #pragma HLS INLINE
    x.range(T::width - 1, 0) = code;
}

#ifndef __SYNTHESIS__
// C simulation: fill a weight array from its integer codes (weights/sqz_codes.h, written by
// hw/project.py). Exact, needs no file at run time, so the built library can be moved.
template <class T, unsigned long N, class C> void load_codes(T *dst, const C *codes) {
    for (unsigned long i = 0; i < N; i++)
        set_code(dst[i], codes[i]);
}
#endif

} // namespace sqz

#endif
