"""Running `python -m tools.loadtest` from the tests, only ever against loopback."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from urllib.parse import urlsplit

from tests.support.servers import REPO_ROOT


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_loadtest(url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The command as a user runs it; the suite never loads anything but this machine."""
    assert is_loopback(url), f"the test suite only loads loopback services, not {url}"
    return subprocess.run(
        [sys.executable, "-m", "tools.loadtest", url, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
