"""The gateway side of the sandbox: settings → adapters, `serve --demo` mounting, the CLI command."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from channels.base import OutboundMessage, Outcome
from channels.sandbox.runner import bind_loopback, run_in_thread
from govconnect.app import create_app
from govconnect.cli import app as cli_app
from govconnect.providers.channel_factory import build_channel, callback_token, config_for
from govconnect.providers.sandbox import gateway_env, sandbox_config, use_demo_sandbox
from govconnect.settings import Settings

RECIPIENTS = {
    "aliyun_sms": "13800138009",
    "cmpp": "13800138010",
    "aliyun_voice": "13800138009",
    "wechat_mp": "oDemoFollower0001",
    "wecom": "zhangsan",
    "dingtalk": "zhangsan",
    "weibo": "",
}


async def test_demo_gateway_mounts_sandbox_and_every_channel_sends(tmp_path: Path) -> None:
    sock = bind_loopback()
    port = sock.getsockname()[1]
    base = Settings(data_dir=tmp_path, secret_key="k" * 24, demo=True)  # noqa: S106
    settings = use_demo_sandbox(base, "0.0.0.0", port)  # noqa: S104
    assert settings.aliyun_sms.base_url == f"http://127.0.0.1:{port}/_provider_sandbox/dysmsapi/"
    server = run_in_thread(create_app(settings), sock=sock)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            for provider, recipient in RECIPIENTS.items():
                adapter = build_channel(provider, settings, client)
                message = OutboundMessage(
                    reference=f"demo-{provider}", recipient=recipient, text="演示通知", url="https://example.gov.cn/n/1"
                )
                [result] = await adapter.send([message])
                assert result.outcome is Outcome.ACCEPTED, (provider, result)
                await adapter.aclose()
            control = f"{server.url}/_provider_sandbox/_sandbox"
            counts = (await client.get(f"{control}/counts")).json()
            assert set(counts["accepted"]) == set(RECIPIENTS) - {"cmpp"} and counts["cmpp"] == 1
            inbox = (await client.get(f"{control}/sms/inbox", params={"phone": "13800138010"})).json()
            assert [(m["provider"], m["text"]) for m in inbox["messages"]] == [("cmpp", "【衢州发布】演示通知回T退订")]
    finally:
        server.stop()


def test_callback_token_and_sandbox_config_follow_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, secret_key="s" * 24, wecom={"corpid": "ww-real", "agentid": 7})  # noqa: S106
    derived = callback_token(s)
    assert len(derived) == 32 and derived == callback_token(s)
    assert callback_token(s.model_copy(update={"callback_token": SecretStr("given")})) == "given"
    cfg = sandbox_config(s, "http://gw")
    assert (cfg.wecom_corpid, cfg.wecom_agentid, cfg.callback_token) == ("ww-real", 7, derived)
    env = gateway_env("http://sb:1/", cfg)
    assert env["GOVCONNECT_WECOM__BASE_URL"] == "http://sb:1/wecom/"
    assert env["GOVCONNECT_DINGTALK__BASE_URL"] == "http://sb:1/dingtalk/"
    assert (env["GOVCONNECT_DINGTALK__APPKEY"], env["GOVCONNECT_DINGTALK__AGENTID"]) == (
        cfg.dingtalk_appkey,
        str(cfg.dingtalk_agentid),
    )
    assert env["GOVCONNECT_DINGTALK__APPSECRET"] == cfg.dingtalk_appsecret
    with pytest.raises(KeyError):
        config_for("fax", s)


def test_sandbox_cli_rejects_bad_port() -> None:
    result = CliRunner().invoke(cli_app, ["sandbox", "--port", "0"])
    assert result.exit_code == 2 and "port" in result.output
