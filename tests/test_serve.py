"""edgefas serve: the HTTP API contract, its 4xx answers, sessions, and concurrency."""
from __future__ import annotations

import concurrent.futures as cf

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from edgefas.serve import create_app  # noqa: E402
from edgefas.serve.server import serve_in_thread  # noqa: E402

from .conftest import face_clip  # noqa: E402

LIMIT = 400_000


@pytest.fixture(scope="module")
def app(detector):
    return create_app(detector, max_upload_bytes=LIMIT)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def jpeg(astronaut_bgr) -> bytes:
    return cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()


def test_multipart_and_raw_body_give_the_detector_answer(client, detector, jpeg):
    want = detector(jpeg)
    for r in (client.post("/v1/detect", files={"image": ("a.jpg", jpeg, "image/jpeg")}),
              client.post("/v1/detect", content=jpeg, headers={"content-type": "image/jpeg"}),
              client.post("/v1/detect", content=jpeg),
              # what `curl --data-binary @photo.jpg URL` sends without -H
              client.post("/v1/detect", content=jpeg,
                          headers={"content-type": "application/x-www-form-urlencoded"})):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"] == want.decision.value == "live"
        assert body["live_score"] == pytest.approx(want.live_score)
        assert body["box"] == list(want.box) and body["session"] is None


def test_no_face_is_an_answer_not_an_error(client):
    blank = cv2.imencode(".png", np.full((240, 320, 3), (30, 90, 160), np.uint8))[1].tobytes()
    r = client.post("/v1/detect", content=blank)
    assert r.status_code == 200 and r.json()["decision"] == "no_face"


@pytest.mark.parametrize("kwargs, status, words", [
    ({"content": b""}, 400, "empty"),
    ({"content": b"this is not an image"}, 422, "could not decode"),
    ({"files": {"other": ("a.jpg", b"x")}}, 400, "'image'"),
    ({"data": {"image": "text, not a file"}}, 422, "could not decode"),  # a form, not an image
    ({"content": b"--b\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=b"}},
     400, "image"),
    ({"content": b"\0" * (LIMIT + 1)}, 413, "limit"),
])
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(client, jpeg, kwargs, status,
                                                                   words):
    r = client.post("/v1/detect", **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert client.post("/v1/detect", content=jpeg).json()["decision"] == "live"


def test_grayscale_upload_is_unprocessable_with_the_reason(client, astronaut_bgr):
    grey = cv2.imencode(".png", cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY))[1].tobytes()
    r = client.post("/v1/detect", content=grey)
    assert r.status_code == 422
    assert r.json()["result"]["decision"] == "bad_input" and "grayscale" in r.json()["detail"]


def test_sessions_aggregate_per_id(client, jpeg):
    # five quick frames of one still image: the score is live, but a session waits for
    # frames >= 0.4 s apart to see whether the face moves
    states = [client.post("/v1/detect?session=cam1", content=jpeg).json()["session"]
              for _ in range(5)]
    assert [s["frames"] for s in states] == [1, 2, 3, 4, 5]
    assert states[0]["state"] == "pending" and states[-1]["state"] == "pending"
    assert "waiting for motion" in states[-1]["reasons"][-1]
    other = client.post("/v1/detect?session=cam2", content=jpeg).json()["session"]
    assert other["frames"] == 1
    assert client.post("/v1/detect?session=" + "x" * 65, content=jpeg).status_code == 422


@pytest.mark.parametrize("still,state", [(False, "live"), (True, "spoof")])
def test_sessions_with_client_times_tell_a_person_from_a_still_image(client, astronaut_bgr,
                                                                     still, state):
    frames = [cv2.imencode(".jpg", f)[1].tobytes() for f in face_clip(astronaut_bgr, 5, still=still)]
    sid = f"clip-{still}"
    last = [client.post(f"/v1/detect?session={sid}&t={0.5 * i}", content=f).json()["session"]
            for i, f in enumerate(frames)][-1]
    assert last["state"] == state and last["frames"] == 5 and last["motion"] is not None
    # the same session's frame without a time: refused, the session keeps going
    r = client.post(f"/v1/detect?session={sid}", content=frames[0])
    assert r.status_code == 400 and "time t" in r.json()["detail"]
    assert client.post(f"/v1/detect?session={sid}&t=-1", content=frames[0]).status_code == 422
    r = client.post("/v1/detect?t=1.5", content=frames[0])     # a time without a session
    assert r.status_code == 400 and "needs session" in r.json()["detail"]


def test_openapi_schema_and_page(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/jpeg" in body
    assert {"400", "413", "422"} <= set(spec["paths"]["/v1/detect"]["post"]["responses"])
    page = client.get("/")
    assert page.status_code == 200 and "getUserMedia" in page.text and "/v1/detect" in page.text
    assert client.get("/v1/health").json()["status"] == "ok"


def test_concurrent_http_clients_match_sequential_answers(app, astronaut_bgr):
    frames = [cv2.imencode(".jpg", np.roll(astronaut_bgr, 7 * i, axis=1))[1].tobytes()
              for i in range(8)]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        seq = [http.post("/v1/detect", content=f).json() for f in frames]

        def one(i: int) -> dict:
            with httpx.Client(base_url=url, timeout=30) as c:
                return c.post("/v1/detect", content=frames[i % 8]).json()

        with cf.ThreadPoolExecutor(4) as pool:
            par = list(pool.map(one, range(16)))
    for i, r in enumerate(par):
        assert (r["decision"], r["live_score"], r["box"]) == \
            (seq[i % 8]["decision"], seq[i % 8]["live_score"], seq[i % 8]["box"])


def test_serve_command_reports_a_missing_extra(monkeypatch, capsys):
    import importlib.util

    from edgefas.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 1
    assert "edgefas[serve]" in capsys.readouterr().err


def test_serve_command_says_when_its_port_is_taken(capsys):
    import socket

    from edgefas.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr()
    assert "cannot listen on 127.0.0.1" in err.err and "demo page" not in err.out


def test_invalid_query_parameters_get_one_string_detail_like_every_other_error(client, jpeg):
    r = client.post("/v1/detect?session=" + "x" * 200, content=jpeg)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)
    assert "session" in r.json()["detail"]


def test_openapi_describes_decisions_verdicts_and_errors(client):
    schema = client.get("/openapi.json").json()
    comps = schema["components"]["schemas"]
    assert "bad_input" in comps["Decision"]["enum"] and "timeout" in comps["SessionState"]["enum"]
    responses = schema["paths"]["/v1/detect"]["post"]["responses"]
    for code in ("400", "413", "422"):
        assert responses[code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorModel")


def test_an_unscorable_frame_in_a_session_still_reports_the_session(client):
    r = client.post("/v1/detect?session=cam-bad", content=b"not an image")
    assert r.status_code == 422
    body = r.json()
    assert body["result"]["decision"] == "bad_input" and body["session"]["state"] == "pending"


@pytest.mark.parametrize("t", ["inf", "Infinity", "-inf", "nan"])
def test_a_frame_time_that_is_not_a_finite_number_is_refused(client, jpeg, t):
    r = client.post(f"/v1/detect?session=t-{t}&t={t}", content=jpeg)
    assert r.status_code == 422 and r.json()["detail"].startswith("query.t")
