"""stoppable.http's TLS settings follow urllib3's rules and are never weaker.

Two CAs (trustme): the client trusts ``trusted`` only. ``good`` serves a certificate
from ``trusted``; ``evil`` serves one from ``untrusted`` for the same names. Each way
of configuring verification must reject ``evil`` (and accept ``good``: the twin that
shows the rejection is the check, not a broken set-up).
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
import urllib3

from stoppable import http

from .http_servers import HTTPServer
from .support import LONG


@dataclass
class Side:
    """One CA, its server, the server certificate's SHA-256 fingerprint."""

    ca: trustme.CA
    server: HTTPServer
    fingerprint: str


@dataclass
class World:
    good: Side
    evil: Side
    old: HTTPServer  # trusted certificate, TLS 1.2 at most
    ca_file: str  # the trusted CA, PEM
    ca_dir: str  # the trusted CA, hashed directory (c_rehash)


def _side(ca: trustme.CA, **server: Any) -> tuple[ssl.SSLContext, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for key, value in server.items():
        setattr(context, key, value)
    cert.configure_cert(context)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    return context, hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    trusted, untrusted = trustme.CA(), trustme.CA()
    good_context, good_print = _side(trusted)
    evil_context, evil_print = _side(untrusted)
    old_context, _ = _side(trusted, maximum_version=ssl.TLSVersion.TLSv1_2)
    directory = tmp_path_factory.mktemp("tls")
    ca_file = directory / "trusted.pem"
    trusted.cert_pem.write_to_path(str(ca_file))
    ca_dir = directory / "hashed"
    ca_dir.mkdir()
    shutil.copy(ca_file, ca_dir / "trusted.pem")
    # OpenSSL looks CAs up in a directory by subject hash: name the file so.
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=LONG,
    ).stdout.strip()
    (ca_dir / f"{subject_hash}.0").symlink_to(ca_dir / "trusted.pem")
    with (
        HTTPServer(server_context=good_context) as good,
        HTTPServer(server_context=evil_context) as evil,
        HTTPServer(server_context=old_context) as old,
    ):
        yield World(
            Side(trusted, good, good_print),
            Side(untrusted, evil, evil_print),
            old,
            str(ca_file),
            str(ca_dir),
        )


def unverifying() -> ssl.SSLContext:
    """A given context that checks nothing by itself (what the settings must fix)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def trusting(world: World) -> ssl.SSLContext:
    """A given context that trusts the good CA and checks host names."""
    context = ssl.create_default_context(cafile=world.ca_file)
    return context


def fetch(server: HTTPServer, host: str = "127.0.0.1", **settings: Any) -> bytes:
    pool = http.HTTPSConnectionPool(host, server.port, timeout=LONG, retries=False, **settings)
    with pool:
        return pool.request("GET", "/ok").data


# Each: a name, and the pool settings made from the world (a fresh given context each).
Settings = Callable[[World], dict[str, Any]]
VERIFYING: list[tuple[str, Settings]] = [
    (
        "context+cert_reqs+ca_certs",
        lambda w: {
            "ssl_context": unverifying(),
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": w.ca_file,
        },
    ),
    (
        "context+cert_reqs+ca_cert_dir",
        lambda w: {
            "ssl_context": unverifying(),
            "cert_reqs": "CERT_REQUIRED",
            "ca_cert_dir": w.ca_dir,
        },
    ),
    (
        "context+cert_reqs+ca_cert_data",
        lambda w: {
            "ssl_context": unverifying(),
            "cert_reqs": ssl.CERT_REQUIRED,
            "ca_cert_data": w.good.ca.cert_pem.bytes().decode(),
        },
    ),
    (
        "context+assert_hostname",
        lambda w: {
            "ssl_context": unverifying(),
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": w.ca_file,
            "assert_hostname": "localhost",
        },
    ),
    (
        "context+assert_fingerprint",
        lambda w: {"ssl_context": unverifying(), "assert_fingerprint": w.good.fingerprint},
    ),
    (
        "trusting context+assert_fingerprint",
        lambda w: {"ssl_context": trusting(w), "assert_fingerprint": w.good.fingerprint},
    ),
    ("trusting context", lambda w: {"ssl_context": trusting(w)}),
    ("ca_certs", lambda w: {"ca_certs": w.ca_file}),
    ("ca_cert_dir", lambda w: {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": w.ca_dir}),
    ("ca_certs+assert_hostname", lambda w: {"ca_certs": w.ca_file, "assert_hostname": "localhost"}),
    (
        "assert_fingerprint",
        lambda w: {"cert_reqs": "CERT_NONE", "assert_fingerprint": w.good.fingerprint},
    ),
    (
        "context+ssl_minimum_version",
        lambda w: {"ssl_context": trusting(w), "ssl_minimum_version": ssl.TLSVersion.TLSv1_3},
    ),
    (
        "ssl_minimum_version",
        lambda w: {"ca_certs": w.ca_file, "ssl_minimum_version": ssl.TLSVersion.TLSv1_3},
    ),
]


@pytest.mark.parametrize(("name", "settings"), VERIFYING, ids=[name for name, _ in VERIFYING])
def test_every_setting_rejects_an_untrusted_server_and_accepts_the_trusted_one(
    world: World, name: str, settings: Settings
) -> None:
    assert fetch(world.good.server, **settings(world)) == b"ok"
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.evil.server, **settings(world))


def test_an_asserted_host_name_must_match(world: World) -> None:
    settings: dict[str, Any]
    for settings in (
        {"ca_certs": world.ca_file, "assert_hostname": "other.test"},
        {
            "ssl_context": unverifying(),
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": world.ca_file,
            "assert_hostname": "other.test",
        },
    ):
        with pytest.raises(urllib3.exceptions.SSLError, match=r"other\.test"):
            fetch(world.good.server, **settings)


def test_a_context_without_its_own_host_name_check_gets_urllib3s(world: World) -> None:
    context = trusting(world)
    context.check_hostname = False
    # server_hostname: the name sent and checked is not the address connected to.
    with pytest.raises(urllib3.exceptions.SSLError, match=r"other\.test"):
        fetch(world.good.server, ssl_context=context, server_hostname="other.test")
    assert fetch(world.good.server, ssl_context=context, server_hostname="localhost") == b"ok"


def test_a_minimum_version_is_never_ignored(world: World) -> None:
    cases: list[dict[str, Any]] = [
        {"ssl_context": trusting(world), "ssl_minimum_version": ssl.TLSVersion.TLSv1_3},
        {"ca_certs": world.ca_file, "ssl_minimum_version": ssl.TLSVersion.TLSv1_3},
    ]
    for settings in cases:
        with pytest.raises(urllib3.exceptions.SSLError):
            fetch(world.old, **settings)
    assert fetch(world.old, ssl_context=trusting(world)) == b"ok"  # the twin: 1.2 is fine


def test_settings_never_weaken_a_given_context(world: World) -> None:
    context = trusting(world)
    with pytest.raises(ValueError, match="cert_reqs=CERT_NONE would weaken"):
        fetch(world.evil.server, ssl_context=context, cert_reqs="CERT_NONE")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # An unverifying context asked to verify stays verifying for every later user.
    shared = unverifying()
    fetch(world.good.server, ssl_context=shared, cert_reqs="CERT_REQUIRED", ca_certs=world.ca_file)
    assert shared.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.evil.server, ssl_context=shared)


def test_no_verification_only_when_asked_with_a_warning(world: World) -> None:
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        assert fetch(world.evil.server, cert_reqs="CERT_NONE") == b"ok"
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        assert fetch(world.evil.server, ssl_context=unverifying()) == b"ok"


class ContextAdapter(http.HTTPAdapter):
    """The usual way to give requests a context: an adapter's pool manager."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self.context, **kwargs)


def test_requests_verify_applies_to_an_adapters_context(world: World) -> None:
    with http.Session(timeout=LONG) as session:
        session.mount("https://", ContextAdapter(unverifying()))
        good, evil = world.good.server, world.evil.server
        assert session.get(f"{good.url}/ok", verify=world.ca_file).text == "ok"
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{evil.url}/ok", verify=world.ca_file)
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{evil.url}/ok")  # verify=True: the system CAs
    with http.Session(timeout=LONG) as session:
        session.mount("https://", ContextAdapter(trusting(world)))
        with pytest.raises(ValueError, match="weaken"):
            session.get(f"{world.good.server.url}/ok", verify=False)


def test_changed_ca_files_and_environment_make_a_new_context(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle.pem"
    world.evil.ca.cert_pem.write_to_path(str(bundle))
    assert fetch(world.evil.server, ca_certs=str(bundle)) == b"ok"
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.good.server, ca_certs=str(bundle))
    world.good.ca.cert_pem.write_to_path(str(bundle))
    assert fetch(world.good.server, ca_certs=str(bundle)) == b"ok"
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.evil.server, ca_certs=str(bundle))
    # The system CAs come from SSL_CERT_FILE when it is set.
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.good.server)
    monkeypatch.setenv("SSL_CERT_FILE", world.ca_file)
    assert fetch(world.good.server) == b"ok"


def test_an_unverified_request_warns_as_urllib3_does(world: World) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fetch(world.good.server, ca_certs=world.ca_file)
    assert not [w for w in caught if issubclass(w.category, urllib3.exceptions.HTTPWarning)]


def test_pyopenssl_injection_is_refused_clearly_and_leaves_nothing_behind(
    world: World,
) -> None:
    from urllib3.contrib import pyopenssl  # a test dependency: pyOpenSSL

    url = f"{world.good.server.url}/ok"
    assert http.get(url, timeout=LONG, verify=world.ca_file).text == "ok"  # cached now
    pyopenssl.inject_into_urllib3()
    try:
        for verify in (world.ca_file, True):
            with pytest.raises(requests.exceptions.SSLError, match="extract_from_urllib3"):
                http.get(url, timeout=LONG, verify=verify)
        with pytest.raises(urllib3.exceptions.SSLError, match="extract_from_urllib3"):
            fetch(world.good.server, ca_certs=world.ca_file)
    finally:
        pyopenssl.extract_from_urllib3()
    # No context made or kept under other settings: everything works again.
    assert http.get(url, timeout=LONG, verify=world.ca_file).text == "ok"
    assert fetch(world.good.server, ca_certs=world.ca_file) == b"ok"
    with pytest.raises(urllib3.exceptions.SSLError):
        fetch(world.evil.server, ca_certs=world.ca_file)
    # A pyOpenSSL context given directly is refused too, not used half-way.
    given = pyopenssl.PyOpenSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(urllib3.exceptions.SSLError, match=r"ssl\.SSLContext"):
        fetch(world.good.server, ssl_context=given)


def test_a_context_factory_in_place_of_urllib3s_class_is_judged_by_what_it_makes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Code (urllib3's own tests among it) may replace urllib3.util.ssl_.SSLContext with
    # a function: not pyOpenSSL's class. What it makes is used if it is an SSLContext.
    made: list[ssl.SSLContext] = []

    def factory(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(ssl.SSLContext(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(urllib3.util.ssl_, "SSLContext", factory)
    assert fetch(world.good.server, ca_certs=world.ca_file) == b"ok"
    assert made  # the context came from the factory
    with pytest.raises(urllib3.exceptions.SSLError):  # and it still verifies
        fetch(world.evil.server, ca_certs=world.ca_file)


def test_http2_is_never_offered_as_these_connections_speak_http11(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib3.util.ssl_, "ALPN_PROTOCOLS", ["h2", "http/1.1"])  # urllib3.http2
    context, _ = _side(world.good.ca)
    context.set_alpn_protocols(["h2", "http/1.1"])  # a server that prefers HTTP/2
    with HTTPServer(server_context=context) as server:
        pool = http.HTTPSConnectionPool(
            "127.0.0.1", server.port, timeout=LONG, ca_certs=world.ca_file
        )
        conn = pool._get_conn()
        conn.connect()
        assert conn.sock._sock.selected_alpn_protocol() == "http/1.1"
        conn.close()
        assert fetch(server, ca_certs=world.ca_file) == b"ok"
