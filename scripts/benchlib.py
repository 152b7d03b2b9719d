"""Pieces shared by the benchmarks (`scripts/bench_catalog.py`, `scripts/bench_checkout.py`).

- Batang catalogue data: approved merchants and active products as rows for Core bulk inserts;
- a throwaway PostgreSQL database, created, migrated with Alembic and dropped at the end;
- one-worker uvicorn servers on free loopback ports, started and stopped;
- `wrk`: running it (optionally with a Lua script) and reading its output;
- the machine and the versions, for the report, and a report made of named sections so that each
  benchmark rewrites only its own part of `docs/benchmarks.md`.

The scripts are run as `python scripts/<name>.py`, so `scripts/` is on `sys.path` and they
`import benchlib`.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from app.core.migrations import upgrade
from app.merchants.uscc import ALPHABET, check_character
from app.models import AssistanceClass, MerchantKind, MerchantStatus, ProductStatus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REPORT = ROOT / "docs" / "benchmarks.md"
BATANG = "513335"

# --------------------------------------------------------------------------------------------
# Batang catalogue data

TOWNSHIPS = [
    "夏邛镇",
    "中咱镇",
    "措拉镇",
    "甲英镇",
    "地巫镇",
    "义敦镇",
    "竹巴龙乡",
    "苏哇龙乡",
    "昌波乡",
    "拉哇乡",
    "波密乡",
    "亚日贡乡",
    "茶洛乡",
    "松多乡",
    "德达乡",
    "党巴乡",
]

# slug: (share of the products, assistance class, [(name, unit, price range in fen, grams)])
CATALOGUE: dict[str, tuple[float, AssistanceClass, list[tuple[str, str, tuple[int, int], int]]]] = {
    "mushrooms": (
        0.18,
        AssistanceClass.agricultural,
        [
            ("野生松茸", "斤", (9800, 39800), 500),
            ("羊肚菌干货", "盒", (12800, 45800), 250),
            ("黑木耳", "袋", (2800, 6800), 500),
            ("牛肝菌片", "袋", (3800, 9800), 250),
            ("青冈菌", "斤", (4800, 12800), 500),
        ],
    ),
    "fruit": (
        0.24,
        AssistanceClass.agricultural,
        [
            ("巴塘高原苹果", "箱", (4800, 12800), 5000),
            ("金丝蜜枣", "斤", (1800, 3800), 500),
            ("高原石榴", "箱", (5800, 13800), 4000),
            ("冰糖心苹果", "箱", (5800, 15800), 5000),
            ("沙棘鲜果", "斤", (2200, 4800), 500),
            ("软籽石榴", "个", (800, 1800), 400),
        ],
    ),
    "meat": (
        0.12,
        AssistanceClass.agricultural,
        [
            ("牦牛肉干", "袋", (3800, 9800), 250),
            ("藏香猪腊肉", "斤", (6800, 15800), 500),
            ("高原黑山羊肉", "kg", (9800, 19800), 1000),
            ("牦牛肉", "kg", (12800, 26800), 1000),
        ],
    ),
    "grains": (
        0.14,
        AssistanceClass.agricultural,
        [
            ("青稞米", "袋", (2800, 6800), 2500),
            ("青稞糌粑", "袋", (1800, 4800), 1000),
            ("高原菜籽油", "瓶", (5800, 12800), 5000),
            ("苦荞茶", "盒", (2800, 6800), 300),
        ],
    ),
    "specialties": (
        0.12,
        AssistanceClass.agricultural,
        [
            ("牦牛酸奶", "瓶", (1200, 2800), 250),
            ("高原蜂蜜", "瓶", (6800, 16800), 500),
            ("酥油", "斤", (4800, 9800), 500),
            ("花椒", "袋", (2800, 7800), 250),
            ("藏茶砖", "块", (4800, 18800), 500),
        ],
    ),
    "handicrafts": (
        0.10,
        AssistanceClass.handicraft,
        [
            ("手工藏香", "盒", (3800, 12800), 200),
            ("牦牛毛编织坐垫", "个", (8800, 26800), 800),
            ("藏族手工银饰", "件", (19800, 89800), 50),
            ("手绘唐卡挂画", "幅", (58800, 298800), 600),
            ("木碗", "个", (6800, 18800), 300),
        ],
    ),
    "gift-packs": (
        0.10,
        AssistanceClass.agricultural,
        [
            ("巴塘山珍礼盒", "盒", (19800, 59800), 2000),
            ("高原年货礼盒", "盒", (16800, 39800), 3000),
            ("山海协作帮扶礼包", "份", (9800, 29800), 2500),
        ],
    ),
}
GRADES = ["特级", "一级", "精选", "家庭装", "尝鲜装", "合作社直供", "当季新货", "原产地直发"]
ADJECTIVES = ["海拔3000米以上", "金沙江畔", "无污染高原", "藏区牧场", "传统工艺", "古法手作"]
COOP_WORDS = ["种植专业合作社", "养殖专业合作社", "农牧民专业合作社", "村集体经济合作社"]


def uscc(rng: random.Random, prefix: str) -> str:
    body = prefix + "".join(rng.choice(ALPHABET) for _ in range(17 - len(prefix)))
    return body + check_character(body)


def merchant_rows(rng: random.Random, count: int, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        township = TOWNSHIPS[i % len(TOWNSHIPS)]
        village = i % 4 == 3
        person = rng.choice(["扎西", "格桑", "德吉", "次仁", "央宗"])
        name = f"巴塘县{township}{person}{COOP_WORDS[i % 4]}"
        households = rng.randint(20, 400)
        approved_at = now - timedelta(days=400 + i)
        rows.append(
            {
                "id": uuid.uuid4(),
                "name": name[:100],
                "kind": MerchantKind.village_collective if village else MerchantKind.cooperative,
                # 93: farmers' cooperative; N2: village collective economic organisation.
                "uscc": uscc(rng, ("N2" if village else "93") + BATANG),
                "legal_representative": rng.choice(["扎西", "格桑", "次仁多吉", "央宗", "泽仁"]),
                "contact_phone": f"+86138{rng.randint(0, 99_999_999):08d}",
                "region_code": BATANG,
                "township": township,
                "address": f"甘孜州巴塘县{township}{rng.randint(1, 30)}村{rng.randint(1, 99)}号",
                "households": households,
                "poverty_alleviated_households": households // 3,
                "monitored_households": households // 12,
                "bank_name": "中国农业银行巴塘县支行",
                "bank_account_name": name[:100],
                "bank_account_no": f"62284800{rng.randint(0, 10**11 - 1):011d}",
                "status": MerchantStatus.approved,
                "approved_at": approved_at,
                "created_at": approved_at - timedelta(days=3),
                "updated_at": approved_at,
            }
        )
    return rows


def product_rows(
    rng: random.Random, merchants: list[dict[str, Any]], count: int, now: datetime
) -> list[dict[str, Any]]:
    slugs = list(CATALOGUE)
    weights = [CATALOGUE[s][0] for s in slugs]
    rows = []
    for i in range(count):
        slug = rng.choices(slugs, weights)[0]
        _, klass, kinds = CATALOGUE[slug]
        base_name, unit, (low, high), grams = rng.choice(kinds)
        merchant = merchants[rng.randrange(len(merchants))]
        township = merchant["township"] if rng.random() < 0.8 else rng.choice(TOWNSHIPS)
        # Distinct creation times spread over the past year, like a catalogue that grew.
        created = now - timedelta(seconds=(count - i) * 3153 + rng.randint(0, 3000))
        certified = rng.random() < 0.65
        rows.append(
            {
                "id": uuid.uuid4(),
                "merchant_id": merchant["id"],
                "name": f"{base_name} {rng.choice(GRADES)} {unit}装"[:100],
                "description": (
                    f"{rng.choice(ADJECTIVES)}，产自巴塘县{township}。"
                    f"{merchant['name']}组织农牧户生产，统一分拣、统一包装，"
                    "下单后48小时内发货，冷链或顺丰直达。每一份订单都计入山海协作消费帮扶。"
                ),
                "category_slug": slug,
                "unit": unit,
                "price_fen": rng.randrange(low, high + 1, 100),
                "stock": 0 if rng.random() < 0.12 else rng.randint(1, 2000),
                "sold_units": int(rng.paretovariate(1.2) * 10) - 10,
                "origin_township": township,
                "assistance_class": klass,
                "cert_scheme": "消费帮扶产品认定" if certified else None,
                "cert_no": f"XFBF-2026-{BATANG}-{i:05d}" if certified else None,
                "cert_issuer": "四川省农业农村厅" if certified else None,
                "cert_valid_from": date(2026, 1, 1) if certified else None,
                "cert_valid_to": date(2027, 12, 31) if certified else None,
                "images": [
                    f"https://img.shanhai.example/p/{i}/{n}.jpg" for n in range(rng.randint(1, 4))
                ],
                "weight_grams": grams,
                "shelf_life_days": None if klass == AssistanceClass.handicraft else 180,
                "status": ProductStatus.active,
                "status_reason": None,
                "version": rng.randint(1, 5),
                "created_at": created,
                "updated_at": created + timedelta(hours=rng.randint(0, 48)),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# A throwaway PostgreSQL database


def admin_dsn(url: str) -> str:
    u = make_url(url)
    auth = u.username or "postgres"
    if u.password:
        auth += f":{u.password}"
    return (
        f"postgresql://{auth}@{u.host or '127.0.0.1'}:{u.port or 5432}/{u.database or 'postgres'}"
    )


async def admin_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def throwaway_database(server_url: str, prefix: str = "shanhai_bench") -> Iterator[str]:
    """Create `<prefix>_<random>` on the PostgreSQL server `server_url` (a SQLAlchemy URL),
    migrate it with Alembic, yield its URL, and drop it at the end, even on failure."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    print(f"creating database {name} …", flush=True)
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped database {name}", flush=True)


def server_env(database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment for the API under load: production settings, warnings only, a fresh
    SECRET_KEY (read it back from the result to mint tokens), per-process metrics."""
    env = dict(os.environ)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(
        SECRET_KEY=secrets.token_urlsafe(48),
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(name: str, target: list[str], env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    log = logdir / f"{name}.log"
    cmd = [
        str(BIN / "uvicorn"),
        *target,
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, proc, port, log)


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def wait_until_up(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} server exited early:\n{server.tail()}")
        try:
            get(server.base + "/openapi.json", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise SystemExit(
        f"{server.name} server did not answer within {timeout:.0f} s:\n{server.tail()}"
    )


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: float = 0.0
    """Server process CPU time (user + system) per request, in microseconds."""
    cpu_share: float = 0.0
    """Server process CPU time over wall time: 1.0 is one core kept busy."""
    load: float = 0.0
    """The 1-minute load average when the run started."""


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unreadable latency {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p50 and p99 and total):
        raise SystemExit(f"could not read wrk's output:\n{output}")
    return WrkResult(
        float(rps.group(1)),
        _latency_ms(p50.group(1)),
        _latency_ms(p99.group(1)),
        int(total.group(1)),
    )


class WrkFailed(Exception):
    """Some responses were not 2xx, or connections failed, during a wrk run."""


def run_wrk(
    url: str,
    connections: int,
    seconds: float,
    latency: bool = True,
    *,
    script: Path | None = None,
    script_args: list[str] | None = None,
    only_2xx: bool = True,
    env: dict[str, str] | None = None,
    timeout: str = "10s",
    allow_socket_errors: bool = False,
) -> str:
    """Run `wrk -t1` and return its output. Fails on any non-2xx response unless `only_2xx` is
    False (a script then counts the statuses itself), and on socket errors unless
    `allow_socket_errors` (the caller then reports them: see `socket_errors`)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout}"]
    if latency:
        cmd.append("--latency")
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad and only_2xx:
        raise WrkFailed(f"{url}: {bad.group(1)} responses were not 2xx:\n{out}")
    if (
        errors
        and re.search(r"(read|write|timeout) [1-9]", errors.group(1))
        and not (allow_socket_errors)
    ):
        raise WrkFailed(f"{url}: socket errors under load:\n{out}")
    return out


def socket_errors(output: str) -> str:
    """wrk's "Socket errors: ..." line without the label, or "" when there were none."""
    errors = re.search(r"Socket errors: (.*)", output)
    return errors.group(1).strip() if errors else ""


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0


def versions() -> dict[str, str]:
    import fastapi
    import pydantic
    import sqlalchemy
    import uvicorn

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout or wrk.stderr).split("Copyright")[0].strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    if commit and dirty:
        commit += "` with uncommitted changes under `app/"
    return {
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "pydantic": pydantic.VERSION,
        "sqlalchemy": sqlalchemy.__version__,
        "uvicorn": uvicorn.__version__,
        "wrk": wrk_version,
        "commit": commit or "unknown",
    }


# --------------------------------------------------------------------------------------------
# The report: docs/benchmarks.md, one section per benchmark


def write_section(path: Path, name: str, body: str) -> None:
    """Put `body` between `<!-- begin NAME -->` and `<!-- end NAME -->` in `path`, replacing what
    was there, so each benchmark rewrites only its own section; new sections go at the end."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        if not text:
            text = (
                "# Benchmarks\n\n"
                "Written by `make bench` (`scripts/bench_catalog.py`, "
                "`scripts/bench_checkout.py`); each section comes from one real run of its "
                "script, which rewrites only that section.\n"
            )
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def now_stamp() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z")


# --------------------------------------------------------------------------------------------
# Servers started by a command of their own, memory and PostgreSQL backend CPU


def start_command(
    name: str, cmd: list[str], env: dict[str, str], logdir: Path, port: int
) -> Server:
    """Start `cmd` (which must listen on `port`) with its output in `logdir/<name>.log`."""
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, proc, port, log)


def start_compose_server(name: str, env: dict[str, str], logdir: Path) -> Server:
    """One API process started the way compose.yaml's `api` service starts it (`shanhai serve
    --no-migrate`, which runs uvicorn with uvloop and httptools), but with one worker on
    loopback. Pass an `env` with the settings compose gives (e.g. LOG_LEVEL=INFO: the
    structured access log on)."""
    port = free_port()
    cmd = [str(BIN / "shanhai"), "serve", "--no-migrate", "--workers", "1"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    return start_command(name, cmd, env, logdir, port)


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_mb(pid: int) -> float:
    """The resident set size (VmRSS) of a process in MiB, from /proc; 0 if unknown."""
    return _status_kb(pid, "VmRSS") / 1024


class RssSampler:
    """The largest resident set size (VmRSS) of a process seen while running, sampled every
    `interval` seconds in a thread (Linux /proc; 0 elsewhere).

    with RssSampler(pid) as rss: ...load...; rss.max_mb"""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        import threading

        self.pid = pid
        self.interval = interval
        self.max_kb = _status_kb(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.max_kb = max(self.max_kb, _status_kb(self.pid, "VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.max_kb = max(self.max_kb, _status_kb(self.pid, "VmRSS"))

    @property
    def max_mb(self) -> float:
        return self.max_kb / 1024

    peak_mb = max_mb


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size since it started (VmHWM), in MiB."""
    return _status_kb(pid, "VmHWM") / 1024


async def _backend_pids(server_url: str, database: str) -> list[int]:
    conn = await asyncpg.connect(admin_dsn(server_url))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def backend_cpu(server_url: str, database: str) -> dict[int, float]:
    """{pid: user + system CPU seconds so far} of every PostgreSQL backend connected to
    `database` (found in pg_stat_activity, read from /proc/<pid>/stat: the server must run on
    this machine), other than the connection asking."""
    pids = asyncio.run(_backend_pids(server_url, database))
    return {pid: process_cpu_seconds(pid) for pid in pids}


def backend_cpu_spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """CPU seconds the backends spent between two `backend_cpu` readings (a backend that
    appeared in between counts whole), and how many backends went away in between (their last
    part is not counted)."""
    spent = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    gone = sum(1 for pid in before if pid not in after)
    return spent, gone
