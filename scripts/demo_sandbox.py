"""The demo's sandbox: a throw-away store, Chromium profile and HOME, so that nothing is
read from or written to the user's real ones; and the CLI run inside it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def profile(self) -> Path:
        return self.root / "chromium-profile"

    @property
    def config_home(self) -> Path:
        return self.root / "xdg-config"

    def env(self) -> dict[str, str]:
        """For `webmodels` and for Chromium (whose native hosts inherit it): nothing
        is read from or written to the user's real home, config or logs."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
        env.pop("CHROME_CONFIG_HOME", None)
        return {
            **env,
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.config_home),
            "WEBMODELS_CONFIG": str(self.root / "config.toml"),
            "WEBMODELS_LOG_DIR": str(self.root / "logs"),
        }

    def create(self) -> None:
        for path in (self.root / "home", self.config_home, self.root / "logs"):
            path.mkdir(parents=True, exist_ok=True)
        (self.root / "config.toml").write_text("system_preinstalled = false\n")

    def webmodels(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "webmodels", "--store", str(self.store), *args]
        return subprocess.run(
            command, env=self.env(), capture_output=True, text=True, timeout=120, check=True
        )

    def host_log_tail(self, lines: int = 15) -> list[str]:
        path = self.root / "logs" / "host.log"
        return path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else []
