#!/usr/bin/env python3
"""Validates podid's manifests export against aad-pod-identity's CRD schemas.

Usage: validate-manifests.py CRD_YAML MANIFESTS_YAML

Every object is checked with jsonschema against the openAPIV3Schema of its kind, closed with
`additionalProperties: false` wherever the schema lists properties and says nothing else, so that a
stray or capitalised key (`spec.Selector`) fails instead of being ignored as the API server would.
metadata is checked for the fields podid writes. Exits non-zero naming each problem.
"""
import copy
import sys

import jsonschema
import yaml


def closed(schema):
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
    },
}


def main():
    crd_path, manifests_path = sys.argv[1], sys.argv[2]
    schemas = {}
    with open(crd_path) as handle:
        for crd in yaml.safe_load_all(handle):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = closed(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})["metadata"] = METADATA
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
                schemas[(f"{crd['spec']['group']}/{version['name']}", kind)] = schema
    problems, count = [], 0
    with open(manifests_path) as handle:
        for document in yaml.safe_load_all(handle):
            if document is None:
                continue
            count += 1
            key = (document.get("apiVersion"), document.get("kind"))
            name = (document.get("metadata") or {}).get("name", "?")
            if key not in schemas:
                problems.append(f"{key[1]} {name}: no CRD schema for {key[0]}")
                continue
            for error in sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(document), key=str):
                path = ".".join(str(part) for part in error.absolute_path) or "(object)"
                problems.append(f"{key[1]} {name}: {path}: {error.message}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {count} objects")
        return 1
    print(f"{count} objects valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
