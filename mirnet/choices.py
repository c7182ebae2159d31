"""Names shared by the command line, training, inference and the worker, in a module free of TensorFlow, so that
``lowlight --help`` and the worker's recipe code can offer and check them without loading it."""

from __future__ import annotations

# The pixel term of the training loss (mirnet.losses.RestorationLoss): "charbonnier" (L1-like, as MIRNet trains)
# or "rmse" (each image's root-mean-square error, what PSNR measures).
PIXEL_LOSSES = ("charbonnier", "rmse")
DEFAULT_PIXEL_LOSS = "charbonnier"

# Precision name -> Keras dtype policy: "bf16" computes in bfloat16 with float32 weights.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}

# What inference accepts (``--precision``, ``PRECISION``): a precision, or "auto": the one the model card ships with
# (``inference.precision``; fp32 if it names none) where this machine computes it natively and faster than fp32
# (mirnet.inference.bf16_pays), fp32 elsewhere.
AUTO_PRECISION = "auto"
INFERENCE_PRECISIONS = (AUTO_PRECISION, *PRECISIONS)

# Inference defaults, one source each for mirnet.inference.Enhancer, ``lowlight enhance``/``eval`` and the worker's
# settings. Precision: "auto" (above). Tile: images up to 1024x1024 run whole, larger ones in tiles of 1024 (0 or
# None: always whole). Batch: tiles of one shape that run through the network together; on CPUs batching does not
# pay (scripts/bench_batching.py). Context: the longer side of the downscaled whole-image pass whose global averages
# a large image's tiles share. Views: None, as many as the model card ships with for the precision that runs.
DEFAULT_PRECISION = AUTO_PRECISION
DEFAULT_TILE = 1024
DEFAULT_BATCH_SIZE = 1
DEFAULT_CONTEXT = 1024
DEFAULT_VIEWS: int | None = None

# Test-time views (``--views``, ``VIEWS``; mirnet.views.VIEW_FLIPS): the image, then its left-right, up-down
# and both-ways mirrors, each enhanced and the outputs averaged.
VIEW_COUNTS = (1, 2, 3, 4)

# CPU flags (Linux /proc/cpuinfo) of instructions that compute bfloat16 natively; without them TensorFlow emulates
# bf16 and it is slower than fp32.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively, from ``/proc/cpuinfo`` (or the text given); False where it
    cannot be read (not Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in BF16_CPU_FLAGS)
    return False
