"""Which ONNX Runtime execution providers really work on this machine.

``onnxruntime.get_available_providers()`` only says what the wheel was built with:
the GPU wheel lists CUDA and TensorRT on a machine without a GPU, and a session
asked for CUDA silently falls back to the CPU when the CUDA libraries cannot be
loaded. So the probe builds a one-node model, opens a session on each provider
alone, checks the session really uses it and runs it once.

Loading a provider library can crash the process (a mismatched CUDA driver is
enough), so the host never probes in its own process: `run_probe_subprocess` runs
``python -m webmodels.runtime.probe``, which prints one JSON line, and turns a
crash or a hang into a `ProbeResult` with nothing usable. `ProviderProbe` does that
in a background thread, started at launch and read by ``hello``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webmodels.runtime.children import child_env

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
_FIRST = (TENSORRT, CUDA)  # preference order; CPU comes last, others in between
# Listed by some CPU wheels; it calls remote endpoints and runs nothing locally.
_NOT_PROBED = {"AzureExecutionProvider": "remote provider; runs nothing on this machine"}

_PROBE_MODULE = "webmodels.runtime.probe"
_REASON_LIMIT = 240  # characters of a failure reason
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOAD_FAILURE = re.compile(r"Failed to load library (\S+) with error: ([^\n]+)")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the probe found. ``error`` says why the probe itself failed (no
    ONNX Runtime, a crash, a timeout); then ``usable`` is empty."""

    ort_version: str | None
    available: tuple[str, ...]
    usable: tuple[str, ...]  # best first: TensorRT, CUDA, others, CPU
    failures: Mapping[str, str] = field(default_factory=dict)  # provider -> reason
    elapsed_ms: float = 0.0
    error: str | None = None

    @property
    def best(self) -> str | None:
        return self.usable[0] if self.usable else None

    @classmethod
    def failed(cls, error: str, *, elapsed_ms: float = 0.0) -> ProbeResult:
        return cls(None, (), (), {}, round(elapsed_ms, 1), _shorten(error))

    def to_json(self) -> dict[str, Any]:
        return {
            "ort_version": self.ort_version,
            "available": list(self.available),
            "usable": list(self.usable),
            "failures": dict(self.failures),
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, value: object) -> ProbeResult:
        """Parse `to_json`'s output; ValueError when it is not of that shape."""
        if not isinstance(value, dict):
            raise ValueError("probe result is not an object")
        version, error = value.get("ort_version"), value.get("error")
        failures = value.get("failures")
        elapsed = value.get("elapsed_ms")
        if not (_str_or_none(version) and _str_or_none(error)):
            raise ValueError("ort_version and error must be strings or null")
        if not isinstance(failures, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in failures.items()
        ):
            raise ValueError("failures must map provider names to reasons")
        if not isinstance(elapsed, int | float) or isinstance(elapsed, bool):
            raise ValueError("elapsed_ms must be a number")
        return cls(
            version,
            _str_tuple(value.get("available"), "available"),
            _str_tuple(value.get("usable"), "usable"),
            dict(failures),
            float(elapsed),
            error,
        )


def _str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _str_tuple(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of provider names")
    return tuple(value)


def order_providers(names: Sequence[str]) -> tuple[str, ...]:
    """TensorRT, CUDA, then the others in the order given, then CPU."""
    first = [p for p in _FIRST if p in names]
    middle = [p for p in names if p not in _FIRST and p != CPU]
    last = [CPU] if CPU in names else []
    return tuple(dict.fromkeys(first + middle + last))


def _shorten(text: str) -> str:
    line = " ".join(_ANSI.sub("", text).split())
    return line if len(line) <= _REASON_LIMIT else line[: _REASON_LIMIT - 3] + "..."


# -- the probe itself (runs in the child process) ------------------------------------

_INPUT_A = (1.5, -2.0)
_INPUT_B = (0.25, 4.0)


def build_probe_model() -> bytes:
    """A serialised ONNX model: c = Add(a, b) on float32[2], opset 17."""
    import onnx

    # IR 8 is opset 17's; a newer onnx would write an IR that old runtimes refuse.
    opset = onnx.OperatorSetIdProto(domain="", version=17)
    model = onnx.ModelProto(ir_version=8, producer_name="webmodels", opset_import=[opset])
    model.graph.name = "webmodels-probe"
    model.graph.node.add(op_type="Add", input=["a", "b"], output=["c"])
    for name, values in (
        ("a", model.graph.input),
        ("b", model.graph.input),
        ("c", model.graph.output),
    ):
        tensor = values.add(name=name).type.tensor_type
        tensor.elem_type = onnx.TensorProto.FLOAT
        tensor.shape.dim.add(dim_value=2)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def probe_in_process() -> ProbeResult:
    """Probe every available provider in this process. Only the child process
    should call this: a provider library may crash it, and it redirects file
    descriptors 1 and 2 while sessions are created."""
    start = time.perf_counter()
    try:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        model = build_probe_model()
        available = tuple(str(p) for p in ort.get_available_providers())
        version = str(ort.__version__)
    except Exception as exc:
        return ProbeResult.failed(f"cannot load ONNX Runtime: {exc}", elapsed_ms=_ms(start))
    usable: list[str] = []
    failures: dict[str, str] = {}
    for provider in available:
        reason = _NOT_PROBED.get(provider) or _try_provider(ort, model, provider, available)
        if reason is None:
            usable.append(provider)
        else:
            failures[provider] = reason
    return ProbeResult(version, available, order_providers(usable), failures, _ms(start))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _try_provider(ort: Any, model: bytes, provider: str, available: Sequence[str]) -> str | None:
    """None when a session on ``provider`` alone runs the model right; else why not."""
    # TensorRT hands the nodes it cannot take to CUDA; CPU stays out of every list
    # but its own so that a fallback shows in session.get_providers().
    providers = [provider, CUDA] if provider == TENSORRT and CUDA in available else [provider]
    with tempfile.TemporaryFile() as log:
        try:
            with _redirect_output(log.fileno()):
                reason = _run_session(ort, model, provider, providers)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        log.seek(0)
        native = _native_reason(log.read().decode("utf-8", "replace"))
    if reason is None:
        return None
    return _shorten(f"{reason} ({native})" if native else reason)


def _run_session(ort: Any, model: bytes, provider: str, providers: list[str]) -> str | None:
    import numpy as np

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model, sess_options=options, providers=providers)
    actual = list(session.get_providers())
    if not actual or actual[0] != provider:
        return f"session fell back to {actual[0] if actual else 'no provider'}"
    feeds = {"a": np.array(_INPUT_A, np.float32), "b": np.array(_INPUT_B, np.float32)}
    (result,) = session.run(["c"], feeds)
    expected = np.array(_INPUT_A, np.float32) + np.array(_INPUT_B, np.float32)
    if not np.allclose(result, expected):
        return f"wrong result {result.tolist()} (expected {expected.tolist()})"
    return None


def _native_reason(log: str) -> str | None:
    """The useful line of what ONNX Runtime logged while the session was created."""
    text = _ANSI.sub("", log)
    loading = _LOAD_FAILURE.search(text)
    if loading:
        return f"cannot load {Path(loading.group(1)).name}: {loading.group(2).strip()}"
    errors = [line for line in text.splitlines() if "[E:onnxruntime" in line]
    return errors[-1].split("] ", 1)[-1].strip() if errors else None


@contextlib.contextmanager
def _redirect_output(target_fd: int) -> Iterator[None]:
    """Send file descriptors 1 and 2 to ``target_fd``: ONNX Runtime's C++ logger
    writes to stderr and its Python fallback path prints to stdout."""
    saved = [os.dup(1), os.dup(2)]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.dup2(target_fd, 1)
        os.dup2(target_fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def main() -> int:
    """``python -m webmodels.runtime.probe``: one JSON line on stdout, nothing else."""
    with _redirect_output(2):  # anything the probe prints goes to stderr
        try:
            result = probe_in_process()
        except BaseException as exc:  # still print a result, whatever happened
            result = ProbeResult.failed(f"probe failed: {type(exc).__name__}: {exc}")
    sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


# -- the parent side -------------------------------------------------------------------


def probe_command() -> list[str]:
    return [sys.executable, "-m", _PROBE_MODULE]


def run_probe_subprocess(
    timeout_s: float = 60.0, *, command: Sequence[str] | None = None
) -> ProbeResult:
    """Run the probe in a child process (``command`` replaces it, for tests).

    Never raises for a crash, a timeout or garbage output: those come back as a
    result with nothing usable and ``error`` set. ``elapsed_ms`` is the wall time
    the caller waited, process start included.
    """
    start = time.perf_counter()
    argv = list(command) if command is not None else probe_command()
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            env=child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult.failed(f"probe timed out after {timeout_s:g} s", elapsed_ms=_ms(start))
    except OSError as exc:
        return ProbeResult.failed(f"cannot start the probe: {exc}", elapsed_ms=_ms(start))
    if done.returncode != 0:
        reason = _describe_exit(done.returncode, done.stderr.decode("utf-8", "replace"))
        return ProbeResult.failed(reason, elapsed_ms=_ms(start))
    try:
        result = _parse_output(done.stdout.decode("utf-8", "replace"))
    except ValueError as exc:
        return ProbeResult.failed(f"probe printed no result: {exc}", elapsed_ms=_ms(start))
    return replace(result, elapsed_ms=_ms(start))


def _parse_output(stdout: str) -> ProbeResult:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty output")
    try:
        value = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {lines[-1][:80]!r}") from exc
    return ProbeResult.from_json(value)


def _describe_exit(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            what = f"probe crashed ({signal.Signals(-returncode).name})"
        except ValueError:
            what = f"probe killed by signal {-returncode}"
    else:
        what = f"probe exited with status {returncode}"
    last = [line for line in _ANSI.sub("", stderr).splitlines() if line.strip()]
    return f"{what}: {last[-1].strip()}" if last else what


class ProviderProbe:
    """The probe run once in a background thread: `start` at launch, `result` later.

    ``runner`` replaces `run_probe_subprocess` (tests). Thread-safe; `start` twice
    starts one probe.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 60.0,
        runner: Callable[[float], ProbeResult] = run_probe_subprocess,
    ) -> None:
        self._timeout_s = timeout_s
        self._runner = runner
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: ProbeResult | None = None

    def start(self) -> ProviderProbe:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="webmodels-provider-probe", daemon=True
                )
                self._thread.start()
        return self

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            result = self._runner(self._timeout_s)
        except Exception as exc:  # a runner bug must not leave `result` waiting forever
            result = ProbeResult.failed(f"probe failed: {exc}", elapsed_ms=_ms(start))
        self._result = result
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout_s: float | None = None) -> ProbeResult | None:
        """Wait up to ``timeout_s`` (None: until done); None if still running.
        Starts the probe if `start` was not called."""
        self.start()
        self._done.wait(timeout_s)
        return self._result


if __name__ == "__main__":
    raise SystemExit(main())
