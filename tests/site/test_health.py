import pytest


@pytest.mark.django_db
def test_healthz_tells_the_public_only_ok_or_not(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_ok_with_database_and_eager_broker(admin_client):
    response = admin_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_ok_with_real_redis_broker(admin_client, settings, redis_url):
    from digestsite.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    old = app.conf.broker_url
    app.conf.broker_url = redis_url
    try:
        response = admin_client.get("/healthz")
    finally:
        app.conf.broker_url = old
    assert response.status_code == 200
    assert response.json()["broker"]["mode"] == "redis"


@pytest.mark.django_db
def test_healthz_503_when_broker_unreachable(admin_client, client, settings):
    from digestsite.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    old = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = admin_client.get("/healthz")
        public = client.get("/healthz")
    finally:
        app.conf.broker_url = old
    assert public.status_code == 503 and public.json() == {"status": "unhealthy"}  # no host, no error text
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"] is True


def test_healthz_503_when_database_unreachable(client, monkeypatch):
    from digestsite import health

    def broken_cursor():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy"}
