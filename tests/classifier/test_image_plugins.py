"""Decoding needs no import at request time: the first user is served as fast as the next."""

import base64
import json
import subprocess
import sys
from pathlib import Path

from tests.support.images import encode, sample_photo

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: which modules one test imported must not hide another's.
DECODE_EACH = """
import base64, json, sys
import classifier.images as images
blobs = json.load(sys.stdin)
before = set(sys.modules)
for blob in blobs.values():
    images.decode_image(base64.b64decode(blob))
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_decoding_every_allowed_format_imports_no_pillow_plugin():
    from classifier.images import ALLOWED_FORMATS

    photo = sample_photo("cat").resize((64, 48))
    blobs = {
        fmt: base64.b64encode(encode(photo.convert("P") if fmt == "GIF" else photo, fmt)).decode()
        for fmt in ALLOWED_FORMATS
    }
    result = subprocess.run(
        [sys.executable, "-c", DECODE_EACH],
        input=json.dumps(blobs),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    imported = json.loads(result.stdout)
    assert not [name for name in imported if name.startswith("PIL")], imported
