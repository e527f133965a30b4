"""JupyterHub's /hub/user-redirect/<path>: a link that opens the same path on whoever follows it."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.inprocess.test_groups_api import log_in


async def test_user_redirect_leads_each_person_to_their_own_server(app_client: TestClient) -> None:
    await log_in(app_client, "alice")
    link = "/hub/user-redirect/git-pull?repo=https%3A%2F%2Fexample.org%2Fcourse&urlpath=lab%2Ftree%2Fweek1.ipynb"
    response = await app_client.get(URL(link, encoded=True), allow_redirects=False)
    assert response.status == 302
    target = URL(response.headers["Location"])
    assert target.path == "/user/alice/git-pull"
    assert dict(target.query) == {"repo": "https://example.org/course", "urlpath": "lab/tree/week1.ipynb"}
    response = await app_client.get("/hub/user-redirect/lab/tree/notes.ipynb", allow_redirects=False)
    assert response.headers["Location"] == "/user/alice/lab/tree/notes.ipynb"


async def test_user_redirect_asks_for_a_login_first_and_keeps_the_link(app_client: TestClient) -> None:
    response = await app_client.get("/hub/user-redirect/lab?x=1", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].startswith("/hub/login?next=")
    assert "user-redirect/lab" in response.headers["Location"]


async def test_user_redirect_does_not_lead_out_of_the_persons_server(app_client: TestClient) -> None:
    await log_in(app_client, "bob")
    for path in ("/hub/user-redirect/x/%2E%2E/%2E%2E/alice/", "/hub/user-redirect/x/../../alice/"):
        response = await app_client.get(URL(path, encoded=True), allow_redirects=False)
        assert not response.headers.get("Location", "").startswith("/user/alice")
        assert response.status in (400, 404)
