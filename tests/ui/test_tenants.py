"""Tenants in the browser: a tenant's key sees its own sandboxes only; the admin's sees every tenant's, with a
Tenant column and filter."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import CoveServer, new_tenant
from tests.ui.conftest import sign_in


def test_a_tenant_sees_its_own_sandboxes_and_the_admin_filters_by_tenant(page: Page, server: CoveServer) -> None:
    alice, bob = new_tenant(server, "alice"), new_tenant(server, "bob")
    made = {}
    for tenant in (alice, bob):
        with server.http(api_key=tenant.key) as client:
            made[tenant.id] = client.post("/v1/sandboxes", json={"network": "none"}).json()["id"]
    try:
        sign_in(page, server, key=alice.key)
        expect(page.get_by_role("link", name=made[alice.id])).to_be_visible()
        expect(page.get_by_role("link", name=made[bob.id])).to_have_count(0)
        expect(page.get_by_label("Tenant")).to_have_count(0)
        expect(page.get_by_role("columnheader", name="Tenant")).to_have_count(0)

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, server)
        for sandbox in made.values():
            expect(page.get_by_role("link", name=sandbox)).to_be_visible()
        expect(page.get_by_role("columnheader", name="Tenant")).to_be_visible()
        page.get_by_label("Tenant").fill(bob.id)
        expect(page.get_by_role("link", name=made[alice.id])).to_have_count(0)
        expect(page.get_by_role("link", name=made[bob.id])).to_be_visible()
        expect(page.get_by_role("row", name=made[bob.id])).to_contain_text(bob.id)
    finally:
        with server.http() as client:
            for sandbox in made.values():
                client.delete(f"/v1/sandboxes/{sandbox}")
