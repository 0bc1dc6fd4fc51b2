"""``cove keys``, ``cove tokens``, ``cove usage`` and ``cove audit``, run as an admin and a tenant run them."""

from __future__ import annotations

import json

from tests.cli.conftest import cove
from tests.conftest import CoveServer


def test_the_admin_makes_a_tenant_who_uses_its_key_and_loses_it(server: CoveServer) -> None:
    made = cove(server, "keys", "create", "cli tenant", "-q", "running_sandboxes=2", "--quota", "max_memory_mb=1024")
    secret = made.stdout.strip()
    key_id = made.stderr.split(" ", 1)[0]
    assert secret.startswith("cove_") and key_id.startswith("key_")
    assert "2 sandboxes" in made.stderr and "mem 1024M" in made.stderr
    listed = cove(server, "keys", "ls").stdout
    assert key_id in listed and "cli tenant" in listed and secret not in listed
    keys = json.loads(cove(server, "keys", "ls", "--json").stdout)
    assert {k["id"]: k["quotas"]["running_sandboxes"] for k in keys if k["id"] == key_id} == {key_id: 2}

    tenant = {"COVE_API_KEY": secret}
    sandbox = cove(server, "sandbox", "create", "--network", "none", env=tenant).stdout.strip()
    usage = cove(server, "usage", env=tenant).stdout
    assert key_id in usage and "1 of 2" in usage and "mem 1024M" in usage
    token = cove(server, "tokens", "create", sandbox, "--scope", "read", "--ttl", "60", env=tenant).stdout.strip()
    assert token.startswith("cove_tok_")
    assert cove(server, "sandbox", "info", sandbox, env={"COVE_API_KEY": token}).returncode == 0
    refused = cove(server, "sandbox", "kill", sandbox, env={"COVE_API_KEY": token}, check=False)
    assert refused.returncode == 1 and "forbidden" in refused.stderr and "API key" in refused.stderr
    [listed_token] = json.loads(cove(server, "tokens", "ls", "--json", env=tenant).stdout)
    assert cove(server, "tokens", "rm", listed_token["id"], env=tenant).stdout.strip().endswith("revoked")
    assert json.loads(cove(server, "tokens", "ls", "--json", env=tenant).stdout) == []
    denied = cove(server, "keys", "ls", env=tenant, check=False)
    assert denied.returncode == 1 and "admin key" in denied.stderr

    assert sandbox in cove(server, "sandbox", "ls", "--tenant", key_id).stdout
    assert sandbox not in cove(server, "sandbox", "ls", "--tenant", "key_000000000000").stdout
    trail = json.loads(cove(server, "audit", "--tenant", key_id, "--since", "10m", "--json").stdout)
    assert [e["action"] for e in trail if e["status"] < 400] == [
        "tokens.revoke_token",
        "tokens.create_token",
        "sandboxes.create_sandbox",
    ]
    assert "sandboxes.create_sandbox" in cove(server, "audit", "--action", "sandboxes.create_sandbox").stdout

    assert "3 sandboxes" in cove(server, "keys", "quotas", key_id, "-q", "running_sandboxes=3").stdout
    assert cove(server, "keys", "rm", key_id).stdout.strip() == f"{key_id} revoked"
    gone = cove(server, "sandbox", "ls", env=tenant, check=False)
    assert gone.returncode == 1 and "unauthorized" in gone.stderr
    cove(server, "sandbox", "kill", sandbox)


def test_a_quota_option_names_what_it_takes(server: CoveServer) -> None:
    wrong = cove(server, "keys", "create", "x", "--quota", "sandboxes=2", check=False)
    assert wrong.returncode == 2 and "running_sandboxes" in wrong.stderr
    wrong = cove(server, "keys", "create", "x", "--quota", "running_sandboxes=many", check=False)
    assert wrong.returncode == 2 and "not a number" in wrong.stderr
