"""`govconnect agency policy` and `staff create --phone`, run as a user would (a real subprocess)."""

from __future__ import annotations

from tests.govconnect.test_cli import cli_env, run  # noqa: F401 - fixture


def test_agency_policy_shows_changes_and_refuses_bad_values(cli_env: dict[str, str]) -> None:  # noqa: F811
    run(["agency", "create", "衢州市应急管理局", "--code", "qz-yjj"], cli_env)
    shown = run(["agency", "policy", "qz-yjj"], cli_env).stdout
    assert "require_approval=none" in shown and "approvers=1" in shown
    changed = run(
        ["agency", "policy", "qz-yjj", "--require-approval", "large", "--large-audience", "5000", "--approvers", "2"],
        cli_env,
    ).stdout
    assert "require_approval=large" in changed and "large_audience=5000" in changed and "approvers=2" in changed
    assert "require_approval=large" in run(["agency", "policy", "qz-yjj"], cli_env).stdout
    bad = run(["agency", "policy", "qz-yjj", "--require-approval", "sometimes"], cli_env, check=False)
    assert bad.returncode != 0 and "none|public|large|all" in bad.stderr and "Traceback" not in bad.stderr
    zero = run(["agency", "policy", "qz-yjj", "--approvers", "0"], cli_env, check=False)
    assert zero.returncode != 0 and "approvers" in zero.stderr
    missing = run(["agency", "policy", "nope"], cli_env, check=False)
    assert missing.returncode != 0 and "no agency" in missing.stderr
    approver = ["staff", "create", "zhaoqiang", "--agency", "qz-yjj", "--role", "approver", "--password", "s3cret-pass"]
    assert "approver zhaoqiang" in run([*approver, "--phone", "13900000009"], cli_env).stdout
    bad_phone = run([*approver[:2], "lisi", *approver[3:], "--phone", "12345"], cli_env, check=False)
    assert bad_phone.returncode != 0 and "invalid mobile number" in bad_phone.stderr
