"""The whole service on one machine: moto, the template's resources, the triggers and the fake Planet.

``LocalStack`` is the one entry point for ``python -m gateway_local up``, the demo and tests. It runs moto
in server mode (so other processes, the AWS CLI and boto3 can reach it), the functions each in its own
process with only its template environment and a session of its own IAM role (moto's Docker runner
replaced; ``lambda_runtime.IsolatedLambdas``, ``iam``), an SQS poller per SQS event and an HTTP front for
the API events. The functions' environments are also merged into this process's ``os.environ``, for the
stack's own use of ``order_core`` (seeding keys); moto's ``MOTO_PORT`` is process-global too, so there is
one stack per process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto.core.config import default_user_config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from planet_fake.config import FakePlanetConfig
from planet_fake.server import FakePlanetServer, start_in_thread
from werkzeug.serving import BaseWSGIServer, make_server

from . import dynamodb_atomic, dynamodb_index
from .api_docs import ApiDocs
from .api_front import ApiFront
from .esm import SqsPoller
from .iam import create_function_roles, enforce
from .lambda_runtime import FunctionSpec, IsolatedLambdas
from .persistence import GatedApp, PauseGate, Snapshotter, StateStore, moto_ungated, planet_ungated
from .provision import LocalResources, Provisioner, ProvisionSettings, create_completion_events_queue
from .readiness import OUTPUTS_FILE, PROJECT_ROOT
from .template import REGION, TemplateError, load_template

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PLANET_API_KEY = "PLAK-local-demo"
# The gateway's own key for the local tenant "default" (documented in the README); more with `keys create`.
DEFAULT_API_KEY = "pgw_local_demo_key"
DEFAULT_TENANT = "default"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# The secret the functions read the upstream key from (template logical id).
PLANET_KEY_SECRET = "PlanetApiKeySecret"

# Application settings the local stack changes, each overridable from the environment of `up`.
_LOCAL_DEFAULTS = {
    "DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "ALLOW_HTTP_DOWNLOADS": "true",
    # Orders wait for a change (docs/decisions.md "Planet tells us when an order changes"): the fake's
    # webhooks and a sweep every TRACKER_LOCAL_INTERVAL seconds wake them; a wait nobody ends times out after
    # WATCH_SECONDS and then costs a GET only if no sweep vouches for the order. Safe against the real Planet
    # too: a sweep is one list request (0.2/s of Planet's 3/s), and quiet orders make no GETs at all.
    "WATCH_SECONDS": "60",
    # Only after a transient fault of a GET (429, 5xx, deferred by the pace) does an order poll again on
    # its own backoff; short, so a faulted poll is retried soon. The pace holds a 429 for the whole fleet.
    "POLL_FIRST_WAIT_SECONDS": "1",
    "POLL_MAX_WAIT_SECONDS": "4",
    # Every function, moto and the fake share one process and two cores here: measured in the full suite, a
    # request reached the fake up to 0.25 s after its slot (network jitter's part in AWS), the whole margin
    # of the 0.8 share used there. 0.6 leaves 0.67 s; still safe against the real Planet, only slower.
    "PLANET_PACE_SHARE": "0.6",
    # A short deadline locally keeps the 4 s cap: a 3-day deadline would raise it for the history budget.
    "POLL_DEADLINE_SECONDS": "3600",
    # Tracer would try to reach an X-Ray daemon; metrics stay on (EMF lines on stderr, as in CloudWatch).
    "POWERTOOLS_TRACE_DISABLED": "true",
    # Order emails (`notifications.email`) go through moto's SES, from this address (verified at start).
    "NOTIFICATION_EMAIL_SENDER": "orders@gateway.local",
}

# A profile or session token from the developer's shell would override the dummy credentials, and a
# PLANET_API_KEY would let the functions skip Secrets Manager, which they cannot do in AWS.
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "PLANET_API_KEY")


class LocalStack:
    """Start and stop the local service. Ports may be 0 (tests): the bound ports end up in ``outputs``."""

    def __init__(
        self,
        *,
        api_port: int = 8000,
        aws_port: int = 5000,
        planet_port: int = 8001,
        project_root: Path = PROJECT_ROOT,
        state_dir: Path | None = None,
        planet_api_key: str | None = None,
        queue_visibility_timeout: int | None = None,
        environ: Mapping[str, str] | None = None,
        persist: bool = False,
    ) -> None:
        env = os.environ if environ is None else environ
        self.project_root = project_root
        self.state_dir = state_dir or project_root / ".local-stack"
        self.planet_api_key = planet_api_key or env.get("PLANET_API_KEY") or DEFAULT_PLANET_API_KEY
        self.api_key = env.get("LOCAL_API_KEY") or DEFAULT_API_KEY
        self.queue_visibility_timeout = queue_visibility_timeout
        self.outputs: dict[str, Any] = {}
        self.planet: FakePlanetServer | None = None
        self.resources = LocalResources()
        self.lambdas = IsolatedLambdas()  # each function its own process and environment
        self._ports = {"api": api_port, "aws": aws_port, "planet": planet_port}
        self._setting_overrides = {key: env.get(key, value) for key, value in _LOCAL_DEFAULTS.items()}
        self._environ = dict(env)  # tuning settings given to `up` reach the functions (_runtime_environment)
        # Pointing the local stack at the real Planet takes only its URL (and a key, PLANET_API_KEY).
        self._planet_api_url = env.get("PLANET_API_URL")
        self._moto: MotoServer | None = None
        self._pollers: list[SqsPoller] = []
        # The fleet sweep (TrackerFunction's rate(1 minute) in AWS) runs this often locally; 0 turns it off.
        self._tracker_interval = float(env.get("TRACKER_LOCAL_INTERVAL", "5"))
        self._tracker: ScheduledInvoker | None = None
        self._api: ApiFront | None = None
        self._saved_environ: dict[str, str | None] = {}
        self._saved_sfn_config = default_user_config["stepfunctions"]
        # With persist, the state is kept in state_dir across restarts (persistence.py).
        self.persist = persist
        self._gate = PauseGate()
        self._snapshotter: Snapshotter | None = None
        self.restored: dict[str, int] | None = None  # what a restart found in state_dir
        self.reconcile_summary: str | None = None  # what the start-up reconciliation repaired
        self.reconciled: list[Any] = []
        self._restore_iam: Callable[[], None] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, persist: bool = False) -> LocalStack:
        """Ports and options from API_PORT, AWS_PORT, PLANET_PORT, LOCAL_STACK_STATE_DIR, PLANET_API_KEY,
        LOCAL_QUEUE_VISIBILITY_TIMEOUT, LOCAL_STACK_PROJECT_ROOT (defaults 8000, 5000, 8001,
        <project>/.local-stack, none, this project)."""
        env = os.environ if environ is None else environ
        state_dir = env.get("LOCAL_STACK_STATE_DIR")
        visibility = env.get("LOCAL_QUEUE_VISIBILITY_TIMEOUT")
        # Another copy of the project (a test's template with one policy removed, say).
        project_root = env.get("LOCAL_STACK_PROJECT_ROOT")
        return cls(
            project_root=Path(project_root) if project_root else PROJECT_ROOT,
            api_port=int(env.get("API_PORT", "8000")),
            aws_port=int(env.get("AWS_PORT", "5000")),
            planet_port=int(env.get("PLANET_PORT", "8001")),
            state_dir=Path(state_dir) if state_dir else None,
            queue_visibility_timeout=int(visibility) if visibility else None,
            environ=env,
            persist=persist,
        )

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything; on failure, stop what already started and re-raise."""
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        log.info("local stack started in %.1f s", time.monotonic() - started)
        return self

    def stop(self) -> None:
        """Stop servers and pollers, restore the process environment. Safe to call twice."""
        if self._tracker is not None:
            self._tracker.stop()
            self._tracker = None
        if self._api is not None:
            self._api.stop()
            self._api = None
        for poller in self._pollers:
            poller.stop()
        self._pollers.clear()
        if self._snapshotter is not None:
            try:
                self._snapshotter.stop()  # the last snapshot, while moto and the fake still run
            except Exception:
                log.exception("could not save the local stack's state on the way out")
            self._snapshotter = None
        if self.planet is not None:
            self.planet.stop()
            self.planet = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self.lambdas.uninstall()
        if self._restore_iam is not None:
            self._restore_iam()
            self._restore_iam = None
        default_user_config["stepfunctions"] = self._saved_sfn_config
        self._restore_environ()
        (self.state_dir / OUTPUTS_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self._ports['aws']}"

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS endpoint (dummy credentials, the stack's region)."""
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def _start(self) -> None:
        template = load_template(self.project_root / "template.yaml")
        if PLANET_KEY_SECRET not in template.resources:
            raise TemplateError(f"template.yaml has no {PLANET_KEY_SECRET} to hold the Planet key")
        self._start_moto()
        planet = self._start_planet()
        planet_url = self._planet_api_url or planet.base_url
        provisioner = Provisioner(
            template,
            self.client,
            ProvisionSettings(
                secret_values={PLANET_KEY_SECRET: self.planet_api_key},
                environment_overrides={**self._setting_overrides, "PLANET_API_URL": planet_url},
                queue_visibility_timeout=self.queue_visibility_timeout,
            ),
        )
        self.resources = provisioner.provision()
        sender = self._setting_overrides.get("NOTIFICATION_EMAIL_SENDER")
        if sender:
            self.client("ses").verify_email_identity(EmailAddress=sender)
        for spec in self.resources.functions.values():
            self.lambdas.add(spec)
        self.lambdas.runtime_environment = self._runtime_environment()
        # Each function signs its calls with a session of its own role (the template's Policies, as SAM
        # expands them); moto refuses what the role does not allow, as IAM would.
        roles = create_function_roles(template, self.resources.attributes, self.client)
        for logical_id, credentials in roles.items():
            self.lambdas.credentials[self.resources.functions[logical_id].name] = credentials
        self._restore_iam = enforce()
        topics = [attrs["Ref"] for attrs in self.resources.of_type("AWS::SNS::Topic").values()]
        completion_queue_url = create_completion_events_queue(self.client, topics)
        store = self._restore_state() if self.persist else None
        self._set_environ(planet_url)
        self._seed_api_key()
        if store is not None:
            # Before the pollers and the API: nothing else moves an order yet, so every non-terminal order
            # without a running execution is stranded (a restart lost them all).
            self._reconcile()
            planet_state = None if self._planet_api_url else planet.store.export_state
            self._snapshotter = Snapshotter(store, self._gate, planet_state)
            self._snapshotter.snapshot_now()
            self._snapshotter.start()

        sqs = self.client("sqs")
        for source in self.resources.sqs_sources:
            poller = SqsPoller(source, sqs, self.lambdas.invoke, REGION)
            poller.start()
            self._pollers.append(poller)
        docs = ApiDocs(self.project_root / "docs" / "openapi.json")
        self._api = ApiFront(self.resources.api_routes, self._invoke_api, HOST, self._ports["api"], docs)
        self._api.start()
        self._ports["api"] = self._api.port
        # Links in webhook bodies point at this API (in AWS: the template's PublicBaseUrl parameter, which
        # the functions that declare WEBHOOK_BASE_URL get; their processes start on first use, after this).
        public = os.environ.get("WEBHOOK_BASE_URL") or f"http://{HOST}:{self._api.port}/compute/ops"
        for spec in self.lambdas.specs:
            if "WEBHOOK_BASE_URL" in spec.environment and not spec.environment["WEBHOOK_BASE_URL"]:
                spec.environment["WEBHOOK_BASE_URL"] = public
        # Planet's per-order webhook calls this API: the fake Planet can reach it on loopback; the real
        # Planet cannot, so against it no webhook is asked for unless PLANET_WEBHOOK_BASE_URL names a public
        # URL (a tunnel to this API).
        planet_hook_base = os.environ.get("PLANET_WEBHOOK_BASE_URL") or (
            "" if self._planet_api_url else public
        )
        for spec in self.lambdas.specs:
            if (
                "PLANET_WEBHOOK_BASE_URL" in spec.environment
                and not spec.environment["PLANET_WEBHOOK_BASE_URL"]
            ):
                spec.environment["PLANET_WEBHOOK_BASE_URL"] = planet_hook_base
        tracker = next((s.name for s in self.lambdas.specs if s.logical_id == "TrackerFunction"), None)
        if tracker is not None and self._tracker_interval > 0:
            self._tracker = ScheduledInvoker(self.lambdas.invoke, tracker, self._tracker_interval)
            self._tracker.start()
        self.outputs = self._build_outputs(planet_url, completion_queue_url, provisioner.resolve_outputs())
        self._write_outputs()

    def _seed_api_key(self) -> None:
        """The documented local key for tenant "default", stored hashed like every other key (once: after
        a restart it is already there, revoked or not)."""
        from botocore.exceptions import ClientError
        from order_core import wiring

        wiring.reset()  # the environment just changed: build the services from it
        try:
            wiring.api_key_service().create(DEFAULT_TENANT, "local demo key", key=self.api_key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def _invoke_api(self, function_name: str, event: Any) -> Any:
        """The API's functions; a request that may have changed something (a create, a cancel) is answered
        only once a snapshot holds its effect, so an order answered 202 survives a kill -9."""
        result = self.lambdas.invoke(function_name, event)
        snapshotter = self._snapshotter
        if (
            snapshotter is not None
            and isinstance(event, dict)
            and event.get("type") != "REQUEST"  # an authorizer's event: it changes nothing
            and event.get("httpMethod") not in (None, "GET", "HEAD", "OPTIONS")
        ):
            snapshotter.flush()
        return result

    def _restore_state(self) -> StateStore:
        """Put the state saved in state_dir back (tables, queues, objects, secrets, the fake's orders)."""
        from moto.core import DEFAULT_ACCOUNT_ID

        store = StateStore(self.state_dir, DEFAULT_ACCOUNT_ID, REGION)
        # The Planet key comes from this start's environment: never saved, never restored.
        store.private_secrets = {self.resources.attributes[PLANET_KEY_SECRET]["Ref"]}
        snapshot = store.load()
        if snapshot is None:
            self.restored = None
            return store
        store.restore(snapshot, self.client)
        self.restored = snapshot.counts()
        if snapshot.planet is not None and self.planet is not None and not self._planet_api_url:
            self.restored["planet orders"] = self.planet.store.import_state(snapshot.planet)
        log.info("state restored from %s: %s", store.snapshot_path, self.restored)
        return store

    def _reconcile(self) -> None:
        from datetime import timedelta

        from order_core import wiring
        from order_core.adapters.messaging import WorkflowExecutions
        from order_core.services.reconcile import ReconcileService

        settings = wiring.get_settings()
        service = ReconcileService(
            wiring.orders_repo(),
            WorkflowExecutions(settings.workflow_arn),
            wiring.intake_queue(),
            min_age=timedelta(0),
        )
        report = service.run()
        self.reconcile_summary = report.summary()
        self.reconciled = report.repairs

    def _start_moto(self) -> None:
        # Step Functions only interprets ASL with this flag (otherwise executions stay RUNNING forever).
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        self.lambdas.install()  # before any invocation can happen
        dynamodb_index.install()  # Query costs what it returns, not the table (moto scans it all)
        dynamodb_atomic.serialise_requests()  # a conditional write is atomic, as in DynamoDB
        self._moto = MotoServer(HOST, self._ports["aws"], self._gate if self.persist else None)
        self._moto.start()
        # SFN's Lambda and SDK tasks call back to http://localhost:$MOTO_PORT (read at each call, so setting
        # it once the port is bound works for port 0 too, before any execution can start).
        self._ports["aws"] = self._moto.port
        self._save_and_set("MOTO_PORT", str(self._ports["aws"]))

    def _start_planet(self) -> FakePlanetServer:
        config = FakePlanetConfig.from_env()
        if not config.api_keys:  # accept only the key in the secret, so a wrong key fails locally too
            config = config.updated({"api_keys": [self.planet_api_key]})
        self.planet = start_in_thread(host=HOST, port=self._ports["planet"], config=config)
        if self.persist:  # looked up per request, so wrapping a serving app is safe
            self.planet.app.wsgi_app = GatedApp(self.planet.app.wsgi_app, self._gate, planet_ungated)  # type: ignore[method-assign]
        bound_port = urlsplit(self.planet.url).port
        assert bound_port is not None
        self._ports["planet"] = bound_port
        return self.planet

    def _set_environ(self, planet_url: str) -> None:
        """What every handler sees: the merged function environments plus the local runtime settings."""
        environment = merged_environment(self.lambdas.specs)
        environment.update(self._setting_overrides)
        environment.update(
            {
                "PLANET_API_URL": planet_url,
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                **DUMMY_CREDENTIALS,
                "TZ": "UTC",  # moto's Wait-until-timestamp compares with naive local time
            }
        )
        for key, value in environment.items():
            self._save_and_set(key, value)
        for key in _UNSET:
            self._save_and_set(key, None)
        time.tzset()

    def _runtime_environment(self) -> dict[str, str]:
        """What the local runtime adds to every function's own environment: the AWS endpoint, the region and
        credentials (as Lambda sets them), and the local settings no template entry declares (those it
        declares reach only the functions that declare them, through the provisioner)."""
        from order_core.config import Settings

        declared = {key for spec in self.lambdas.specs for key in spec.environment}
        environment = {key: value for key, value in self._setting_overrides.items() if key not in declared}
        # Settings no template entry declares (tuning such as DOWNLOAD_REQUESTS_PER_SECOND), when given to
        # `up`; never PLANET_API_KEY (in AWS the key comes from Secrets Manager).
        tuning = {name.upper() for name in Settings.model_fields} - declared - set(_UNSET)
        environment.update({key: value for key, value in self._environ.items() if key in tuning})
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                **DUMMY_CREDENTIALS,
                "TZ": "UTC",
            }
        )
        return environment

    def _save_and_set(self, key: str, value: str | None) -> None:
        self._saved_environ.setdefault(key, os.environ.get(key))
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    def _restore_environ(self) -> None:
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ.clear()
        time.tzset()

    # --- outputs ------------------------------------------------------------------------------------------

    def _build_outputs(
        self, planet_url: str, completion_queue_url: str, stack_outputs: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "region": REGION,
            "ports": dict(self._ports),
            "api_url": f"http://{HOST}:{self._ports['api']}/compute/ops",
            "aws_endpoint": self.aws_endpoint,
            "planet_url": planet_url,
            "planet_api_key": self.planet_api_key,
            "api_key": self.api_key,
            "tenant": DEFAULT_TENANT,
            "completion_events_queue_url": completion_queue_url,
            # null: every queue keeps the template's VisibilityTimeout
            "queue_visibility_timeout": self.queue_visibility_timeout,
            "stack_outputs": stack_outputs,
            # where the state is kept across restarts (null: not kept)
            "state_file": str(self.state_dir / "state.pickle") if self.persist else None,
            "restored": self.restored,
            "reconciled": self.reconcile_summary,
            "resources": self.resources.attributes,
        }

    def _write_outputs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        target = self.state_dir / OUTPUTS_FILE
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps(self.outputs, indent=2) + "\n", encoding="utf-8")
        partial.replace(target)  # readers never see half a file


class MotoServer:
    """moto's server application (what ThreadedMotoServer runs), bound in the calling thread.

    ThreadedMotoServer binds inside its thread: on a busy port start() then waits forever. Binding here makes
    a busy port fail at once (werkzeug prints "Port N is in use" and exits).
    """

    def __init__(self, host: str, port: int, gate: PauseGate | None = None) -> None:
        app: Any = DomainDispatcherApplication(create_backend_app)
        if gate is not None:
            app = GatedApp(app, gate, moto_ungated)
        self._server: BaseWSGIServer = make_server(
            host,
            port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="moto", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class ScheduledInvoker:
    """A function's Schedule event, locally: invoke it every ``interval`` seconds in a thread of its own."""

    def __init__(self, invoke: Callable[[str, Any], Any], function_name: str, interval: float) -> None:
        self._invoke = invoke
        self._function = function_name
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; an invocation in progress is not waited for long (its thread is a daemon)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        while not self._stop.wait(self._interval):
            try:
                result = self._invoke(self._function, event)
                if getattr(result, "errored", False):
                    log.warning("%s failed: %s", self._function, str(getattr(result, "payload", ""))[:500])
            except Exception:
                log.exception("scheduled invocation of %s failed", self._function)


def merged_environment(specs: list[FunctionSpec]) -> dict[str, str]:
    """One environment for all functions; a variable two functions set differently cannot be shared."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for spec in specs:
        for key, value in spec.environment.items():
            if key in merged and merged[key] != value:
                raise TemplateError(
                    f"{key} is {merged[key]!r} in {owner[key]} but {value!r} in {spec.name}: functions share "
                    "one process locally, so they need the same value"
                )
            merged[key] = value
            owner.setdefault(key, spec.name)
    return merged
