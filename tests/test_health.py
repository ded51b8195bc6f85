from app.config import Config


def test_healthz_is_green_against_the_real_database(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database():
    from app.service import create_app

    app = create_app(Config.from_env({"ZR_ENV": "development", "ZR_DB_PORT": "1"}))  # nothing listens on port 1
    try:
        resp = app.test_client().get("/healthz")
        assert resp.status_code == 503
        assert resp.get_json()["database"] == "unreachable"
    finally:
        app.extensions["zr_pool"].close(timeout=0)
