"""The UI's shell: sign-in through the form, the layout, the language switch, sign-out, and the
refusals (no session, CSRF) — against the real server in a real browser."""

from __future__ import annotations

import re

import httpx


def test_sign_in_with_a_token_then_switch_language_and_sign_out(ui, signed_in, shot, axe_check):
    page = signed_in(token=False)
    page.goto("/ui/")
    page.wait_for_url(re.compile(r"/ui/signin\?next=/ui/"))  # no session: sent to sign in
    assert "token" not in page.url.split("?", 1)[1].replace("next", "")
    axe_check(page)
    shot(page, "signin")
    page.keyboard.press("Tab")  # keyboard first: the skip link, visibly focused
    active = "document.activeElement"
    focused = page.evaluate(f"() => [{active}.className, getComputedStyle({active}).outline]")
    assert focused[0] == "skip" and "solid" in focused[1] and "3px" in focused[1]
    page.fill("#token", "mw_0123456789abcdef_" + "A" * 43)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#signin-error:not([hidden])")
    page.fill("#token", ui.admin_token)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("h1:text('Your projects')")
    cookie = next(c for c in page.context.cookies() if c["name"] == "mw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
    assert ui.admin_token not in page.url and cookie["value"] != ui.admin_token
    axe_check(page)
    page.click("button[data-lang='zh-CN']")
    page.wait_for_selector("h1:text('你的项目')")
    assert page.get_attribute("html", "lang") == "zh-CN"
    shot(page, "projects-zh")
    page.click("header form[action='/ui/signout'] button")
    page.wait_for_url(re.compile(r"/ui/signin"))
    # The session's token was revoked: replaying the old cookie is refused.
    r = httpx.get(ui.url + "/ui/", cookies={"mw_session": cookie["value"]}, headers={"Accept": "text/html"})
    assert r.status_code == 303 and "/ui/signin" in r.headers["location"]


def test_pages_carry_the_security_headers(ui, signed_in):
    page = signed_in()
    response = page.goto("/ui/")
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_a_state_change_without_the_csrf_token_is_refused(ui, world, signed_in):
    page = signed_in()
    page.goto("/ui/")
    upload = f"/ui/p/{world['project']}/datasets/forged/upload?filename=a.csv"
    refused = page.context.request.post(upload, data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert refused.status == 403 and "CSRF" in refused.text()
    assert "forged" not in str(ui.client().datasets(world["project"]))
    refused = page.context.request.post("/ui/signout", form={"csrf_token": "forged"})
    assert refused.status == 403 and "CSRF" in refused.text()
    missing = page.context.request.post("/ui/signout")
    assert missing.status == 403
    token = page.get_attribute("meta[name=csrf-token]", "content")
    ok = page.context.request.post("/ui/signout", form={"csrf_token": token}, max_redirects=0)
    assert ok.status == 303
