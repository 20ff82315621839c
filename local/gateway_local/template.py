"""Read the project's SAM template and resolve its intrinsic functions against local resources.

The local stack is built from ``template.yaml`` itself so that local and AWS cannot drift: this module knows
the CloudFormation YAML short tags, applies parameter defaults and SAM ``Globals``, works out which
resources depend on which (to create them in order), and resolves ``Ref``/``Fn::GetAtt``/``Fn::Sub``/...
against the names, ARNs and URLs of the resources created so far.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
STACK_NAME = "planet-gateway"

_NO_VALUE = object()  # AWS::NoValue: the key holding it disappears
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class TemplateError(Exception):
    """The template uses something the local stack cannot resolve or create."""


# --- YAML ------------------------------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags (``!Ref X``) into their long form (``{"Ref": X}``)."""


def _construct_short_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short form is "Resource.Attribute"; attributes may themselves contain dots (Endpoint.Address).
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag_suffix}": value}


# Every "!Foo" becomes "Fn::Foo" (except !Ref and !Condition), so tags the template may adopt later
# (!FindInMap, !Base64, !Cidr, ...) load without a change here; the resolver says which it can evaluate.
CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a CloudFormation/SAM YAML file, short tags included."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document


# --- the template ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]


@dataclass
class Template:
    """The parts of a SAM template the local stack uses, with SAM Globals already merged in."""

    path: Path
    parameters: dict[str, str]
    resources: dict[str, Resource]
    outputs: dict[str, Any]
    conditions: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def of_type(self, *types: str) -> Iterator[Resource]:
        return (resource for resource in self.resources.values() if resource.type in types)

    def creation_order(self, supported_types: set[str]) -> list[Resource]:
        """Resources of the supported types, each after every supported resource it references."""
        supported = {rid for rid, res in self.resources.items() if res.type in supported_types}
        graph = TopologicalSorter[str]()
        for rid in supported:  # dict order = template order, so independent resources keep it
            graph.add(rid, *sorted(references(self.resources[rid].properties) & supported))
        try:
            order = list(graph.static_order())
        except ValueError as cycle:  # graphlib.CycleError
            raise TemplateError(f"circular references between resources: {cycle.args[1]}") from cycle
        return [self.resources[rid] for rid in order]


def load_template(path: Path, parameter_overrides: Mapping[str, str] | None = None) -> Template:
    """Load ``template.yaml``: parameters take their defaults (then the overrides), Globals are merged."""
    document = load_yaml(path)
    parameters = {
        name: _cfn_string(spec["Default"])
        for name, spec in (document.get("Parameters") or {}).items()
        if "Default" in spec
    }
    parameters.update(parameter_overrides or {})
    function_globals = (document.get("Globals") or {}).get("Function") or {}
    resources: dict[str, Resource] = {}
    for logical_id, body in (document.get("Resources") or {}).items():
        properties = body.get("Properties") or {}
        if body["Type"] == "AWS::Serverless::Function":
            properties = merge_globals(function_globals, properties)
        resources[logical_id] = Resource(logical_id, body["Type"], properties)
    return Template(
        path=path,
        parameters=parameters,
        resources=resources,
        outputs=document.get("Outputs") or {},
        conditions=document.get("Conditions") or {},
    )


def merge_globals(globals_section: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's merge rule: maps merge key by key, lists concatenate (globals first), scalars are overridden."""
    merged: dict[str, Any] = dict(globals_section)
    for key, value in properties.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def references(value: Any) -> set[str]:
    """Logical ids (or parameters) a piece of template references through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner.split(".")[0] if isinstance(inner, str) else inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(name.split(".")[0] for name in _sub_variables(text))
            found |= references(inner)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def _sub_variables(text: str) -> list[str]:
    return [name for name in _SUB_VARIABLE.findall(text) if not name.startswith("!")]


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = next(iter(value))
    return key in {"Ref", "Condition"} or key.startswith("Fn::")


def _cfn_string(value: Any) -> str:
    """CloudFormation hands every scalar to resources as a string; booleans are lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cfn_string(item) for item in value)
    return str(value)


# --- intrinsic functions ---------------------------------------------------------------------------------


class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and created resources.

    ``attributes[logical_id]`` holds what a created resource answers to: ``"Ref"`` plus its GetAtt names
    (``Arn``, ``QueueName``, ...). A reference to anything else (a resource type the local stack skips, or
    one not created yet) raises :class:`TemplateError`, so a template change that needs new local support
    fails loudly instead of producing a half-configured function.
    """

    def __init__(self, template: Template, attributes: Mapping[str, Mapping[str, str]]) -> None:
        self._template = template
        self._attributes = attributes
        self._pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic function evaluated (``AWS::NoValue`` keys dropped)."""
        resolved = self._resolve(value)
        return None if resolved is _NO_VALUE else resolved

    def resolve_string(self, value: Any) -> str:
        """Resolve and render as CloudFormation would pass it to a resource property of type String."""
        return _cfn_string(self.resolve(value))

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self._resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        resolved = {key: self._resolve(inner) for key, inner in value.items()}
        return {key: inner for key, inner in resolved.items() if inner is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._template.parameters:
            return self._template.parameters[name]
        return self._attribute(name, "Ref")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self._attributes:
            resource = self._template.resources.get(logical_id)
            kind = f"{resource.type} " if resource else ""
            raise TemplateError(f"cannot resolve a reference to {kind}{logical_id!r}: not created locally")
        try:
            return self._attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"{logical_id} has no attribute {attribute!r} locally") from None

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._attribute(self._resolve(logical_id), self._resolve(attribute))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join":
            delimiter, items = argument
            return _cfn_string(self._resolve(delimiter)).join(_cfn_string(i) for i in self._resolve(items))
        if name == "Fn::Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if name == "Fn::Split":
            delimiter, text = self._resolve(argument)
            return text.split(delimiter)
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self._resolve(if_true if self._condition(condition) else if_false)
        if name in {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"}:
            return self._evaluate_condition({name: argument})
        if name == "Fn::ToJsonString":
            return json.dumps(self._resolve(argument), separators=(",", ":"))
        raise TemplateError(f"{name} is not supported by the local stack")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {key: _cfn_string(self._resolve(inner)) for key, inner in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays as ${Literal}
                return "${" + name[1:] + "}"
            if name in local:
                return local[name]
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._attribute(logical_id, attribute)
            return _cfn_string(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _condition(self, name: str) -> bool:
        if name not in self._template.conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return self._evaluate_condition(self._template.conditions[name])

    def _evaluate_condition(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, argument),) = expression.items()
            if key == "Condition":
                return self._condition(argument)
            if key == "Fn::Equals":
                left, right = (_cfn_string(self._resolve(side)) for side in argument)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate_condition(argument[0])
            if key == "Fn::And":
                return all(self._evaluate_condition(item) for item in argument)
            if key == "Fn::Or":
                return any(self._evaluate_condition(item) for item in argument)
        raise TemplateError(f"not a condition: {expression!r}")
