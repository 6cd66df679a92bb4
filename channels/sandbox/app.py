"""The provider sandbox as one Starlette app: each provider's endpoints plus `/_sandbox` control.

Paths (each base URL setting points at one prefix):
  /dysmsapi/ and /dyvmsapi/ (or /)   Alibaba Cloud RPC (SendSms, SendBatchSms, SingleCallByTts)
  /wechat/cgi-bin/...                WeChat official account
  /wecom/cgi-bin/...                 WeCom
  /dingtalk/gettoken, /dingtalk/topapi/...  DingTalk (钉钉 / 浙政钉) work notices
  /weibo/2/statuses/share.json       Weibo (and destroy.json)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.catalogue import PROVIDER_NAMES
from channels.sandbox import aliyun, control, dingtalk, wechat, weibo
from channels.sandbox.state import SandboxConfig, SandboxState


async def index(request: Request) -> Response:
    """GET /_sandbox: what this sandbox is."""
    state: SandboxState = request.app.state.sandbox
    return JSONResponse(
        {
            "sandbox": "GovConnect provider sandbox",
            "callback_base_url": state.config.callback_base_url,
            "providers": [p for p in PROVIDER_NAMES if p != "cmpp"],  # CMPP: cmpp_port
            "cmpp_port": state.cmpp.port if state.cmpp is not None else None,
        }
    )


DINGTALK_MESSAGES = "/dingtalk/topapi/message/corpconversation"


def routes() -> list[Route]:
    """Every sandbox route."""
    rpc_methods = ["GET", "POST"]
    return [
        Route("/", aliyun.rpc, methods=rpc_methods),
        Route("/dysmsapi/", aliyun.rpc, methods=rpc_methods),
        Route("/dyvmsapi/", aliyun.rpc, methods=rpc_methods),
        Route("/wechat/cgi-bin/token", wechat.mp_token, methods=["GET"]),
        Route("/wechat/cgi-bin/message/template/send", wechat.mp_template_send, methods=["POST"]),
        Route("/wecom/cgi-bin/gettoken", wechat.wecom_token, methods=["GET"]),
        Route("/wecom/cgi-bin/message/send", wechat.wecom_send, methods=["POST"]),
        Route("/dingtalk/gettoken", dingtalk.gettoken, methods=["GET"]),
        Route(f"{DINGTALK_MESSAGES}/asyncsend_v2", dingtalk.asyncsend_v2, methods=["POST"]),
        Route(f"{DINGTALK_MESSAGES}/getsendprogress", dingtalk.getsendprogress, methods=["POST"]),
        Route(f"{DINGTALK_MESSAGES}/getsendresult", dingtalk.getsendresult, methods=["POST"]),
        Route("/weibo/2/statuses/share.json", weibo.share, methods=["POST"]),
        Route("/weibo/2/statuses/destroy.json", weibo.destroy, methods=["POST"]),
        Route("/_sandbox", index, methods=["GET"]),
        Route("/_sandbox/messages", control.messages, methods=["GET"]),
        Route("/_sandbox/counts", control.counts, methods=["GET"]),
        Route("/_sandbox/faults", control.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/reset", control.reset, methods=["POST"]),
        Route("/_sandbox/pushes", control.pushes, methods=["GET"]),
        Route("/_sandbox/drain", control.drain, methods=["POST"]),
        Route("/_sandbox/sms/inbox", control.sms_inbox, methods=["GET"]),
        Route("/_sandbox/sms/reply", control.sms_reply, methods=["POST"]),
        Route("/_sandbox/wechat/follow", control.wechat_follow, methods=["POST"]),
        Route("/_sandbox/wecom/invalid_users", control.wecom_invalid_users, methods=["GET", "POST"]),
        Route("/_sandbox/dingtalk/invalid_users", control.dingtalk_invalid_users, methods=["GET", "POST"]),
        Route("/_sandbox/dingtalk/read", control.dingtalk_read, methods=["POST"]),
        Route("/_sandbox/weibo/timeline", control.weibo_timeline, methods=["GET"]),
    ]


async def start_cmpp(state: SandboxState) -> None:
    """Start the CMPP ISMG simulator when the config asks for one (shares inbox and counts)."""
    if state.config.cmpp_port is None or state.cmpp is not None:
        return
    from channels.sandbox.cmpp_server import CmppSimulator

    state.cmpp = await CmppSimulator(
        source_addr=state.config.cmpp_source_addr,
        shared_secret=state.config.cmpp_shared_secret,
        port=state.config.cmpp_port,
        report_delay=state.config.report_delay,
        service_number=state.config.cmpp_service_number,
        service_id=state.config.cmpp_service_id,
        keep=state.config.keep_messages,
    ).start()


async def stop_cmpp(state: SandboxState) -> None:
    """Stop the CMPP simulator if it runs."""
    if state.cmpp is not None:
        await state.cmpp.stop()
        state.cmpp = None


def create_sandbox_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Starlette:
    """A sandbox app; pass `state` to share it (with a CMPP server, or to inspect it in-process)."""
    state = state or SandboxState(config or SandboxConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await start_cmpp(state)
        try:
            yield
        finally:
            await stop_cmpp(state)
            await state.aclose()

    app = Starlette(routes=routes(), lifespan=lifespan)
    app.state.sandbox = state
    return app
