"""Retraining on what users send: training pairs, the model registry, training runs and their lock.

Split by role (warehouse style): ``models`` (rows), ``pairs`` and ``services`` (the logic, no Flask, no
TensorFlow, shared by the web app, the worker and the CLI), ``lock`` (one retraining at a time), ``views``
(the API and the portal page). The TensorFlow side (fine-tuning, evaluating) is ``worker.retraining``.
"""
