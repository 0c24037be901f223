"""Sign-in with the server's tokens (HttpOnly, SameSite=Strict cookie) and CSRF, over real HTTP."""

from __future__ import annotations

from runhistory import Experiment, Workspace
from runhistory.core.status import JOB_RUN_TYPE, RunStatus

from tests.helpers import served
from tests.ui.pages_support import client, csrf_of, ui_app_for


def job_run(ws: Workspace) -> str:
    """A running job run (what the cancel button acts on)."""
    experiment = ws.store.get_or_create_experiment("jobs")
    return ws.store.create_run(experiment.id, display_name="job", run_type=JOB_RUN_TYPE, status=RunStatus.RUNNING).id


def test_with_tokens_pages_redirect_to_signin_and_json_answers_401(embedded: Workspace) -> None:
    _record, token = embedded.store.tokens().create("alice")
    Experiment(embedded, "exp").start_logging().complete()
    with served(ui_app_for(embedded)) as url, client(url) as http:
        page = http.get("/experiments/exp?filter=x")
        assert page.status_code == 303 and page.headers["location"] == "/signin?next=/experiments/exp%3Ffilter%3Dx"
        assert http.get("/ui/api/compare?runs=x").status_code == 401
        assert http.get("/ui/static/app.css").status_code == 200  # static files need nothing
        signin = http.get("/signin?next=/")
        assert signin.status_code == 200 and 'id="token" type="password"' in signin.text and 'id="signin"' in signin.text
        # the API keeps its bearer tokens exactly: a session cookie is no API token
        assert http.get("/api/v1/experiments").status_code == 401
        assert http.get("/api/v1/experiments", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_bad_token_shows_the_form_again_with_an_error(embedded: Workspace) -> None:
    embedded.store.tokens().create("alice")
    with served(ui_app_for(embedded)) as url, client(url) as http:
        answer = http.post("/signin", data={"token": "rh_not-a-token", "next": "/"})
        assert answer.status_code == 401 and 'id="signin-error"' in answer.text
        assert "runhistory_session" not in answer.headers.get("set-cookie", "")


def test_signing_in_sets_a_strict_httponly_cookie_and_opens_the_pages(embedded: Workspace) -> None:
    _record, token = embedded.store.tokens().create("alice")
    Experiment(embedded, "exp").start_logging().complete()
    with served(ui_app_for(embedded)) as url, client(url) as http:
        answer = http.post("/signin", data={"token": token, "next": "/experiments/exp"})
        assert answer.status_code == 303 and answer.headers["location"] == "/experiments/exp"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("runhistory_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on loopback; https requests get Secure
        page = http.get("/experiments/exp")
        assert page.status_code == 200 and 'id="runs"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        out = http.post("/signout")
        assert out.status_code == 303
        http.cookies.clear()
        assert http.get("/").status_code == 303


def test_a_revoked_token_closes_its_session(embedded: Workspace) -> None:
    record, token = embedded.store.tokens().create("alice")
    with served(ui_app_for(embedded)) as url, client(url) as http:
        http.post("/signin", data={"token": token})
        assert http.get("/").status_code == 200
        embedded.store.tokens().revoke(record.id)
        assert http.get("/").status_code == 303
        assert http.get("/ui/api/runs/x").status_code == 401


def test_next_never_leaves_the_site(embedded: Workspace) -> None:
    _record, token = embedded.store.tokens().create("alice")
    with served(ui_app_for(embedded)) as url, client(url) as http:
        for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            answer = http.post("/signin", data={"token": token, "next": bad})
            assert answer.headers["location"] == "/", bad


def test_changes_need_the_csrf_token_with_tokens(embedded: Workspace) -> None:
    _record, token = embedded.store.tokens().create("alice")
    run_id = job_run(embedded)
    with served(ui_app_for(embedded)) as url, client(url) as http:
        http.post("/signin", data={"token": token})
        csrf = csrf_of(http.get(f"/runs/{run_id}").text)
        assert http.post(f"/ui/api/runs/{run_id}/cancel").status_code == 403
        assert http.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": "0" * 64}).status_code == 403
        assert embedded.store.get_run(run_id).status == RunStatus.RUNNING
        answer = http.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 200 and answer.json()["status"] == RunStatus.CANCEL_REQUESTED


def test_without_tokens_no_signin_but_csrf_still_checked(embedded: Workspace) -> None:
    run_id = job_run(embedded)
    with served(ui_app_for(embedded)) as url, client(url) as http:
        page = http.get(f"/runs/{run_id}")
        assert page.status_code == 200 and 'id="cancel-run"' in page.text
        assert http.get("/signin").status_code == 303  # nothing to sign in to
        assert http.post(f"/ui/api/runs/{run_id}/cancel").status_code == 403
        answer = http.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": csrf_of(page.text)})
        assert answer.json()["status"] == RunStatus.CANCEL_REQUESTED
        again = http.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": csrf_of(page.text)})
        assert again.status_code == 200 and again.json()["status"] == RunStatus.CANCEL_REQUESTED


def test_a_signin_form_posted_from_another_site_is_refused(embedded: Workspace) -> None:
    _record, token = embedded.store.tokens().create("alice")
    with served(ui_app_for(embedded)) as url, client(url) as http:
        forged = http.post("/signin", data={"token": token}, headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403 and "runhistory_session" not in forged.headers.get("set-cookie", "")
        own = http.post("/signin", data={"token": token}, headers={"Origin": url})
        assert own.status_code == 303 and own.headers["set-cookie"].startswith("runhistory_session=")


def test_without_sign_in_only_loopback_host_names_are_answered(embedded: Workspace) -> None:
    with served(ui_app_for(embedded)) as url, client(url) as http:
        assert http.get("/").status_code == 200
        assert http.get("/", headers={"Host": "localhost"}).status_code == 200
        rebound = http.get("/", headers={"Host": "attacker.example:5200"})
        assert rebound.status_code == 403 and "loopback" in rebound.text
        assert http.get("/ui/api/runs/x", headers={"Host": "attacker.example"}).json()["error"] == "foreign_host"
