"""Real servers for end-to-end tests: the app in its own process, TLS, Chromium."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import trustme

from tests.conftest import SECRET, UNLIMITED
from tests.servers import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the tests look at redirects themselves


def fetch(
    url: str, context: ssl.SSLContext | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - loopback
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]  # a file, not a pipe: a full pipe would block a chatty server

    def printed(self) -> str:
        """Everything the server has printed so far, while it runs."""
        # pread: seeking would move the offset the server writes at, which it shares.
        return os.pread(self.output.fileno(), 1 << 24, 0).decode(errors="replace")

    def stop(self) -> str:
        """Stop the server and return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.seek(0)
        return self.output.read().decode(errors="replace")


@contextmanager
def run_server(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    base: str,
    context: ssl.SSLContext | None = None,
) -> Iterator[Server]:
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the server below
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=output,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads started yet
    )
    server = Server(base, process, output)
    deadline = time.monotonic() + 30
    while True:
        try:
            if fetch(base + "/healthz", context)[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the server did not start:\n" + server.stop())
        time.sleep(0.1)
    try:
        yield server
    finally:
        server.stop()
        output.close()


@dataclass
class TLS:
    ca_file: Path
    cert_file: Path
    key_file: Path
    context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    """A throw-away CA and a certificate for localhost, trusted by the client only."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(cert_file), append=True)
    context = ssl.create_default_context(cafile=str(ca_file))
    return TLS(ca_file, cert_file, key_file, context)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        raise AssertionError(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium package when it "
            "runs as root; otherwise run `apt-get install chromium`"
        )
    return CHROMIUM


@contextmanager
def serve_production(workers: int, **env: str) -> Iterator[Server]:
    """``python -m app serve`` on a free port, production, with ``env`` over the defaults."""
    port = free_port()
    settings = {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "RATELIMIT_DEFAULT": UNLIMITED,  # tests about something else; limits have their own
        **env,
        "PORT": str(port),
    }
    with run_server(
        ["-m", "app", "serve", "--workers", str(workers)],
        settings,
        base=f"http://127.0.0.1:{port}",
    ) as server:
        yield server
