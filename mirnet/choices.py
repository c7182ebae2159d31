"""Names shared by the command line, training, inference and the worker, in a module free of TensorFlow, so that
``lowlight --help`` and the worker's recipe code can offer and check them without loading it."""

from __future__ import annotations

# The pixel term of the training loss (mirnet.losses.RestorationLoss): "charbonnier" (L1-like, as MIRNet trains)
# "rmse" (each image's root-mean-square error, what PSNR measures) or "log-rmse" (minus each image's PSNR, scaled).
PIXEL_LOSSES = ("charbonnier", "rmse", "log-rmse")
DEFAULT_PIXEL_LOSS = "charbonnier"

# Precision name -> Keras dtype policy: "bf16" computes in bfloat16 with float32 weights.
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}
