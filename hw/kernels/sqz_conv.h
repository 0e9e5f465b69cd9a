// sqz::conv1x1_rw -- a stand-alone 1x1 convolution (+ ReLU) whose weights are written at run time.
//
//   in (H x W x n_in) -> per pixel y = act(b + W x) (sqz::matvec, folded by FOLD_IN * FOLD_OUT) -> out
//
// The weights are not a ROM: `w` is a namespace-scope array (sqz_w_<layer>, defined and loaded in the
// generated myproject.cpp, hw/project.py) that the AXI top writes in its load mode
// (sqz::axi_read_weights, sqz_axi.h) and this kernel only reads. That is what lets synthesis put
// them in UltraRAM, which has no bitstream initialisation: the generated code binds the array to
// UltraRAM (BIND_STORAGE impl=uram) and marks it STABLE in the dataflow region (it changes only
// between frames, in load mode). Layout: the [fo][fi][po][pi] order matvec reads (hw/layers.py
// fold_matrix), so one reshaped memory word holds the BLOCK = n_in * n_out / R weights of a cycle.
// Arithmetic: quant/arithmetic.py -- exact accumulation in accum_t, then ReLU and one cast, as in
// sqz::fire (and as hls4ml's pointwise conv + ReLU layer, which this kernel replaces).
#ifndef SQZ_CONV_H_
#define SQZ_CONV_H_

#include "hls_stream.h"
#include "sqz_common.h"
#include "sqz_fire.h"

namespace sqz {

// Default sizes; the generated config (hw/layers.py) overrides all of them.
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
    static_assert(data_T::size == CONFIG_T::n_in, "input stream word must hold one pixel");
    static_assert(res_T::size == CONFIG_T::n_out, "output stream word must hold one pixel");
Conv1x1Pixels:
    for (unsigned p = 0; p < CONFIG_T::height * CONFIG_T::width; p++) {
        data_T x = in.read();
        res_T y;
        matvec<typename data_T::value_type, typename res_T::value_type, typename CONFIG_T::weight_t,
               typename CONFIG_T::bias_t, typename CONFIG_T::accum_t, CONFIG_T::n_in, CONFIG_T::n_out,
               CONFIG_T::fold_in, CONFIG_T::fold_out, CONFIG_T::relu>(x.data, y.data, w, b);
        out.write(y);
    }
}

} // namespace sqz

#endif
