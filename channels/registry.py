"""Provider names → adapter classes (which providers serve which channel: channels/catalogue.py)."""

from __future__ import annotations

from channels.aliyun_sms import AliyunSms
from channels.aliyun_voice import AliyunVoice
from channels.base import Channel
from channels.catalogue import CHANNEL_PROVIDERS
from channels.cmpp import CmppChannel
from channels.dingtalk import Dingtalk
from channels.wechat_mp import WechatMp
from channels.wecom import Wecom
from channels.weibo import Weibo

PROVIDERS: dict[str, type[Channel]] = {
    "aliyun_sms": AliyunSms,
    "cmpp": CmppChannel,
    "aliyun_voice": AliyunVoice,
    "wechat_mp": WechatMp,
    "wecom": Wecom,
    "dingtalk": Dingtalk,
    "weibo": Weibo,
}


def provider_class(name: str) -> type[Channel]:
    """The adapter class for a provider name; KeyError for an unknown one."""
    return PROVIDERS[name]


def providers_for(channel: str) -> list[str]:
    """The registered providers of a channel, preferred first; KeyError for an unknown channel."""
    return [name for name in CHANNEL_PROVIDERS[channel] if name in PROVIDERS]
