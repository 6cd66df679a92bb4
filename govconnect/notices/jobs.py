"""Imports every notice job module so the job registry (and arq's function list) is complete."""

from __future__ import annotations

import govconnect.notices.agency_callbacks  # noqa: F401
import govconnect.notices.dingtalk_status  # noqa: F401
import govconnect.notices.escalation  # noqa: F401
import govconnect.notices.fanout  # noqa: F401
import govconnect.notices.receipt_pull  # noqa: F401
import govconnect.notices.sending  # noqa: F401
import govconnect.notices.sweeper  # noqa: F401
