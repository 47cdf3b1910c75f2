"""A self-signed certificate for 127.0.0.1, for the tests' TLS mail servers (a private CA's
stand-in: no public CA signed it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) in ``directory``, made by openssl, valid for a day."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test's certificate"
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
