"""Worker metrics reach Prometheus; the shipped alert rules and Grafana dashboard load and use real metrics."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import yaml

from channels.base import SendResult
from govconnect.operations.health import MemoryHealthStore, ProviderHealth
from govconnect.operations.worker_metrics import start_worker_metrics
from govconnect.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "govconnect.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_worker_serves_its_own_metrics_and_a_second_takes_the_next_port(tmp_path: Path) -> None:
    base = free_port()
    settings = Settings(data_dir=tmp_path, monitoring={"worker_metrics_port": base})
    first = start_worker_metrics(settings, host="127.0.0.1")
    second = start_worker_metrics(settings, host="127.0.0.1")
    assert first == base and second is not None and second > base
    health = ProviderHealth(MemoryHealthStore(), failures_to_open=1, cooldown_seconds=60)
    await health.record("aliyun_sms", [SendResult.retryable("r1", "http_503")], calls=1, seconds=0.2)
    async with httpx.AsyncClient(timeout=5) as client:
        scraped = (await client.get(f"http://127.0.0.1:{first}/metrics")).text
    assert 'govconnect_provider_messages_total{provider="aliyun_sms",result="fault"}' in scraped
    assert 'govconnect_provider_circuit_open{provider="aliyun_sms"} 1.0' in scraped
    assert start_worker_metrics(Settings(data_dir=tmp_path, monitoring={"worker_metrics_port": 0})) is None


def exported_metric_names() -> set[str]:
    """Every metric name our code defines (Counter/Gauge/Histogram and collector families)."""
    names: set[str] = set()
    for path in list((ROOT / "govconnect").rglob("*.py")) + list((ROOT / "channels").rglob("*.py")):
        for match in re.finditer(r'(?:Counter|Gauge|Histogram|MetricFamily)\(\s*"([a-z_]+)"', path.read_text()):
            base = match.group(1)
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def test_alert_rules_load_and_reference_real_metrics() -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"ProviderFailureRateHigh", "QueueAgeHigh", "NoReceipts", "FeedStale"} <= set(alerts)
    known = exported_metric_names()
    for name, rule in alerts.items():
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("warning", "critical")
        used = set(re.findall(r"\b(govconnect_[a-z_]+)", rule["expr"]))
        assert used <= known, (name, used - known)
        assert used or rule["expr"].startswith("up{"), name  # only the scrape-health rule uses no metric of ours
    promtool = shutil.which("promtool")
    if promtool:  # the real checker when it is installed; the parse above otherwise
        checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_dashboard_queries_real_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["panels"]
    known = exported_metric_names()
    targets = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(targets) >= 6
    for expr in targets:
        used = set(re.findall(r"\b(govconnect_[a-z_]+)", expr))
        assert used and used <= known, (expr, used - known)
    assert "agency" in json.dumps(dashboard)  # the per-agency panel
