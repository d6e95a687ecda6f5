"""Validates FHIR R4 resources with fhir.resources (PyPI), an implementation
independent of ours. Reads a JSON array of resources on stdin and writes a JSON
array with, for each, null (valid) or the validator's message."""

import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__

results = []
for resource in json.load(sys.stdin):
    try:
        construct_fhir_element(resource.get("resourceType"), resource)
        results.append(None)
    except Exception as error:  # pydantic's ValidationError, or an unknown type
        results.append(str(error))
json.dump(results, sys.stdout)
