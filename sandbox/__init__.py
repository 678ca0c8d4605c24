"""Local stand-ins that speak the real wire formats (QuickBooks Online + Intuit OAuth, Slack Web API).

Used by `make run` offline and by the tests. Never imported by `sync/` or `handlers/`.
"""
