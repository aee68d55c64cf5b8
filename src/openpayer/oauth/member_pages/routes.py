"""Installs the member pages under `/{env}/auth/` (called by `openpayer.oauth.routes.install_pages`)."""

from __future__ import annotations

from fastapi import FastAPI

from openpayer.oauth.member_pages import account, gallery


def install(app: FastAPI) -> None:
    auth = "/{env}/auth"
    add = app.add_api_route
    add(f"{auth}/account", account.account, methods=["GET"], include_in_schema=False)
    add(f"{auth}/account/signin", account.signin, methods=["GET", "POST"], include_in_schema=False)
    add(f"{auth}/account/signout", account.signout, methods=["POST"], include_in_schema=False)
    add(f"{auth}/account/revoke", account.revoke, methods=["POST"], include_in_schema=False)
    add(f"{auth}/apps", gallery.gallery, methods=["GET"], include_in_schema=False)
    add(f"{auth}/apps/{{client_id}}/logo", gallery.app_logo, methods=["GET"], include_in_schema=False)
    add(f"{auth}/education", gallery.education, methods=["GET"], include_in_schema=False)
    add(f"{auth}/plan-logo", gallery.plan_logo, methods=["GET"], include_in_schema=False)
