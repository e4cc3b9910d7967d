"""webservice/ never loads torch: the gateway's image carries it, and no torch at all."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import REPO_ROOT

PROGRAM = """
import importlib, pkgutil, sys
import webservice
names = [f"webservice.{m.name}" for m in pkgutil.iter_modules(webservice.__path__)]
for name in names:
    importlib.import_module(name)
heavy = ("torch", "torchvision", "PIL", "numpy", "classifier")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("modules:", ",".join(names))
print("loaded:", ",".join(loaded) or "none")
"""


def test_every_webservice_module_imports_without_torch_or_classifier():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "webservice.model_choice" in result.stdout  # the modules were really imported
    assert "webservice.server" in result.stdout
    assert "loaded: none" in result.stdout, result.stdout
