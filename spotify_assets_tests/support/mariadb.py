"""A real MariaDB (or MySQL) server for the tests: started once per test session on 127.0.0.1,
in a temporary directory, with a free port, and stopped by its PID.

`SPOTIFY_ASSETS_TEST_MYSQL_URL` (a SQLAlchemy URL such as
`mysql+pymysql://root:secret@127.0.0.1:3306/`) points the tests at an existing server
instead; its user needs to create and drop databases. Without either, the tests that need a
server fail (they do not skip), saying how to get one: `.ci/run` installs Debian's
`mariadb-server` with apt-get where it can.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

URL_VARIABLE = "SPOTIFY_ASSETS_TEST_MYSQL_URL"
SEARCH_PATH = ("/usr/sbin", "/usr/libexec", "/usr/local/sbin", "/usr/local/mysql/bin")
HOW_TO_GET_ONE = (
    "no MariaDB/MySQL server for the MySQL warehouse tests: install one (Debian/Ubuntu: "
    "`apt-get install -y mariadb-server`, which `.ci/run` does where it may) so that `mariadbd` "
    f"is found, or set {URL_VARIABLE}=mysql+pymysql://USER:PASSWORD@HOST:PORT/ to use an "
    "existing server (its user must be able to create databases)"
)
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MySQLServer:
    url: str  # SQLAlchemy URL of the server (no database), as its administrator
    ca: str | None = None  # the CA bundle that verifies its TLS certificate (a started server's)

    def new_database(self, prefix: str = "t") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SEARCH_PATH))
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    import pymysql

    from spotify_assets.lib.warehouse.mysql import connect_pymysql

    try:
        connect_pymysql(url, connect_timeout=2).close()
    except pymysql.err.MySQLError:
        return False
    return True


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files): what an RDS
    instance and its CA bundle are to a client."""
    from datetime import datetime, timedelta, timezone
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.now(timezone.utc)

    def build(subject: str, key, issuer: str, issuer_key, ca: bool):  # type: ignore[no-untyped-def]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = build("spotify-assets test CA", ca_key, "spotify-assets test CA", ca_key, True)
    server_cert = build("127.0.0.1", server_key, "spotify-assets test CA", ca_key, False)
    files = {"ca": directory / "ca.pem", "cert": directory / "server-cert.pem", "key": directory / "server-key.pem"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    return files


# For the tests only: no fsync at each commit and no doublewrite (a crash of the test server
# loses nothing anyone needs), tables in the system tablespace (CREATE/DROP DATABASE without
# files). Transactions, rollback and isolation are InnoDB's as ever.
TEST_SPEED = ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--innodb-file-per-table=0", "--sync-frm=0"]


def start_server(directory: Path, *, durable: bool = False) -> tuple[subprocess.Popen, str]:
    """Initialise a data directory under `directory` and start `mariadbd` on it (root without
    a password, on 127.0.0.1 and a free port, TLS with `directory/ca.pem`'s certificate;
    `durable`: InnoDB's default flushing, else TEST_SPEED); returns the process and the URL."""
    server = _find("mariadbd", "mysqld")
    install = _find("mariadb-install-db", "mysql_install_db")
    if server is None or install is None:
        pytest.fail(HOW_TO_GET_ONE, pytrace=False)
    data, log = directory / "data", directory / "server.log"
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *as_root],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"{install} failed ({done.returncode}): {done.stderr[-2000:]}", pytrace=False)
    port = _free_port()
    tls = make_certificates(directory)
    process = subprocess.Popen(
        [server, "--no-defaults", f"--datadir={data}", f"--socket={directory / 'mysqld.sock'}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--pid-file={directory / 'mysqld.pid'}",
         f"--log-error={log}", "--skip-log-bin", "--innodb-buffer-pool-size=128M", "--local-infile=1",
         "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
         f"--ssl-ca={tls['ca']}", f"--ssl-cert={tls['cert']}", f"--ssl-key={tls['key']}",
         *([] if durable else TEST_SPEED), *as_root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"mysql+pymysql://root@127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"{server} did not start on 127.0.0.1:{port}: {text}", pytrace=False)
        time.sleep(0.2)
    return process, url


def stop(process: subprocess.Popen) -> None:
    """Stop the server by its PID: SIGTERM (a clean InnoDB shutdown), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def mysql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLServer]:
    """The server of SPOTIFY_ASSETS_TEST_MYSQL_URL, or one started for the session."""
    given = os.environ.get(URL_VARIABLE)
    if given:
        if not _ready(given):
            pytest.fail(f"{URL_VARIABLE} is set, but no MySQL server answers at that URL", pytrace=False)
        yield MySQLServer(given)
        return
    directory = tmp_path_factory.mktemp("mariadb")
    process, url = start_server(directory)
    try:
        yield MySQLServer(url, str(directory / "ca.pem"))
    finally:
        stop(process)
