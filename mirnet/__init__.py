"""MIRNet for low-light image enhancement, in Keras 3.

Importing this package (and ``mirnet.imageio``, ``mirnet.metrics``) does not import TensorFlow, so the web tier
can validate images and compute metrics without it. The model modules (``architectures``, ``layers``,
``inference``, ``models``, ``training``) import Keras when they are imported.
"""

__version__ = "0.1.0"
