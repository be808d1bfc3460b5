"""The web app as the compose file runs it: gunicorn with web/gunicorn.conf.py and
``web:create_app()``, configured from the environment only, in processes of its own. Answers the
health check and the API (a token made through the same database), and a bad request is a 4xx."""

from __future__ import annotations

import pytest
import requests

from shared.platform.settings import Settings
from shared.store.migrate import upgrade
from tests.conftest import private_redis
from tests.support.stack import GunicornServer

pytestmark = pytest.mark.integration


def test_gunicorn_serves_the_api_from_environment_settings(sqlite_url, tmp_path):
    from web import create_app
    from web.auth import create_token, create_user
    from web.extensions import services

    upgrade(sqlite_url)
    with private_redis("gunicorn") as redis_url:
        settings = Settings(database_url=sqlite_url, redis_url=redis_url, model="tiny-random",
                            weights_dir=str(tmp_path / "weights"))
        local = create_app(settings)  # the same database: make a user and a token
        with services(local).sessions.begin() as session:
            token = create_token(session, create_user(session, "deploy"))
        services(local).close()
        server = GunicornServer(settings, tmp_path / "gunicorn.log")
        try:
            assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
            auth = {"Authorization": f"Bearer {token}"}
            page = requests.get(server.url + "/api/v1/batches", headers=auth, timeout=5)
            assert page.status_code == 200 and page.json()["total"] == 0
            assert requests.get(server.url + "/api/v1/batches", timeout=5).status_code == 401
            bad = requests.get(server.url + "/api/v1/batches?per_page=x", headers=auth, timeout=5)
            assert bad.status_code == 400 and bad.json()["error"]["code"]
        finally:
            server.stop()
        log = (tmp_path / "gunicorn.log").read_text(errors="replace")
        assert "Booting worker" in log and "Traceback" not in log
