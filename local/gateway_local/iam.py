"""Each local function calls AWS with its execution role's permissions only, enforced by moto's IAM.

The roles come from the SAM translator itself (``samtranslator``, what CloudFormation's SAM transform
runs): it turns every function's ``Policies`` (SAM policy templates such as ``DynamoDBCrudPolicy`` and
inline statements) into an ``AWS::IAM::Role`` with inline policies, which we resolve against the local
resources and create in moto. Each function's process then gets a session of its role (``sts:AssumeRole``:
an access key, a secret and a session token, as Lambda gives a function), and moto checks every request
signed with such a session against the role's policies (``moto.iam.access_control``: signature, action and
resource).

Two local additions make moto's check meaningful for this template: moto only works out the resource ARN
of a request for S3, SQS, IAM and STS (every other request is checked against ``*``, which a policy scoped
to a table never matches), so the DynamoDB, Secrets Manager, SNS and Step Functions handlers get their
``_determine_resource`` here. And only requests carrying a function's session are checked: the local
stack's own calls, tests and the AWS CLI keep moto's usual no-auth behaviour (dummy credentials).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin

from .template import REGION, STACK_NAME, Resolver, Template, load_yaml

log = logging.getLogger(__name__)

_TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
_CODE_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")
# Access key ids of the functions' role sessions: the requests moto checks (others carry dummy credentials,
# possibly with a dummy session token, as the test suite's environment has).
_SESSION_KEYS: set[str] = set()


class _NoManagedPolicies:
    """The translator's managed-policy loader (it would list AWS managed policies): none are needed."""

    def load(self) -> dict[str, str]:
        return {}


def function_role_policies(template: Template) -> dict[str, list[dict[str, Any]]]:
    """Per function logical id, its role's inline policies as SAM translates them (intrinsics left in)."""
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(load_yaml(template.path))
    for resource in (document.get("Resources") or {}).values():
        properties = resource.get("Properties") or {}
        for key in _CODE_PROPERTIES:  # the translator wants S3 locations; the code is not what we need
            if key in properties:
                properties[key] = "s3://local/code.zip"
    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator asks boto3 for the region
    try:
        translated = transform(document, dict(template.parameters), _NoManagedPolicies())
    finally:
        if region is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = region
    resources = translated["Resources"]
    policies: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"].get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            role_id = role["Fn::GetAtt"][0]
            policies[logical_id] = resources[role_id]["Properties"].get("Policies") or []
    return policies


def create_function_roles(
    template: Template, attributes: dict[str, dict[str, str]], clients: Callable[[str], Any]
) -> dict[str, dict[str, str]]:
    """Create each function's role in moto and assume it: per logical id, the session's environment."""
    resolver = Resolver(template, attributes)
    iam, sts = clients("iam"), clients("sts")
    credentials: dict[str, dict[str, str]] = {}
    for logical_id, policies in function_role_policies(template).items():
        role_name = f"{STACK_NAME}-{logical_id}Role"
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(_TRUST_LAMBDA))[
            "Role"
        ]["Arn"]
        for policy in policies:
            document = {"Version": "2012-10-17", **resolver.resolve(policy["PolicyDocument"])}
            iam.put_role_policy(
                RoleName=role_name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )
        session = sts.assume_role(RoleArn=role_arn, RoleSessionName=logical_id, DurationSeconds=43200)
        key = session["Credentials"]
        _SESSION_KEYS.add(key["AccessKeyId"])
        credentials[logical_id] = {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_SESSION_TOKEN": key["SessionToken"],
        }
    return credentials


# --- enforcement in moto ---------------------------------------------------------------------------------


def _json_body(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            return {}
    return body if isinstance(body, dict) else {}


def _dynamodb_resource(response: Any) -> str:
    body = _json_body(response)
    table = body.get("TableName")
    if not table:
        return "*"
    arn = f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{table}"
    return f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn


def _secretsmanager_resource(response: Any) -> str:
    secret_id = _json_body(response).get("SecretId")
    if not secret_id:
        return "*"
    if secret_id.startswith("arn:"):
        return str(secret_id)
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[response.current_account][response.region]
    secret = backend.secrets.get(secret_id)
    return str(secret.arn) if secret is not None else "*"


def _sns_resource(response: Any) -> str:
    return str(response._get_param("TopicArn") or response._get_param("TargetArn") or "*")


def _ses_resource(response: Any) -> str:
    """The sending identity, as IAM names it for SendEmail: the From address (its domain is another)."""
    source = str(response._get_param("Source") or "")
    address = source.rpartition("<")[2].rstrip(">").strip()
    if not address:
        return "*"
    return f"arn:aws:ses:{response.region}:{response.current_account}:identity/{address}"


def _stepfunctions_resource(response: Any) -> str:
    body = _json_body(response)
    return str(body.get("stateMachineArn") or body.get("executionArn") or "*")


def _signed_by_function(response: Any) -> bool:
    """Whether a request is signed with one of the functions' role sessions."""
    authorization = response.headers.get("Authorization") or ""
    credential = authorization.partition("Credential=")[2].split("/", 1)[0]
    return credential in _SESSION_KEYS


def _safely(determine: Callable[[Any], str]) -> Callable[[Any], str]:
    def determine_resource(response: Any) -> str:
        if not _signed_by_function(response):
            return "*"  # not checked (see _authorize_function_sessions)
        try:
            return determine(response)
        except Exception:  # a request we cannot read is checked against "*": refused unless allowed on all
            log.exception("could not work out the resource of a %s request", type(response).__name__)
            return "*"

    return determine_resource


def _resource_handlers() -> list[tuple[type, Callable[[Any], str]]]:
    from moto.dynamodb.responses import DynamoHandler
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.ses.responses import EmailResponse
    from moto.sns.responses import SNSResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    return [
        (DynamoHandler, _dynamodb_resource),
        (SecretsManagerResponse, _secretsmanager_resource),
        (SNSResponse, _sns_resource),
        (EmailResponse, _ses_resource),
        (StepFunctionResponse, _stepfunctions_resource),
    ]


def _authorize_function_sessions(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """moto's check (signature, then the role's policies), for requests signed with a role session."""
    if not _signed_by_function(self):
        return  # the local stack itself, tests, the CLI: dummy credentials, no IAM
    path = self.raw_path
    query = self.uri.split("?", 1)[1] if "?" in self.uri else ""
    iam_request = iam_request_cls(
        account_id=self.current_account,
        method=self.method,
        path=f"{path}?{query}" if query else path,
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=self._get_action(),
    )
    iam_request.check_signature()
    iam_request.check_action_permitted(resource)


def enforce() -> Callable[[], None]:
    """Make moto check function sessions against their roles; returns what undoes it (one per process)."""
    name = "_authenticate_and_authorize_action"
    saved: list[tuple[Any, str, Any]] = [
        (ActionAuthenticatorMixin, name, ActionAuthenticatorMixin.__dict__[name])
    ]
    setattr(ActionAuthenticatorMixin, name, _authorize_function_sessions)
    for handler_class, determine in _resource_handlers():
        saved.append(
            (handler_class, "_determine_resource", handler_class.__dict__.get("_determine_resource"))
        )
        setattr(handler_class, "_determine_resource", _safely(determine))  # noqa: B010 - looked up by name

    def restore() -> None:
        for owner, attribute, original in saved:
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)

    return restore
