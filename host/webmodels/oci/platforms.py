"""Platforms of OCI image index entries (pure): this machine's, and which entry fits it.

An index entry may carry ``platform: {os, architecture, variant}`` (the OCI image spec;
``docker buildx`` writes it for every image). This machine's platform comes from
``sys.platform`` and ``platform.machine()`` mapped to the Go names the spec uses
(``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``/``v8``, ``armv7l`` → ``arm``/``v7``…),
as containerd and Docker map them. An entry fits when its os and architecture are
this machine's and its variant, if it names one, is too (``arm64`` without a variant
means ``v8``).
"""

from __future__ import annotations

import platform as host_platform
import sys
from dataclasses import dataclass
from typing import Any

ARCHITECTURES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "i386": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "loongarch64": ("loong64", None),
    "mips64": ("mips64", None),
}
SYSTEMS = {"linux": "linux", "darwin": "darwin", "win32": "windows", "cygwin": "windows"}
DEFAULT_VARIANTS = {"arm64": "v8"}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def this_machine(machine: str | None = None, system: str | None = None) -> Platform:
    """This machine's platform in OCI terms (the arguments: for tests)."""
    machine = (host_platform.machine() if machine is None else machine).lower()
    system = sys.platform if system is None else system
    architecture, variant = ARCHITECTURES.get(machine, (machine, None))
    os_name = SYSTEMS.get(system, "freebsd" if system.startswith("freebsd") else system)
    return Platform(os_name, architecture, variant)


def entry_platform(entry: dict[str, Any]) -> Platform | None:
    """An index entry's platform, or None where it names none."""
    raw = entry.get("platform")
    if not isinstance(raw, dict):
        return None
    os_name, architecture = raw.get("os"), raw.get("architecture")
    if not isinstance(os_name, str) or not isinstance(architecture, str):
        return None
    variant = raw.get("variant")
    return Platform(os_name, architecture, variant if isinstance(variant, str) else None)


def fits(entry: Platform, here: Platform) -> bool:
    if (entry.os, entry.architecture) != (here.os, here.architecture):
        return False
    wanted = entry.variant or DEFAULT_VARIANTS.get(entry.architecture)
    return wanted is None or wanted == (here.variant or DEFAULT_VARIANTS.get(here.architecture))
