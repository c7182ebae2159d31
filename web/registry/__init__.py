"""Retraining on what users send, its HTTP side: the API (``/api/v1/models``, ``/api/v1/training-runs``) and the
portal's models page.

The domain's rows, pairs, registry services and lock are in the shared core (``web.core.registry``), used by the
worker and the CLI as well; the TensorFlow side (fine-tuning, evaluating) is ``worker.retraining``.
"""
