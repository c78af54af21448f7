"""Shared plumbing of scripts/bench and scripts/faults: a private PostgreSQL, the simulators and
`podid serve` as separate processes of one podid binary, all on loopback, plus small HTTP and SQL
helpers. Standard library only."""

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "podid-dev"


def log(message):
    print(message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, token=None, body=None, timeout=60, headers=None):
    """(status, parsed JSON or text, headers); never raises for an HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, hdrs = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, hdrs = error.code, error.read(), dict(error.headers)
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None, hdrs
    except ValueError:
        return status, text, hdrs


class Postgres:
    """The private PostgreSQL of a data directory (`podid postgres start --fresh`)."""

    def __init__(self, binary, data_dir):
        self.binary, self.data_dir = binary, data_dir
        env = dict(os.environ, PODID_DATA_DIR=data_dir)
        subprocess.run([binary, "postgres", "start", "--fresh"], env=env, check=True, stdout=subprocess.DEVNULL)
        self.env = {}
        with open(os.path.join(data_dir, "postgres.env")) as f:
            for line in f:
                if "=" in line and not line.startswith("#"):
                    key, value = line.strip().split("=", 1)
                    self.env[key] = value
        self.runtime_url = self.env["PODID_DATABASE_URL"]
        self.owner_url = self.env["PODID_MIGRATION_DATABASE_URL"]
        self.port = self.env["PODID_POSTGRES_PORT"]
        # podid_owner:password@host:port/db
        credentials = self.owner_url.split("//", 1)[1].split("@", 1)[0]
        self.owner, self.owner_password = credentials.split(":", 1)

    @functools.cache
    def bin(self, name):
        """A PostgreSQL client program (looked up once: the drills poll with psql)."""
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and os.path.exists(os.path.join(out.stdout.strip(), name)):
            return os.path.join(out.stdout.strip(), name)
        for version in sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v) if v.isdigit() else 0, reverse=True):
            path = f"/usr/lib/postgresql/{version}/bin/{name}"
            if os.path.exists(path):
                return path
        return name

    def client_env(self):
        return dict(os.environ, PGPASSWORD=self.owner_password, PGHOST="127.0.0.1", PGPORT=self.port, PGUSER=self.owner)

    def sql(self, statement, database="podid"):
        """Runs SQL as the owning role; returns the rows as lists of strings."""
        out = subprocess.run([self.bin("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-d", database, "-c", statement],
                             env=self.client_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}\n{statement[:400]}")
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def scalar(self, statement, database="podid"):
        rows = self.sql(statement, database)
        return rows[0][0] if rows else None

    def stop(self):
        subprocess.run([self.binary, "postgres", "stop"], env=dict(os.environ, PODID_DATA_DIR=self.data_dir),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        subprocess.run([self.binary, "postgres", "start"], env=dict(os.environ, PODID_DATA_DIR=self.data_dir),
                       check=True, stdout=subprocess.DEVNULL)


class Process:
    """A podid subcommand in the background, its output in a log file."""

    def __init__(self, binary, args, env, log_path, ready_url=None, timeout=60):
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.process = subprocess.Popen([binary] + args, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        if ready_url:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"podid {' '.join(args)} exited with {self.process.returncode}; see {log_path}")
                try:
                    status, _, _ = http("GET", ready_url, timeout=2)
                    if status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.2)
            raise RuntimeError(f"podid {' '.join(args)} did not become ready; see {log_path}")

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def peak_rss_mb(self):
        """The process's peak resident set (VmHWM), in MB."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self, timeout=30):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

    def kill9(self):
        self.process.kill()
        self.process.wait()
        self.log_file.close()


class Stack:
    """PostgreSQL, the simulators and `podid serve`, for the benchmark and the drills."""

    def __init__(self, binary, data_dir):
        self.binary = os.path.abspath(binary)
        self.data_dir = os.path.abspath(data_dir)
        subprocess.run(["rm", "-rf", self.data_dir])
        os.makedirs(self.data_dir)
        self.admin_token = "podid_bench_" + os.urandom(16).hex()
        self.postgres = Postgres(self.binary, self.data_dir)
        migrate_env = dict(os.environ, PODID_DATABASE_URL=self.postgres.runtime_url,
                           PODID_MIGRATION_DATABASE_URL=self.postgres.owner_url)
        subprocess.run([self.binary, "migrate", "apply"], env=migrate_env, check=True, stdout=subprocess.DEVNULL)
        self.azure_port, self.kube_port, self.api_port = free_port(), free_port(), free_port()
        self.azure = f"http://127.0.0.1:{self.azure_port}"
        self.kube = f"http://127.0.0.1:{self.kube_port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.sim = None
        self.serve = None
        self.peak_rss = 0.0

    def start_sim(self, *flags):
        env = dict(os.environ, PODID_DATA_DIR=self.data_dir, PODID_SIM_HOST="127.0.0.1",
                   PODID_SIM_AZURE_PORT=str(self.azure_port), PODID_SIM_KUBE_PORT=str(self.kube_port), PODID_LOG_LEVEL="warning")
        self.sim = Process(self.binary, ["sim", "--memory", *flags], env, os.path.join(self.data_dir, "sim.log"),
                           ready_url=self.azure + "/_sim/settings")
        # Other subscriptions' resource groups, for work spread over several subscriptions.
        for index in range(1, 4):
            self.sim_admin("azure", "POST", "/_sim/resourcegroups",
                           {"subscription": subscription(index), "name": RESOURCE_GROUP, "location": "westeurope"})

    def sim_admin(self, which, method, path, body=None):
        base = self.azure if which == "azure" else self.kube
        status, answer, _ = http(method, base + path, body=body)
        if status >= 300:
            raise RuntimeError(f"simulator {method} {path}: {status} {answer}")
        return answer

    def serve_env(self, workers, **extra):
        env = dict(os.environ)
        env.update({
            "PODID_DATABASE_URL": self.postgres.runtime_url,
            "PODID_MIGRATION_DATABASE_URL": self.postgres.owner_url,
            "PODID_ADMIN_TOKEN": self.admin_token,
            "PODID_HTTP_HOST": "127.0.0.1", "PODID_HTTP_PORT": str(self.api_port),
            "PODID_WORKERS": str(workers),
            "PODID_LOG_LEVEL": "warning",
            # The rate limits are for tenants, not for the load generator: out of the way here.
            "PODID_RATE_LIMIT_PER_TOKEN": "0", "PODID_RATE_LIMIT_PER_TEAM": "0",
            "PODID_LOOPBACK_ONLY": "1",
            "PODID_AZURE_TENANT_ID": self.tenant_id(),
            "PODID_AZURE_CLIENT_ID": "dev", "PODID_AZURE_CLIENT_SECRET": "dev",
            "PODID_AZURE_AUTHORITY_HOST": self.azure, "PODID_AZURE_ARM_ENDPOINT": self.azure,
            "PODID_AZURE_IMDS_ENDPOINT": self.azure,
        })
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def tenant_id(self):
        # The simulator's tenant (Simulators.Seed), which its token endpoint issues tokens for.
        return "00000000-0000-0000-0000-000000000001"

    def start_serve(self, workers, **extra):
        self.stop_serve()
        self.serve = Process(self.binary, ["serve"], self.serve_env(workers, **extra), os.path.join(self.data_dir, "serve.log"),
                             ready_url=self.api + "/readyz")
        return self.serve

    def stop_serve(self):
        if self.serve:
            rss = self.serve.peak_rss_mb()
            if rss:
                self.peak_rss = max(self.peak_rss, rss)
            self.serve.stop()
            self.serve = None

    def call(self, method, path, body=None, token=None, **kw):
        return http(method, self.api + path, token=token or self.admin_token, body=body, **kw)

    def create_team(self, name, subscriptions=1, max_identities=5000, namespaces=("aad-broker",)):
        subs = [subscription(i) for i in range(subscriptions)]
        status, body, _ = self.call("POST", "/v1/teams", {
            "name": name,
            "policy": {"subscriptions": subs, "resourceGroups": [RESOURCE_GROUP],
                       "grants": [{"role": "Reader", "scopePrefix": f"/subscriptions/{s}/resourceGroups/{RESOURCE_GROUP}"} for s in subs],
                       "clusters": ["local"], "namespaces": list(namespaces), "maxIdentities": max_identities}})
        if status != 201:
            raise RuntimeError(f"creating team {name}: {status} {body}")

    def register_cluster(self):
        token_file = os.path.join(self.data_dir, "sim-kube-token")
        with open(token_file, "w") as f:
            f.write("dev")
        status, body, _ = self.call("POST", "/v1/clusters", {
            "name": "local", "apiServer": self.kube,
            "connection": {"mode": "token", "tokenFile": token_file}})
        if status != 201:
            raise RuntimeError(f"registering the cluster: {status} {body}")

    def stop(self):
        self.stop_serve()
        if self.sim:
            self.sim.stop()
        self.postgres.stop()


def subscription(index):
    return SUBSCRIPTION if index == 0 else f"00000000-0000-0000-0000-00000000000{index}"


def identity_body(name, sub_index=0):
    sub = subscription(sub_index)
    return {"name": name, "subscriptionId": sub, "resourceGroup": RESOURCE_GROUP, "location": "westeurope",
            "grants": [{"role": "Reader", "scope": f"/subscriptions/{sub}/resourceGroups/{RESOURCE_GROUP}"}]}


def wait_until(predicate, timeout, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def fail(message):
    log(message)
    sys.exit(1)
