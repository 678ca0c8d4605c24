"""Ack latency of the Slack app: Retry clicks and /sync-log commands from 50 concurrent clients over loopback.

Serves syncbot's HTTP server (``syncbot serve``: uvicorn, one process) in a child process against the Slack and
QuickBooks stand-ins (in this process), seeds a company with open errors, then sends signed requests and records
the time from request to HTTP response (httpx's ``Response.elapsed``: from sending the request to the end of the
response body). Aim (issue 3): p99 under 100 ms (Slack allows 3,000 ms).

    python -m bench.ack_latency [--clients 50] [--requests 1000]       # closed loop: N clients, no think time
    python -m bench.ack_latency --think-ms 1000                         # the same, each client thinks ~1 s
    python -m bench.ack_latency --single 200                            # one client: cost of one request
    python -m bench.ack_latency --rates 50,100,150 --seconds 20         # open loop: requests arrive at R/s
    python -m bench.ack_latency --think-ms 1000 --load 2                # the same under 2 CPU-burning processes
    python -m bench.ack_latency --think-ms 1000 --split                 # web and worker in two processes

- Closed loop (default): ``--clients`` threads send ``--requests`` in all back to back, half Retry clicks and half
  ``/sync-log errors``. Writes bench/results/ack_latency.json. ``--think-ms T``: each client waits a think time
  (exponential, mean T ms) after each answer, as people do; writes bench/results/ack_latency.thinkTms.json.
- ``--single N``: one client sends N requests of each kind one after another (a Retry click, ``/sync-log``,
  ``/sync-log errors``, ``/sync-log status``, an App Home open) and reads the server process's CPU time
  (/proc/PID/stat, user + system) before and after, once the work each request leaves behind (the retry, the
  message updates) is done; the idle rate of the server (notifier and scheduler loops) is subtracted. Writes
  bench/results/ack_latency.single.json: wall ms per request (p50, mean) and server CPU ms per request.
- ``--rates R1,R2``: requests arrive at R per second (Poisson, seeded) for ``--seconds`` each, from a pool of
  sender threads, the same mix as the closed loop; latency counts from the planned arrival, so a late sender
  counts against the server (no coordinated omission). Each rate runs on a fresh stack: the same Retry button
  clicked thousands of times grows its record's chain of attempts, and the engine walks that chain on every retry
  of the old button, so a long run would measure that instead. Writes bench/results/ack_latency.rates.json, with
  ``knee_per_s``: the rate where p99 crosses 100 ms (linear between the last rate under and the first over).
- ``--load N``: N processes that burn CPU (a pure-Python loop each) for the whole run, started before the stack,
  as other work on a shared machine; the output file's name gets ``.loadN``. The load average before and after is
  recorded either way.
- ``--split``: two processes, as a deployment on two cores would run them: ``syncbot serve --role web`` (Slack's
  requests: the acks, and the quick work after them) and ``syncbot serve --role worker --role scheduler`` (the
  jobs the clicks stored, the notifier, the scheduler), so the work after the acks does not share the web
  process's GIL. File suffix ``.split``; the server CPU figures add up both processes.

The clients and the Slack stand-in share the 2 cores with the server: the figures include that contention. Since
2026-12-08 the server's processes and the burners each run in a session of their own (as a service manager starts
a program: with the kernel's autogroups, CPU is then shared per program rather than per thread), and the clients
of the closed and open loops in a process and session of their own, apart from the stand-ins; ``--same-session``
runs it as before. Each answer's ``Server-Timing`` header gives the server's own time: the ``server`` figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.fernet import Fernet

from bench.replicas import fresh_database

RESULTS = Path(__file__).parent / "results" / "ack_latency.json"
SIGNING_SECRET = "bench-signing-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def figures(values: list[float]) -> dict[str, float]:
    """count, p50, p90, p99, max (milliseconds) of ``values``."""
    return {"count": len(values), "p50_ms": round(statistics.median(values), 1),
            "p90_ms": round(percentile(values, 90), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1)}


def burn() -> None:
    """Spin until killed: one core's worth of other work."""
    n = 0
    while True:
        n = (n * 7 + 1) % 1_000_003


def start_load(n: int, own_sessions: bool = True) -> list[subprocess.Popen[bytes]]:
    """``n`` CPU-burning processes (:func:`burn`), stopped by :func:`stop_load`; ``own_sessions``: each in a
    session of its own, as other programs on a shared machine run (see :func:`start_stack`)."""
    code = "from bench.ack_latency import burn; burn()"
    return [subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent,
                             start_new_session=own_sessions) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait(10)


def knee(rates: list[dict[str, Any]], aim_ms: float = 100.0) -> float | None:
    """The arrival rate where p99 crosses ``aim_ms``: linear between the highest rate under it (below which every
    rate met it) and the next one; None when no rate met it, the highest rate when every rate met it."""
    ordered = sorted(rates, key=lambda r: r["rate_per_s"])
    below = None
    for result in ordered:
        if result["p99_ms"] >= aim_ms:
            if below is None:
                return None
            r0, p0, r1, p1 = below["rate_per_s"], below["p99_ms"], result["rate_per_s"], result["p99_ms"]
            return round(r0 + (aim_ms - p0) * (r1 - r0) / (p1 - p0), 1)
        below = result
    return None if below is None else float(below["rate_per_s"])


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Request:
    """One request ready to send: its kind, body and content type (signed when sent)."""

    kind: str
    body: str
    content_type: str


class _Captured(Exception):
    pass


@dataclass
class Stack:
    """The server under test and what the clients need to reach it."""

    port: int
    server: subprocess.Popen[bytes]
    slack: Any
    qbo: Any
    work: Path
    entry_id: int
    click_payload: dict[str, Any] | None
    make_driver: Callable[[], Any]
    stops: list[Callable[[], None]] = field(default_factory=list)
    #: With ``--split``: the worker process (the web one is ``server``).
    worker: subprocess.Popen[bytes] | None = None

    def cpu_s(self) -> float:
        """CPU seconds of the server's processes so far."""
        return sum(process_cpu_s(p.pid) for p in (self.server, self.worker) if p is not None)

    def request(self, kind: str) -> Request:
        """A fresh request of ``kind``: click, log, errors, status or home (built as the driver builds them)."""
        if kind == "click":
            assert self.click_payload is not None
            return Request(kind, urlencode({"payload": json.dumps(self.click_payload)}),
                           "application/x-www-form-urlencoded")
        driver = self.make_driver()
        captured: dict[str, Any] = {}

        def capture(_kind: str, _payload: dict[str, Any], body: str, content_type: str, **_opts: Any) -> Any:
            captured.update(body=body, content_type=content_type)
            raise _Captured

        driver._deliver = capture
        try:
            if kind == "home":
                driver.app_home_opened()
            else:
                driver.slash_command("/sync-log", {"log": "", "errors": "errors", "status": "status"}[kind])
        except _Captured:
            pass
        finally:
            driver.close()
        return Request(kind, captured["body"], captured["content_type"])

    def stop(self) -> None:
        for proc in (self.server, self.worker):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:  # never left running
                    proc.kill()
                    proc.wait(10)
        for fn in self.stops:
            fn()


def start_stack(split: bool = False, database_url: str | None = None, own_sessions: bool = True) -> Stack:
    """Seed a company with open errors, serve syncbot in a child process (``split``: a web process and a worker
    process), bind the workspace and find a clickable error message. ``database_url``: an empty database to use
    (PostgreSQL) instead of a SQLite file in a temporary directory. ``own_sessions``: each server process in a
    session of its own (``setsid``), as a service manager, a container runtime or a terminal starts a service; on
    Linux with autogroups (``/proc/sys/kernel/sched_autogroup_enabled``) or one cgroup per service, the scheduler
    then shares the CPU between the server and the other programs (the bench's own clients, the burners of
    ``--load``) rather than between every thread of them. False: in the bench's session, as before."""
    from bot.config import Settings
    from bot.services import build_services
    from sandbox.quickbooks import DEFAULT_REALM, create_app
    from sandbox.quickbooks.consent import click_connect
    from sandbox.serve import free_port, serve_in_thread
    from sandbox.slack import config as slack_cfg
    from sandbox.slack import serve_standin
    from sandbox.slack.driver import SlackDriver
    from sync.connections import ensure_account, ensure_connection, finish_authorization
    from sync.records import import_records

    qbo_app = create_app()
    qbo = serve_in_thread(qbo_app)
    slack = serve_standin()
    work = Path(tempfile.mkdtemp(prefix="syncbot-bench-"))
    port = free_port()
    env = {
        "DATABASE_URL": database_url or f"sqlite:///{work / 'bench.db'}",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QBO_API_URL": qbo.url, "QBO_AUTH_URL": f"{qbo.url}/connect/oauth2",
        "QBO_TOKEN_URL": f"{qbo.url}/oauth2/v1/tokens/bearer", "QBO_REVOKE_URL": f"{qbo.url}/v2/oauth2/tokens/revoke",
        "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack_cfg.DEFAULT_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_DEFAULT_CHANNEL": slack_cfg.ERRORS_CHANNEL_ID,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    fields: Mapping[str, Any] = env  # the variables as Settings' fields (by alias): strings that pydantic parses
    settings = Settings(_env_file=None, **fields)
    services = build_services(settings)
    seed = json.loads((Path(__file__).parent.parent / "sandbox" / "data" / "demo_records.json").read_text())
    with services.sessions() as session, session.begin():
        account_id = ensure_account(session).id
        import_records(session, account_id, seed)
        connection_id = ensure_connection(session, account_id).id
    qbo_app.state.standin.create_entity(DEFAULT_REALM, "Customer", {"DisplayName": "Acme Corp"})
    callback = click_connect(services.oauth.authorization_url("bench"), DEFAULT_REALM)
    finish_authorization(services.sessions, services.oauth, services.tokens, services.engine, connection_id,
                         callback["code"], callback["realmId"], "bench")
    open_entry = services.engine.open_errors(connection_id)[0]
    services.close()

    serve = [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*serve, *(["--role", "web"] if split else [])], env={**os.environ, **env},
                              start_new_session=own_sessions,
                              stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))  # noqa: SIM115
    worker = subprocess.Popen([*serve, "--role", "worker", "--role", "scheduler"], env={**os.environ, **env},
                              start_new_session=own_sessions,
                              stdout=subprocess.DEVNULL,
                              stderr=open(work / "worker.log", "w")) if split else None  # noqa: SIM115
    url = f"http://127.0.0.1:{port}/slack/events"

    def make_driver() -> SlackDriver:
        return SlackDriver(url, SIGNING_SECRET, slack.standin)

    stack = Stack(port=port, server=server, slack=slack, qbo=qbo, work=work, entry_id=open_entry.id,
                  click_payload=None, make_driver=make_driver, stops=[slack.stop, qbo.stop], worker=worker)
    try:
        deadline = time.monotonic() + 120  # a loaded machine takes its time to import and migrate
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"syncbot serve did not answer /healthz: see {work / 'server.log'}")
            time.sleep(0.2)
        driver = make_driver()
        driver.slash_command("/sync-log", "help")  # binds the workspace
        print(f"server log: {work / 'server.log'}", file=sys.stderr)
        clickable = None
        deadline = time.monotonic() + 20
        while clickable is None and time.monotonic() < deadline:  # the notifier posts the open errors
            time.sleep(0.5)
            messages = slack.standin.messages(slack_cfg.ERRORS_CHANNEL_ID)
            clickable = next((m for m in messages if "entry_retry" in str(m.blocks)), None)
        # One real click's block_actions payload (from the message as Slack shows it), re-sent signed afresh by
        # every client: the button disappears while a retry runs, and a real user's double clicks look like this.
        if clickable is not None:
            stack.click_payload = driver.click("entry_retry", channel_id=slack_cfg.ERRORS_CHANNEL_ID,
                                               message_ts=clickable.ts, value=str(open_entry.id)).payload
        driver.close()
    except BaseException:
        stack.stop()
        raise
    return stack


def server_ms(response: httpx.Response) -> float | None:
    """The server's own time over ``response`` (ms): its ``Server-Timing: app;dur=`` header (bot.server), or None."""
    for metric in response.headers.get("server-timing", "").split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:])
    return None


def send(driver: Any, request: Request) -> tuple[int, float, float | None]:
    """Sign and send ``request``; (HTTP status, milliseconds from request to the end of the response, the server's
    own milliseconds from :func:`server_ms`)."""
    response, _ = driver.send(request.body, request.content_type)
    return response.status_code, response.elapsed.total_seconds() * 1000, server_ms(response)


def settle(pid: int, quiet_s: float = 0.6, idle_cpu_per_s: float = 0.0, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` burns no more than its idle CPU for ``quiet_s`` (the work left after the acks
    is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = process_cpu_s(pid)
        time.sleep(quiet_s)
        if process_cpu_s(pid) - before <= idle_cpu_per_s * quiet_s + 2 / CLOCK_TICKS:
            return


def run_single(stack: Stack, per_kind: int) -> dict[str, Any]:
    """One client, ``per_kind`` requests of each kind in a row: wall ms and server CPU ms per request."""
    pid = stack.server.pid
    settle(pid)
    idle_start, idle_t = process_cpu_s(pid), time.monotonic()
    time.sleep(3.0)
    idle_per_s = (process_cpu_s(pid) - idle_start) / (time.monotonic() - idle_t)
    driver = stack.make_driver()
    out: dict[str, Any] = {"idle_server_cpu_ms_per_s": round(idle_per_s * 1000, 2)}
    kinds = (["click"] if stack.click_payload is not None else []) + ["log", "errors", "status", "home"]
    for kind in kinds:
        requests = [stack.request(kind) for _ in range(per_kind)]
        for request in requests[:5]:  # warm-up: caches (users.info), connections, imports
            send(driver, request)
        settle(pid, idle_cpu_per_s=idle_per_s)
        cpu0, t0 = process_cpu_s(pid), time.monotonic()
        walls, statuses = [], set()
        for request in requests:
            status, ms, _ = send(driver, request)
            walls.append(ms)
            statuses.add(status)
        acked = time.monotonic()
        cpu_acked = process_cpu_s(pid)
        settle(pid, idle_cpu_per_s=idle_per_s)
        cpu1, t1 = process_cpu_s(pid), time.monotonic()
        out[kind] = {
            "requests": per_kind, "statuses": sorted(statuses),
            "wall_p50_ms": round(statistics.median(walls), 2), "wall_mean_ms": round(statistics.fmean(walls), 2),
            "wall_p99_ms": round(percentile(walls, 99), 2),
            "server_cpu_ms_during_acks": round((cpu_acked - cpu0 - idle_per_s * (acked - t0)) / per_kind * 1000, 2),
            "server_cpu_ms_total": round((cpu1 - cpu0 - idle_per_s * (t1 - t0)) / per_kind * 1000, 2),
        }
        print(kind, out[kind], file=sys.stderr)
    driver.close()
    return out


def mix(stack: Stack, n: int) -> list[Request]:
    """``n`` requests, alternately a Retry click and ``/sync-log errors`` (commands only without a click)."""
    return [stack.request("click" if stack.click_payload is not None and i % 2 else "errors") for i in range(n)]


def post_signed(http: httpx.Client, url: str, secret: str, request: Request) -> httpx.Response:
    """POST ``request`` to ``url`` signed as Slack signs it (``sandbox.slack.driver.sign``), timestamped now."""
    from sandbox.slack.driver import sign

    stamp = int(time.time())
    return http.post(url, content=request.body.encode(), headers={
        "Content-Type": request.content_type, "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(secret, stamp, request.body)})


def closed_loop(url: str, secret: str, plans: list[list[Request]], think_ms: float,
                own_session: bool = False) -> tuple[list[tuple[str, int, float, float | None]], float]:
    """One thread per plan, each sending its requests one after another, signed as Slack signs them; with
    ``think_ms``, each waits a think time drawn from an exponential distribution of that mean (seeded per client)
    after each answer. ``own_session``: first leave the caller's session (``setsid``; for a child process).
    Returns (kind, HTTP status, ms from request to the end of the response, the server's own ms) per request, and
    the wall seconds of the whole run."""
    if own_session:
        os.setsid()
    results: list[tuple[str, int, float, float | None]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        think = random.Random(index)
        plan = plans[index]
        with httpx.Client(timeout=30) as http:
            if think_ms:  # users do not all start in the same millisecond
                time.sleep(think.uniform(0, think_ms) / 1000)
            for n, request in enumerate(plan[index % 2:] + plan[:index % 2]):
                if think_ms and n:
                    time.sleep(think.expovariate(1000 / think_ms))
                response = post_signed(http, url, secret, request)
                with lock:
                    results.append((request.kind, response.status_code, response.elapsed.total_seconds() * 1000,
                                    server_ms(response)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(plans))]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - wall


def run_closed(stack: Stack, clients: int, total: int, think_ms: float = 0.0,
               clients_apart: bool = True) -> dict[str, Any]:
    """``clients`` clients, each sending its share of ``total`` requests (:func:`closed_loop`), as people do.
    ``clients_apart``: the clients run in a process and session of their own, as Slack's senders are not on
    the server's machine, so the stand-ins' work in this process (Slack's API answering the server's calls)
    does not delay the reading of the answers; False: threads of this process, as before 2026-12-08."""
    per_client = max(1, total // clients)
    plans = [mix(stack, per_client) for _ in range(clients)]
    url = f"http://127.0.0.1:{stack.port}/slack/events"
    if clients_apart:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            results, wall = pool.apply(closed_loop, (url, SIGNING_SECRET, plans, think_ms, True))
    else:
        results, wall = closed_loop(url, SIGNING_SECRET, plans, think_ms)
    latencies: dict[str, list[float]] = {"command": [], "click": []}
    statuses: dict[str, int] = {}
    for kind, status, ms, _ in results:
        latencies["click" if kind == "click" else "command"].append(ms)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    on_server = [server for *_, server in results if server is not None]
    every = latencies["command"] + latencies["click"]
    out: dict[str, Any] = {"statuses": statuses, "requests_per_second": round(len(every) / wall, 1),
                           "all": figures(every)}
    out.update({name: figures(values) for name, values in latencies.items() if values})
    if on_server:
        out["server"] = figures(on_server)
    return out


def open_loop(url: str, secret: str, plan: list[Request], arrivals: list[float], senders: int,
              own_session: bool = False) -> tuple[list[float], list[float], dict[str, int], float]:
    """Send ``plan[i]`` at ``arrivals[i]`` seconds from the start, signed as Slack signs them, from a pool of
    ``senders`` threads; latency counts from the planned arrival, so a late sender counts against the server.
    ``own_session``: first leave the caller's session (a child process). Returns the latencies (ms), the server's
    own ms per answer, the statuses and the elapsed seconds."""
    if own_session:
        os.setsid()
    clients = [httpx.Client(timeout=30) for _ in range(senders)]
    free = list(clients)
    lock = threading.Lock()
    latencies: list[float] = []
    on_server: list[float] = []
    statuses: dict[str, int] = {}

    def one(request: Request, planned: float) -> None:
        with lock:
            http = free.pop()
        try:
            response = post_signed(http, url, secret, request)
            status = str(response.status_code)
            server = server_ms(response)
        except httpx.HTTPError as exc:
            status, server = type(exc).__name__, None
        finally:
            done = time.perf_counter()
            with lock:
                free.append(http)
        with lock:
            latencies.append((done - planned) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if server is not None:
                on_server.append(server)

    start = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        for request, offset in zip(plan, arrivals, strict=True):
            delay = start + offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, request, start + offset)
    elapsed = time.perf_counter() - start
    for http in clients:
        http.close()
    return latencies, on_server, statuses, elapsed


def run_rates(stack: Stack, rates: list[float], seconds: float, senders: int = 64,
              clients_apart: bool = True) -> list[dict[str, Any]]:
    """Open loop (:func:`open_loop`): Poisson arrivals at each rate for ``seconds``. ``clients_apart``: the
    senders run in a process and session of their own (see :func:`run_closed`)."""
    import multiprocessing

    results = []
    rng = random.Random(3)
    url = f"http://127.0.0.1:{stack.port}/slack/events"
    for rate in rates:
        settle(stack.server.pid, timeout=120)
        count = max(1, round(rate * seconds))
        plan = mix(stack, count)
        arrivals, at = [], 0.0
        for _ in plan:
            at += rng.expovariate(rate)
            arrivals.append(at)
        cpu0, own0 = stack.cpu_s(), process_cpu_s(os.getpid())
        if clients_apart:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                latencies, on_server, statuses, elapsed = pool.apply(
                    open_loop, (url, SIGNING_SECRET, plan, arrivals, senders, True))
        else:
            latencies, on_server, statuses, elapsed = open_loop(url, SIGNING_SECRET, plan, arrivals, senders)
        result = {"rate_per_s": rate, "sent": count, "achieved_per_s": round(count / elapsed, 1),
                  "server_cpu_share": round((stack.cpu_s() - cpu0) / elapsed, 2),
                  ("standins_cpu_share" if clients_apart else "clients_and_standins_cpu_share"):
                      round((process_cpu_s(os.getpid()) - own0) / elapsed, 2),
                  "statuses": statuses, **figures(latencies),
                  **({"server": figures(on_server)} if on_server else {})}
        print(result, file=sys.stderr)
        results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--single", type=int, default=0, metavar="N",
                        help="one client, N requests of each kind: cost of one request")
    parser.add_argument("--rates", default="", help="open loop: comma-separated arrival rates per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="open loop: seconds per rate")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="closed loop: mean think time (ms, exponential) of each client between requests")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="N CPU-burning processes run alongside (a loaded machine)")
    parser.add_argument("--split", action="store_true",
                        help="serve as two processes: --role web, and --role worker --role scheduler")
    parser.add_argument("--pg-url", default=None, metavar="URL",
                        help="serve on a fresh PostgreSQL database created beside URL's (dropped afterwards)")
    parser.add_argument("--same-session", action="store_true",
                        help="as before 2026-12-08: the server and the burners in the bench's own session (the "
                             "scheduler then shares the CPU per thread of all of them), the closed loop's clients "
                             "threads of the bench's process, beside the stand-ins")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if args.think_ms < 0:
        parser.error("--think-ms must be 0 or more")
    if args.load < 0:
        parser.error("--load must be 0 or more")


    mode = "single" if args.single else "rates" if args.rates else "closed"
    suffix = f".{mode}" if mode != "closed" else f".think{args.think_ms:g}ms" if args.think_ms else ""
    suffix += (f".load{args.load}" if args.load else "") + (".split" if args.split else "")
    suffix += (".pg" if args.pg_url else "") + (".samesession" if args.same_session else "")
    output = args.output or RESULTS.with_suffix(f"{suffix}.json")
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as databases:
        def database() -> str | None:  # a fresh one per stack, as the SQLite file is
            return databases.enter_context(fresh_database(args.pg_url, "ack")) if args.pg_url else None

        burners = start_load(args.load, not args.same_session)
        try:
            stack = start_stack(args.split, database(), not args.same_session)
        except BaseException:
            stop_load(burners)  # never left spinning
            raise
        try:
            if mode == "single":
                measured: dict[str, Any] = {"per_kind": run_single(stack, args.single)}
            elif mode == "rates":  # each rate on a fresh stack: a run must not inherit the sync log of the last
                measured = {"rates": run_rates(stack, [float(args.rates.split(",")[0])], args.seconds,
                                               clients_apart=not args.same_session)}
                for rate in args.rates.split(",")[1:]:
                    stack.stop()
                    stack = start_stack(args.split, database(), not args.same_session)
                    measured["rates"] += run_rates(stack, [float(rate)], args.seconds,
                                                   clients_apart=not args.same_session)
            else:
                measured = run_closed(stack, args.clients, args.requests, args.think_ms, not args.same_session)
        finally:
            try:
                stack.stop()
            finally:
                stop_load(burners)

    summary: dict[str, Any] = {
        "benchmark": "ack_latency", "mode": mode,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {"clients": args.clients if mode == "closed" else 1 if mode == "single" else "open loop",
                   "server": "syncbot serve --role web (uvicorn) + --role worker --role scheduler" if args.split
                   else "syncbot serve (uvicorn, 1 process)", "commit": git_commit(),
                   "cpu_burners": args.load,
                   "sessions": "the bench's own" if args.same_session else "one per server process and burner",
                   "database": "postgresql" if args.pg_url else "sqlite",
                   "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                               "platform": platform.platform(),
                               "load_average_before_run": load_before,
                               "load_average_after_run": os.getloadavg()[0]},
                   "clients_run_as": "threads of the bench's process, beside the stand-ins" if args.same_session
                   else "a process and session of their own (the stand-ins in the bench's process)",
                   "note": "Latency is from sending the request to the end of the response (open loop: from the "
                           "planned arrival). The clients and the stand-ins share the 2 cores with the server. "
                           "'server': the server's own time per request, from its Server-Timing header (the app "
                           "called to the answer's start)."},
        "aim": {"p99_ms": 100},
        **measured,
    }
    if mode == "rates":
        summary["knee_per_s"] = knee(summary["rates"])
    if mode == "closed":
        summary["config"]["requests"] = summary["all"]["count"]
        summary["config"]["think_ms_mean"] = args.think_ms
        summary["aim_met"] = summary["all"]["p99_ms"] < 100
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=2) + "\n")
    shown = ("all", "command", "click", "server", "statuses", "requests_per_second", "aim_met", "per_kind", "rates",
             "knee_per_s")
    print(json.dumps({k: summary[k] for k in shown if k in summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
