"""Test support: real host subprocesses, tiny ONNX models, real models from PyPI wheels."""
