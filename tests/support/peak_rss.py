"""Run the `webmodels` CLI so that it reports its own peak memory: `python -c
CLI_WITH_PEAK ARGS…` runs `webmodels ARGS…`, then prints its ``VmHWM:`` line (Linux) on
stderr — a forked child's rusage would count the parent's pages from before the exec."""

CLI_WITH_PEAK = """
import runpy, sys
sys.argv = ["webmodels", *sys.argv[1:]]
try:
    runpy.run_module("webmodels", run_name="__main__")
finally:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(line.strip(), file=sys.stderr)
"""
