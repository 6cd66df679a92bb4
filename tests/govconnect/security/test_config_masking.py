"""`govconnect config` shows no credentials: every URL's userinfo and secret query values are masked."""

from __future__ import annotations

from pathlib import Path

from govconnect.settings import Settings, mask_url_password
from tests.govconnect.test_cli import run


def test_mask_url_password_forms() -> None:
    assert mask_url_password("postgresql+psycopg://gc:pw1@db/gc") == "postgresql+psycopg://gc:********@db/gc"
    assert mask_url_password("redis://:pw2@redis:6379/0") == "redis://********@redis:6379/0"
    assert mask_url_password("http://tok3n@proxy:3128") == "http://********@proxy:3128"
    assert mask_url_password("https://api.example/?access_token=tok4") == "https://api.example/?access_token=***"
    assert mask_url_password("https://api.weixin.qq.com/") == "https://api.weixin.qq.com/"
    assert mask_url_password("http://host/a@b") == "http://host/a@b"  # an @ in the path is not userinfo


def test_config_masks_every_url_userinfo(tmp_path: Path) -> None:
    env = {
        "GOVCONNECT_DATA_DIR": str(tmp_path),
        "GOVCONNECT_SECRET_KEY": "cli-test-secret",
        "GOVCONNECT_DATABASE_URL": "postgresql://gc:dbpass-1@db.internal/gc",
        "GOVCONNECT_REDIS_URL": "redis://:redispass-2@redis.internal:6379/0",
        "GOVCONNECT_PROVIDER_PROXY": "http://proxyuser:proxypass-3@proxy.internal:3128",
        "GOVCONNECT_WEIBO__BASE_URL": "https://weibo-user:weibopass-4@api.weibo.com/",
    }
    out = run(["config"], env).stdout + run(["config", "--json"], env).stdout
    for secret in ("dbpass-1", "redispass-2", "proxypass-3", "weibopass-4", "cli-test-secret"):
        assert secret not in out, secret
    assert "proxyuser:********@proxy.internal:3128" in out and "gc:********@db.internal" in out


def test_masked_settings_keep_plain_values() -> None:
    values = Settings(public_base_url="https://gov.example.cn").masked()
    assert values["PUBLIC_BASE_URL"] == "https://gov.example.cn"
