"""Fixed-point emulator vs Keras float inference, side by side in one run, on the same images.

    .venv/bin/python benchmarks/emulator_speed.py [--images 320] [--batch-size 32] [--json OUT.json]

Figures to OUT.json (default benchmarks/results/emulator_speed.json).

Target (issue 3): emulator >= 10 images/s and >= half of Keras float's images/s.
"""
import argparse
import time

from common import CALIB_STOP, calibrate, load_images, machine, real_model, results_path, write_results


def rate(fn, x, batch_size, repeats=1):
    fn(x[:batch_size])                      # warm-up (graph tracing, BLAS threads)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(0, len(x), batch_size):
            fn(x[i:i + batch_size])
        best = max(best, len(x) / (time.perf_counter() - t))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
    args = ap.parse_args()
    from model.squeezenet import load_pretrained
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator

    arch, params = real_model()
    calib_x, _ = load_images(stop=CALIB_STOP, limit=100)
    cal, _ = calibrate(arch, params, calib_x)
    spec = make_spec(cal, 8, 8)
    emulator = FixedPointEmulator(arch, params, spec)
    x, _ = load_images(start=CALIB_STOP, limit=args.images)
    keras_model = load_pretrained(softmax=False)
    results = {}
    for round_ in range(args.repeats):        # interleave, so background load hits both alike
        results.setdefault("keras", []).append(rate(keras_model.predict_on_batch, x, args.batch_size))
        results.setdefault("emulator", []).append(rate(emulator.logit_codes, x, args.batch_size))
    keras_ips, emu_ips = max(results["keras"]), max(results["emulator"])
    print(f"machine: {machine()}")
    print(f"{len(x)} images of imagenet_val1300, batch {args.batch_size}, best of {args.repeats} interleaved rounds")
    print(f"Keras float (TF {__import__('tensorflow').__version__}): {keras_ips:7.1f} images/s")
    print(f"fixed-point emulator, 8/8 bit:   {emu_ips:7.1f} images/s  ({emu_ips / keras_ips:.2f} x Keras)")
    print(f"targets: >= 10 images/s: {'MET' if emu_ips >= 10 else 'MISSED'}; "
          f">= 0.5 x Keras: {'MET' if emu_ips >= 0.5 * keras_ips else 'MISSED'}")
    write_results(args.json, {"images": len(x), "batch_size": args.batch_size, "repeats": args.repeats,
                              "tensorflow": __import__("tensorflow").__version__, "images_per_s": results,
                              "keras_images_per_s": keras_ips, "emulator_images_per_s": emu_ips,
                              "emulator_over_keras": emu_ips / keras_ips})


if __name__ == "__main__":
    main()
