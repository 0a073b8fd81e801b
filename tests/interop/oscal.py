"""Validates OSCAL Assessment Results with compliance-trestle's models of the official OSCAL
schema (a third-party validator): `python oscal.py FILE`. Prints the counts; exit 1 when the
document does not validate."""

import json
import sys

from trestle.oscal import OSCAL_VERSION
from trestle.oscal.assessment_results import AssessmentResults


def main():
    doc = json.load(open(sys.argv[1]))
    try:
        ar = AssessmentResults.parse_obj(doc["assessment-results"])
    except Exception as e:  # pydantic's ValidationError, a missing key
        print(f"invalid OSCAL {OSCAL_VERSION} assessment results: {e}", file=sys.stderr)
        return 1
    r = ar.results[0]
    print(json.dumps({
        "oscal": OSCAL_VERSION,
        "observations": len(r.observations or []),
        "risks": len(r.risks or []),
        "findings": len(r.findings or []),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
