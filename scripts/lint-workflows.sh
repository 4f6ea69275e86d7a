#!/usr/bin/env bash
# Checks the GitHub Actions workflows (.github/workflows/*.yml) against the workflow JSON schema that
# check-jsonschema (PyPI) carries, since they cannot run here. (actionlint's PyPI package downloads its
# binary from GitHub at install, which CI cannot reach.) Installed under target/, no system package touched.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=target/lint-py
if ! PYTHONPATH=$lib python3 -c 'import check_jsonschema' 2>/dev/null; then
    python3 -m pip install -q --target "$lib" check-jsonschema || python3 -m pip install -q --break-system-packages --target "$lib" check-jsonschema
fi
PYTHONPATH=$lib python3 -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
