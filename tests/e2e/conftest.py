"""Browser tests: Debian's Chromium driven by Playwright, both installed here when missing.

Chromium comes from apt (``apt-get install chromium``; no browser download by Playwright): the
session installs it when ``/usr/bin/chromium`` is absent and it runs as root or with password-less
sudo, and installs the ``playwright`` package when it is not importable. Where neither is
possible the browser tests are skipped, saying what to install.

Screenshots go to ``$MMRAG_TEST_ARTIFACTS`` (default ``tests/artifacts/``, git-ignored).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("MMRAG_CHROMIUM", "/usr/bin/chromium"))
#: Headless Chromium on a machine with no display, GPU or network access to Google services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _privilege_prefix() -> list[str] | None:
    """``[]`` as root, ``["sudo", "-n"]`` with password-less sudo, else ``None``."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return []
    if shutil.which("sudo") and _run(["sudo", "-n", "true"], 30).returncode == 0:
        return ["sudo", "-n"]
    return None


def _install_chromium() -> str | None:
    """Install Debian's chromium with apt; returns why it could not, or None."""
    prefix = _privilege_prefix()
    if prefix is None or not shutil.which("apt-get"):
        return "needs root or password-less sudo and apt-get"
    env = ["env", "DEBIAN_FRONTEND=noninteractive"]
    update = _run([*prefix, *env, "apt-get", "update", "-qq"], 600)
    install = _run([*prefix, *env, "apt-get", "install", "-y", "-qq", "chromium"], 1200)
    if install.returncode != 0:
        return f"apt-get install chromium failed: {(install.stderr or update.stderr)[-500:]}"
    return None


def _install_playwright() -> str | None:
    """Install the playwright package into this interpreter; returns why not, or None."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    attempts = [[sys.executable, "-m", "pip", "install", "--quiet", "playwright>=1.45"]]
    if Path(uv).is_file():
        attempts.append([uv, "pip", "install", "--python", sys.executable, "playwright>=1.45"])
    errors = []
    for command in attempts:
        result = _run(command, 900)
        if result.returncode == 0:
            importlib.invalidate_caches()
            return None
        errors.append(result.stderr.strip()[-300:])
    return "; ".join(errors) or "no installer available"


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, installed with apt if it is missing (or the test is skipped)."""
    if not CHROMIUM.exists():
        why = _install_chromium()
        if why is not None or not CHROMIUM.exists():
            pytest.skip(
                f"{CHROMIUM} is missing and could not be installed ({why}); run "
                "`apt-get install chromium` (Debian) or set MMRAG_CHROMIUM"
            )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    """A headless Chromium browser driven by Playwright (the package installed if missing).

    Module-scoped: Playwright's sync API keeps an asyncio loop running in this thread while it
    is open, which would break every later test that starts an event loop (``asyncio.run``).
    """
    if importlib.util.find_spec("playwright") is None:
        why = _install_playwright()
        if why is not None:
            pytest.skip(
                f"playwright is not installed and could not be ({why}); pip install 'mmrag[dev]'"
            )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots are saved: ``$MMRAG_TEST_ARTIFACTS`` or ``tests/artifacts/``."""
    default = Path(__file__).resolve().parents[1] / "artifacts"
    path = Path(os.environ.get("MMRAG_TEST_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    """A TCP port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: Any, *, timeout: float = 120.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port} within {timeout} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(60)
