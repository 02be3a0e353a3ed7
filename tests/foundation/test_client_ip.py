"""config.client_ip: the client's address behind trusted proxies, and never a forged one."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from config.client_ip import client_ip, trusted_proxies_parse


def _request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        # No proxy configured: the header is the client's own claim and is ignored.
        ([], "203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # A peer that is not a trusted proxy talks to us directly, whatever it claims.
        (["10.0.0.0/8"], "203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # One proxy: the address it appended.
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # A client forging the header: the proxy appends the real address last, the forgery stays left.
        (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        # Two proxies in a chain: skip every trusted hop from the right.
        (["10.0.0.0/8", "127.0.0.1"], "127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1"),
        # Ports and IPv6 brackets as some proxies write them.
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.1:51234", "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.2", "[2001:db8::5]:443", "2001:db8::5"),
        (["10.0.0.0/8"], "10.0.0.2", "2001:db8::5", "2001:db8::5"),
        # Garbage in the header: the last address a trusted proxy vouched for.
        (["10.0.0.0/8"], "10.0.0.2", "not-an-ip", "10.0.0.2"),
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.1, junk, 10.0.0.9", "10.0.0.9"),
        # A trusted proxy with no header at all.
        (["10.0.0.0/8"], "10.0.0.2", None, "10.0.0.2"),
        # Only proxies in the chain: the left-most of them.
        (["10.0.0.0/8"], "10.0.0.2", "10.9.9.9, 10.0.0.3", "10.9.9.9"),
        # IPv4-mapped IPv6 peers count as their IPv4 address.
        (["10.0.0.0/8"], "::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_client_ip(trusted, remote, forwarded, expected):
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_ip(_request(remote, forwarded)) == expected


def test_a_bad_trusted_proxy_entry_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES: 'proxy.local'"):
        trusted_proxies_parse(values=["10.0.0.0/8", "proxy.local"])
