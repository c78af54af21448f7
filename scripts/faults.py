"""podid's fault drills (run them as scripts/faults): a crash in the middle of provisioning, a
PostgreSQL outage under load, a throttling storm from Azure, the audit history tampered with as
the database owner, and three replicas on one PostgreSQL with kills and a failover. Each prints what it did and one
PASS or FAIL line with its numbers."""

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from podidbench import Process, Stack, free_port, http, identity_body, log, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def post_identities(stack, team, names, threads=16):
    def create(name):
        return stack.call("POST", f"/v1/teams/{team}/identities", identity_body(name))

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(create, names))
    return [a for a in answers if a[0] != 202]


def states(stack, team):
    return dict((state, int(n)) for state, n in stack.postgres.sql(
        f"SELECT state, count(*) FROM identities WHERE team = '{team}' GROUP BY state"))


def converged(stack, team, count, timeout):
    """Waits until all `count` identities are ready (or one failed); the final states."""
    wait_until(lambda: states(stack, team).get("ready", 0) == count or states(stack, team).get("failed"), timeout, 0.5)
    return states(stack, team)


def check_azure(stack, team, names):
    """What the Azure simulator holds for `names`, against what podid recorded and audited."""
    problems = []
    identities = [i for i in stack.sim_admin("azure", "GET", "/_sim/identities")
                  if i.get("tags", {}).get("podid-team") == team]
    held = sorted(i["name"].lower() for i in identities)
    if held != sorted(n.lower() for n in names):
        problems.append(f"the simulator holds {len(held)} identities of the team, not exactly the {len(names)} asked for")
    rows = stack.postgres.sql(f"SELECT name, principal_id, assignments::text, resource_id FROM identities WHERE team = '{team}'")
    principals = {r[1].lower(): r[0] for r in rows if r[1]}
    recorded = set()
    for r in rows:
        for assignment in json.loads(r[2]):
            recorded.add(assignment["assignmentId"].lower())
    assignments = stack.sim_admin("azure", "GET", "/_sim/roleassignments")
    ours = [a for a in assignments if a["properties"]["principalId"].lower() in principals]
    # The simulator seeds no role assignments of its own: any other principal's is an orphan.
    orphaned = [a for a in assignments if a["properties"]["principalId"].lower() not in principals]
    per_principal = {}
    for a in ours:
        per_principal[a["properties"]["principalId"].lower()] = per_principal.get(a["properties"]["principalId"].lower(), 0) + 1
    duplicated = sum(1 for n in per_principal.values() if n > 1)
    unrecorded = [a["id"] for a in ours if a["id"].lower() not in recorded]
    if orphaned:
        problems.append(f"{len(orphaned)} orphaned role assignments (their principal is no identity of podid's)")
    if duplicated:
        problems.append(f"{duplicated} identities have more than one role assignment for their one grant")
    if len(per_principal) != len(names):
        problems.append(f"{len(names) - len(per_principal)} identities have no role assignment")
    if unrecorded:
        problems.append(f"{len(unrecorded)} role assignments are not recorded on their identity")
    # Every step audited: the request, the Azure identity (created, or found after a crash), each
    # role assignment by its id, and the outcome.
    audit = stack.postgres.sql(
        f"SELECT resource_name, action, coalesce(details->>'assignmentId', '') FROM audit_events WHERE team = '{team}'")
    by_identity = {}
    audited_assignments = set()
    for name, action, assignment in audit:
        by_identity.setdefault(name, []).append(action)
        if action == "azure.roleassignment.created":
            audited_assignments.add(assignment.lower())
    missing = []
    for name in names:
        actions = by_identity.get(name, [])
        azure = actions.count("azure.identity.created") + actions.count("azure.identity.found")
        if actions.count("identity.created") != 1 or azure != 1 or "identity.ready" not in actions:
            missing.append(f"{name}: {sorted(actions)}")
    unaudited = [a["id"] for a in ours if a["id"].lower() not in audited_assignments]
    if missing:
        problems.append(f"{len(missing)} identities lack a step in the audit history, e.g. {missing[0]}")
    if unaudited:
        problems.append(f"{len(unaudited)} role assignments have no azure.roleassignment.created event")
    return problems, {"identitiesInAzure": len(held), "roleAssignments": len(ours), "orphaned": len(orphaned),
                      "auditEvents": len(audit), "audited": not missing and not unaudited}


def drill_crash(binary, count):
    log(f"== drill: kill -9 of podid serve during {count} provisionings, then a restart")
    stack = Stack(binary, os.path.join(ROOT, ".podid-faults"))
    try:
        stack.start_sim()
        stack.sim_admin("azure", "PATCH", "/_sim/settings", {"identityWritesPerSecond": 0, "principalNotFoundSeconds": 1,
                                                             "faults": [{"operation": "*", "latencyMs": 100}]})
        stack.start_serve(8, PODID_AZURE_IDENTITY_WRITES_PER_SECOND=1000)
        stack.create_team("crash", max_identities=count)
        names = [f"c{i:04d}" for i in range(count)]
        refused = post_identities(stack, "crash", names)
        if refused:
            return fail_line("crash", f"{len(refused)} POSTs refused: {refused[0]}")
        wait_until(lambda: states(stack, "crash").get("ready", 0) >= count // 3, 300, 0.05)
        before = states(stack, "crash")
        running = int(stack.postgres.scalar("SELECT count(*) FROM jobs WHERE state = 'running'"))
        log(f"   killing podid serve (pid {stack.serve.pid}) with SIGKILL: {before.get('ready', 0)} ready, {running} jobs running")
        stack.serve.kill9()
        stack.serve = None
        restarted = time.time()
        stack.start_serve(8, PODID_AZURE_IDENTITY_WRITES_PER_SECOND=1000)
        log("   restarted; the dead process's leases expire and its jobs run again")
        final = converged(stack, "crash", count, 600)
        recovered = time.time() - restarted
        rerun = int(stack.postgres.scalar("SELECT count(*) FROM jobs WHERE team = 'crash' AND attempts > 1"))
        failed = int(stack.postgres.scalar("SELECT count(*) FROM jobs WHERE team = 'crash' AND state = 'failed'"))
        problems, numbers = check_azure(stack, "crash", names)
        if final.get("ready", 0) != count:
            problems.insert(0, f"only {final.get('ready', 0)} of {count} ready: {final}")
        if failed:
            problems.append(f"{failed} jobs failed")
        summary = (f"{final.get('ready', 0)}/{count} ready {recovered:.0f} s after the restart; killed with {running} jobs running, "
                   f"{rerun} jobs ran again; {numbers['identitiesInAzure']} identities and {numbers['roleAssignments']} role "
                   f"assignments in Azure, {numbers['orphaned']} orphaned; every step audited: {'yes' if numbers['audited'] else 'no'}")
        return result_line("crash", problems, summary)
    finally:
        stack.stop()


def drill_outage(binary, outage_seconds):
    log(f"== drill: PostgreSQL stopped for {outage_seconds} s under load")
    stack = Stack(binary, os.path.join(ROOT, ".podid-faults"))
    try:
        stack.start_sim()
        stack.sim_admin("azure", "PATCH", "/_sim/settings", {"principalNotFoundSeconds": 0})
        stack.start_serve(4)
        stack.create_team("outage")
        stack.call("POST", "/v1/teams/outage/identities", identity_body("o-api"))
        status, body, _ = stack.call("POST", "/v1/teams/outage/tokens", {"name": "drill", "role": "maintainer"})
        token = body["token"]
        converged(stack, "outage", 1, 60)
        samples = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(worker):
            counter = 0
            while not stop.is_set():
                counter += 1
                if counter % 5 == 0:
                    answer = http("POST", stack.api + "/v1/teams/outage/identities", token=token,
                                  body=identity_body(f"o{worker}-{counter}"), timeout=30)
                else:
                    answer = http("GET", stack.api + "/v1/teams/outage/identities/o-api", token=token, timeout=30)
                with lock:
                    samples.append((time.time(), answer[0], answer[2].get("Content-Type", "")))
                time.sleep(0.02)

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(3)
        stopped = time.time()
        stack.postgres.stop()
        log(f"   PostgreSQL stopped; podid serve pid {stack.serve.pid} keeps serving")
        time.sleep(outage_seconds / 2)
        ready_during, _, _ = http("GET", stack.api + "/readyz")
        time.sleep(max(0.0, outage_seconds - (time.time() - stopped)))
        alive_during = stack.serve.alive()
        stack.postgres.start()
        back = time.time()
        log(f"   PostgreSQL started again after {back - stopped:.1f} s")
        time.sleep(10)
        stop.set()
        for t in threads:
            t.join()
        during = [s for s in samples if stopped + 0.5 < s[0] < back]
        after = [s for s in samples if s[0] >= back]
        bad_during = [s for s in during if s[1] != 503 or "application/problem+json" not in s[2]]
        failing_after = [s for s in after if s[1] not in (200, 202)]
        recovery = (max(s[0] for s in failing_after) - back) if failing_after else 0.0
        problems = []
        if not during:
            problems.append("no requests answered during the outage")
        if bad_during:
            problems.append(f"{len(bad_during)} answers during the outage were not 503 problem+json, e.g. {bad_during[0][1:]}")
        if ready_during != 503:
            problems.append(f"/readyz answered {ready_during} during the outage")
        if not alive_during or not stack.serve.alive():
            problems.append("podid serve died")
        if recovery > 5:
            problems.append(f"healthy only {recovery:.1f} s after PostgreSQL was back")
        if not after or after[-1][1] not in (200, 202):
            problems.append("not healthy at the end")
        summary = (f"{len(during)} requests during the outage, all 503 problem+json: {'yes' if not bad_during else 'no'}; "
                   f"/readyz {ready_during}; podid alive: {'yes' if stack.serve.alive() else 'no'}; "
                   f"healthy {recovery:.1f} s after PostgreSQL was back ({len(after)} requests after)")
        return result_line("outage", problems, summary)
    finally:
        stack.stop()


def drill_storm(binary, count):
    log(f"== drill: 30 % 429 (Retry-After: 2) and 5 % 500 from Azure during {count} provisionings")
    stack = Stack(binary, os.path.join(ROOT, ".podid-faults"))
    try:
        stack.start_sim()
        stack.sim_admin("azure", "PATCH", "/_sim/settings", {
            "identityWritesPerSecond": 0, "principalNotFoundSeconds": 0,
            "faults": [{"operation": "*", "throttleRate": 0.3, "errorRate": 0.05, "retryAfterSeconds": 2}]})
        stack.start_serve(8, PODID_AZURE_IDENTITY_WRITES_PER_SECOND=1000)
        stack.create_team("storm", max_identities=count)
        names = [f"s{i:04d}" for i in range(count)]
        started = time.time()
        refused = post_identities(stack, "storm", names)
        if refused:
            return fail_line("storm", f"{len(refused)} POSTs refused: {refused[0]}")
        final = converged(stack, "storm", count, 900)
        took = time.time() - started
        problems, numbers = check_azure(stack, "storm", names)
        if final.get("ready", 0) != count:
            problems.insert(0, f"only {final.get('ready', 0)} of {count} ready: {final}")
        log_entries = stack.sim_admin("azure", "GET", "/_sim/requests")
        throttled = [e for e in log_entries if e["status"] == 429]
        errors = sum(1 for e in log_entries if e["status"] == 500)
        early = []
        gaps = []
        in_flight = 0
        for index, entry in enumerate(log_entries):
            if entry["status"] != 429:
                continue
            # The 429 reached podid when the simulator answered it (`time`). A request to the same
            # path that arrived before then was already in flight (another worker's call, its own
            # client request id): no retry, and nothing podid could have held back. The first one
            # that arrived after it is what podid sent knowing about the 429: it must wait it out.
            answered = parse_time(entry["time"])
            for later in log_entries[index + 1:]:
                if later["method"] != entry["method"] or later["path"] != entry["path"]:
                    continue
                arrived = parse_time(later.get("receivedAt") or later["time"])
                if arrived < answered:
                    in_flight += 1
                    continue
                gap = arrived - answered
                gaps.append(gap)
                if gap < 2 - 0.05:
                    same_call = later.get("clientRequestId") and later.get("clientRequestId") == entry.get("clientRequestId")
                    early.append((entry["operation"], round(gap, 3), "the same call again" if same_call else "a new call"))
                break
        if early:
            problems.append(f"{len(early)} requests came again sooner than Retry-After, e.g. {early[:3]}")
        if not throttled:
            problems.append("the simulator throttled nothing")
        summary = (f"{final.get('ready', 0)}/{count} ready in {took:.0f} s through {len(throttled)} 429s and {errors} 500s; "
                   f"the shortest wait after a 429 was {min(gaps) if gaps else 0:.2f} s (Retry-After 2 s), {len(early)} sooner, "
                   f"{in_flight} already in flight; "
                   f"{numbers['identitiesInAzure']} identities and {numbers['roleAssignments']} role assignments in Azure, "
                   f"{numbers['orphaned']} orphaned")
        return result_line("storm", problems, summary)
    finally:
        stack.stop()


def drill_replicas(binary, count, kill_every=20):
    log(f"== drill: three podid serve replicas on one PostgreSQL, {count} identities with bindings, "
        f"one replica killed with SIGKILL every {kill_every} s, PostgreSQL restarted once")
    stack = Stack(binary, os.path.join(ROOT, ".podid-faults"))
    replicas = {}
    try:
        key_file = os.path.join(stack.data_dir, "audit.key")
        with open(key_file, "w") as f:
            f.write(os.urandom(32).hex())
        extra = {"PODID_AZURE_IDENTITY_WRITES_PER_SECOND": 1000, "PODID_CLUSTER_CREDENTIALS_DIR": stack.data_dir,
                 "PODID_AUDIT_KEY_FILE": key_file, "PODID_AUDIT_CHECKPOINTS": os.path.join(stack.data_dir, "audit-checkpoints"),
                 "PODID_HEALTH_INTERVAL": 5}
        ports = [stack.api_port, free_port(), free_port()]

        def start(index):
            env = stack.serve_env(4, **dict(extra, PODID_HTTP_PORT=ports[index]))
            replicas[index] = Process(binary, ["serve"], env, os.path.join(stack.data_dir, f"serve-{index}.log"),
                                      ready_url=f"http://127.0.0.1:{ports[index]}/readyz", timeout=120)

        stack.start_sim()
        stack.sim_admin("azure", "PATCH", "/_sim/settings", {"identityWritesPerSecond": 0, "principalNotFoundSeconds": 1,
                                                             "faults": [{"operation": "*", "latencyMs": 50}]})
        for index in range(3):
            start(index)
        stack.register_cluster()
        stack.create_team("rep", max_identities=count)
        names = [f"r{i:04d}" for i in range(count)]
        started = time.time()
        stop = threading.Event()
        kills = []

        def killer():
            victim = 0
            postgres_restarted = False
            while not stop.wait(kill_every):
                index = victim % 3
                victim += 1
                replicas[index].kill9()
                kills.append(index)
                log(f"   SIGKILL replica {index} at {time.time() - started:.0f} s")
                if not postgres_restarted and len(kills) == 2:
                    postgres_restarted = True
                    stack.postgres.stop()
                    log("   PostgreSQL stopped (a failover) for 5 s")
                    time.sleep(5)
                    stack.postgres.start()
                try:
                    start(index)
                except RuntimeError as error:
                    log(f"   replica {index} did not come back: {error}")

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()

        def create(name):
            for _ in range(60):
                port = ports[hash(name) % 3]
                try:
                    status, body, _ = http("POST", f"http://127.0.0.1:{port}/v1/teams/rep/identities", token=stack.admin_token,
                                           body=identity_body(name), timeout=30)
                    if status == 202 or status == 409:
                        status, body, _ = http("POST", f"http://127.0.0.1:{port}/v1/teams/rep/identities/{name}/bindings",
                                               token=stack.admin_token, body={"name": "web", "cluster": "local", "namespace": "aad-broker"},
                                               timeout=30)
                        if status in (201, 202, 409):
                            return None
                except OSError:
                    pass
                # A replica that is down, or PostgreSQL restarting: another try, possibly elsewhere.
                time.sleep(1)
            return name

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            refused = [n for n in pool.map(create, names) if n]
        bindings = lambda: dict((state, int(n)) for state, n in stack.postgres.sql(
            "SELECT state, count(*) FROM bindings WHERE team = 'rep' GROUP BY state"))
        wait_until(lambda: states(stack, "rep").get("ready", 0) == count and bindings().get("ready", 0) == count, 900, 1)
        stop.set()
        thread.join()
        took = time.time() - started
        problems = [f"{len(refused)} identities or bindings could not be created, e.g. {refused[0]}"] if refused else []
        final, final_bindings = states(stack, "rep"), bindings()
        if final.get("ready", 0) != count or final_bindings.get("ready", 0) != count:
            problems.append(f"not every identity and binding is ready: identities {final}, bindings {final_bindings}")
        azure_problems, numbers = check_azure(stack, "rep", names)
        problems += azure_problems
        # No identity's Azure writes from two processes at once: overlapping requests (one arrived
        # before the other was answered) to one identity from two User-Agents (host and pid).
        entries = [e for e in stack.sim_admin("azure", "GET", "/_sim/requests")
                   if e["method"] in ("PUT", "PATCH", "DELETE") and "/userassignedidentities/" in e["path"].lower()]
        by_identity = {}
        for entry in entries:
            by_identity.setdefault(entry["path"].lower(), []).append(entry)
        overlaps = []
        for path, writes in by_identity.items():
            writes.sort(key=lambda e: parse_time(e.get("receivedAt") or e["time"]))
            for first, second in zip(writes, writes[1:]):
                if (first.get("userAgent") != second.get("userAgent")
                        and parse_time(second.get("receivedAt") or second["time"]) < parse_time(first["time"])):
                    overlaps.append((path.rsplit("/", 1)[-1], first.get("userAgent"), second.get("userAgent")))
        if overlaps:
            problems.append(f"{len(overlaps)} identities were written by two processes at once, e.g. {overlaps[0]}")
        # Each job effect once: one apply event per binding object, one seal per event.
        applied = int(stack.postgres.scalar(
            "SELECT count(*) FROM (SELECT resource_name, action, details->>'uid' FROM audit_events "
            "WHERE team = 'rep' AND action LIKE 'k8s.%.applied' GROUP BY 1, 2, 3 HAVING count(*) > 1) AS twice"))
        if applied:
            problems.append(f"{applied} Kubernetes objects have their apply audited more than once")
        stuck = stack.postgres.scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND kind LIKE 'identity.%'")
        lease_lost = sum(open(os.path.join(stack.data_dir, f"serve-{i}.log"), errors="replace").read().count("lost the lease") for i in range(3))
        wait_until(lambda: stack.postgres.scalar("SELECT count(*) FROM audit_unsealed") == "0", 60, 0.5)
        status, verified, _ = stack.call("GET", "/v1/audit/verify")
        if status != 200 or not verified.get("ok"):
            problems.append(f"the audit chain does not verify: {status} {verified.get('problems', verified)}")
        summary = (f"{final.get('ready', 0)}/{count} identities and {final_bindings.get('ready', 0)}/{count} bindings ready in {took:.0f} s "
                   f"through {len(kills)} SIGKILLs and a PostgreSQL restart; {numbers['identitiesInAzure']} identities and "
                   f"{numbers['roleAssignments']} role assignments in Azure, {numbers['orphaned']} orphaned; {len(overlaps)} overlapping writes; "
                   f"{lease_lost} lost leases logged; {stuck} identity jobs left; chain {'verifies' if verified.get('ok') else 'BROKEN'} "
                   f"({verified.get('checked')} events, checkpoint {verified.get('checkpointPosition')})")
        return result_line("replicas", problems, summary)
    finally:
        for process in replicas.values():
            try:
                process.stop()
            except Exception:  # noqa: BLE001 - already gone
                pass
        stack.stop()


def drill_tamper(binary):
    log("== drill: the audit history tampered with as the database owner, with a keyed chain and checkpoints")
    stack = Stack(binary, os.path.join(ROOT, ".podid-faults"))
    try:
        key_file = os.path.join(stack.data_dir, "audit.key")
        with open(key_file, "w") as f:
            f.write(os.urandom(32).hex())
        checkpoints = os.path.join(stack.data_dir, "audit-checkpoints")
        audit_env = {"PODID_AUDIT_KEY_FILE": key_file, "PODID_AUDIT_CHECKPOINTS": checkpoints}
        stack.start_sim()
        stack.start_serve(2, **audit_env)
        for index in range(20):
            stack.create_team(f"tamper-{index:02d}")
        wait_until(lambda: stack.postgres.scalar("SELECT count(*) FROM audit_unsealed") == "0", 30, 0.2)
        status, before, _ = stack.call("GET", "/v1/audit/verify")
        if status != 200 or not before.get("ok"):
            return fail_line("tamper", f"the untouched chain does not verify: {status} {before}")
        # The sealer checkpoints the head on the way out.
        stack.stop_serve()
        head = int(stack.postgres.scalar("SELECT max(position) FROM audit_seals"))
        files = sorted(os.listdir(checkpoints))
        if not files or not files[-1].endswith(f"{head:020d}.json"):
            return fail_line("tamper", f"no checkpoint of the head {head}: {files[-3:]}")
        sql = stack.postgres.sql
        # 1. An event written and taken out of the sealer's queue before it was sealed.
        hidden = stack.postgres.scalar(
            "SELECT podid_audit_append('dba', NULL, 'hidden.change', 'success', NULL, 'team', 'x', NULL, NULL, '{}', NULL, NULL)")
        sql(f"DELETE FROM audit_unsealed WHERE event_id = {hidden}")
        # 2. The newest two events deleted with their seals.
        sql(f"DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_seals WHERE position > {head - 2})")
        sql(f"DELETE FROM audit_seals WHERE position > {head - 2}")
        # 3. An event rewritten, and the chain from it rehashed with SHA-256 (all the owner can compute).
        rewritten = head - 6
        sql(f"UPDATE audit_events SET details = '{{\"rewritten\": true}}' WHERE id = (SELECT event_id FROM audit_seals WHERE position = {rewritten})")
        rows = sql(f"""SELECT s.position, s.prev_hash, json_build_array(e.id::text,
                            to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), e.actor, e.actor_team, e.action,
                            e.outcome, e.team, e.resource_type, e.resource_name, e.request_id, e.job_id::text, e.details::text,
                            e.before::text, e.after::text)::text
                       FROM audit_seals s JOIN audit_events e ON e.id = s.event_id WHERE s.position >= {rewritten} ORDER BY s.position""")
        previous = rows[0][1]
        for position, _, canonical in rows:
            digest = hashlib.sha256((previous + "\n" + canonical).encode()).hexdigest()
            sql(f"UPDATE audit_seals SET hash = '{digest}', prev_hash = '{previous}', version = 1 WHERE position = {position}")
            previous = digest
        stack.start_serve(2, **audit_env)
        status, after, _ = stack.call("GET", "/v1/audit/verify")
        problems_found = after.get("problems", []) if status == 200 else []
        wanted = {
            "the event taken out of the sealer's queue": lambda: int(hidden) in after.get("eventsWithoutSeal", []),
            "the deleted newest events": lambda: any("the newest events were deleted" in p for p in problems_found),
            "the rewritten, rehashed event": lambda: any(f"position {rewritten} " in p for p in problems_found),
        }
        problems = []
        if status != 200 or after.get("ok") is not False:
            problems.append(f"verify answered {status} ok={after.get('ok')}")
        for what, found in wanted.items():
            if not found():
                problems.append(f"verify did not name {what}: {problems_found[:5]}")
        summary = (f"{head} events, checkpoint at {head}; verify named {len(problems_found)} problem(s), e.g. "
                   f"{'; '.join(p[:90] for p in problems_found[:3])}")
        return result_line("tamper", problems, summary)
    finally:
        stack.stop()


def result_line(name, problems, summary):
    for problem in problems:
        log(f"   problem: {problem}")
    log(f"{name}: {'PASS' if not problems else 'FAIL'}: {summary}")
    return not problems


def fail_line(name, message):
    log(f"{name}: FAIL: {message}")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--only", default="crash,outage,storm,tamper,replicas")
    parser.add_argument("--replica-identities", type=int, default=500)
    parser.add_argument("--identities", type=int, default=200, help="identities of the crash drill")
    parser.add_argument("--storm-identities", type=int, default=100)
    args = parser.parse_args()
    only = args.only.split(",")
    passed = []
    if "crash" in only:
        passed.append(drill_crash(args.binary, args.identities))
    if "outage" in only:
        passed.append(drill_outage(args.binary, 10))
    if "storm" in only:
        passed.append(drill_storm(args.binary, args.storm_identities))
    if "tamper" in only:
        passed.append(drill_tamper(args.binary))
    if "replicas" in only:
        passed.append(drill_replicas(args.binary, args.replica_identities))
    log(f"faults: {sum(passed)} of {len(passed)} drills passed")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
