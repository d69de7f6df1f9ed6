"""One fuzz target under atheris: ``python -m stress_lib.fuzz_main TARGET [libFuzzer
flags] [corpus]``. The host's modules are imported under atheris' instrumentation so
libFuzzer sees which branches of them each input reached."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["webmodels"]):
    from stress_lib.fuzz_targets import TARGETS

    if sys.argv[1:2] == ["methods"]:  # a whole host: imported only for this target
        from stress_lib.fuzz_methods import methods

        TARGETS = {**TARGETS, "methods": methods}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
