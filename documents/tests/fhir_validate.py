"""Validates a FHIR R4 Bundle (JSON file given as the only argument) with fhir.resources 6.4.0,
whose models are FHIR 4.0.1 (R4): the Bundle as a whole, then every entry's resource on its own
with the model of its resourceType. Prints {"fhir_version", "counts", "errors"} as JSON and
exits 1 if anything failed to validate. Run by documents/tests/fhir.rs."""

import json
import sys

import fhir.resources
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle


def main(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    errors = []
    try:
        Bundle.parse_obj(data)
    except Exception as e:  # pydantic.ValidationError and lookup errors alike
        errors.append(f"Bundle: {e}")
    counts = {}
    for i, entry in enumerate(data.get("entry", [])):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        counts[kind] = counts.get(kind, 0) + 1
        try:
            get_fhir_model_class(kind).parse_obj(resource)
        except Exception as e:
            errors.append(f"entry {i} {kind}/{resource.get('id')}: {e}")
    report = {"fhir_version": fhir.resources.__fhir_version__, "counts": counts, "errors": errors}
    print(json.dumps(report, ensure_ascii=False))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
