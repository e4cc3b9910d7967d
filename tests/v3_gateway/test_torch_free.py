"""The gateway never loads torch: its image has none, and a proxy should start in a blink."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import REPO_ROOT

PROGRAM = """
import sys
from v3_gateway.app import create_app
app = create_app()
assert app.url_map is not None
heavy = ("torch", "torchvision", "PIL", "numpy", "classifier")  # its image has none of them
heavy = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("loaded:", ",".join(heavy) or "none")
"""


def test_gateway_app_imports_no_torch(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO_ROOT),
            "MODEL_SERVICES": "efficientnet_lite0=http://127.0.0.1:9,resnet18=http://127.0.0.1:9",
            "SESSION_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded: none" in result.stdout, result.stdout
