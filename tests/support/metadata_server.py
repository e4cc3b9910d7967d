"""A fake Google metadata server on loopback, speaking the part of the protocol google-auth uses.

    with FakeMetadataServer(email="frontend-sa@p.iam.gserviceaccount.com") as metadata:
        env = {**os.environ, **metadata.env}   # GCE_METADATA_HOST and GCE_METADATA_IP
        ...
        metadata.identity_requests   # the audience of each ID token handed out

Like the real one it answers only requests that carry `Metadata-Flavor:
Google`, and says `Metadata-Flavor: Google` in every answer (google-auth's
ping checks it). The identity endpoint returns a JWT-shaped token (header,
claims, signature) whose `exp` is now + the next of `lifetimes` (the last one
repeats): google-auth reads the expiry from it, unverified, as it does on
Cloud Run.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

IDENTITY = "/computeMetadata/v1/instance/service-accounts/default/identity"
EMAIL = "/computeMetadata/v1/instance/service-accounts/default/email"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    header = {"alg": "RS256", "kid": "fake-key", "typ": "JWT"}
    signature = _b64(b"not a real signature")
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class FakeMetadataServer:
    def __init__(self, email: str = "frontend@student-project.iam.gserviceaccount.com",
                 lifetimes: tuple[float, ...] = (3600.0,)) -> None:  # fmt: skip
        self.email = email
        self.lifetimes = list(lifetimes)
        self.requests: list[tuple[str, str | None]] = []  # (path, Metadata-Flavor sent)
        self.identity_requests: list[str] = []  # audience of each token handed out
        self.tokens: list[str] = []
        self._issued = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def env(self) -> dict[str, str]:
        """What points google-auth here: the name for data, the IP for its ping."""
        return {"GCE_METADATA_HOST": self.address, "GCE_METADATA_IP": self.address}

    def __enter__(self) -> FakeMetadataServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _token(self, audience: str) -> str:
        with self._lock:
            lifetime = self.lifetimes[min(self._issued, len(self.lifetimes) - 1)]
            self._issued += 1
            now = int(time.time())
            token = make_jwt(
                {
                    "aud": audience,
                    "azp": "112233445566778899000",
                    "email": self.email,
                    "email_verified": True,
                    "exp": now + int(lifetime),
                    "iat": now,
                    "iss": "https://accounts.google.com",
                    "sub": "112233445566778899000",
                    "n": self._issued,  # tells one token from the next
                }
            )
            self.identity_requests.append(audience)
            self.tokens.append(token)
            return token

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                flavor = self.headers.get("Metadata-Flavor")
                fake.requests.append((parts.path, flavor))
                if flavor != "Google":
                    return self._send(403, "Missing Metadata-Flavor:Google header.")
                if parts.path in ("", "/"):
                    return self._send(200, "computeMetadata/\n")
                if parts.path == IDENTITY:
                    audience = parse_qs(parts.query).get("audience", [""])[0]
                    if not audience:
                        return self._send(400, "non-empty audience parameter required")
                    return self._send(200, fake._token(audience))
                if parts.path == EMAIL:
                    return self._send(200, fake.email)
                if parts.path == ACCOUNT:  # google-auth asks ?recursive=true for the account
                    info = {"aliases": ["default"], "email": fake.email, "scopes": [SCOPE]}
                    return self._send(200, json.dumps(info), "application/json")
                return self._send(404, "Not Found")

            def _send(self, status: int, text: str, kind: str = "application/text") -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
