"""`python -m sqz train`: train a CIFAR-10 Fire network (model/cifar_train.py), resumable per epoch.

    python -m sqz train --model squeezenet_cifar --data ../shared/data/cifar10 --epochs 80 --seed 0 \\
        --out runs/squeezenet_cifar --weights model/weights/squeezenet_cifar.npz \\
        --plot benchmarks/figures/cifar_train.png --json summary.json
"""
from __future__ import annotations

import shlex
import sys


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a CIFAR-10 Fire network (squeezenet_cifar*), resumable per epoch")
    p.add_argument("--model", default="squeezenet_cifar")
    p.add_argument("--data", default="../shared/data/cifar10",
                   help="the CIFAR-10 folder (cifar10_train_jpg.tar.gz, cifar10_test_jpg.tar.gz)")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=5e-4,
                   help="Keras' decoupled decay (w -= lr * wd * w a step, outside the momentum): 5e-3 is PyTorch's "
                        "usual 5e-4 at momentum 0.9; default 5e-4, the shipped weights' recipe (BENCHMARKS: 5e-3 measured better)")
    p.add_argument("--warmup", type=float, default=0.15, help="fraction of the steps spent warming up")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--cutout", type=int, default=0, metavar="N",
                   help="also set a random N x N square of each training image to 0 (Cutout); 0: off, the shipped recipe")
    add_distill_args(p, "training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="train on the first N training images only (smoke runs, probes)")
    p.add_argument("--out", required=True, help="run folder: checkpoint after each epoch, history, summary; "
                                                "rerunning the same command resumes from it")
    p.add_argument("--weights", help="write the folded weights (npz) here")
    p.add_argument("--plot", help="accuracy-per-epoch plot (PNG)")
    p.add_argument("--json", help="write the summary here")
    p.set_defaults(func=cmd_train)


def add_distill_args(p, what: str) -> None:
    """--teacher / --kd-alpha / --kd-temperature: knowledge distillation, for `train` and `finetune` alike."""
    p.add_argument("--teacher", action="append", default=[], metavar="WEIGHTS.npz",
                   help="distil from this trained network of the same model (repeat for an ensemble): its "
                        f"softmax at --kd-temperature on each {what} image and its mirror, averaged")
    p.add_argument("--kd-alpha", type=float, default=0.9, help="weight of the distillation term (with --teacher)")
    p.add_argument("--kd-temperature", type=float, default=4.0, help="softmax temperature (with --teacher)")


def check_distill_args(args, arch) -> None:
    """Before any work: bad --kd-alpha / --kd-temperature, a missing teacher file, or one of other shapes
    than --model's, named."""
    from model.trained import load_params
    from sqz.cli_common import CliError

    if not 0 < args.kd_alpha <= 1 or not args.kd_temperature > 0:
        raise CliError(f"--kd-alpha {args.kd_alpha} must be in (0, 1] and --kd-temperature {args.kd_temperature} positive")
    for t in args.teacher:
        load_params(t, arch)


def cmd_train(args) -> int:
    from model.architecture import get_architecture
    from model.cifar10 import is_cifar10_folder
    from model.cifar_train import train
    from sqz.cli_common import CliError, print_table, write_json

    arch = get_architecture(args.model)
    if arch.num_classes != 10:
        raise CliError(f"--model {args.model}: train is for the CIFAR-10 networks (squeezenet_cifar*)")
    if not is_cifar10_folder(args.data):
        raise CliError(f"--data {args.data}: not a CIFAR-10 folder (cifar10_train_jpg.tar.gz, cifar10_test_jpg.tar.gz)")
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise CliError("--epochs, --batch-size and --lr must be positive")
    if not 0 <= args.cutout <= arch.input_size:
        raise CliError(f"--cutout {args.cutout}: the square's side must be 0 (off) to {arch.input_size} pixels")
    check_distill_args(args, arch)
    command = "python -m sqz " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    s = train(arch, args.data, args.out, args.epochs, args.batch_size, args.lr, args.weight_decay, args.warmup,
              args.label_smoothing, args.seed, args.limit, args.weights, args.plot,
              say=lambda m: print(m, flush=True), command=command, cutout=args.cutout,
              teachers=args.teacher, kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature)
    write_json(args.json, s)
    print_table(f"{args.model} trained on CIFAR-10", [
        ("epochs", len(s["history"])), ("test top-1 (10,000)", f"{100 * s['test_acc']:.2f} %"),
        ("after folding batch norm", f"{100 * s['folded_test_acc']:.2f} %"),
        ("training time", f"{s['train_seconds'] / 60:.1f} min"), ("weights", args.weights or "-")])
    return 0
