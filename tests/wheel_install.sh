#!/usr/bin/env bash
# Install the wheel in DIST (make wheel) into a fresh virtual environment,
# outside the source tree, and check that it works as a user would run it:
# the package imports from site-packages (not from python/), the demo writes
# a complete ledger, and the CLI answers. Part of `make test`.
set -euo pipefail
dist=$(cd "${1:-dist}" && pwd)
wheels=("$dist"/carbonledger-*.whl)
[ ${#wheels[@]} -eq 1 ] || { echo "expected one wheel in $dist, found: ${wheels[*]}" >&2; exit 1; }
wheel=${wheels[0]}
case "$(basename "$wheel")" in
  *-abi3-*manylinux*) ;;
  *) echo "not an abi3 manylinux wheel: $(basename "$wheel")" >&2; exit 1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
cd "$work"
"$work/venv/bin/python" - <<'EOF'
import pathlib, carbonledger
where = pathlib.Path(carbonledger.__file__).resolve()
assert "site-packages" in where.parts, where
print("carbonledger", carbonledger.__version__, "from", where.parent)
EOF
"$work/venv/bin/carbonledger" --version
"$work/venv/bin/carbonledger" demo --days 0.05 --out "$work/demo" --quiet
for f in allocations unallocated devices grid summary; do
  [ -s "$work/demo/ledger/$f.parquet" ] || { echo "demo ledger lacks $f.parquet" >&2; exit 1; }
done
[ -s "$work/demo/ledger/report.html" ] && [ -s "$work/demo/ledger/manifest.json" ]
echo "wheel OK: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
