"""The retraining domain's core: its rows, the pairs, the model registry's services and the retraining lock."""
