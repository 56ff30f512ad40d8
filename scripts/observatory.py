"""Grade the production app with the MDN HTTP Observatory, as a live site is graded.

Starts the app in production mode on port 443 (TLS from a throw-away CA) and on
port 80 (plain HTTP, which must redirect), installs the scanner
(npm ``@mdn/mdn-http-observatory``) into ``.cache/observatory``, scans
``localhost`` and prints the grade, the score and every test that lost points.
Ports 80 and 443 need root. Run it with ``make observatory``.

The scanner downloads the HSTS preload list and a TLD list after install; we
install with ``--ignore-scripts`` and give it an empty preload list, since no
test host is preloaded (so 140 is the most it can award).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCANNER = ROOT / ".cache" / "observatory"
PACKAGE = SCANNER / "node_modules" / "@mdn" / "mdn-http-observatory"
SECRET = "observatory-scan-only-" + "0" * 32


def app_factory() -> Any:
    """The example app, with the loopback redirect exemption off so :80 redirects."""
    from app import create_app

    return create_app({"SHIPSHAPE_HTTPS_EXEMPT_HOSTS": ()})


def install_scanner() -> None:
    if not PACKAGE.exists():
        SCANNER.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix",
             str(SCANNER), "@mdn/mdn-http-observatory"],
            check=True,
        )  # fmt: skip
    (PACKAGE / "conf" / "hsts-preload.json").write_text("{}")


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.cert_chain_pems[0].write_to_path(str(paths[1]))
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


def serve(port: int, tls: tuple[Path, Path] | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "localhost",
        "PYTHONPATH": str(ROOT / "scripts"),
    }
    command = [sys.executable, "-m", "uvicorn", "observatory:app_factory", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--no-server-header",
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    if tls:
        command += ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def main() -> int:
    install_scanner()
    with tempfile.TemporaryDirectory() as folder:
        ca, cert, key = make_certificates(Path(folder))
        servers = [serve(443, (cert, key)), serve(80, None)]
        try:
            time.sleep(3)
            result = subprocess.run(
                ["node", str(PACKAGE / "src" / "scan.js"), "localhost"],
                env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca)},
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)
    report = json.loads(result.stdout)
    if "error" in report:
        print("scan failed:", report["error"], file=sys.stderr)
        return 1
    scan = report["scan"]
    print(f"grade {scan['grade']}  score {scan['score']}  ({scan['testsPassed']} of "
          f"{scan['testsQuantity']} tests passed)")  # fmt: skip
    for name, test in sorted(report["tests"].items()):
        modifier = test.get("scoreModifier", 0)
        mark = "+" if modifier > 0 else ("-" if modifier < 0 else " ")
        print(f"  {mark}{abs(modifier):>3}  {name:<32} {test.get('result')}")
    return 0 if scan["grade"] == "A+" else 1


if __name__ == "__main__":
    sys.exit(main())
