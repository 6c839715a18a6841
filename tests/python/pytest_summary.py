"""pytest plugin (make test-python loads it with -p): ends the run with the C runner's summary line,
"tests: N passed, N failed, N skipped", which the CI script reports."""
from __future__ import annotations

import pytest


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    count = {key: len(reporter.stats.get(key, [])) for key in ("passed", "failed", "error", "skipped")}
    print(f"tests: {count['passed']} passed, {count['failed'] + count['error']} failed, {count['skipped']} skipped")
