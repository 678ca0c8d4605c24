"""Work stored as a job before Slack is answered (`bot.jobs`: it outlives the process that accepted it): the
operations' `enqueue`, a click stored as Slack sent it (`store_click`), and a job's payload read strictly
(`JobPayload`). The worker side is `bot.operations.worker`."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from bot.jobs import BadJob
from bot.replies import Reply
from bot.runtime import SlackRuntime
from bot.workspaces import Tenant, UserInfo


class JobPayload:
    """A job's payload, read strictly: a value of the wrong type raises BadJob (a tampered or foreign row is
    finished with its error, not run)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload

    def _get(self, key: str, kind: type | tuple[type, ...], optional: bool) -> Any:
        value = self.payload.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise BadJob(f"the job's {key} is not valid")
        return value

    def integer(self, key: str) -> int:
        return int(self._get(key, int, False))

    def text(self, key: str) -> str | None:
        return self._get(key, str, True)

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, False))

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self._get(key, str, False)
        if value not in allowed:
            raise BadJob(f"the job's {key} {value[:40]!r} is not one of {', '.join(allowed)}")
        return str(value)

    def time(self, key: str) -> dt.datetime:
        try:
            return dt.datetime.fromisoformat(self._get(key, str, False))
        except ValueError:
            raise BadJob(f"the job's {key} is not a time") from None

    def mapping(self, key: str) -> Mapping[str, Any]:
        return self._get(key, dict, False)


#: Set while a worker runs a stored click (:func:`store_click`): the work the click leads to runs in that job.
#: ``in_click.kinds`` is then the work of each job kind (`bot.operations.worker.JOB_KINDS`), set by that worker.
in_click = threading.local()


def enqueue(rt: SlackRuntime, kind: str, connection_id: int | None, tenant: Tenant, user: UserInfo, reply: Reply,
            /, **fields: Any) -> int | None:
    """Store the work as a job (committed when this returns), with who asked and where the answer goes. In the
    job of a stored click (:func:`store_click`), already durable, the work runs at once instead."""
    kinds = getattr(in_click, "kinds", None)
    if kinds is not None:
        kinds[kind](rt, tenant, user, reply, JobPayload(json.loads(json.dumps(fields))))
        return None
    payload = {"team_id": tenant.team_id, "user": {"user_id": user.user_id, "name": user.name, "tz": user.tz},
               "reply": reply.route(rt.services.box.encrypt), **fields}
    return rt.jobs.enqueue(kind, connection_id, payload)


#: What of a click's payload its job keeps (the message's blocks and the view's are left out: nothing reads them).
CLICK_KEYS = ("type", "user", "team", "container", "channel", "actions", "api_app_id", "enterprise",
              "is_enterprise_install")


def store_click(rt: SlackRuntime, kind: str, connection_id: int | None, body: Mapping[str, Any]) -> int:
    """Store a click (Sync Now, Retry All's confirmation, an entry's fix) as a job before it is acked: the
    permission check and the work run in the worker that claims it (`handlers.actions.run_click`). Its
    response_url and trigger_id are sealed with TOKEN_ENCRYPTION_KEYS."""
    box = rt.services.box
    kept: dict[str, Any] = {k: body[k] for k in CLICK_KEYS if k in body}
    view = body.get("view")
    if isinstance(view, Mapping):
        kept["view"] = {k: view.get(k) for k in ("id", "type") if k in view}
    sealed = {k: box.encrypt(str(body[k])) if body.get(k) else None for k in ("response_url", "trigger_id")}
    return rt.jobs.enqueue(kind, connection_id, {"click": {"body": kept, **sealed}})
