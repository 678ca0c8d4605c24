"""Local stand-in for QuickBooks Online (Accounting API v3) and Intuit's OAuth 2.0 server.

``create_app(config) -> Starlette`` serves QBO's and Intuit's real wire formats (plus a ``/_control/`` API and an
HTML panel) so the sync engine, the tests and the offline demo run over real HTTP without the internet;
``app.state.standin`` is the ``QuickBooksStandIn`` with all state and Python methods mirroring the control API.
See ``app.py`` for the endpoints and ``state.py`` / ``throttle.py`` / ``dispatch.py`` / ``books.py`` / ``rules.py`` /
``oauth.py`` for the behaviour and its sources.
"""

from sandbox.quickbooks.app import QuickBooksStandIn, StandInConfig, create_app
from sandbox.quickbooks.faults import QBOFault
from sandbox.quickbooks.realm import DEFAULT_REALM

__all__ = ["DEFAULT_REALM", "QBOFault", "QuickBooksStandIn", "StandInConfig", "create_app"]
