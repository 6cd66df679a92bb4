"""Every channel in one table: what it reaches, which providers serve it, whether it reports delivery.

A new channel (DingTalk, say) is one entry here plus its adapter; the notice pipeline, templates,
limits, schemas (a meta-test compares them) and the sandbox read their lists from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ChannelInfo:
    """One channel."""

    name: str
    label: str  # what the office calls it
    reaches: Literal["people", "public"]  # people: one delivery per recipient; public: one post for everyone
    providers: tuple[str, ...] = ()  # preferred first (SMS fails over); none: published by the gateway itself
    receipts: bool = False  # providers report delivery later (else a send is final)
    max_length: int | None = None  # characters a message may have on this channel
    subscribable: bool = False  # citizens can ask to receive notices this way
    text_variant: bool = False  # a message template may give this channel its own text
    answers_meetings: bool = False  # its recipients can answer a meeting notice (SMS 1/2, or the linked 回执 page)


CATALOGUE: tuple[ChannelInfo, ...] = (
    ChannelInfo(
        "sms",
        "短信",
        "people",
        ("aliyun_sms", "cmpp"),
        True,
        500,
        subscribable=True,
        text_variant=True,
        answers_meetings=True,
    ),
    ChannelInfo("voice", "语音电话", "people", ("aliyun_voice",), True, 300, subscribable=True, text_variant=True),
    # WeChat template messages fill the official account's own template: no free text variant.
    ChannelInfo("wechat", "微信", "people", ("wechat_mp",), True, 200, subscribable=True),
    ChannelInfo("wecom", "企业微信", "people", ("wecom",), max_length=2000, text_variant=True, answers_meetings=True),
    # DingTalk work notices: 2048 bytes a message (about 600 Chinese characters with the title); the
    # send is asynchronous, so delivery (and reading) is learnt later from getsendresult.
    ChannelInfo("dingtalk", "浙政钉", "people", ("dingtalk",), True, 600, text_variant=True, answers_meetings=True),
    ChannelInfo("weibo", "政务微博", "public", ("weibo",), max_length=2000, text_variant=True),
    ChannelInfo("site", "政务网站", "public", text_variant=True),  # /tv/ shows the site's text
    ChannelInfo("tv", "数字电视", "public"),
)
BY_NAME = {info.name: info for info in CATALOGUE}

CHANNEL_NAMES: tuple[str, ...] = tuple(info.name for info in CATALOGUE)
PEOPLE_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.reaches == "people")
PUBLIC_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.reaches == "public")
# Sends on these are final (no delivery report will follow).
NO_RECEIPT_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.providers and not info.receipts)
# Channels the gateway publishes itself (no provider adapter).
PUBLISH_ONLY_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if not info.providers)
CHANNEL_LIMITS: dict[str, int] = {info.name: info.max_length for info in CATALOGUE if info.max_length}
CHANNEL_PROVIDERS: dict[str, tuple[str, ...]] = {info.name: info.providers for info in CATALOGUE if info.providers}
SUBSCRIBER_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.subscribable)
TEXT_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.text_variant)
MEETING_ANSWER_CHANNELS: tuple[str, ...] = tuple(info.name for info in CATALOGUE if info.answers_meetings)
PROVIDER_NAMES: tuple[str, ...] = tuple(dict.fromkeys(p for info in CATALOGUE for p in info.providers))
