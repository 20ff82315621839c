"""template.yaml's operations side: alarms that name their runbook section, a dashboard of what the code
actually emits, an encrypted completion topic its publishers can use, and traces without responses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from gateway_local.template import Template, load_template, load_yaml
from harness import ROOT
from order_core.models.order import TERMINAL_STATES

RUNBOOK = ROOT / "docs" / "runbook.md"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(ROOT / "template.yaml")


def _of_type(template: Template, resource_type: str) -> dict[str, Any]:
    return {rid: r.properties for rid, r in template.resources.items() if r.type == resource_type}


def _globals_environment() -> dict[str, Any]:
    document = load_yaml(ROOT / "template.yaml")
    variables: dict[str, Any] = document["Globals"]["Function"]["Environment"]["Variables"]
    return variables


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {_github_anchor(match) for match in re.findall(r"^#{2,4} (.+)$", text, flags=re.MULTILINE)}


def _emitted_metrics() -> set[str]:
    """Metric names the code emits with Powertools (f-string names expanded for each terminal state)."""
    names: set[str] = set()
    for path in [*ROOT.glob("shared/order_core/**/*.py"), *ROOT.glob("functions/*/app.py")]:
        for name in re.findall(r"add_metric\(\s*name=(f?\"[^\"]+\")", path.read_text(encoding="utf-8")):
            if name.startswith("f"):
                assert name == 'f"Orders{state.value.capitalize()}"', f"{path}: unknown dynamic metric {name}"
                names |= {f"Orders{state.capitalize()}" for state in TERMINAL_STATES}
            else:
                names.add(name.strip('"'))
    return names


def _dashboard(template: Template) -> dict[str, Any]:
    [properties] = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = properties["DashboardBody"]["Fn::Sub"]
    return dict(json.loads(re.sub(r"\$\{[^}]+\}", "SUBSTITUTED", body)))


def _dashboard_metrics(template: Template) -> list[list[Any]]:
    return [
        [part for part in metric if not isinstance(part, dict)]
        for widget in _dashboard(template)["widgets"]
        for metric in widget["properties"].get("metrics", [])
    ]


def test_template_ops_every_alarm_names_an_existing_runbook_section(template: Template) -> None:
    anchors = _runbook_anchors()
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")

    assert len(alarms) >= 6
    for name, alarm in alarms.items():
        linked = re.findall(r"docs/runbook\.md#([\w-]+)", alarm["AlarmDescription"])
        assert linked, f"{name} names no runbook section"
        assert set(linked) <= anchors, f"{name} names a missing runbook section: {linked}"


def test_template_ops_runbook_has_the_sections_the_issue_asks_for() -> None:
    assert {
        "redrive-the-dead-letter-queue",
        "replay-a-completion-event",
        "re-land-an-order",
        "rotate-the-planet-key",
        "rotate-a-tenants-key",
    } <= _runbook_anchors()


def test_template_ops_every_alarm_notifies_the_alarm_topic(template: Template) -> None:
    for name, alarm in _of_type(template, "AWS::CloudWatch::Alarm").items():
        assert alarm.get("AlarmActions") == [{"Ref": "AlarmTopic"}], name


def test_template_ops_dashboard_and_alarms_chart_only_metrics_the_code_emits(template: Template) -> None:
    environment = _globals_environment()
    namespace, service = environment["POWERTOOLS_METRICS_NAMESPACE"], environment["POWERTOOLS_SERVICE_NAME"]
    emitted = _emitted_metrics()
    ours = [metric for metric in _dashboard_metrics(template) if metric[0] == namespace]
    for alarm in _of_type(template, "AWS::CloudWatch::Alarm").values():
        if alarm.get("Namespace") == namespace:
            dimensions = [part for d in alarm["Dimensions"] for part in (d["Name"], d["Value"])]
            ours.append([namespace, alarm["MetricName"], *dimensions])

    assert ours
    for metric in ours:
        assert metric[1] in emitted, f"{metric[1]} is charted but nothing emits it"
        # Powertools adds the service dimension to every metric; a chart without it would stay empty.
        assert metric[2:] == ["service", service], metric


def test_template_ops_dashboard_charts_what_operators_asked_for(template: Template) -> None:
    charted = {(metric[0], metric[1]) for metric in _dashboard_metrics(template)}
    namespace = _globals_environment()["POWERTOOLS_METRICS_NAMESPACE"]

    assert {
        (namespace, "OrdersSuccess"),
        (namespace, "OrdersFailed"),
        (namespace, "OrdersAccepted"),
        (namespace, "OrdersSubmitted"),
        (namespace, "LandedFiles"),
        (namespace, "LandedBytes"),
        (namespace, "LandingErrors"),
        (namespace, "UpstreamThrottled"),
        (namespace, "UpstreamServerErrors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "Errors"),
    } <= charted


def test_template_ops_dashboard_shows_every_alarm(template: Template) -> None:
    [properties] = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    shown = set(re.findall(r"\$\{(\w+)\.Arn\}", properties["DashboardBody"]["Fn::Sub"]))

    assert shown == set(_of_type(template, "AWS::CloudWatch::Alarm"))


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_template_ops_every_function_is_watched_for_errors_and_throttles(
    template: Template, metric: str
) -> None:
    functions = set(_of_type(template, "AWS::Serverless::Function"))
    [alarm] = [
        p
        for p in _of_type(template, "AWS::CloudWatch::Alarm").values()
        if f"{metric} of every function" in str(p)
    ]
    watched = {
        query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    [dashboard] = _of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["DashboardBody"]["Fn::Sub"]
    charted = set(re.findall(rf'"AWS/Lambda",\s*"{metric}",\s*"FunctionName",\s*"\$\{{(\w+)\}}"', body))

    assert watched == functions and charted == functions


def test_template_ops_completion_topic_is_encrypted_and_its_publishers_may_use_the_key(
    template: Template,
) -> None:
    topic = template.resources["CompletionTopic"].properties
    key_ref = topic["KmsMasterKeyId"]
    assert template.resources[key_ref["Ref"]].type == "AWS::KMS::Key"
    assert template.resources[key_ref["Ref"]].properties["EnableKeyRotation"] is True

    publishers = [
        name
        for name, function in _of_type(template, "AWS::Serverless::Function").items()
        if any("SNSPublishMessagePolicy" in policy for policy in function.get("Policies", []))
    ]
    assert publishers
    for name in publishers:
        statements = [
            statement
            for policy in template.resources[name].properties["Policies"]
            for statement in policy.get("Statement", [])
        ]
        assert any(
            {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(statement["Action"])
            and statement["Resource"] == {"Fn::GetAtt": [key_ref["Ref"], "Arn"]}
            for statement in statements
        ), f"{name} publishes to the encrypted topic without the key"


def test_template_ops_functions_never_trace_responses() -> None:
    environment = _globals_environment()

    assert environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert environment["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
