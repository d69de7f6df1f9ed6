"""Representations: the form of a stored model a runtime asks for (dtype, format, opset)."""
