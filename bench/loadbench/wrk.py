"""The wrk driver: one connection per thread, a generated Lua script, every run stopping by itself."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .runs import Load, Run, bad_statuses

WATCHDOG_S = 60  # after the deadline, wrk is interrupted and the run marked incomplete


LUA = r"""
-- Written by bench/load.py: one connection per thread; each thread stops itself after the
-- deadline (or its quota) right after a response, so no request is ever left in flight.
local cfg = {
  method = %(method)s, paths = %(paths)s, tokens = %(tokens)s, bodies = %(bodies)s,
  sequential = %(sequential)s, idem = %(idem)s, case_header = %(case_header)s,
  deadline = %(deadline)d, quota = %(quota)d, marks = %(marks)s,
}
local base_headers = { %(headers)s }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local function lines(path)
  local t = {}
  if path then for line in io.lines(path) do if #line > 0 then t[#t + 1] = line end end end
  return t
end

local id, paths, tokens, bodies, pos
local calls, got, case, statuses = 0, 0, 0, {}

function init(args)
  id = wrk.thread:get("id")
  math.randomseed(id * 7919 + os.time())
  paths, tokens, bodies = lines(cfg.paths), lines(cfg.tokens), lines(cfg.bodies)
  pos = math.random(#paths)
end

function request()
  calls = calls + 1
  local path
  if cfg.sequential then
    pos = pos %% #paths + 1
    path = paths[pos]
  else
    path = paths[math.random(#paths)]
  end
  local headers = {}
  for k, v in pairs(base_headers) do headers[k] = v end
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] end
  if cfg.idem then headers["Idempotency-Key"] = cfg.idem .. "-" .. id .. "-" .. calls end
  local body = nil
  if #bodies > 0 then
    body = bodies[(calls + id * 997) %% #bodies + 1]
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(cfg.method, path, headers, body)
end

function response(status, headers, body)
  got = got + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  local h = cfg.case_header
  if h and status == 200 and (headers[h] or headers[string.lower(h)]) then
    case = case + 1
  end
  if got >= cfg.quota or os.time() >= cfg.deadline then
    -- wrk calls request() once on its first thread, before connecting, to check the script.
    wrk.thread:set("sent", calls - (id == 1 and 1 or 0))
    wrk.thread:set("got", got)
    wrk.thread:set("case", case)
    wrk.thread:set("statuses", statuses)
    local f = io.open(cfg.marks .. "/" .. id, "w")
    f:write(tostring(got))
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local per = {}
  for _, t in ipairs(threads) do
    local st = t:get("statuses") or {}
    local parts = {}
    for k, v in pairs(st) do parts[#parts + 1] = string.format("%%q:%%d", k, v) end
    per[#per + 1] = string.format('{"sent":%%d,"got":%%d,"case":%%d,"statuses":{%%s}}',
      t:get("sent") or -1, t:get("got") or -1, t:get("case") or 0, table.concat(parts, ","))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%%d,"requests":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"min":%%d,"mean":%%f,"max":%%d,"p50":%%d,"p90":%%d,' ..
    '"p95":%%d,"p99":%%d,"p999":%%d},"threads":[%%s]}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency:percentile(99.9),
    table.concat(per, ",")))
end
"""


def lua_str(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)


def write_lines(path: Path, items: list[str]) -> str | None:
    if not items:
        return None
    path.write_text("\n".join(items) + "\n")
    return str(path)


def run_wrk(load: Load, base: str, connections: int, seconds: float, max_requests: int, work: Path) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    marks = work / "marks"
    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()
    started = time.time()
    deadline = math.ceil(started + seconds)
    script = work / "load.lua"
    script.write_text(lua_script(load, connections, deadline, max_requests, work, marks))
    command = [
        "wrk",
        "-t",
        str(connections),
        "-c",
        str(connections),
        "-d",
        f"{int(seconds) + 120}s",
        "--timeout",
        "120s",
        "-s",
        str(script),
        base,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    stopped_by_itself = wait_for_threads(proc, marks, connections, deadline + WATCHDOG_S)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    ended = time.time()
    return parse_result(load, connections, wrk_result(out, err), stopped_by_itself, started, ended)


def lua_script(load: Load, connections: int, deadline: int, max_requests: int, work: Path, marks: Path) -> str:
    return LUA % {
        "method": lua_str(load.method),
        "paths": lua_str(write_lines(work / "paths.txt", load.paths)),
        "tokens": lua_str(write_lines(work / "tokens.txt", load.tokens)),
        "bodies": lua_str(write_lines(work / "bodies.txt", load.bodies)),
        "sequential": "true" if load.sequential else "false",
        "idem": lua_str(f"{load.idempotency_prefix}-c{connections}" if load.idempotency_prefix else None),
        "case_header": lua_str(load.case_header),
        "deadline": deadline,
        "quota": max(1, math.ceil(max_requests / connections)),
        "marks": lua_str(str(marks)),
        "headers": ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in load.headers.items()),
    }


def wait_for_threads(proc: subprocess.Popen[str], marks: Path, connections: int, watchdog: float) -> bool:
    """Wait until every thread has marked itself done; False when the watchdog fired first."""
    while proc.poll() is None:
        if len(os.listdir(marks)) >= connections:
            break
        if time.time() > watchdog:
            return False
        time.sleep(0.01)
    return True


def wrk_result(out: str, err: str) -> dict[str, Any]:
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    return result


def parse_result(
    load: Load, connections: int, result: dict[str, Any], complete: bool, started: float, ended: float
) -> Run:
    statuses: dict[str, int] = {}
    sent = got = case = 0
    for t in result["threads"]:
        if t["got"] < 0:
            complete = False
            continue
        sent, got, case = sent + t["sent"], got + t["got"], case + t["case"]
        for k, v in t["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    complete = complete and sent == got
    seconds_run = result["duration_us"] / 1e6
    lat = result["latency_us"]
    transport = {k: v for k, v in result["errors"].items() if k != "status"}
    return Run(
        scenario=load.name,
        connections=connections,
        driver="wrk",
        seconds=round(seconds_run, 3),
        requests=result["requests"],
        requests_per_s=round(result["requests"] / seconds_run, 1),
        latency_ms={k: round(lat[k] / 1000, 2) for k in ("p50", "p90", "p95", "p99", "p999", "max", "mean")},
        errors=bad_statuses(statuses) + sum(transport.values()),
        statuses=dict(sorted(statuses.items())),
        transport_errors=transport,
        case_responses=case,
        sent=sent,
        complete=complete,
        started_at=started,
        ended_at=ended,
    )
