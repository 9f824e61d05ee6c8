"""The SSRF guard of media.fetch: which addresses are refused, how numeric host spellings are
read, and proof that the connection goes to the address that was checked (no DNS rebinding).

Public addresses below are never dialled: ``FakeInternet`` (the outside world, see
tests/test_media_fetch.py) leads them to a loopback server and records which address the fetcher
asked for. Where the real network stack must be shown to pin, servers on 127.0.0.1 and 127.0.0.2
answer differently.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from media.fetch import (
    FetchError,
    check_address,
    fetch_to_file,
    is_metadata_address,
    is_public_address,
    parse_ipv4_host,
)
from tests.test_media_fetch import FakeInternet, LoopbackServer, ScriptedResolver, media_server, payload

PUBLIC_A = "93.184.215.14"
PUBLIC_B = "151.101.65.69"
PUBLIC_V6 = "2606:4700:4700::1111"


# ---------------------------------------------------------------------------------------------
# Address classification

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "100.64.0.1", "100.127.255.255", "169.254.1.1", "169.254.169.254", "192.0.0.1",
    "192.0.2.10", "198.51.100.7", "203.0.113.9", "198.18.0.1", "198.19.255.255", "192.88.99.1",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "ff02::1", "fec0::1",
    "2001:db8::1", "3fff::1", "2001::1", "2001:2::1", "100::1", "64:ff9b:1::a00:1",
    "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::127.0.0.1", "::8.8.8.8",  # IPv4-compatible: deprecated, refused whatever it wraps
    "64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::c0a8:101",  # NAT64 of private
    "2002:7f00:1::", "2002:c0a8:101::1", "2002:a9fe:a9fe::",  # 6to4 of private
    "4000::1", "5f00::1",  # outside global unicast 2000::/3
])
def test_not_public(address):
    assert not is_public_address(address)
    with pytest.raises(FetchError) as caught:
        check_address(address, allow_private=False)
    assert caught.value.code == "blocked_address" and not caught.value.retryable


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", PUBLIC_A, PUBLIC_B, "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
    "192.169.0.1", "198.17.255.255", "198.20.0.0", "223.255.255.255",
    PUBLIC_V6, "2a00:1450:4001:82a::200e", "2001:4860:4860::8888",
    "::ffff:8.8.8.8", "64:ff9b::808:808",  # DNS64 answer for a public IPv4-only site: must work
    "2002:808:808::1",  # 6to4 of a public address
])
def test_public(address):
    assert is_public_address(address)
    check_address(address, allow_private=False)


@pytest.mark.parametrize("address", [
    "169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23", "100.100.100.200",
    "168.63.129.16", "192.0.0.192", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1", "::169.254.169.254",
])
def test_metadata_refused_even_when_private_networks_are_allowed(address):
    assert is_metadata_address(address)
    with pytest.raises(FetchError) as caught:
        check_address(address, allow_private=True)
    assert caught.value.code == "blocked_address" and "metadata" in caught.value.message


def test_private_allowed_only_when_asked():
    for address in ("127.0.0.1", "10.1.2.3", "::1", "fd12::1", "::ffff:192.168.0.1"):
        check_address(address, allow_private=True)
        assert not is_metadata_address(address)


# ---------------------------------------------------------------------------------------------
# Numeric host spellings

@pytest.mark.parametrize("host, expected", [
    ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0X7F.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"), ("127.0.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("017700000001", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"), ("2852039166", "169.254.169.254"), ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("0", "0.0.0.0"), ("1.0xffffff", "1.255.255.255"), ("4294967295", "255.255.255.255"), ("0x5db8d70e", PUBLIC_A),
])
def test_numeric_hosts_are_read_like_inet_aton(host, expected):
    assert str(parse_ipv4_host(host)) == expected
    if not host.endswith("."):  # inet_aton itself refuses the trailing dot a resolver would ignore
        assert socket.inet_ntoa(socket.inet_aton(host)) == expected


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "1.256.1.1", "08.1.1.1", "0x", "0x.1", "1..1",
                                  "4294967296", "0x100000000", "1.2.3.0x100", "example.123", "a.0x1f"])
def test_numeric_junk_is_not_an_address(host):
    with pytest.raises(ValueError):
        parse_ipv4_host(host)


@pytest.mark.parametrize("host", ["example.com", "127.0.0.1.nip.io", "0x7f.example", "deadbeef", "1e100.net", "localhost"])
def test_names_are_names(host):
    assert parse_ipv4_host(host) is None


# ---------------------------------------------------------------------------------------------
# Through the fetcher

@pytest.fixture(scope="module")
def server():
    s = media_server()
    yield s
    s.stop()


@pytest.fixture
def internet(server: LoopbackServer) -> FakeInternet:
    return FakeInternet({PUBLIC_A: server.port, PUBLIC_V6: server.port})


async def fetch(url, tmp_path: Path, resolver, internet: FakeInternet | None = None, **kw):  # noqa: ANN001, ANN003
    options = {"max_bytes": 1 << 20, "timeout_seconds": 10, "allow_private": False, "resolver": resolver}
    if internet is not None:
        options["transport_factory"] = internet.transport
    return await fetch_to_file(url, tmp_path / "out.bin", **(options | kw))


def bad_targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/files/a.jpg", "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{port}/files/a.jpg", f"http://[::ffff:127.0.0.1]:{port}/files/a.jpg",
        f"http://[::ffff:7f00:1]:{port}/files/a.jpg", f"http://2130706433:{port}/files/a.jpg",
        f"http://0177.0.0.1:{port}/files/a.jpg", f"http://0x7f.1:{port}/files/a.jpg", f"http://0x7f000001:{port}/",
        f"http://127.1:{port}/files/a.jpg", f"http://127.0.0.1.:{port}/files/a.jpg", "http://0/",
        "http://10.0.0.5/", "http://100.64.0.1/", "http://[fd00::1]/", "http://[fe80::1%25eth0]/",
        "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[fd00:ec2::254]/latest/",
        "http://100.100.100.200/latest/meta-data/", "http://0xa9fea9fe/latest/meta-data/",
        "http://internal.example.test/",  # a name that resolves inside
    ]


async def test_redirects_to_internal_addresses_are_refused(server, internet, tmp_path):
    dns = ScriptedResolver({"media.example.test": [[PUBLIC_A]], "internal.example.test": [["10.0.0.7"]]})
    for target in bad_targets(server.port):
        before = len(server.requests)
        with pytest.raises(FetchError) as caught:
            await fetch(f"http://media.example.test/go?to={quote(target, safe='')}", tmp_path, dns, internet)
        assert caught.value.code == "blocked_address", (target, caught.value)
        assert not caught.value.retryable
        # Only the first hop (to the public address) ever reached a socket.
        assert internet.connections[-1] == (PUBLIC_A, "media.example.test", None), target
        assert len(server.requests) == before + 1, target
    assert len(internet.connections) == len(bad_targets(server.port))
    assert list((tmp_path).iterdir()) == []


async def test_the_same_urls_refused_directly(server, internet, tmp_path):
    dns = ScriptedResolver({"internal.example.test": [["10.0.0.7"]]})
    for target in bad_targets(server.port):
        with pytest.raises(FetchError) as caught:
            await fetch(target, tmp_path, dns, internet)
        assert caught.value.code == "blocked_address", (target, caught.value)
    assert internet.connections == []


async def test_metadata_refused_with_private_networks_allowed(server, internet, tmp_path):
    dns = ScriptedResolver({"metadata.google.internal": [["169.254.169.254"]],
                            "sneaky.example.test": [[PUBLIC_A, "169.254.169.254"]]})
    for url in ("http://169.254.169.254/latest/meta-data/iam/", "http://[fd00:ec2::254]/latest/",
                "http://100.100.100.200/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
                "http://2852039166/latest/", "http://metadata.google.internal/computeMetadata/v1/",
                "http://sneaky.example.test/"):
        with pytest.raises(FetchError) as caught:
            await fetch(url, tmp_path, dns, internet, allow_private=True)
        assert caught.value.code == "blocked_address" and "metadata" in caught.value.message, url
    assert internet.connections == []


async def test_numeric_spelling_of_a_public_address_is_fetched_from_that_address(server, internet, tmp_path):
    # Normalised, not refused: 0x5db8d70e is PUBLIC_A, and that is where the request goes.
    dns = ScriptedResolver({})
    result = await fetch("http://0x5db8d70e/files/a.jpg?size=10", tmp_path, dns, internet)
    assert result.size == 10 and dns.calls == []
    assert internet.connections == [(PUBLIC_A, PUBLIC_A, None)]
    assert result.final_url == f"http://{PUBLIC_A}/files/a.jpg?size=10"


@pytest.mark.parametrize("url", ["http://1.2.3.4.5/", "http://256.1.1.1/", "http://08.0.0.1/", "http://example.0x1f/",
                                 "http://[::1/", "http://[1:2:3]/", "http://:80/", "http:///x", "//media.example.test/x",
                                 "http://media.example.test:99999/"])
async def test_malformed_hosts_are_bad_urls(internet, tmp_path, url):
    with pytest.raises(FetchError) as caught:
        await fetch(url, tmp_path, ScriptedResolver({}), internet)
    assert caught.value.code == "bad_url" and internet.connections == []


async def test_ipv6_zone_ids_are_refused(internet, tmp_path):
    with pytest.raises(FetchError) as caught:
        await fetch("http://[fe80::1%25lo]:8080/", tmp_path, ScriptedResolver({}), internet)
    assert caught.value.code == "blocked_address"
    with pytest.raises(FetchError) as caught:  # even where link-local is allowed, zones are not supported
        await fetch("http://[fe80::1%25lo]:8080/", tmp_path, ScriptedResolver({}), internet, allow_private=True)
    assert caught.value.code == "bad_url" and internet.connections == []


# --- pinning


async def test_rebinding_answer_is_never_used(server, internet, tmp_path):
    """The resolver answers a public address, then 127.0.0.1 to anyone asking again. The fetch
    asks once, checks that answer, and connects to exactly it."""
    dns = ScriptedResolver({"media.example.test": [[PUBLIC_A], ["127.0.0.1"]]})
    result = await fetch("http://media.example.test/files/a.jpg?size=1234", tmp_path, dns, internet)
    assert result.size == 1234 and (tmp_path / "out.bin").read_bytes() == payload(1234)
    assert dns.calls == [("media.example.test", 80)]
    assert internet.connections == [(PUBLIC_A, "media.example.test", None)]
    assert server.requests[-1].headers["host"] == "media.example.test"

    # A second hop to the same name is a new lookup, checked again: now the rebound answer is
    # refused instead of silently reusing (or trusting) the first.
    with pytest.raises(FetchError) as caught:
        await fetch("http://media.example.test/go?to=/files/b.jpg", tmp_path, dns, internet)
    assert caught.value.code == "blocked_address"
    assert len(dns.calls) == 2 and len(internet.connections) == 1  # the earlier success only


async def test_answer_mixing_public_and_private_is_refused(internet, tmp_path):
    for answer in ([PUBLIC_A, "127.0.0.1"], ["127.0.0.1", PUBLIC_A], [PUBLIC_V6, "::ffff:10.0.0.1"], [PUBLIC_A, "fd00::5"]):
        dns = ScriptedResolver({"media.example.test": [answer]})
        with pytest.raises(FetchError) as caught:
            await fetch("http://media.example.test/files/a.jpg", tmp_path, dns, internet)
        assert caught.value.code == "blocked_address", answer
        assert "127.0.0.1" not in caught.value.message and "10.0.0.1" not in caught.value.message
    assert internet.connections == []


async def test_next_checked_address_when_one_is_unreachable(server, internet, tmp_path):
    dns = ScriptedResolver({"media.example.test": [[PUBLIC_B, PUBLIC_V6]]})  # PUBLIC_B has no route
    result = await fetch("http://media.example.test/files/a.jpg?size=50", tmp_path, dns, internet)
    assert result.size == 50
    assert [c[0] for c in internet.connections] == [PUBLIC_B, PUBLIC_V6]
    assert dns.calls == [("media.example.test", 80)]


async def test_pinning_on_the_real_network_stack(tmp_path):
    """No fake transport: two real servers on the same port of 127.0.0.1 and 127.0.0.2 say who
    they are. The resolver answers 127.0.0.1 and would answer 127.0.0.2 next time; the body must
    come from the first, and the second server must see nothing."""
    for _ in range(20):  # the port must be free on both addresses
        first = media_server("127.0.0.1", 0, name="first")
        try:
            second = media_server("127.0.0.2", first.port, name="second")
            break
        except OSError:
            first.stop()
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    try:
        dns = ScriptedResolver({"media.example.test": [["127.0.0.1"], ["127.0.0.2"]]})
        result = await fetch(f"http://media.example.test:{first.port}/whoami", tmp_path, dns, allow_private=True)
        assert (tmp_path / "out.bin").read_bytes() == b"first" and result.content_type == "text/plain"
        assert len(dns.calls) == 1 and second.requests == []
        assert first.requests[-1].headers["host"] == f"media.example.test:{first.port}"
    finally:
        first.stop()
        second.stop()


async def test_system_resolver_sees_localhost_as_loopback(server, tmp_path):
    # The default resolver (getaddrinfo; /etc/hosts answers offline) through the real stack.
    with pytest.raises(FetchError) as caught:
        await fetch_to_file(f"http://localhost:{server.port}/files/a.jpg", tmp_path / "a.jpg", max_bytes=1000,
                            timeout_seconds=10, allow_private=False)
    assert caught.value.code == "blocked_address"
    result = await fetch_to_file(f"http://localhost:{server.port}/files/a.jpg?size=20", tmp_path / "a.jpg",
                                 max_bytes=1000, timeout_seconds=10, allow_private=True)
    assert result.size == 20
    assert server.requests[-1].headers["host"] == f"localhost:{server.port}"


# --- HTTPS: the pinned IP is dialled, the certificate is checked against the name


def _self_signed(name: str, directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        # DNS name only, no IP SAN: a handshake that succeeds can only have checked the name.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, pem


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """An https server on 127.0.0.1 whose certificate names only media.example.test, recording the
    SNI names it is offered; and a client context that trusts that certificate."""
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path, pem = _self_signed("media.example.test", directory)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    sni_names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: sni_names.append(name)
    server = media_server(ssl_context=server_context)
    client_context = ssl.create_default_context(cadata=pem.decode())
    yield server, client_context, sni_names
    server.stop()


async def test_https_connects_to_the_pinned_address_and_verifies_the_name(tls, tmp_path):
    server, client_context, sni_names = tls
    dns = ScriptedResolver({"media.example.test": [["127.0.0.1"], ["127.0.0.2"]]})
    result = await fetch(f"https://media.example.test:{server.port}/files/a.jpg?size=4096", tmp_path, dns,
                         allow_private=True, ssl_context=client_context)
    assert result.size == 4096 and (tmp_path / "out.bin").read_bytes() == payload(4096)
    assert sni_names[-1] == "media.example.test"  # the name went out as SNI, not 127.0.0.1
    assert server.requests[-1].headers["host"] == f"media.example.test:{server.port}"
    assert len(dns.calls) == 1


async def test_https_certificate_for_another_name_is_refused(tls, tmp_path):
    # Same server and certificate, reached under a name the certificate does not carry: if the
    # fetcher verified against the dialled IP or skipped verification, this would pass.
    server, client_context, _ = tls
    dns = ScriptedResolver({"cdn.example.test": [["127.0.0.1"]]})
    with pytest.raises(FetchError) as caught:
        await fetch(f"https://cdn.example.test:{server.port}/files/a.jpg", tmp_path, dns,
                    allow_private=True, ssl_context=client_context)
    assert caught.value.code == "connect_failed" and not caught.value.retryable
    assert "certificate" in caught.value.message
    assert list(tmp_path.iterdir()) == []
