"""Running the provider sandbox for the gateway: alone (`govconnect sandbox`) or inside `serve --demo`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from pydantic import SecretStr

from channels.sandbox import SandboxConfig, SandboxState, create_sandbox_app
from channels.sandbox.app import start_cmpp, stop_cmpp
from channels.sandbox.runner import bind_loopback
from govconnect.providers.channel_factory import callback_token
from govconnect.settings import Settings

DEFAULTS = SandboxConfig()


def sandbox_config(settings: Settings, callback_base_url: str) -> SandboxConfig:
    """A sandbox that accepts exactly the credentials these settings send."""
    return SandboxConfig(
        callback_base_url=callback_base_url,
        callback_token=callback_token(settings),
        report_delay=settings.sandbox.report_delay,
        keep_messages=settings.sandbox.keep_messages,
        aliyun_access_key_id=settings.aliyun_sms.access_key_id or DEFAULTS.aliyun_access_key_id,
        aliyun_access_key_secret=settings.aliyun_sms.access_key_secret.get_secret_value()
        or DEFAULTS.aliyun_access_key_secret,
        sms_templates={settings.aliyun_sms.template_code: "${content}"},
        wechat_appid=settings.wechat_mp.appid or DEFAULTS.wechat_appid,
        wechat_secret=settings.wechat_mp.secret.get_secret_value() or DEFAULTS.wechat_secret,
        wechat_callback_token=settings.wechat_mp.callback_token.get_secret_value() or DEFAULTS.wechat_callback_token,
        wechat_encoding_aes_key=settings.wechat_mp.encoding_aes_key.get_secret_value(),
        wecom_corpid=settings.wecom.corpid or DEFAULTS.wecom_corpid,
        wecom_corpsecret=settings.wecom.corpsecret.get_secret_value() or DEFAULTS.wecom_corpsecret,
        wecom_agentid=settings.wecom.agentid or DEFAULTS.wecom_agentid,
        dingtalk_appkey=settings.dingtalk.appkey or DEFAULTS.dingtalk_appkey,
        dingtalk_appsecret=settings.dingtalk.appsecret.get_secret_value() or DEFAULTS.dingtalk_appsecret,
        dingtalk_agentid=settings.dingtalk.agentid or DEFAULTS.dingtalk_agentid,
        dingtalk_read_after=settings.sandbox.dingtalk_read_after or None,
        weibo_access_token=settings.weibo.access_token.get_secret_value() or DEFAULTS.weibo_access_token,
        weibo_safe_domain=settings.weibo.safe_domain,
        cmpp_source_addr=settings.cmpp.source_addr or DEFAULTS.cmpp_source_addr,
        cmpp_shared_secret=settings.cmpp.shared_secret.get_secret_value() or DEFAULTS.cmpp_shared_secret,
        cmpp_service_number=settings.cmpp.src_id or DEFAULTS.cmpp_service_number,
        cmpp_service_id=settings.cmpp.service_id or DEFAULTS.cmpp_service_id,
    )


def gateway_env(sandbox_url: str, config: SandboxConfig) -> dict[str, str]:
    """Environment variables that point a gateway at a sandbox running with `config`."""
    base = sandbox_url.rstrip("/")
    return {
        "GOVCONNECT_ALIYUN_SMS__BASE_URL": f"{base}/dysmsapi/",
        "GOVCONNECT_ALIYUN_SMS__ACCESS_KEY_ID": config.aliyun_access_key_id,
        "GOVCONNECT_ALIYUN_SMS__ACCESS_KEY_SECRET": config.aliyun_access_key_secret,
        "GOVCONNECT_ALIYUN_VOICE__BASE_URL": f"{base}/dyvmsapi/",
        "GOVCONNECT_ALIYUN_VOICE__ACCESS_KEY_ID": config.aliyun_access_key_id,
        "GOVCONNECT_ALIYUN_VOICE__ACCESS_KEY_SECRET": config.aliyun_access_key_secret,
        "GOVCONNECT_WECHAT_MP__BASE_URL": f"{base}/wechat/",
        "GOVCONNECT_WECHAT_MP__APPID": config.wechat_appid,
        "GOVCONNECT_WECHAT_MP__SECRET": config.wechat_secret,
        "GOVCONNECT_WECHAT_MP__CALLBACK_TOKEN": config.wechat_callback_token,
        "GOVCONNECT_WECOM__BASE_URL": f"{base}/wecom/",
        "GOVCONNECT_WECOM__CORPID": config.wecom_corpid,
        "GOVCONNECT_WECOM__CORPSECRET": config.wecom_corpsecret,
        "GOVCONNECT_WECOM__AGENTID": str(config.wecom_agentid),
        "GOVCONNECT_DINGTALK__BASE_URL": f"{base}/dingtalk/",
        "GOVCONNECT_DINGTALK__APPKEY": config.dingtalk_appkey,
        "GOVCONNECT_DINGTALK__APPSECRET": config.dingtalk_appsecret,
        "GOVCONNECT_DINGTALK__AGENTID": str(config.dingtalk_agentid),
        "GOVCONNECT_WEIBO__BASE_URL": f"{base}/weibo/",
        "GOVCONNECT_WEIBO__ACCESS_TOKEN": config.weibo_access_token,
        "GOVCONNECT_CMPP__HOST": urlsplit(base).hostname or "127.0.0.1",
        "GOVCONNECT_CMPP__PORT": str(config.cmpp_port if config.cmpp_port is not None else ""),
        "GOVCONNECT_CMPP__SOURCE_ADDR": config.cmpp_source_addr,
        "GOVCONNECT_CMPP__SHARED_SECRET": config.cmpp_shared_secret,
    }


def point_at_sandbox(settings: Settings, sandbox_url: str) -> Settings:
    """Settings whose every channel talks to the sandbox at `sandbox_url` with its credentials."""
    base = sandbox_url.rstrip("/")
    d = DEFAULTS
    update: dict[str, Any] = {
        "aliyun_sms": settings.aliyun_sms.model_copy(
            update={
                "base_url": f"{base}/dysmsapi/",
                "access_key_id": d.aliyun_access_key_id,
                "access_key_secret": SecretStr(d.aliyun_access_key_secret),
            }
        ),
        "aliyun_voice": settings.aliyun_voice.model_copy(
            update={
                "base_url": f"{base}/dyvmsapi/",
                "access_key_id": d.aliyun_access_key_id,
                "access_key_secret": SecretStr(d.aliyun_access_key_secret),
                "show_number": settings.aliyun_voice.show_number or "057000000",
                "tts_code": settings.aliyun_voice.tts_code
                if settings.aliyun_voice.tts_code[4:].isdigit()
                else "TTS_000000",
            }
        ),
        "wechat_mp": settings.wechat_mp.model_copy(
            update={
                "base_url": f"{base}/wechat/",
                "appid": d.wechat_appid,
                "secret": SecretStr(d.wechat_secret),
                "callback_token": SecretStr(d.wechat_callback_token),
                "template_id": settings.wechat_mp.template_id or "sandbox-template",
            }
        ),
        "wecom": settings.wecom.model_copy(
            update={
                "base_url": f"{base}/wecom/",
                "corpid": d.wecom_corpid,
                "corpsecret": SecretStr(d.wecom_corpsecret),
                "agentid": d.wecom_agentid,
            }
        ),
        "dingtalk": settings.dingtalk.model_copy(
            update={
                "base_url": f"{base}/dingtalk/",
                "appkey": d.dingtalk_appkey,
                "appsecret": SecretStr(d.dingtalk_appsecret),
                "agentid": d.dingtalk_agentid,
            }
        ),
        "weibo": settings.weibo.model_copy(
            update={"base_url": f"{base}/weibo/", "access_token": SecretStr(d.weibo_access_token)}
        ),
        "cmpp": settings.cmpp.model_copy(
            update={
                "host": urlsplit(base).hostname or "127.0.0.1",
                "source_addr": d.cmpp_source_addr,
                "shared_secret": SecretStr(d.cmpp_shared_secret),
            }
        ),
    }
    return settings.model_copy(update=update)


def use_demo_sandbox(settings: Settings, host: str, port: int) -> Settings:
    """For `serve --demo`: mount the sandbox in the gateway app and point every channel at it."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - reach a wildcard bind locally
    gateway = f"http://{local}:{port}"
    settings = point_at_sandbox(settings, gateway + settings.sandbox.mount_path)
    probe = bind_loopback()  # a free port for the CMPP simulator, started with the app
    cmpp_port = probe.getsockname()[1]
    probe.close()
    settings = settings.model_copy(update={"cmpp": settings.cmpp.model_copy(update={"port": cmpp_port})})
    sandbox = settings.sandbox.model_copy(update={"in_process": True, "callback_base_url": gateway})
    # The sandbox is local: ask it about DingTalk tasks often, so the demo shows reading soon after.
    dingtalk = settings.dingtalk.model_copy(
        update={"status_poll_seconds": min(settings.dingtalk.status_poll_seconds, 5.0)}
    )
    return settings.model_copy(update={"sandbox": sandbox, "dingtalk": dingtalk})


def mount_provider_sandbox(app: FastAPI, settings: Settings) -> SandboxState | None:
    """Mount the sandbox under SANDBOX__MOUNT_PATH when SANDBOX__IN_PROCESS is set (cheap: no I/O)."""
    if not settings.sandbox.in_process:
        return None
    config = sandbox_config(settings, settings.sandbox.callback_base_url or settings.public_base_url)
    config.cmpp_port = settings.cmpp.port
    state = SandboxState(config)
    app.mount(settings.sandbox.mount_path, create_sandbox_app(state=state), name="provider_sandbox")
    app.state.provider_sandbox = state

    # A mounted app's own lifespan does not run: start and stop the CMPP simulator with the gateway.
    async def open_sandbox(_: FastAPI) -> None:
        await start_cmpp(state)

    async def close_sandbox(_: FastAPI) -> None:
        await stop_cmpp(state)
        await state.aclose()

    app.state.startup_hooks.append(open_sandbox)
    app.state.shutdown_hooks.append(close_sandbox)
    return state
