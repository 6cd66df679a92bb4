"""Settings → channel adapter configs and adapters: the only place that knows both sides."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from channels.aliyun_sms import AliyunSms, AliyunSmsConfig
from channels.aliyun_voice import CALLEE_LIMITS, AliyunVoice, AliyunVoiceConfig
from channels.base import Channel
from channels.cmpp import CmppChannel, CmppConfig
from channels.dingtalk import Dingtalk, DingtalkConfig
from channels.registry import PROVIDERS
from channels.shared_windows import RedisCalleeLimiter, RedisPostWindow
from channels.tokens import MemoryTokenStore, RedisTokenStore, TokenStore
from channels.wechat_mp import WechatMp, WechatMpConfig
from channels.wecom import Wecom, WecomConfig
from channels.weibo import Weibo, WeiboConfig
from govconnect.settings import Settings

# Adapters run inside jobs: explicit, short timeouts (Alibaba advises ≥ 1 s for SMS).
PROVIDER_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
_MEMORY_TOKENS = MemoryTokenStore()  # one per process when no Redis is configured


def provider_http_client(proxy: str | None = None) -> httpx.AsyncClient:
    """The HTTP client adapters share: httpx's interface over aiohttp's connection pool.

    Adapters keep speaking httpx; the connections are aiohttp's (httpx-aiohttp). httpcore's
    own pool looks at every pooled connection on each request and response, and with 50
    WeChat sends in flight a worker spent more time choosing a connection than sending: the
    aiohttp transport costs less than half as much CPU per request here. Up to 100
    connections, all kept alive. With its own transport httpx no longer reads HTTPS_PROXY:
    an egress proxy is given as PROVIDER_PROXY.
    """
    transport = AiohttpTransport(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        proxy=httpx.Proxy(proxy) if proxy else None,
    )
    return httpx.AsyncClient(timeout=PROVIDER_TIMEOUT, transport=transport)


def callback_token(settings: Settings) -> str:
    """The token provider callbacks carry as ?token=: CALLBACK_TOKEN, or one derived from SECRET_KEY."""
    configured = settings.callback_token.get_secret_value()
    if configured:
        return configured
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"govconnect-provider-callbacks", hashlib.sha256).hexdigest()[:32]


def config_for(provider: str, settings: Settings) -> Any:
    """The adapter config for a provider, from settings; KeyError for an unknown provider."""
    if provider == "aliyun_sms":
        s = settings.aliyun_sms
        return AliyunSmsConfig(
            s.base_url, s.access_key_id, s.access_key_secret.get_secret_value(), s.sign_name, s.template_code
        )
    if provider == "aliyun_voice":
        v = settings.aliyun_voice
        return AliyunVoiceConfig(
            v.base_url, v.access_key_id, v.access_key_secret.get_secret_value(), v.show_number, v.tts_code
        )
    if provider == "wechat_mp":
        w = settings.wechat_mp
        return WechatMpConfig(w.base_url, w.appid, w.secret.get_secret_value(), w.template_id)
    if provider == "wecom":
        c = settings.wecom
        return WecomConfig(c.base_url, c.corpid, c.corpsecret.get_secret_value(), c.agentid)
    if provider == "dingtalk":
        t = settings.dingtalk
        return DingtalkConfig(t.base_url, t.appkey, t.appsecret.get_secret_value(), t.agentid)
    if provider == "weibo":
        return WeiboConfig(
            settings.weibo.base_url,
            settings.weibo.access_token.get_secret_value(),
            posts_per_hour=settings.weibo.posts_per_hour,
        )
    if provider == "cmpp":
        m = settings.cmpp
        return CmppConfig(
            host=m.host,
            port=m.port,
            source_addr=m.source_addr,
            shared_secret=m.shared_secret.get_secret_value(),
            service_id=m.service_id,
            src_id=m.src_id,
            sign_name=settings.aliyun_sms.sign_name,
        )
    raise KeyError(provider)


def build_channel(provider: str, settings: Settings, client: httpx.AsyncClient, redis: Any = None) -> Channel:
    """An adapter for `provider`; with a Redis client, tokens are shared by every worker process.

    CMPP keeps its own TCP link (no HTTP client): set `on_receipt` / `on_reply` on it, and keep one
    per process, since each instance holds a login to the ISMG.
    """
    if provider not in PROVIDERS:
        raise KeyError(provider)
    store: TokenStore = RedisTokenStore(redis) if redis is not None else _MEMORY_TOKENS
    config = config_for(provider, settings)
    if provider == "aliyun_sms":
        return AliyunSms(config, client)
    if provider == "cmpp":
        return CmppChannel(config)
    if provider == "aliyun_voice":
        if redis is not None:  # every worker shares the per-callee windows
            limiter = RedisCalleeLimiter(redis, f"{settings.queue_name}:voice-callee:", CALLEE_LIMITS)
            return AliyunVoice(config, client, limiter)
        return AliyunVoice(config, client)
    if provider == "wechat_mp":
        return WechatMp(config, client, store)
    if provider == "wecom":
        return Wecom(config, client, store)
    if provider == "dingtalk":
        return Dingtalk(config, client, store)
    if redis is not None:  # every worker shares the account's posts an hour
        return Weibo(
            config, client, RedisPostWindow(redis, f"{settings.queue_name}:weibo-posts", config.posts_per_hour)
        )
    return Weibo(config, client)
