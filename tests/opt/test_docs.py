"""docs/ops.md is generated from the registry: it must match what opt prints now."""
import os

from liteopt.opt.cli import run

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "ops.md")


def test_ops_table_is_current(capsys):
    assert run(["--print_all_ops_in_md_format"]) == 0
    table = capsys.readouterr().out
    assert table.strip() in open(DOC).read(), "regenerate docs/ops.md: opt --print_all_ops_in_md_format"
