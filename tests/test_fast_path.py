"""The fast path answers hot-cache hits of snapshot and bare routes exactly as the Litestar
handlers do: two gateways on one database, one with `[api] fast_path = false`, asked the same
requests, give the same status, headers and body (the age, which moves with the clock, aside); misses, query parameters, JWT-less
unknown tokens and other routes fall through to Litestar."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from helpers import Gateway, Simulator, access_lines, wait_for
from snapshots.api.app import create_app
from snapshots.api.auth import create_token
from snapshots.config import JobsConfig
from snapshots.uvicorn_runner import start_in_thread

PD = "pagerduty.schedule_users"
StartGateway = Callable[[JobsConfig], Gateway]
MakeConfig = Callable[..., JobsConfig]


def _fast_answers(gateway: Gateway) -> float:
    for line in gateway.http.get("/metrics").text.splitlines():
        if line.startswith("snapshots_fast_path_answers_total "):
            return float(line.split()[1])
    return 0.0


def _raw_get(gateway: Gateway, path: str, headers: list[str]) -> bytes:
    """The whole HTTP/1.1 answer to a GET sent byte for byte (headers httpx will not send)."""
    url = httpx.URL(gateway.server.url)
    with socket.create_connection((url.host, url.port or 80), timeout=10) as connection:
        lines = [f"GET {path} HTTP/1.1", *headers, "Connection: close", "", ""]
        connection.sendall("\r\n".join(lines).encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _normalized(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers in order (without uvicorn's Date) and body, the envelope's
    `age_seconds` replaced (it changes between two requests)."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"date"]
    body = re.sub(rb'"age_seconds":[0-9.e-]+', b'"age_seconds":0', response.content)
    return response.status_code, headers, body


def _two_gateways(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, tmp_path: Path
) -> tuple[Gateway, Gateway, str]:
    """Two gateways on one database, the fast path on and off, and a reader token for both."""
    tokens = tmp_path / "tokens"
    reader = create_token(tokens, "bot", "reader")
    api = f'tokens_file = "{tokens}"'
    fast = start_gateway(every_dataset_config(api=api))
    slow = start_gateway(every_dataset_config(api=f"{api}\nfast_path = false"))
    return fast, slow, reader


def _same_on_both_paths(
    fast: Gateway, slow: Gateway, cases: list[tuple[str, dict[str, str]]]
) -> list[tuple[int, list[tuple[bytes, bytes]], bytes]]:
    """Each case asked of both gateways gives the same normalized answer; the last case's."""
    answers = []
    for path, headers in cases:
        sent = {**headers, "X-Request-ID": "same-id-on-both-paths"}
        for _ in range(5):  # the two requests may straddle a second (Age, max-age)
            answers = [_normalized(g.http.get(path, headers=sent)) for g in (fast, slow)]
            if answers[0] == answers[1]:
                break
        assert answers[0] == answers[1], (path, headers)
    return answers


def test_hits_304s_and_refusals_are_the_same_on_both_paths(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, tmp_path: Path
) -> None:
    fast, slow, reader = _two_gateways(start_gateway, every_dataset_config, tmp_path)
    auth = {"Authorization": f"Bearer {reader}"}
    for gateway in (fast, slow):  # fetched once, then in each process's hot cache
        for path in (
            f"/api/v1/snapshots/{PD}/PSCH002",
            "/api/v1/snapshots/github.repo/acme/repo-01",
        ):
            assert gateway.http.get(path, headers=auth).status_code == 200
    etag = fast.http.get(f"/api/v1/snapshots/{PD}/PSCH002", headers=auth).headers["etag"]
    cases: list[tuple[str, dict[str, str]]] = [
        (f"/api/v1/snapshots/{PD}/PSCH002", auth),
        (f"/api/v1/latest/{PD}/PSCH002", auth),
        ("/api/v1/snapshots/github.repo/acme/repo-01", auth),
        ("/api/v1/pagerduty/schedules/PSCH002/users", auth),  # bare routes: the data as body
        ("/api/v1/pagerduty/schedules/PSCH002/users", {**auth, "If-None-Match": etag}),
        ("/api/v1/github/repos/acme/repo-01", auth),
        (f"/api/v1/snapshots/{PD}/PSCH002", {**auth, "If-None-Match": etag}),
        (f"/api/v1/snapshots/{PD}/PSCH002", {**auth, "If-None-Match": f'"x", W/{etag}'}),
        (f"/api/v1/snapshots/{PD}/PSCH002", {"Authorization": f"bearer {reader}"}),
        (f"/api/v1/snapshots/{PD}/PSCH002", {}),
        (f"/api/v1/snapshots/{PD}/PSCH002", {"Authorization": "Bearer snp_unknown"}),
    ]
    before = _fast_answers(fast)
    _same_on_both_paths(fast, slow, cases)
    # Six cases are hits or 304s; the fast path answered them unless a refresh stored by the
    # other gateway's worker had just invalidated the entry (then Litestar loaded it again).
    assert _fast_answers(fast) - before >= 3
    assert _fast_answers(slow) == 0


def test_misses_and_parameters_fall_through_to_litestar(
    start_gateway: StartGateway, every_dataset_config: MakeConfig
) -> None:
    gateway = start_gateway(every_dataset_config())
    before = _fast_answers(gateway)
    cold = gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH006")  # a miss: fetched by Litestar
    assert cold.status_code == 200
    assert _fast_answers(gateway) == before
    # The next read loads it from the store into the hot cache (Litestar); the one after is a hit.
    assert gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH006").status_code == 200
    assert _fast_answers(gateway) == before
    assert gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH006").status_code == 200
    assert _fast_answers(gateway) == before + 1
    with_age = gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH006", params={"max_age": "3600"})
    assert with_age.status_code == 200
    history = gateway.http.get(f"/api/v1/snapshots/{PD}/PSCH006/history")
    assert history.json()["versions"]
    unknown = gateway.http.get("/api/v1/snapshots/nope.nothing/PSCH006")
    assert unknown.status_code == 404
    assert _fast_answers(gateway) == before + 1
    bare = gateway.http.get("/api/v1/pagerduty/schedules/PSCH006/users")  # same cached entry
    assert bare.status_code == 200
    assert isinstance(bare.json(), list)
    assert _fast_answers(gateway) == before + 2


def test_both_paths_write_the_same_access_line(
    start_gateway: StartGateway,
    every_dataset_config: MakeConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hit, a 304 and a refusal give the same access-log line (time and duration aside)
    whether the fast path or Litestar answered, naming the token, never quoting it."""
    fast, slow, reader = _two_gateways(start_gateway, every_dataset_config, tmp_path)
    auth = {"Authorization": f"Bearer {reader}"}
    path = f"/api/v1/snapshots/{PD}/PSCH003"
    for gateway in (fast, slow):
        assert gateway.http.get(path, headers=auth).status_code == 200
    etag = fast.http.get(path, headers=auth).headers["etag"]
    before = _fast_answers(fast)
    cases = [auth, {**auth, "If-None-Match": etag}, {"Authorization": "Bearer snp_unknown"}]
    for number, headers in enumerate(cases):
        request_id = f"access-line-{number}"
        for gateway in (fast, slow):
            gateway.http.get(path, headers={**headers, "X-Request-ID": request_id})
        lines = access_lines(caplog, request_id, count=2)
        normalized = {
            re.sub(r"^\S+ | duration_ms=[0-9.]+", "", line) for line in lines
        }  # the timestamp and the duration differ
        assert len(lines) == 2, lines
        assert len(normalized) == 1, lines
        assert reader not in lines[0]
    assert "token=bot" in access_lines(caplog, "access-line-0")[0]
    assert "status=304" in access_lines(caplog, "access-line-1")[0]
    assert "status=401" in access_lines(caplog, "access-line-2")[0]
    assert _fast_answers(fast) - before >= 1  # the fast path did answer some of them


def test_mirror_hits_and_304s_are_the_same_on_both_paths(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, tmp_path: Path
) -> None:
    """A mirror answer composed once is repeated by the fast path while its snapshots stay
    current: the same bytes as the mirror handler's (links built from the same Host), and
    refusals still come from the handler in the upstream's shape."""
    fast, slow, reader = _two_gateways(start_gateway, every_dataset_config, tmp_path)
    github = {"Authorization": f"token {reader}", "Host": "gateway.test"}
    jira = {"Authorization": f"Bearer {reader}", "Host": "gateway.test"}
    repo = "/mirror/github/repos/acme/repo-01"
    page = f"{repo}/collaborators?per_page=10&page=2"
    project = "/mirror/jira/rest/api/2/project/PRJ1"
    for gateway in (fast, slow):  # composed once by the handler, and remembered
        for path, headers in ((repo, github), (page, github), (project, jira)):
            assert gateway.http.get(path, headers=headers).status_code == 200, path
    etag = fast.http.get(page, headers=github).headers["etag"]
    cases: list[tuple[str, dict[str, str]]] = [
        (repo, github),
        (page, github),
        (page, {**github, "If-None-Match": etag}),
        (f"{repo}/collaborators?page=2&per_page=10", github),  # another query: not remembered
        (project, jira),
        (repo, {"Host": "gateway.test"}),  # no token: GitHub's 401, from the handler
        (repo, {"Authorization": "token snp_unknown", "Host": "gateway.test"}),
        (repo, {**github, "Host": "elsewhere.test"}),  # other links: composed again
    ]
    before = _fast_answers(fast)
    answers = _same_on_both_paths(fast, slow, cases)
    assert answers[0][0] == 200
    assert b"elsewhere.test" in answers[0][2]  # links follow the Host the caller used
    # Four cases are remembered hits or 304s (unless a refresh had just superseded one).
    assert _fast_answers(fast) - before >= 2
    assert _fast_answers(slow) == 0


def test_a_refreshed_part_retires_the_remembered_mirror_answer(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, simulator: Simulator
) -> None:
    """After a part's refresh stores a change, the fast path no longer repeats the old answer:
    the handler composes the new one."""
    gateway = start_gateway(every_dataset_config())
    path = "/mirror/github/repos/acme/repo-02"
    first = gateway.http.get(path)
    assert first.status_code == 200
    again = gateway.http.get(path)
    assert again.content == first.content
    simulator.mutate("github", "acme/repo-02")
    refreshed = gateway.http.post(
        "/api/v1/snapshots/github.repo/acme/repo-02/refresh", params={"wait": 5}
    )
    assert refreshed.status_code == 200, refreshed.text
    wait_for(lambda: gateway.http.get(path).content != first.content)
    assert gateway.http.get(path).headers["etag"] != first.headers["etag"]


def test_a_repeated_authorization_header_is_judged_as_litestar_judges_it(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, tmp_path: Path
) -> None:
    """Two Authorization headers, an unknown token first and a good one second: Litestar reads
    the first (401); the fast path must not answer a hit on the strength of the second."""
    fast, slow, reader = _two_gateways(start_gateway, every_dataset_config, tmp_path)
    snapshot = f"/api/v1/snapshots/{PD}/PSCH002"
    repo = "/mirror/github/repos/acme/repo-01"
    cases = [
        (
            snapshot,
            [("Authorization", "Bearer snp_unknown"), ("Authorization", f"Bearer {reader}")],
        ),
        (repo, [("Authorization", "token snp_unknown"), ("Authorization", f"token {reader}")]),
    ]
    for path, headers in cases:
        good = [headers[1], ("Host", "gateway.test")]
        for gateway in (fast, slow):  # warmed: a hit (or a remembered answer) for the good token
            for _ in range(3):
                assert gateway.http.get(path, headers=good).status_code == 200, path
        sent = [*headers, ("Host", "gateway.test")]
        assert slow.http.get(path, headers=sent).status_code == 401, path
        assert fast.http.get(path, headers=sent).status_code == 401, path
        # Two If-None-Match headers, an old ETag first: Litestar reads the first (200).
        etag = fast.http.get(path, headers=good).headers["etag"]
        conditional = [*good, ("If-None-Match", '"old"'), ("If-None-Match", etag)]
        assert slow.http.get(path, headers=conditional).status_code == 200, path
        assert fast.http.get(path, headers=conditional).status_code == 200, path
    # Two Host headers (httpx refuses to send them; a raw request does): the mirror's links
    # follow the first, as Litestar's base URL does, not the answer remembered for the second.
    for gateway in (fast, slow):
        for _ in range(2):
            assert gateway.http.get(repo, headers={"Authorization": f"token {reader}"}).is_success
        warmed = httpx.URL(gateway.server.url).netloc.decode()  # the Host httpx sent
        assert b"a.test" in _raw_get(
            gateway, repo, [f"Authorization: token {reader}", "Host: a.test", f"Host: {warmed}"]
        )


def test_a_mirror_answer_without_host_is_remembered_per_local_address(
    every_dataset_config: MakeConfig, database_url: str
) -> None:
    """With no Host header (HTTP/1.0), the mirror's links are built from the address the
    request reached (`scope["server"]`): a gateway bound to every address, asked through
    127.0.0.1 and then 127.0.0.2, must not repeat the first address's links to the second."""
    server = start_in_thread(create_app(every_dataset_config(), database_url), host="0.0.0.0")  # noqa: S104
    try:
        gateway = Gateway(server)
        port = httpx.URL(server.url).port
        repo = "/mirror/github/repos/acme/repo-01"
        assert gateway.http.get(repo).status_code == 200  # fetched, in the hot cache

        def ask(address: str) -> bytes:
            with socket.create_connection((address, port), timeout=10) as connection:
                connection.sendall(f"GET {repo} HTTP/1.0\r\n\r\n".encode())
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
            return b"".join(chunks)

        for _ in range(2):  # composed, then remembered
            assert f"127.0.0.1:{port}".encode() in ask("127.0.0.1")
        assert f"127.0.0.2:{port}".encode() in ask("127.0.0.2")
    finally:
        gateway.stop()


def test_an_answer_built_for_one_age_is_not_given_at_another(
    start_gateway: StartGateway, every_dataset_config: MakeConfig, tmp_path: Path
) -> None:
    """Reads of a hot key in the same millisecond share one built answer; later reads (both
    paths) say the age they are read at, in the body and in `Age`/`Cache-Control`."""
    fast, slow, reader = _two_gateways(start_gateway, every_dataset_config, tmp_path)
    auth = {"Authorization": f"Bearer {reader}"}
    path = "/api/v1/pagerduty/schedules/PSCH003/users"
    envelope = f"/api/v1/snapshots/{PD}/PSCH003"
    for gateway in (fast, slow):
        for _ in range(2):  # fetched, then from the hot cache
            assert gateway.http.get(envelope, headers=auth).status_code == 200

    def read(gateway: Gateway) -> tuple[float, int, int]:
        response = gateway.http.get(envelope, headers=auth)
        max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
        return response.json()["freshness"]["age_seconds"], int(response.headers["Age"]), max_age

    for gateway in (fast, slow):
        assert gateway.http.get(path, headers=auth).status_code == 200  # the bare route's kind
        first = [read(gateway) for _ in range(20)]

        def moved_on(
            g: Gateway = gateway, since: float = first[-1][0]
        ) -> tuple[float, int, int] | None:
            """The next read once its age is 2 s past `since` (or started again: a refresh
            stored meanwhile makes a new version), None before."""
            now = read(g)
            return now if now[0] >= since + 2 or now[0] < since else None

        later = wait_for(moved_on, timeout=5)  # a frozen answer never moves on
        if later[0] < first[-1][0]:
            continue
        assert later[1] >= first[-1][1] + 2  # Age went with it
        assert later[2] <= first[-1][2] - 2  # and the TTL left went down
        assert all(abs(body - age) < 1.001 for body, age, _ in [*first, later])
