"""Duration and HostPort parse the config syntax and reject everything else clearly."""

from __future__ import annotations

import pytest

from arkrelay_core.config.values import Duration, HostPort, ValueProblem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172800),
        ("1.5h", 5400),
        (" 30 m ", 1800),
        ("45", 45),
        (45, 45),
        (2.5, 2.5),
        ("0s", 0),
    ],
)
def test_duration_parses(text: str | float, seconds: float) -> None:
    assert Duration.parse(text).seconds == seconds


@pytest.mark.parametrize("text", ["1 hour", "", "h", "-5s", "5w", "1h30m", "1e3"])
def test_duration_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueProblem) as info:
        Duration.parse(text)
    assert str(info.value) == (
        f"invalid duration {text!r}; "
        "expected a duration such as 90s, 15m, 1h, 2d or a number of seconds"
    )


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_duration_rejects_bad_numbers(value: float) -> None:
    with pytest.raises(ValueProblem):
        Duration.parse(value)


@pytest.mark.parametrize(("value", "kind"), [(True, "bool"), ([1], "array"), ({}, "table")])
def test_duration_rejects_other_types(value: object, kind: str) -> None:
    with pytest.raises(TypeError, match=rf"got {kind}$"):
        Duration.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "90s"), (5400, "90m"), (3600, "1h"), (172800, "2d"), (1.5, "1.5s")]
)
def test_duration_renders_compactly(seconds: float, text: str) -> None:
    assert str(Duration(seconds)) == text
    assert Duration.parse(text) == Duration(seconds)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:7070", "127.0.0.1", 7070),
        ("localhost:0", "localhost", 0),
        ("arkd.internal:443", "arkd.internal", 443),
        ("[::1]:7447", "::1", 7447),
        ("[2001:db8::2]:10009", "2001:db8::2", 10009),
    ],
)
def test_hostport_parses(text: str, host: str, port: int) -> None:
    parsed = HostPort.parse(text)
    assert (parsed.host, parsed.port) == (host, port)
    assert str(parsed) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "localhost",
            "invalid address 'localhost'; expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
        ),
        (
            ":7070",
            "invalid address ':7070'; expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
        ),
        ("::1:7447", "invalid address '::1:7447': an IPv6 host needs brackets, as in [::1]:7447"),
        (
            "[::1]7447",
            "invalid address '[::1]7447'; expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
        ),
        (
            "[nothex]:1",
            "invalid IPv6 address 'nothex' in '[nothex]:1'; "
            "expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
        ),
        (
            "bad host:1",
            "invalid host 'bad host' in 'bad host:1'; "
            "expected host:port, e.g. 127.0.0.1:7070 or [::1]:7070",
        ),
        ("host:65536", "invalid port '65536' in 'host:65536'; expected a number in 0..65535"),
        ("host:http", "invalid port 'http' in 'host:http'; expected a number in 0..65535"),
        ("host:", "invalid port '' in 'host:'; expected a number in 0..65535"),
    ],
)
def test_hostport_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueProblem) as info:
        HostPort.parse(text)
    assert str(info.value) == message


def test_hostport_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match=r"got int$"):
        HostPort.parse(7070)  # type: ignore[arg-type]


def test_plugin_struct_fields_of_these_types(load_text, plugins) -> None:
    config = load_text(
        """
        [transport.endpoint]
        listen = "[::]:0"
        [settlement]
        plugin = "anchor"
        every = 600
        """
    )
    assert config.transports["endpoint"].settings.listen == HostPort("::", 0)
    assert config.settlement is not None
    assert config.settlement.settings.every == Duration(600)
