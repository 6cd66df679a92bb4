"""`python -m channels.sandbox [port] [--no-limits]`: the sandbox alone, without the gateway (bench)."""

from __future__ import annotations

import sys

import uvicorn

from channels.sandbox import SandboxConfig, create_sandbox_app


def main(argv: list[str]) -> None:
    """Run on 127.0.0.1:PORT; --no-limits lifts Weibo's hourly, voice per-callee and DingTalk daily limits."""
    port = int(argv[0]) if argv and argv[0].isdigit() else 8900
    config = SandboxConfig(report_delay=0.5)
    if "--no-limits" in argv:
        config.weibo_posts_per_hour = 10**9
        config.voice_limits = ()
        config.dingtalk_daily_per_user = 10**9
    uvicorn.run(create_sandbox_app(config), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
