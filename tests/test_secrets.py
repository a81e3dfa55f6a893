"""SPEC 3: secrets never leave the process in clear.

A matrix of placements, each with its own random secret, run at every
logging setting; every artefact is grepped for every secret: the state file,
the OTLP bytes (spans serialised with the real OTLP protobuf encoder, as the
exporter sends them), the console, the log file and stderr. The node and
``rt.context`` must still see the real values.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import secrets
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import railtracks as rt
from railtracks._recording.scrub import Scrubber

from .conftest import run_python


def _hex(n: int = 24) -> str:
    return secrets.token_hex(n // 2)


def _alnum(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


class _OtlpBytes(SpanExporter):
    """Serialises what it is given exactly as the OTLP exporters do."""

    def __init__(self) -> None:
        self.payload = bytearray()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.payload += encode_spans(spans).SerializeToString()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


@dataclasses.dataclass
class Login:
    user: str
    password: str


def _secrets() -> dict[str, str]:
    """One unique secret per placement; the values are what must never appear."""
    return {
        "arg_password": _hex(),
        "arg_api_key": _hex(),
        "kwargs_client_secret": _hex(),
        "positional_token": _hex(),
        "input_nested_list": _hex(),
        "input_dataclass": _hex(),
        "output_token": _hex(),
        "output_authorization": _hex(),
        "context_nested": _hex(),
        "context_list": _hex(),
        "context_put_cookie": _hex(),
        "context_update_access_key": _hex(),
        "context_put_session_key": _hex(),
        "broadcast_api_key": _hex(),
        "exception_message": _hex(),
        "answer_secret": _hex(),
        "ctx_AWS_SECRET_ACCESS_KEY": _hex(),
        "ctx_pwd": _hex(),
        "ctx_passphrase": _hex(),
        "ctx_jwt": _hex(),
        "ctx_api.key": _hex(),
        "database_url_password": _hex(),
        "bearer": _hex(32),
        "pem_body": _alnum(64),
        "aws_key_id": "AKIA"
        + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        "github": "ghp_" + _alnum(36),
        "openai": "sk-proj-" + _alnum(40),
        "slack": "xoxb-" + _hex(12) + "-" + _alnum(24),
        "jwt_value": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOi" + _alnum(20) + "." + _alnum(30),
        "callback_error": _hex(),
        "caught_exception": _hex(),
    }


def _run(setting: str, s: dict[str, str], log_file: Path) -> tuple[Any, rt.Session]:
    seen: dict[str, Any] = {}

    @rt.function_node
    async def login(user: str, password: str, api_key: str, **kwargs: Any) -> dict[str, Any]:
        seen["password"] = password  # the node receives the real values
        seen["client_secret"] = kwargs["client_secret"]
        seen["context"] = rt.context.get("db")
        return {
            "token": s["output_token"],
            "headers": {"Authorization": s["output_authorization"]},
            "note": f"Authorization: Bearer {s['bearer']}",
        }

    @rt.function_node
    def sync_node(token: str, items: list[dict[str, str]], login: Login) -> str:
        return f"key {s['aws_key_id']} {s['github']} {s['openai']} {s['slack']} {s['jwt_value']}"

    @rt.function_node
    async def failing(text: str) -> None:
        raise ValueError(f"login failed for password={s['exception_message']}")

    @rt.function_node
    async def caught() -> None:
        raise PermissionError(f"denied: Bearer {s['caught_exception']}")

    def callback(message: Any) -> None:
        raise RuntimeError(f"callback could not use token={s['callback_error']}")

    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{s['pem_body']}\n-----END RSA PRIVATE KEY-----"

    @rt.session(
        name=f"secrets-{setting.lower()}",
        logging_setting=setting,
        log_file=log_file,
        broadcast_callback=callback,
        context={
            "db": {"host": "db", "password": s["context_nested"]},
            "users": [{"name": "a", "password": s["context_list"]}],
            "AWS_SECRET_ACCESS_KEY": s["ctx_AWS_SECRET_ACCESS_KEY"],
            "pwd": s["ctx_pwd"],
            "passphrase": s["ctx_passphrase"],
            "jwt": s["ctx_jwt"],
            "api.key": s["ctx_api.key"],
            "database_url": f"postgres://app:{s['database_url_password']}@db:5432/app",
        },
    )
    async def flow() -> dict[str, Any]:
        out = await rt.call(
            login,
            "alice",
            password=s["arg_password"],
            api_key=s["arg_api_key"],
            client_secret=s["kwargs_client_secret"],
        )
        assert seen["password"] == s["arg_password"]
        assert seen["client_secret"] == s["kwargs_client_secret"]
        assert seen["context"]["password"] == s["context_nested"]  # rt.context is untouched
        await rt.call(
            sync_node,
            s["positional_token"],
            [{"credential": s["input_nested_list"]}],
            Login("bob", s["input_dataclass"]),
        )
        rt.context.put("cookie", {"session": s["context_put_cookie"]})
        rt.context.update({"access_key": s["context_update_access_key"]})
        rt.context.put("session_key", s["context_put_session_key"])
        assert rt.context.get("session_key") == s["context_put_session_key"]
        await rt.broadcast({"api_key": s["broadcast_api_key"]})
        await rt.call(lambda text: text, pem)
        with contextlib.suppress(PermissionError):
            await rt.call(caught)
        with contextlib.suppress(ValueError):
            await rt.call(failing, "x")
        return {"secret": s["answer_secret"], "out": out}

    return asyncio.run(flow())


@pytest.mark.parametrize("setting", ["VERBOSE", "REGULAR", "QUIET", "NONE"])
def test_no_secret_reaches_any_artefact(
    tmp_path: Path, setting: str, capfd: pytest.CaptureFixture[str]
) -> None:
    s = _secrets()
    console = io.StringIO()
    otlp = _OtlpBytes()
    rt.configure(console_stream=console, span_exporters=[otlp], state_dir=tmp_path / "states")
    log_file = tmp_path / "run.log"
    result, session = _run(setting, s, log_file)
    rt.flush(5)
    # the run's own result is the real one
    assert result["secret"] == s["answer_secret"]
    assert result["out"]["token"] == s["output_token"]
    assert session.state_path is not None
    artefacts = {
        "state file": session.state_path.read_bytes(),
        "OTLP bytes": bytes(otlp.payload),
        "console": console.getvalue().encode(),
        "log file": log_file.read_bytes(),
        "stderr": capfd.readouterr().err.encode(),
    }
    assert len(artefacts["OTLP bytes"]) > 1000
    assert len(artefacts["log file"]) > 0
    if setting != "NONE":
        assert artefacts["console"]
    leaks = [
        f"{placement} in {where}"
        for placement, secret in s.items()
        for where, data in artefacts.items()
        if secret.encode() in data
    ]
    assert leaks == []
    state = artefacts["state file"].decode()
    assert "[REDACTED]" in state
    assert "postgres://app:[REDACTED]@db:5432/app" in state  # only the password goes


def test_endpoint_user_info_is_not_printed(tmp_path: Path) -> None:
    password = _hex()
    script = (
        "import asyncio, railtracks as rt\n"
        "@rt.function_node\nasync def one(): return 1\n"
        "print(asyncio.run(rt.call(one)))\n"
    )
    done = run_python(
        script,
        tmp_path,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://tenant:{password}@127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert "RT.Telemetry" in done.stderr
    assert password not in done.stderr + done.stdout


def test_scrubbing_can_be_configured_and_turned_off() -> None:
    marker = "ACME-" + _hex(16)

    @rt.session(name="configured", context={"plain": marker, "password": "p" + _hex()})
    async def flow() -> str:
        return await rt.call(lambda: f"id {marker}")

    rt.configure(secret_patterns=[r"ACME-[0-9a-f]+"])
    _, session = asyncio.run(flow())
    assert rt.flush(30)  # the state file is complete once flush returns
    assert marker not in session.state_path.read_text()  # type: ignore[union-attr]
    rt.configure(redact=False)
    _, session = asyncio.run(flow())
    assert rt.flush(30)
    text = session.state_path.read_text()  # type: ignore[union-attr]
    assert marker in text
    assert "[REDACTED]" not in text
    with pytest.raises(rt.errors.ConfigurationError, match="secret_patterns"):
        rt.configure(secret_patterns=["("])


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Basic authentication failed", "Basic authentication failed"),
        ("Token expired for user alice", "Token expired for user alice"),
        ("author=Tolkien", "author=Tolkien"),
        ("max_tokens=1000", "max_tokens=1000"),  # a token count, not a token
        ("db_password=hunter22", "db_password=[REDACTED]"),
        ("https://example.com/path?q=1", "https://example.com/path?q=1"),
        ("redis://:hunter2pass@cache:6379", "redis://:[REDACTED]@cache:6379"),
        ("api-key: 'abc12345'", "api-key: '[REDACTED]'"),
    ],
)
def test_shapes_replace_only_the_credential(text: str, kept: str) -> None:
    assert Scrubber().text(text) == kept


def test_safe_and_sensitive_keys() -> None:
    scrubber = Scrubber()
    for key in ["password", "PASSWD", "db_pwd", "passphrase", "client_secret", "access_token",
                "jwt", "x-api-key", "apikey", "api.key", "aws_access_key", "Authorization",
                "oauth_state", "credentials", "Set-Cookie", "session_key", "private_key",
                "csrf_token", "xsrf", "ssn", "credit_card"]:  # fmt: skip
        assert scrubber.is_sensitive(key), key
    for key in ["railtracks.session.id", "session.id", "author", "lessons", "user_id",
                "max_tokens", "gen_ai.usage.input_tokens"]:  # fmt: skip
        assert not scrubber.is_sensitive(key), key
