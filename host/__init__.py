"""host/: what runs on the board (PYNQ image: numpy and pynq, no TensorFlow, no hls4ml; see host/README.md).

BOARD_MODULES is the list of this repository's modules that ship to the board: host/ and everything it
imports. tests/test_host_imports.py imports them with TensorFlow, Keras and hls4ml made unimportable and
checks that nothing outside this list gets imported.
"""

BOARD_MODULES = (
    "host",            # this package
    "host.axi",        # AXI4-Stream packing of input frames, logits and the weight-load stream
    "host.manifest",   # manifest.json: the design's contract with the host (Manifest)
    "host.driver",     # the PYNQ driver (SqzOverlay): needs pynq, which the board image has
    "quant",           # package marker only (quant/__init__.py is empty)
    "quant.fixed_point",   # FixedFormat: the one definition of the input cast (numpy only)
    "sqz",             # package marker only (sqz/__init__.py imports nothing)
    "sqz.errors",      # SqzError, the base of ManifestError
    "sqz.passes",      # mirror_sum: the image and its mirror, logit codes summed (`sqz infer --mirror`, numpy only)
)
