"""sqz: SqueezeNet from a trained float model to a Zynq FPGA, with fixed-point accuracy checked at every step.

`python -m sqz <command>`; see `python -m sqz --help`.
"""
