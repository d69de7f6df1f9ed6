"""Representations: other forms of a stored ONNX model, made by the host on request.

A page (or the CLI) asks for a model in the form its runtime needs (``dtype`` fp32,
fp16, int8 or q4, ``format`` onnx or ort, an ``opset`` or a range of them); this
package owns everything between that question and a stored form:

* `recipes`: the pure description of a form (`Recipe`), its tolerance and the tool
  versions that make it, from a page's ``representation`` option;
* `choice`: which form fits a runtime and the device a page reports;
* `convert`: the conversion and the numerical check, run only inside the runtime
  worker (fp16 by onnxconverter-common, int8 by ONNX Runtime's dynamic quantization,
  q4 by its 4-bit MatMul quantizer, opset by onnx.version_converter, and the
  external-data split), deterministic for the same source, recipe and tool versions;
* `split`: storing an external-data split (a graph and its tensors' file) with
  provenance, and as a manifest in the shared scope;
* `deriver`: the host side: where a form comes from (a stored one the caller may
  see, else derived in a worker of its own at idle priority), published with its
  provenance (store/representations.py), and kept per partition for a model that is
  not common, like the compile cache.
"""
