"""``make demo``: proseo on a real Airflow, from nothing, in a few minutes.

It works in ``.demo/`` under the checkout (or ``PROSEO_DEMO_HOME``): a SQLite
catalogue and file:// storage, then ``airflow standalone`` (SQLite, LocalExecutor,
parallelism 3, admin password printed) with the plugin and the DAG factory. Both
sample missions are onboarded and orders submitted through proseo's REST API with
Airflow's token, generated L0/AUX/raw deliveries are ingested with the CLI, the orders'
DAGs start by themselves, progress shows in the terminal, and the products made and
one lineage tree are printed. Airflow is stopped cleanly at the end (SIGINT to
standalone, nothing left behind) unless ``KEEP=1``, which keeps it up until Ctrl-C.
Exit status 1 if an order did not complete.

:class:`Demo` is also what the end-to-end test drives.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from proseo.api.airflow_client import AirflowClient
from proseo.cli.output import console
from proseo.devtools.generate import write_inputs
from proseo.devtools.standalone import Standalone, ignore_signals, stop_on_signals
from proseo.missions import load_mission

REPO = Path(__file__).resolve().parents[2]
START = datetime(2025, 3, 1, tzinfo=UTC)
DONE = ("COMPLETED", "FAILED", "CLOSED")

#: One order per mission: small enough for a 2-core machine, deep enough to show the chain.
ORDERS: dict[str, dict[str, Any]] = {
    "S5P": {
        "identifier": "no2-morning",
        "requested_classes": ["L2__NO2___"],
        "start": "2025-03-01T00:00:00Z",
        "stop": "2025-03-01T03:00:00Z",
        "processing_mode": "OFFL",
        "output_parameters": {"*": {"collection": 1}},
        "priority": 60,
    },
    "SKY": {
        "identifier": "night-0301",
        "requested_classes": ["SRC_CAT"],
        "start": "2025-03-01T00:00:00Z",
        "stop": "2025-03-02T00:00:00Z",
    },
}
#: Deliveries to generate per mission: (start, stop).
INPUTS = {
    "S5P": (START - timedelta(hours=3), START + timedelta(hours=6)),
    "SKY": (START, START + timedelta(days=1)),
}


def proseo_cli(*args: str, echo: bool = True, airflow: str | None = None) -> str:
    """Run a ``proseo`` command the way a user would, echoing it; stop on failure.

    ``airflow``: the URL of the Airflow the command steers (as admin), set in its
    environment for this command only.
    """
    from proseo.cli.main import cli

    if echo:
        console.print(f"\n[bold cyan]$ proseo {' '.join(args)}[/bold cyan]")
    env = (
        None
        if airflow is None
        else {
            "PROSEO_AIRFLOW_URL": airflow,
            "PROSEO_AIRFLOW_USER": "admin",
            "PROSEO_AIRFLOW_PASSWORD": "admin",
        }
    )
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, color=True, env=env)
    if echo:
        sys.stderr.write(result.stderr)
        sys.stdout.write(result.stdout)
    if result.exit_code != 0:
        raise SystemExit(
            f"demo step failed (exit {result.exit_code}): proseo {' '.join(args)}\n{result.output}"
        )
    return result.stdout


@dataclass
class Demo:
    home: Path
    parallelism: int = 3
    #: user -> (proseo role, mission or "*"); Airflow knows them as admin / viewer.
    grants: dict[str, tuple[str, str]] = field(default_factory=lambda: {"admin": ("admin", "*")})
    airflow: Standalone | None = None
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def catalog_url(self) -> str:
        return f"sqlite:///{self.home / 'catalog.db'}"

    def environment(self) -> dict[str, str]:
        return {
            "PROSEO_CATALOG_URL": self.catalog_url,
            "PROSEO_DATA": str(self.home / "data"),
            "PROSEO_SCRATCH": str(self.home / "scratch"),
            "PROSEO_INPUT_POLL_S": "5",
            "PROSEO_TASK_RETRIES": "1",
            "PROSEO_TASK_RETRY_DELAY_S": "5",
            # The demo's story is on demand: the missions' triggers would order its data too.
            "PROSEO_SYSTEMATIC": "false",
        }

    # -- set-up ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        (self.home / "inbox").mkdir(parents=True)
        os.environ.update(self.environment())
        os.environ["AIRFLOW_HOME"] = str(self.home / "airflow")
        proseo_cli("db", "upgrade")
        for user, (role, mission) in self.grants.items():
            proseo_cli("access", "grant", user, role, "--mission", mission)

    def start_airflow(self) -> Standalone:
        names = ",".join(f"{u}:{'admin' if u == 'admin' else 'viewer'}" for u in self.grants)
        self.airflow = Standalone(
            self.home / "airflow",
            parallelism=self.parallelism,
            catalog_url=self.catalog_url,
            env={**self.environment(), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": names},
        )
        started = time.perf_counter()
        with console.status("starting airflow standalone ..."):
            self.airflow.start()
        console.print(f"Airflow {self.airflow.url} healthy after {time.perf_counter() - started:.0f} s")
        return self.airflow

    def password(self, user: str) -> str:
        """A user's password (admin's is fixed; others are generated by Airflow on first start)."""
        assert self.airflow is not None
        return str(json.loads((self.airflow.home / "passwords.json").read_text())[user])

    def token(self, user: str = "admin") -> str:
        """The user's JWT from Airflow's ``POST /auth/token``, fetched once per user."""
        assert self.airflow is not None
        if user == "admin":
            return self.airflow.client.bearer()
        if user not in self._tokens:
            client = AirflowClient(self.airflow.url, username=user, password=self.password(user))
            self._tokens[user] = client.bearer()
        return self._tokens[user]

    def api(self, method: str, path: str, *, user: str = "admin", **kw: Any) -> httpx.Response:
        assert self.airflow is not None
        headers = {"Authorization": f"Bearer {self.token(user)}", **kw.pop("headers", {})}
        return httpx.request(
            method, f"{self.airflow.url}/proseo/api/v1{path}", headers=headers, timeout=120, **kw
        )

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        answer = self.api(method, path, **kw)
        if answer.status_code >= 400:
            raise SystemExit(
                f"{method} /proseo/api/v1{path}: HTTP {answer.status_code}: {answer.text[:1000]}"
            )
        return answer.json() if answer.content else None

    # -- the story --------------------------------------------------------------------------------

    def onboard(self) -> None:
        for path in sorted((REPO / "mission_configs").glob("*.yaml")):
            result = self.ok("POST", "/missions", json={"file_name": path.name, "text": path.read_text()})
            console.print(
                f"POST /proseo/api/v1/missions {path.name}: {result['mission']} {result['status']} "
                f"revision {result['revision']}"
            )

    def ingest(self) -> None:
        for code, (start, stop) in INPUTS.items():
            mission = load_mission(REPO / "mission_configs" / f"{code.lower()}.yaml")
            inbox = self.home / "inbox" / code
            files = write_inputs(mission, start, stop, inbox)
            console.print(f"generated {len(files)} {code} deliveries in {inbox}")
            proseo_cli("product", "ingest", "--mission", code, "--progress", str(inbox))

    def submit(self) -> dict[str, str]:
        dag_ids = {}
        for code, body in ORDERS.items():
            order = self.ok("POST", f"/missions/{code}/orders?release=true", json=body)
            console.print(
                f"POST /proseo/api/v1/missions/{code}/orders?release=true: {code}/{order['identifier']} "
                f"{order['state']}, {order['job_steps']} job steps, DAG {order['dag_id']}"
            )
            dag_ids[code] = order["dag_id"]
        return dag_ids

    def follow(self, timeout: float = 900.0) -> dict[str, dict[str, Any]]:
        """Progress bars per order until every order has finished; the final orders."""
        finals: dict[str, dict[str, Any]] = {}
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
        )
        deadline = time.monotonic() + timeout
        with Progress(*columns, console=console) as bars:
            tasks = {
                code: bars.add_task(f"{code}/{b['identifier']}", total=None, state="")
                for code, b in ORDERS.items()
            }
            while len(finals) < len(ORDERS):
                for code, body in ORDERS.items():
                    o = self.ok("GET", f"/missions/{code}/orders/{body['identifier']}")
                    done = o["progress"].get("COMPLETED", 0)
                    bars.update(tasks[code], total=o["job_steps"], completed=done, state=o["state"])
                    if o["state"] in DONE:
                        finals[code] = o
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"orders not finished after {timeout:.0f} s: "
                        + ", ".join(
                            f"{c} {self.ok('GET', f'/missions/{c}/orders/' + b['identifier'])['state']}"
                            for c, b in ORDERS.items()
                        )
                    )
                time.sleep(2)
        return finals

    def show_products(self) -> dict[str, list[dict[str, Any]]]:
        made: dict[str, list[dict[str, Any]]] = {}
        for code, body in ORDERS.items():
            made[code] = []
            for cls in body["requested_classes"]:
                page = self.ok(
                    "GET", f"/missions/{code}/products", params={"product_type": cls, "limit": 100}
                )
                made[code].extend(page["items"])
            console.print(f"\n[bold]{code}: {len(made[code])} requested products made[/bold]")
            for p in made[code]:
                for f in p["files"]:
                    console.print(
                        f"  #{p['id']} {f['file_name']}  {f['size']} B  sha256 {f['sha256'][:16]}…",
                        markup=False,
                    )
        return made

    def show_lineage(self, code: str, product_id: int) -> str:
        answer = self.api("GET", f"/missions/{code}/products/{product_id}/lineage", params={"format": "text"})
        answer.raise_for_status()
        console.print(f"\n[bold]lineage of {code} product #{product_id}[/bold]")
        console.print(answer.text, markup=False)
        return answer.text

    def stop(self) -> None:
        if self.airflow is not None:
            with console.status("stopping airflow (SIGINT) ..."):
                result = self.airflow.stop()
            console.print(f"Airflow stopped: {result}")


def main() -> None:
    home = Path(os.environ.get("PROSEO_DEMO_HOME", REPO / ".demo")).absolute()
    keep = os.environ.get("KEEP") == "1"
    stop_on_signals()  # SIGINT or SIGTERM, even when started in the background: Airflow is stopped
    demo = Demo(home)
    t0 = time.perf_counter()
    failed = True
    try:
        console.rule("[bold]1. catalogue and Airflow")
        demo.prepare()
        af = demo.start_airflow()
        console.print(f"UI: {af.url}  user [bold]admin[/bold] password [bold]{demo.password('admin')}[/bold]")
        console.rule("[bold]2. onboarding over REST, ingestion with the CLI")
        demo.onboard()
        demo.ingest()
        console.rule("[bold]3. orders over REST; their DAGs start by themselves")
        demo.submit()
        finals = demo.follow()
        console.rule("[bold]4. products and lineage")
        made = demo.show_products()
        if made.get("S5P"):
            demo.show_lineage("S5P", made["S5P"][0]["id"])
        failed = any(o["state"] != "COMPLETED" for o in finals.values())
        for code, o in finals.items():
            console.print(f"{code}/{o['identifier']}: {o['state']} {o['progress']}", markup=False)
        console.rule(
            f"[bold {'red' if failed else 'green'}]demo {'FAILED' if failed else 'finished'} "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        console.print(f"UI: {af.url}/  (Airflow's navigation: proseo > Orders, Products)")
        console.print(f"REST: {af.url}/proseo/docs   catalogue: {demo.catalog_url}")
        if keep:
            console.print(f"KEEP=1: Airflow stays up; Ctrl-C (or kill -INT/-TERM {os.getpid()}) stops it.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        console.print("interrupted: stopping Airflow")
    finally:
        ignore_signals()
        demo.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
