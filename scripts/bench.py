"""The podid benchmark (run it as scripts/bench, which builds the release binary first).

Every figure is printed next to a baseline measured in the same run on the same machine, because
absolute numbers on shared machines drift: pgbench against the same PostgreSQL for the database-bound
measures, the simulated cloud's own latency and rate limits for the provisioning ones."""

import argparse
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from podidbench import (RESOURCE_GROUP, Stack, fail, http, identity_body, log, subscription,  # noqa: E402
                        wait_until)

DURATION = 10


def wrk(url, token, connections, seconds, script=None, latency=False):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}"]
    if script:
        args += ["-s", script]
    if latency:
        args.append("--latency")
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    result = {"rps": rps, "non2xx": int(errors.group(1)) if errors else 0,
              "socketErrors": socket_errors.group(0) if socket_errors else None}
    if latency:
        match = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        result["p99ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return result, out


def pgbench(stack, args, database):
    out = subprocess.run([stack.postgres.bin("pgbench"), *args, database], env=stack.postgres.client_env(),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stderr}")
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    return float(match.group(1)), out.stdout


def pgbench_p99(stack, script, clients, seconds, database):
    """p99 latency (ms) of a custom script, from pgbench's per-transaction log."""
    with tempfile.TemporaryDirectory() as directory:
        prefix = os.path.join(directory, "tx")
        subprocess.run([stack.postgres.bin("pgbench"), "-n", "-f", script, f"-c{clients}", "-j2", f"-T{seconds}", "-l",
                        f"--log-prefix={prefix}", database], env=stack.postgres.client_env(), capture_output=True, text=True,
                       check=True)
        latencies = []
        for name in os.listdir(directory):
            with open(os.path.join(directory, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        latencies.append(int(parts[2]) / 1000)
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1], len(latencies)


# --- measures --------------------------------------------------------------------------------------

def measure_get(stack, results):
    log("== GET identity with a token, 32 connections, vs pgbench -S at 32 clients")
    stack.create_team("reader")
    status, body, _ = stack.call("POST", "/v1/teams/reader/identities", identity_body("api"))
    assert status == 202, body
    status, body, _ = stack.call("POST", "/v1/teams/reader/tokens", {"name": "bench", "role": "viewer"})
    assert status == 201, body
    token = body["token"]
    stack.postgres.sql("CREATE DATABASE pgbench")
    subprocess.run([stack.postgres.bin("pgbench"), "-i", "-q", "-s", "10", "pgbench"], env=stack.postgres.client_env(),
                   check=True, capture_output=True)
    podid, _ = wrk(stack.api + "/v1/teams/reader/identities/api", token, 32, DURATION)
    tps, _ = pgbench(stack, ["-S", "-n", "-c32", "-j2", f"-T{DURATION}"], "pgbench")
    results.append(row("GET identity, 32 connections", f"{podid['rps']:.0f} req/s", "pgbench -S, 32 clients", f"{tps:.0f} TPS",
                       podid["rps"] / tps, ">= 0.5", podid["rps"] / tps >= 0.5, errors=podid["non2xx"]))


POST_SQL = """\\set team random(0, 99)
\\set n random(1, 1000000000000)
BEGIN;
SELECT name, display_name, contacts, policy::text, version, created_at, updated_at FROM teams WHERE name = 'w' || lpad(:team::text, 3, '0');
SELECT (policy->>'maxIdentities')::int FROM teams WHERE name = 'w' || lpad(:team::text, 3, '0') FOR UPDATE;
SELECT count(*)::int FROM identities WHERE team = 'w' || lpad(:team::text, 3, '0');
INSERT INTO identities (team, name, subscription_id, resource_group, location, tags, grants, deletion_policy, adopt_resource_id, adopted_by_admin, state, message)
  VALUES ('w' || lpad(:team::text, 3, '0'), 'g' || :n, '00000000-0000-0000-0000-000000000000', 'podid-dev', 'westeurope', '{}'::jsonb,
          '[{"role":"Reader","scope":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"}]'::jsonb,
          'delete', NULL, false, 'pending', 'waiting for a worker') RETURNING *;
INSERT INTO jobs (id, kind, team, resource_type, resource_name, serial_key, dedupe_key, payload, max_attempts, request_id, resource)
  VALUES (gen_random_uuid(), 'identity.provision', 'w' || lpad(:team::text, 3, '0'), 'identity', 'g' || :n, 'identity:w' || :team || '/g' || :n,
          'identity:w' || :team || '/g' || :n, '{}'::jsonb, 8, 'bench-' || :n, '{}'::jsonb)
  ON CONFLICT (dedupe_key) WHERE state = 'queued' AND dedupe_key IS NOT NULL
  DO UPDATE SET payload = EXCLUDED.payload, run_at = least(jobs.run_at, now()), updated_at = now(), request_id = EXCLUDED.request_id
  RETURNING id;
SELECT pg_notify('podid_jobs', '');
INSERT INTO audit_events (actor, actor_team, action, outcome, team, resource_type, resource_name, request_id, job_id, details, before, after)
  VALUES ('admin', NULL, 'identity.created', 'success', 'w' || lpad(:team::text, 3, '0'), 'identity', 'g' || :n, 'bench-' || :n, NULL,
          '{"jobId":"00000000-0000-0000-0000-000000000000"}'::jsonb, NULL,
          '{"name":"g","team":"w","state":"pending","grants":[{"role":"Reader","scope":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"}]}'::jsonb);
END;
"""

POST_LUA = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local team = string.format("w%03d", counter % 100)
  local name = string.format("h%d-%d", id, counter)
  local body = '{"name":"' .. name .. '","subscriptionId":"00000000-0000-0000-0000-000000000000","resourceGroup":"podid-dev",' ..
    '"location":"westeurope","grants":[{"role":"Reader","scope":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/podid-dev"}]}'
  return wrk.format("POST", "/v1/teams/" .. team .. "/identities", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. TOKEN}, body)
end
local reported = false
function response(status, headers, body)
  if status ~= 202 and not reported then
    reported = true
    print("first refusal: " .. status .. " " .. body)
  end
end
"""


def measure_post(stack, results):
    log("== POST identity (row + audit + job in one transaction), 32 connections, vs the same SQL by pgbench")
    for index in range(100):
        stack.create_team(f"w{index:03d}", max_identities=10000)
    # The baseline runs in a copy of the schema, so that its rows never meet podid's.
    stack.postgres.sql("CREATE DATABASE baseline")
    subprocess.run([stack.binary, "migrate", "apply"], check=True, stdout=subprocess.DEVNULL, env=dict(
        os.environ, PODID_DATABASE_URL=stack.postgres.runtime_url.replace("/podid?", "/baseline?"),
        PODID_MIGRATION_DATABASE_URL=stack.postgres.owner_url.replace("/podid?", "/baseline?")))
    teams = stack.postgres.sql("SELECT name, display_name, policy::text FROM teams WHERE name LIKE 'w%'")
    values = ",".join("('{}', '{}', '{}'::jsonb)".format(n, d.replace("'", "''"), p.replace("'", "''")) for n, d, p in teams)
    stack.postgres.sql(f"INSERT INTO teams (name, display_name, policy) VALUES {values}", "baseline")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f'TOKEN = "{stack.admin_token}"\n' + POST_LUA)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(POST_SQL)
    podid, output = wrk(stack.api + "/v1/teams/w000/identities", stack.admin_token, 32, DURATION, script=lua.name)
    accepted = int(stack.postgres.scalar("SELECT count(*) FROM identities WHERE team LIKE 'w%'"))
    if podid["non2xx"]:
        log(f"   {podid['non2xx']} POSTs were not accepted:\n{output}")
    # Only accepted requests count: each is one identity row (with its audit event and job).
    podid["rps"] = accepted / DURATION
    tps, _ = pgbench(stack, ["-n", "-f", script.name, "-c32", "-j2", f"-T{DURATION}"], "baseline")
    results.append(row("POST identity, 32 connections", f"{podid['rps']:.0f} req/s", "same SQL by pgbench, 32 clients", f"{tps:.0f} TPS",
                       podid["rps"] / tps, ">= 0.6", podid["rps"] / tps >= 0.6, errors=podid["non2xx"], created=accepted))


AUDIT_PAGE_SQL = """\\set team random(0, 99)
\\set day random(1, 29)
SELECT e.id, to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor, e.actor_team, e.action, e.outcome,
       e.team, e.resource_type, e.resource_name, e.request_id, e.job_id::text, e.details::text, e.before::text, e.after::text,
       s.position, s.hash, s.prev_hash
FROM audit_events e LEFT JOIN audit_seals s ON s.event_id = e.id
WHERE e.team = 'a' || lpad(:team::text, 3, '0') AND e.occurred_at >= timestamptz '{base}' + :day * interval '1 day'
  AND e.occurred_at < timestamptz '{base}' + (:day + 1) * interval '1 day'
ORDER BY e.occurred_at DESC, e.id DESC LIMIT 101;
"""

AUDIT_LUA = """
local counter = 0
function request()
  counter = counter + 1
  local team = string.format("a%03d", (counter * 37) % 100)
  local day = 1 + (counter * 13) % 29
  local since = os.date("!%Y-%m-%dT%H:%M:%SZ", BASE + day * 86400)
  local till = os.date("!%Y-%m-%dT%H:%M:%SZ", BASE + (day + 1) * 86400)
  return wrk.format("GET", "/v1/audit?team=" .. team .. "&since=" .. since .. "&until=" .. till .. "&limit=100")
end
"""


def measure_audit(stack, results, events):
    log(f"== audit page (team + one day, 100 rows) on {events:,} events: p99 vs the same SQL by pgbench")
    base = int(time.time()) // 86400 * 86400 - 31 * 86400
    base_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base))
    started = time.time()
    # 100 teams, 30 days; the shape of podid's own events (details, after) so rows are of real size.
    stack.postgres.sql(f"""
        INSERT INTO audit_events (occurred_at, actor, actor_team, action, outcome, team, resource_type, resource_name, request_id,
                                  job_id, details, before, after)
        SELECT timestamptz '{base_text}' + (i::double precision / {events} * 30) * interval '1 day', 'podid', NULL,
               (ARRAY['identity.created','azure.identity.created','azure.roleassignment.created','identity.ready'])[1 + i % 4],
               'success', 'a' || lpad((i % 100)::text, 3, '0'), 'identity', 'svc-' || (i % 5000), 'req-' || (i / 4), gen_random_uuid(),
               jsonb_build_object('jobKind', 'identity.provision', 'upstreamRequestId', md5(i::text)), NULL,
               jsonb_build_object('name', 'svc-' || (i % 5000), 'state', 'ready')
        FROM generate_series(1, {events}) AS i""")
    stack.postgres.sql("ANALYZE audit_events")
    inserted = time.time() - started
    log(f"   inserted in {inserted:.0f} s; waiting for the sealer to chain them")
    seal_started = time.time()
    sealed = wait_until(lambda: stack.postgres.scalar("SELECT count(*) FROM audit_unsealed") == "0", 1800, 1)
    if not sealed:
        fail("the sealer did not seal the events within 30 minutes")
    seal_seconds = time.time() - seal_started
    stack.postgres.sql("VACUUM ANALYZE audit_events")
    stack.postgres.sql("VACUUM ANALYZE audit_seals")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(f"BASE = {base}\n" + AUDIT_LUA)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(AUDIT_PAGE_SQL.format(base=base_text))
    status, body, _ = stack.call("GET", f"/v1/audit?team=a007&since={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(base + 5 * 86400))}"
                                        f"&until={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(base + 6 * 86400))}&limit=100")
    # 100 teams × 30 days: a day of one team holds events ÷ 3,000 events (333 of 1,000,000), so a page is full.
    assert status == 200 and len(body["items"]) == min(100, events // 3000), (status, body if status != 200 else len(body["items"]))
    podid, _ = wrk(stack.api + "/", stack.admin_token, 4, DURATION, script=lua.name, latency=True)
    p99, count = pgbench_p99(stack, script.name, 4, DURATION, "podid")
    results.append(row(f"audit page p99 on {events:,} events, 4 connections", f"{podid['p99ms']:.2f} ms",
                       "same SQL by pgbench, 4 clients", f"{p99:.2f} ms", podid["p99ms"] / p99, "<= 2", podid["p99ms"] / p99 <= 2,
                       errors=podid["non2xx"], sealRate=round(events / seal_seconds)))


def provision(stack, team, count, subscriptions, timeout):
    """POSTs `count` identities (32 at a time) and waits until all are ready; the wall time."""
    stack.sim_admin("azure", "DELETE", "/_sim/requests")
    started = time.time()

    def create(index):
        return stack.call("POST", f"/v1/teams/{team}/identities", identity_body(f"{team[0]}{index:04d}", index % subscriptions))

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(create, range(count)))
    refused = [a for a in answers if a[0] != 202]
    if refused:
        fail(f"{len(refused)} POSTs refused, the first: {refused[0][0]} {refused[0][1]}")

    def all_ready():
        counts = dict((state, int(n)) for state, n in stack.postgres.sql(
            f"SELECT state, count(*) FROM identities WHERE team = '{team}' GROUP BY state"))
        if counts.get("failed"):
            fail(f"{counts['failed']} identities failed: " + str(stack.postgres.sql(
                f"SELECT name, last_error FROM identities WHERE team = '{team}' AND state = 'failed' LIMIT 3")))
        return counts.get("ready", 0) == count

    if not wait_until(all_ready, timeout, 0.05):
        fail(f"not all {count} identities became ready within {timeout} s")
    wall = time.time() - started
    requests = stack.sim_admin("azure", "GET", "/_sim/requests")
    cloud = [r for r in requests if not r["operation"].startswith("token")]
    return wall, cloud


def measure_provisioning(stack, results, count, workers):
    log(f"== {count} provisionings, 50 ms per cloud call, throttling and replication delay out of the way, {workers} workers")
    stack.sim_admin("azure", "PATCH", "/_sim/settings", {"identityWritesPerSecond": 0, "principalNotFoundSeconds": 0,
                                                         "faults": [{"operation": "*", "latencyMs": 50}]})
    stack.start_serve(workers, PODID_AZURE_IDENTITY_WRITES_PER_SECOND=1000, PODID_HEALTH_INTERVAL=5)
    stack.create_team("fast", max_identities=count, namespaces=("aad-broker", "apps"))
    wall, cloud = provision(stack, "fast", count, 1, 1800)
    per_identity = len(cloud) / count
    ideal = count * per_identity * 0.05 / workers
    results.append(row(f"{count} provisionings, 50 ms calls, {workers} workers", f"{wall:.1f} s",
                       f"{count} × {per_identity:.2f} calls × 50 ms ÷ {workers}", f"{ideal:.1f} s", wall / ideal, "<= 1.25", wall / ideal <= 1.25,
                       callsPerIdentity=per_identity, operations=tally(cloud)))


def measure_rate_limited(stack, results, count, workers):
    log(f"== {count} provisionings under Azure's limit (2 identity writes/s per subscription) over 4 subscriptions")
    stack.sim_admin("azure", "PATCH", "/_sim/settings", {"identityWritesPerSecond": 2, "principalNotFoundSeconds": 0,
                                                         "faults": [{"operation": "*", "latencyMs": 50}]})
    stack.start_serve(workers, PODID_AZURE_IDENTITY_WRITES_PER_SECOND=2, PODID_HEALTH_INTERVAL=5)
    stack.create_team("limited", subscriptions=4, max_identities=count, namespaces=("aad-broker", "apps"))
    wall, cloud = provision(stack, "limited", count, 4, 3600)
    writes = sum(1 for r in cloud if r["operation"] in ("identity.put", "identity.patch", "identity.delete") and r["status"] != 429)
    throttled = sum(1 for r in cloud if r["status"] == 429)
    ideal = writes / 8
    results.append(row(f"{count} provisionings, 2 writes/s × 4 subscriptions", f"{wall:.1f} s", f"{writes} writes ÷ 8 per s",
                       f"{ideal:.1f} s", wall / ideal, "<= 1.1", wall / ideal <= 1.1, throttled=throttled))


def metric(stack, name, labels):
    status, text, _ = http("GET", stack.api + "/metrics")
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def sweep_seconds(stack, samples=3):
    """The durations of the next `samples` sweeps of cluster local."""
    durations = []
    last = metric(stack, "podid_health_sweeps_total", {"cluster": "local"}) or 0
    while len(durations) < samples:
        now = wait_until(lambda: (metric(stack, "podid_health_sweeps_total", {"cluster": "local"}) or 0) > last and
                         metric(stack, "podid_health_sweeps_total", {"cluster": "local"}), 120, 0.2)
        if not now:
            fail("no health sweep within 2 minutes")
        last = now
        durations.append(metric(stack, "podid_health_sweep_seconds", {"cluster": "local"}))
    return statistics.median(durations), durations


def bind_and_seed(stack, team, names, first_pod, pods_per_binding):
    def bind(name):
        return stack.call("POST", f"/v1/teams/{team}/identities/{name}/bindings",
                          {"name": "web", "cluster": "local", "selector": f"{team}-{name}"})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(bind, names))
    refused = [a for a in answers if a[0] != 202]
    if refused:
        fail(f"{len(refused)} bindings refused, the first: {refused[0][0]} {refused[0][1]}")

    def pod(index):
        name = names[index // pods_per_binding]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"app-{first_pod + index}", "labels": {"aadpodidbinding": f"{team}-{name}"}},
                "spec": {"nodeName": ["aks-nodepool1-12345678-vmss000000", "aks-nodepool1-12345678-vmss000001"][index % 2],
                         "containers": [{"name": "app", "image": "nginx"}]}}
        status, answer, _ = http("POST", stack.kube + "/api/v1/namespaces/apps/pods", token="dev", body=body)
        return status

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(pod, range(len(names) * pods_per_binding)))
    if any(s != 201 for s in statuses):
        fail(f"creating pods: {sorted(set(statuses))}")


def measure_health(stack, results, count):
    pods = count * 10
    log(f"== health sweep: {pods:,} pods / {count:,} bindings, then {2 * pods:,} / {2 * count:,}")
    http("POST", stack.kube + "/api/v1/namespaces", token="dev", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    stack.register_cluster()
    fast = [f"f{i:04d}" for i in range(count)]
    limited = [f"l{i:04d}" for i in range(count)]

    def settle(pods, bindings):
        ready = wait_until(lambda: int(stack.postgres.scalar("SELECT count(*) FROM bindings WHERE state = 'ready'")) == bindings, 1800, 1)
        if not ready:
            fail(f"bindings did not all become ready: {stack.postgres.sql('SELECT state, count(*) FROM bindings GROUP BY state')}")
        assigned = wait_until(lambda: metric(stack, "podid_health_assignments", {"cluster": "local", "state": "Assigned"}) == pods, 1800, 1)
        if not assigned:
            fail(f"the simulated MIC did not assign all {pods} pods")

    bind_and_seed(stack, "fast", fast, 0, 10)
    settle(pods, count)
    small, small_samples = sweep_seconds(stack)
    healthy = metric(stack, "podid_health_bindings", {"cluster": "local", "status": "healthy"})
    bind_and_seed(stack, "limited", limited, pods, 10)
    settle(2 * pods, 2 * count)
    large, large_samples = sweep_seconds(stack)
    results.append(row(f"health sweep, {pods:,} pods / {count:,} bindings", f"{small:.3f} s", "target", "1 s", small, "< 1 s", small < 1,
                       samples=small_samples, healthyBindings=healthy))
    results.append(row(f"health sweep, {2 * pods:,} ÷ {pods:,} pods", f"{large:.3f} s", f"{pods:,} pods", f"{small:.3f} s", large / small, "<= 2.2",
                       large / small <= 2.2, samples=large_samples))


def tally(requests):
    counts = {}
    for r in requests:
        key = f"{r['operation']} {r['status']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def row(measure, value, baseline_name, baseline, ratio, target, met, **extra):
    return {"measure": measure, "value": value, "baseline": baseline_name, "baselineValue": baseline,
            "ratio": round(ratio, 3), "target": target, "met": bool(met), **extra}


def print_table(results):
    headers = ["measure", "podid", "baseline", "", "ratio", "target", "met"]
    rows = [[r["measure"], r["value"], r["baseline"], r["baselineValue"], f"{r['ratio']:.2f}", r["target"], "yes" if r["met"] else "NO"]
            for r in results]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for line in [headers, ["-" * w for w in widths]] + rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="the JSON file to write the results to")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--audit-events", type=int, default=1_000_000)
    parser.add_argument("--only", default="provisioning,ratelimited,health,get,post,audit",
                        help="comma-separated measures to run (health needs both provisioning runs)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    stack = Stack(args.binary, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".podid-bench"))
    results = []
    started = time.time()
    try:
        stack.start_sim()
        if "provisioning" in only:
            measure_provisioning(stack, results, args.identities, args.workers)
        if "ratelimited" in only:
            measure_rate_limited(stack, results, args.identities, args.workers)
        if "health" in only:
            measure_health(stack, results, args.identities)
        stack.start_serve(0)
        if "get" in only:
            measure_get(stack, results)
        if "post" in only:
            measure_post(stack, results)
        if "audit" in only:
            measure_audit(stack, results, args.audit_events)
        stack.stop_serve()
    finally:
        stack.stop()
    results.append(row("peak RSS of podid serve", f"{stack.peak_rss:.0f} MB", "target", "150 MB", stack.peak_rss / 150, "< 150 MB",
                       stack.peak_rss < 150))
    print()
    print_table(results)
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), "seconds": round(time.time() - started),
              "identities": args.identities, "workers": args.workers, "results": results}
    with open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nwritten to {args.output}")
    return 0 if all(r["met"] for r in results) else 1


def machine():
    cpus = os.cpu_count()
    memory = 0
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) // 1024 // 1024
    return f"{cpus} cores, {memory} GiB"


if __name__ == "__main__":
    sys.exit(main())
