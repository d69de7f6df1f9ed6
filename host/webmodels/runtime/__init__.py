"""ONNX Runtime as this machine has it: which distribution is installed
(`distributions`) and which execution providers really work (`probe`).

Nothing is imported here on purpose: ``python -m webmodels.runtime.probe`` must not
find its own module already imported by the package, and importing the package must
never load ONNX Runtime.
"""
