"""Where the tests find the OCI runtime-spec's reference data: its JSON
schemas and their good/bad test documents.

OCIRUNTIME_SPEC_DIR names a runtime-spec checkout (the directory holding
schema/); without it, the copy in tests/data/oci-runtime-spec/ (see its
SOURCE).  Tests that need it fail, not skip, when it is missing: a fresh
clone has it.
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = Path(os.environ.get("OCIRUNTIME_SPEC_DIR") or REPO / "tests" / "data" / "oci-runtime-spec")
SCHEMA_DIR = SPEC_DIR / "schema"
