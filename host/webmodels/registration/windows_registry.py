"""The Windows registry behind the `Registry` protocol (imported only on Windows).

Chromium-family browsers and Firefox find a per-user native host through the
default value of ``HKCU\\Software\\<vendor>\\NativeMessagingHosts\\<name>``,
which is the manifest's path.
"""

from __future__ import annotations

import sys

# mypy checks the rest of this module only for --platform win32.
assert sys.platform == "win32"

import winreg  # noqa: E402 - after the platform assert, on purpose

_ROOT = winreg.HKEY_CURRENT_USER


class WindowsRegistry:
    def get_default(self, key: str) -> str | None:
        try:
            with winreg.OpenKey(_ROOT, key) as handle:
                value, _kind = winreg.QueryValueEx(handle, "")
        except FileNotFoundError:
            return None
        return value if isinstance(value, str) else None

    def set_default(self, key: str, value: str) -> tuple[str, ...]:
        created = tuple(k for k in _prefixes(key) if not self._exists(k))
        with winreg.CreateKeyEx(_ROOT, key, 0, winreg.KEY_WRITE) as handle:
            winreg.SetValueEx(handle, "", 0, winreg.REG_SZ, value)
        return created

    def delete_key(self, key: str) -> bool:
        try:
            winreg.DeleteKey(_ROOT, key)
        except FileNotFoundError:
            return False
        return True

    def delete_key_if_empty(self, key: str) -> bool:
        try:
            with winreg.OpenKey(_ROOT, key) as handle:
                subkeys, values, _modified = winreg.QueryInfoKey(handle)
        except FileNotFoundError:
            return False
        return subkeys == 0 and values == 0 and self.delete_key(key)

    @staticmethod
    def _exists(key: str) -> bool:
        try:
            with winreg.OpenKey(_ROOT, key):
                return True
        except FileNotFoundError:
            return False


def _prefixes(key: str) -> tuple[str, ...]:
    parts = key.split("\\")
    return tuple("\\".join(parts[: i + 1]) for i in range(len(parts)))
