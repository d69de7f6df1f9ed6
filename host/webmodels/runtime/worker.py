"""``python -m webmodels.runtime.worker``: the only process that runs ONNX Runtime.

The host starts it with pipes for stdin and stdout and speaks msgpack frames
(runtime/pipe.py) to it: ``{"id", "op", ...}`` in, ``{"id", "ok", "result" | "error"}``
out, in any order (requests run on a small thread pool; ORT releases the GIL). A model
that crashes ONNX Runtime ends this process, never the host (docs/design.md#process-model).

Before anything else the worker caps its own memory (``--memory-limit``: RLIMIT_DATA,
which counts heap and anonymous mappings but not the address space CUDA reserves,
unlike RLIMIT_AS), ends itself when the host dies, and points file
descriptor 1 at stderr so that nothing a native library prints can corrupt a frame.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from webmodels.errors import HostError
from webmodels.runtime import compiled_relink, execute, model_files, pipe, shared_weights
from webmodels.runtime.safety import ModelLimits, check_model
from webmodels.runtime.worker_process import die_with_parent, limit_memory

log = logging.getLogger("webmodels.worker")

# Test hook: with this set to 1 in the worker's environment (tests only), a model
# whose metadata has ``webmodels.test = crash-on-run`` kills the worker with SIGSEGV
# when run, standing in for a model that crashes ONNX Runtime (none is known for this
# ORT version). Without the variable the metadata means nothing.
TEST_HOOKS_ENV = "WEBMODELS_WORKER_TEST_HOOKS"
WEIGHTS_NAME = "weights.bin"  # the external-data file of graphs the host optimized
GRAPH_NAME = "model.onnx"
MIN_EXTERNAL_BYTES = 1024  # smaller initializers stay inside the optimized graph
_ALLOC_FAILURE = ("Failed to allocate memory", "bad_alloc", "std::bad_alloc")


@dataclass(slots=True)
class Loaded:
    session: Any
    crash_on_run: bool
    raw_outputs: bool  # some output has a type numpy cannot hold (bfloat16)


class Worker:
    def __init__(self, ort: Any, out: BinaryIO, *, memory_limit: int | None) -> None:
        self.ort = ort
        self.out = out
        self.memory_limit = memory_limit
        self.sessions: dict[str, Loaded] = {}
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="call")
        self.test_hooks = os.environ.get(TEST_HOOKS_ENV) == "1"

    def serve(self, stream: IO[bytes]) -> int:
        try:
            while (message := pipe.read_frame(stream)) is not None:
                self.pool.submit(self.handle, message)
        except pipe.PipeError as exc:
            log.error("bad frame from the host: %s", exc)
            return 2
        finally:
            self.pool.shutdown(wait=True)
        return 0

    def handle(self, message: dict[str, Any]) -> None:
        call_id = message.get("id")
        reply: dict[str, Any]
        try:
            op = getattr(self, f"op_{message.get('op')}", None)
            if op is None:
                raise HostError("internal", f"unknown worker op {message.get('op')!r}")
            reply = {"id": call_id, "ok": True, "result": op(message)}
        except HostError as exc:
            reply = {"id": call_id, "ok": False, "error": exc.to_wire()}
        except MemoryError:
            reply = {"id": call_id, "ok": False, "error": self._memory_error().to_wire()}
        except Exception as exc:
            log.exception("worker op failed")
            error = HostError("internal", f"runtime worker: {type(exc).__name__}: {exc}")
            reply = {"id": call_id, "ok": False, "error": error.to_wire()}
        try:
            frame = pipe.encode(reply)
        except Exception as exc:  # never leave the host waiting for an answer
            error = HostError("internal", f"runtime worker: cannot encode the reply: {exc}")
            frame = pipe.encode({"id": call_id, "ok": False, "error": error.to_wire()})
        with self.write_lock:
            self.out.write(frame)
            self.out.flush()

    # -- ops ------------------------------------------------------------------------------

    def op_hello(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "ort_version": str(self.ort.__version__),
            "available": [str(p) for p in self.ort.get_available_providers()],
            "pid": os.getpid(),
        }

    def op_create(self, message: dict[str, Any]) -> dict[str, Any]:
        """Build a session from the host's optimized graph when it gave one, else from
        the model itself (saving the optimized graph into ``save_to`` when asked)."""
        limits = ModelLimits(**message["limits"])
        result: dict[str, Any] = {"compiled_cache_hit": False}
        session = None
        hook = False
        if message.get("cached"):
            try:
                session, hook = self._from_cache(message, limits)
                result["compiled_cache_hit"] = True
            except HostError as exc:
                if exc.details.get("memory"):
                    raise
                # The graph is the host's own: whatever is wrong with it (a blob changed,
                # a check too strict for what ORT wrote), the source model, checked in
                # full, is compiled again instead.
                log.warning("cached graph refused, compiling again: %s", exc.message)
                result["cache_rejected"] = exc.message
            except OSError as exc:  # a cached file went away meanwhile: compile again
                log.warning("cached graph unreadable, compiling again: %s", exc)
                result["cache_rejected"] = "a cached file could not be read"
        if session is None and message.get("format") == "ort":
            session = self._from_ort_form(message)
        elif session is None:
            session, saved, hook = self._from_model(message, limits)
            if saved is not None:
                result["saved"] = saved
        loaded = Loaded(session, self.test_hooks and hook, _has_raw_outputs(session))
        if message.get("keep", True):
            with self.lock:
                self.sessions[message["session_id"]] = loaded
        result["provider"] = str(session.get_providers()[0])
        result["inputs"] = [_value_info(v) for v in session.get_inputs()]
        result["outputs"] = [_value_info(v) for v in session.get_outputs()]
        return result

    def op_run(self, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            loaded = self.sessions.get(message["session_id"])
        if loaded is None:
            raise HostError("session_not_found", "no such session in the runtime worker")
        if loaded.crash_on_run:
            import ctypes

            ctypes.string_at(0)  # a real segmentation fault, in this very thread
        outputs = execute.run(
            self.ort,
            loaded.session,
            message["feeds"],
            message.get("fetches"),
            raw_outputs=loaded.raw_outputs,
            max_output_bytes=int(message["max_output_bytes"]),
        )
        return {"outputs": outputs}

    def op_derive(self, message: dict[str, Any]) -> dict[str, Any]:
        """Write a form of the model into ``out`` and measure it against the source
        (representations/convert.py); the host decides whether it is kept."""
        from webmodels.representations import convert
        from webmodels.representations.recipes import Recipe
        from webmodels.runtime.segment_link import assemble

        ref = message["model"]
        data = (  # a source kept as segments comes as its parts (form_segments.py)
            assemble(ref["parts"], int(ref["size"]), str(ref["sha256"]))
            if "parts" in ref
            else model_files.read_verified(ref)
        )
        check_model(model_files.parse(data), limits=ModelLimits(**message["limits"]))
        recipe = Recipe(**message["recipe"])
        return convert.derive_files(self.ort, data, recipe, Path(message["out"]))

    def op_link(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored model's graph rewritten to load from segment files (segment_link)."""
        from webmodels.runtime import segment_link

        return segment_link.write_linked(message)

    def op_release(self, message: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"released": self.sessions.pop(message["session_id"], None) is not None}

    # -- building sessions ----------------------------------------------------------------

    def _from_cache(self, message: dict[str, Any], limits: ModelLimits) -> tuple[Any, bool]:
        cached = message["cached"]
        in_parts = "graph_parts" in cached  # kept as segments (compiled_relink.py)
        graph = (
            compiled_relink.load_graph(cached)
            if in_parts
            else model_files.read_verified(cached["graph"])
        )
        weights = cached.get("weights")
        # A compiled graph of a manifest's model reads its unchanged tensors from the
        # manifest's own files (runtime/shared_weights.py), the rest from its weights.
        files: dict[str, Any] = dict(message.get("files") or {})
        files.pop(WEIGHTS_NAME, None)  # a model file of that name is never shared
        if weights:
            files[WEIGHTS_NAME] = weights
        model = model_files.parse(graph)
        if in_parts:
            parts = cached.get("weights_parts") or []
            files.update(compiled_relink.relink(model, WEIGHTS_NAME, parts))
            graph = model.SerializeToString()
        manifest = {name: int(ref["size"]) for name, ref in files.items()}
        check_model(model, limits=limits, external_files=manifest, derived=True)
        if files and model_files.inline_nested(
            model, {name: Path(ref["path"]) for name, ref in files.items()}
        ):
            graph = model.SerializeToString()
        options = self._options(message, level="disabled")
        with model_files.private_folder(message["work_dir"]) as folder:
            if files:
                model_files.link_files(files, folder)
                # ORT resolves the graph's (checked) locations against this folder, which
                # holds nothing but the host's weights file and the manifest's files.
                options.add_session_config_entry(
                    "session.model_external_initializers_file_folder_path", str(folder)
                )
            return self._session(graph, options, message), _crash_hook(model)

    def _from_model(
        self, message: dict[str, Any], limits: ModelLimits
    ) -> tuple[Any, dict[str, Any] | None, bool]:
        data = model_files.read_verified(message["model"])
        model_dir = message.get("model_dir")
        files: dict[str, Any] = message.get("files") or {}  # a manifest's external data
        model = model_files.parse(data)
        check_model(
            model,
            limits=limits,
            external_files={name: int(ref["size"]) for name, ref in files.items()},
            model_dir=Path(model_dir) if model_dir else None,
        )
        hook = _crash_hook(model)
        places = shared_weights.external_places(model) if files else {}
        if files and model_files.inline_nested(
            model, {name: Path(ref["path"]) for name, ref in files.items()}
        ):
            data = model.SerializeToString()
        del model  # the parsed copy; ORT parses the bytes itself
        level = message["level"]
        options = self._options(message, level=level)
        save_to = message.get("save_to")
        tensorrt = message["provider"] == "TensorrtExecutionProvider"
        if save_to and level != "disabled":
            target = str(Path(save_to) / GRAPH_NAME)
            if tensorrt:  # an EPContext graph with the engine embedded
                options.add_session_config_entry("ep.context_enable", "1")
                options.add_session_config_entry("ep.context_file_path", target)
                options.add_session_config_entry("ep.context_embed_mode", "1")
            else:
                options.optimized_model_filepath = target
                options.add_session_config_entry(
                    "session.optimized_model_external_initializers_file_name", WEIGHTS_NAME
                )
                options.add_session_config_entry(
                    "session.optimized_model_external_initializers_min_size_in_bytes",
                    str(MIN_EXTERNAL_BYTES),
                )
        session = self._session_with_files(data, options, message, files)
        if not save_to or not (Path(save_to) / GRAPH_NAME).is_file():
            return session, None, hook
        weights = (Path(save_to) / WEIGHTS_NAME).is_file()
        if weights and places and not tensorrt:
            # Only files named by their SHA-256: a pack file has none, and a place in
            # it may hold other bytes later (a segment quarantined out of it).
            weights = shared_weights.share_source_weights(
                Path(save_to) / GRAPH_NAME,
                WEIGHTS_NAME,
                places,
                {name: Path(ref["path"]) for name, ref in files.items() if ref.get("sha256")},
            )
        saved = {"graph": GRAPH_NAME, "weights": WEIGHTS_NAME if weights else None}
        return session, saved, hook

    def _from_ort_form(self, message: dict[str, Any]) -> Any:
        """A session of a form in ONNX Runtime's format, which the host made itself
        from an ONNX source it checked (representations/convert.py): loaded as that
        format only, so ONNX bytes sent this way fail instead of skipping the checks."""
        data = model_files.read_verified(message["model"])
        options = self._options(message, level=message["level"])
        options.add_session_config_entry("session.load_model_format", "ORT")
        return self._session(data, options, message)

    def _session_with_files(
        self, data: bytes, options: Any, message: dict[str, Any], files: dict[str, Any]
    ) -> Any:
        """A session whose graph reads its external data from a private folder holding
        links to the manifest's files under their locations, and nothing else."""
        if not files:
            return self._session(data, options, message)
        with model_files.private_folder(message["work_dir"]) as folder:
            model_files.link_files(files, folder)
            options.add_session_config_entry(
                "session.model_external_initializers_file_folder_path", str(folder)
            )
            return self._session(data, options, message)

    def _options(self, message: dict[str, Any], *, level: str) -> Any:
        ort = self.ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
        return options

    def _session(self, data: bytes, options: Any, message: dict[str, Any]) -> Any:
        provider = message["provider"]
        provider_options: Mapping[str, str] = message.get("provider_options") or {}
        providers: list[Any] = [(provider, dict(provider_options))]
        if provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")  # nodes the device cannot take
        try:
            return self.ort.InferenceSession(data, sess_options=options, providers=providers)
        except Exception as exc:
            raise self._ort_error(exc, creating=True) from exc

    def _ort_error(self, exc: Exception, *, creating: bool) -> HostError:
        text = str(exc)
        if any(marker in text for marker in _ALLOC_FAILURE):
            return self._memory_error()
        code = "model_invalid" if creating else "inference_failed"
        return HostError(code, f"ONNX Runtime: {_short(text)}")

    def _memory_error(self) -> HostError:
        limit = f"{self.memory_limit >> 20} MiB" if self.memory_limit else "its memory"
        return HostError(
            "too_large",
            f"the model needs more memory than the runtime worker's limit ({limit}); "
            "use smaller inputs or raise sessions.worker_memory_bytes",
            memory=True,
            limit=self.memory_limit,
        )


def _crash_hook(model: Any) -> bool:
    props = model.metadata_props
    return any(p.key == "webmodels.test" and p.value == "crash-on-run" for p in props)


def _value_info(arg: Any) -> dict[str, Any]:
    from webmodels.runtime.tensors import BY_ORT_TYPE

    element = BY_ORT_TYPE.get(arg.type)
    shape = arg.shape if isinstance(arg.shape, list) else None
    dims = None if shape is None else [d if isinstance(d, int | str) else None for d in shape]
    return {"name": arg.name, "type": element.name if element else arg.type, "dims": dims}


def _has_raw_outputs(session: Any) -> bool:
    return any(o.type == "tensor(bfloat16)" for o in session.get_outputs())


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 400 else line[:397] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webmodels.runtime.worker")
    parser.add_argument("--memory-limit", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--background", action="store_true", help="lowest CPU and I/O priority")
    args = parser.parse_args(argv)
    limit_memory(args.memory_limit)
    if args.background:  # before ONNX Runtime starts its threads: they inherit it
        from webmodels.runtime.priority import lower_own_priority

        lower_own_priority()
    die_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="worker: %(message)s")
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    return Worker(ort, out, memory_limit=args.memory_limit or None).serve(sys.stdin.buffer)


if __name__ == "__main__":
    raise SystemExit(main())
