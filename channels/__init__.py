"""Provider adapters (SMS, voice, WeChat, WeCom, Weibo) and the provider sandbox.

Knows nothing of GovConnect's database or API: plain messages in, canonical outcomes out.
"""
