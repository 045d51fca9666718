"""flatc-generated code for nb.fbs (do not edit; run scripts/gen_format.sh)."""
