"""Create the template's resources in moto, in dependency order, and collect what the triggers need.

One creator per supported resource type; everything else in the template (the API, the layer, alarms, the
bucket policy) has no local counterpart and is skipped. The created resources' names, ARNs and URLs feed the
:class:`~gateway_local.template.Resolver`, so a resource added to the template appears locally without a
change here as long as its type is supported.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import string
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api_front import ApiRoute, RouteAuthorizer
from .esm import SqsSource
from .lambda_runtime import FunctionSpec
from .template import REGION, STACK_NAME, Resolver, Resource, Template, TemplateError

log = logging.getLogger(__name__)

COMPLETION_EVENTS_QUEUE = "completion-events-local"

_SQS_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_TABLE_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "StreamSpecification",
)
_DEFAULT_THROUGHPUT = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}


@dataclass
class ProvisionSettings:
    """Local decisions the template cannot make."""

    # Values for secrets by logical id (the Planet key); others keep the template's value or a random one.
    secret_values: Mapping[str, str] = field(default_factory=dict)
    # Local values for environment variables the functions declare (e.g. PLANET_API_URL → the fake).
    environment_overrides: Mapping[str, str] = field(default_factory=dict)
    # Overrides every queue's VisibilityTimeout, so failed messages come back quickly in a demo.
    queue_visibility_timeout: int | None = None


@dataclass
class LocalResources:
    """What was created: CloudFormation-style attributes per logical id, functions and their triggers."""

    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    sqs_sources: list[SqsSource] = field(default_factory=list)
    api_routes: list[ApiRoute] = field(default_factory=list)

    def of_type(self, resource_type: str) -> dict[str, dict[str, str]]:
        return {rid: attrs for rid, attrs in self.attributes.items() if attrs["Type"] == resource_type}


class Provisioner:
    """Creates supported resources through boto3 clients pointed at moto."""

    def __init__(self, template: Template, clients: Callable[[str], Any], settings: ProvisionSettings):
        self._template = template
        self._client = clients
        self._settings = settings
        self._created = LocalResources()
        self._resolver = Resolver(template, self._created.attributes)
        self._role_arn: str | None = None
        self._creators: dict[str, Callable[[Resource], dict[str, str]]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::SNS::Topic": self._topic,
            "AWS::KMS::Key": self._key,
            "AWS::S3::Bucket": self._bucket,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Serverless::Function": self._function,
            "AWS::Serverless::StateMachine": self._state_machine,
        }

    def provision(self) -> LocalResources:
        for resource in self._template.resources.values():
            if resource.type not in self._creators:
                log.debug("skipping %s (%s): no local counterpart", resource.logical_id, resource.type)
        for resource in self._template.creation_order(set(self._creators)):
            attributes = self._creators[resource.type](resource)
            self._created.attributes[resource.logical_id] = {"Type": resource.type, **attributes}
            log.debug("created %s: %s", resource.logical_id, attributes["Ref"])
        return self._created

    def resolve_outputs(self) -> dict[str, str]:
        """The template's Outputs that make sense locally (those not naming a skipped resource)."""
        outputs = {}
        for name, output in self._template.outputs.items():
            try:
                outputs[name] = self._resolver.resolve_string(output["Value"])
            except TemplateError as why:
                log.debug("output %s has no local value: %s", name, why)
        return outputs

    # --- creators: each returns {"Ref": ..., <GetAtt name>: ...} -------------------------------------------

    def _table(self, resource: Resource) -> dict[str, str]:
        props = self._resolver.resolve(resource.properties)
        name = props.get("TableName") or _physical_name(resource)
        kwargs = {key: props[key] for key in _TABLE_PROPERTIES if key in props}
        kwargs["BillingMode"] = props.get("BillingMode", "PROVISIONED")
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props.get("ProvisionedThroughput", _DEFAULT_THROUGHPUT)
            for index in kwargs.get("GlobalSecondaryIndexes", []):
                index.setdefault("ProvisionedThroughput", _DEFAULT_THROUGHPUT)
        dynamodb = self._client("dynamodb")
        table = dynamodb.create_table(TableName=name, **kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        attributes = {"Ref": name, "Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attributes["StreamArn"] = table["LatestStreamArn"]
        return attributes

    def _queue(self, resource: Resource) -> dict[str, str]:
        props = self._resolver.resolve(resource.properties)
        name = props.get("QueueName") or _physical_name(resource)
        if str(props.get("FifoQueue")).lower() == "true" and not name.endswith(".fifo"):
            name += ".fifo"
        queue_attributes = {
            key: json.dumps(value) if isinstance(value, dict) else _attribute_string(value)
            for key, value in props.items()
            if key in _SQS_ATTRIBUTES
        }
        if self._settings.queue_visibility_timeout is not None:
            queue_attributes["VisibilityTimeout"] = str(self._settings.queue_visibility_timeout)
        sqs = self._client("sqs")
        # The DLQ named in RedrivePolicy already exists: creation_order puts it first (GetAtt dependency).
        url = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    def _topic(self, resource: Resource) -> dict[str, str]:
        props = self._resolver.resolve(resource.properties)
        name = props.get("TopicName") or _physical_name(resource)
        topic_attributes = {
            key: _attribute_string(props[key])
            for key in ("DisplayName", "FifoTopic", "KmsMasterKeyId")
            if key in props
        }
        sns = self._client("sns")
        arn = sns.create_topic(Name=name, Attributes=topic_attributes)["TopicArn"]
        for subscription in props.get("Subscription", []):
            sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
        return {"Ref": arn, "TopicArn": arn, "TopicName": name}

    def _key(self, resource: Resource) -> dict[str, str]:
        """A KMS key in moto, so an encrypted topic is created with its key as in AWS (policy not kept)."""
        description = self._resolver.resolve(resource.properties.get("Description")) or resource.logical_id
        metadata = self._client("kms").create_key(Description=description)
        key = metadata["KeyMetadata"]
        return {"Ref": key["KeyId"], "Arn": key["Arn"], "KeyId": key["KeyId"]}

    def _bucket(self, resource: Resource) -> dict[str, str]:
        props = self._resolver.resolve(resource.properties)
        # CloudFormation would generate stack-logicalid-random; bucket names must be lower case.
        name = props.get("BucketName") or _physical_name(resource).lower()
        self._client("s3").create_bucket(Bucket=name)  # us-east-1: no LocationConstraint
        return {
            "Ref": name,
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }

    def _secret(self, resource: Resource) -> dict[str, str]:
        props = self._resolver.resolve(resource.properties)
        name = props.get("Name") or _physical_name(resource)
        value = self._settings.secret_values.get(resource.logical_id)
        if value is None:
            value = props.get("SecretString") or _generate_secret(props.get("GenerateSecretString") or {})
        arn = self._client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
        return {"Ref": arn, "Id": arn}

    def _function(self, resource: Resource) -> dict[str, str]:
        props = resource.properties
        resolve = self._resolver.resolve
        name = resolve(props.get("FunctionName")) or resource.logical_id
        code_uri = resolve(props.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{resource.logical_id}: only a local CodeUri directory can run locally")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        overrides = self._settings.environment_overrides
        environment = {
            key: overrides.get(key, self._resolver.resolve_string(value)) for key, value in variables.items()
        }
        handler = resolve(props["Handler"])
        timeout = int(resolve(props.get("Timeout", 3)))
        memory = int(resolve(props.get("MemorySize", 128)))
        arn = self._client("lambda").create_function(
            FunctionName=name,
            Runtime=resolve(props.get("Runtime", "python3.11")),
            Role=self._role(),
            Handler=handler,
            Code={"ZipFile": _empty_zip()},  # never unpacked: the handler runs from CodeUri in-process
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": environment},
        )["FunctionArn"]
        self._created.functions[resource.logical_id] = FunctionSpec(
            logical_id=resource.logical_id,
            name=name,
            arn=arn,
            code_dir=self._template.directory / code_uri,
            handler=handler,
            timeout_seconds=timeout,
            memory_mb=memory,
            environment=environment,
            layer_dirs=self._layer_dirs(props.get("Layers", [])),
        )
        for event_name, event in (props.get("Events") or {}).items():
            self._add_trigger(name, event_name, event)
        return {"Ref": name, "Arn": arn}

    def _state_machine(self, resource: Resource) -> dict[str, str]:
        props = resource.properties
        resolve = self._resolver.resolve
        if "DefinitionUri" in props:
            definition_uri = resolve(props["DefinitionUri"])
            if not isinstance(definition_uri, str):
                raise TemplateError(f"{resource.logical_id}: only a local DefinitionUri can run locally")
            text = (self._template.directory / definition_uri).read_text(encoding="utf-8")
        else:
            text = json.dumps(resolve(props["Definition"]))
        substitutions = {
            key: self._resolver.resolve_string(value)
            for key, value in (props.get("DefinitionSubstitutions") or {}).items()
        }
        name = resolve(props.get("Name")) or resource.logical_id
        arn = self._client("stepfunctions").create_state_machine(
            name=name,
            definition=_substitute(text, substitutions, resource.logical_id),
            roleArn=self._role(),
            type=resolve(props.get("Type", "STANDARD")),
        )["stateMachineArn"]
        return {"Ref": arn, "Arn": arn, "Name": name}

    # --- helpers ----------------------------------------------------------------------------------------

    def _add_trigger(self, function_name: str, event_name: str, event: dict[str, Any]) -> None:
        props = event.get("Properties") or {}
        if event["Type"] == "SQS":
            queue_arn = self._resolver.resolve_string(props["Queue"])
            queue = next((q for q in self._created_queues() if q["Arn"] == queue_arn), None)
            if queue is None:
                raise TemplateError(f"{function_name}.{event_name}: queue {queue_arn} is not in the template")
            if self._resolver.resolve(props.get("Enabled", True)) in (False, "false"):
                return
            self._created.sqs_sources.append(
                SqsSource(
                    function_name=function_name,
                    queue_url=queue["QueueUrl"],
                    queue_arn=queue_arn,
                    batch_size=int(self._resolver.resolve(props.get("BatchSize", 10))),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in self._resolver.resolve(props.get("FunctionResponseTypes", [])),
                )
            )
        elif event["Type"] == "Api":
            self._created.api_routes.append(self._api_route(function_name, props))
        else:
            log.debug("%s.%s: %s events are not emulated locally", function_name, event_name, event["Type"])

    def _api_route(self, function_name: str, props: dict[str, Any]) -> ApiRoute:
        api_ref = props.get("RestApiId")
        authorizer = None
        if isinstance(api_ref, dict) and "Ref" in api_ref:
            api_id = api_ref["Ref"]
            api_props = self._template.resources[api_id].properties
            stage = self._resolver.resolve_string(api_props["StageName"])
            binary_types = self._resolver.resolve(api_props.get("BinaryMediaTypes", []))
            authorizer = self._route_authorizer(api_props, props)
        else:  # SAM's implicit API
            api_id, stage, binary_types = "ServerlessRestApi", "Prod", []
        return ApiRoute(
            function_name=function_name,
            method=self._resolver.resolve_string(props["Method"]).upper(),
            path=self._resolver.resolve_string(props["Path"]),
            api_id=api_id,
            stage=stage,
            # SAM writes "/" as "~1" in media types (JSON-pointer escaping); both spellings work there.
            binary_media_types=tuple(media_type.replace("~1", "/") for media_type in binary_types),
            authorizer=authorizer,
        )

    def _route_authorizer(
        self, api_props: dict[str, Any], event_props: dict[str, Any]
    ) -> RouteAuthorizer | None:
        """The Lambda authorizer guarding a route: the event's own Auth, else the API's default."""
        auth = api_props.get("Auth") or {}
        name = (event_props.get("Auth") or {}).get("Authorizer", auth.get("DefaultAuthorizer"))
        if not name or name == "NONE":
            return None
        spec = auth["Authorizers"][name]
        function = self._resolver.resolve_string(spec["FunctionArn"]).rsplit(":", 1)[-1]
        identity = spec.get("Identity") or {}
        responses = api_props.get("GatewayResponses") or {}

        def body(kind: str, default: str) -> dict[str, Any]:
            template = ((responses.get(kind) or {}).get("ResponseTemplates") or {}).get("application/json")
            return json.loads(template) if template else {"message": default}

        return RouteAuthorizer(
            function_name=function,
            identity_header=(identity.get("Headers") or ["Authorization"])[0],
            ttl_seconds=int(identity.get("ReauthorizeEvery", 300)),
            unauthorized_body=body("UNAUTHORIZED", "Unauthorized"),
            denied_body=body("ACCESS_DENIED", "User is not authorized to access this resource"),
        )

    def _created_queues(self) -> list[dict[str, str]]:
        return list(self._created.of_type("AWS::SQS::Queue").values())

    def _layer_dirs(self, layers: list[Any]) -> tuple[Path, ...]:
        """Source directories of the template's own layers (the rest, e.g. public ARNs, are skipped)."""
        directories = []
        for layer in layers:
            layer_id = layer.get("Ref") if isinstance(layer, dict) else None
            resource = self._template.resources.get(layer_id or "")
            if resource is not None and resource.type == "AWS::Serverless::LayerVersion":
                directories.append(self._template.directory / resource.properties["ContentUri"])
        return tuple(directories)

    def _role(self) -> str:
        if self._role_arn is None:
            self._role_arn = self._client("iam").create_role(
                RoleName=f"{STACK_NAME}-local",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
        return self._role_arn


def create_completion_events_queue(clients: Callable[[str], Any], topic_arns: list[str]) -> str:
    """A local-only queue subscribed to every topic, so demos and tests can read what was published."""
    sqs, sns = clients("sqs"), clients("sns")
    url = sqs.create_queue(QueueName=COMPLETION_EVENTS_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic_arn in topic_arns:
        # Raw delivery off, so readers get the SNS envelope (Message, MessageAttributes) as in AWS. Not by
        # passing RawMessageDelivery="false": moto stores the string and tests its truth, i.e. raw delivery.
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _physical_name(resource: Resource) -> str:
    return f"{STACK_NAME}-{resource.logical_id}"


def _attribute_string(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _generate_secret(spec: dict[str, Any]) -> str:
    alphabet = string.ascii_letters + string.digits
    if str(spec.get("ExcludePunctuation", False)).lower() != "true":
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    alphabet = "".join(char for char in alphabet if char not in excluded)
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return password


def _substitute(text: str, substitutions: Mapping[str, str], logical_id: str) -> str:
    """Apply ``DefinitionSubstitutions``; an unknown ``${Name}`` fails, as it does in CloudFormation."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name not in substitutions:
            raise TemplateError(f"{logical_id}: no DefinitionSubstitutions entry for ${{{name}}}")
        return json.dumps(substitutions[name])[1:-1]  # escaped for its place inside a JSON string

    return re.sub(r"\$\{([^}]+)\}", replace, text)


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()
