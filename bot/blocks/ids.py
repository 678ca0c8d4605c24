"""Action ids, callback ids and block ids of syncbot's Block Kit, defined once.

The renderers in :mod:`bot.blocks` put these on buttons, modals and inputs; the handlers import the same
constants to register their listeners (``app.action(ids.RETRY)``), so a renamed id cannot drift apart.

Button values carry ids only (an entry id, a connection id), never state: every click reloads what it
names from the database and checks that it belongs to the clicking workspace's account (docs/architecture.md,
"Rules of the house"). Two exceptions, both read-only and parsed like typed text: the log's Next and
Previous buttons carry a keyset cursor and the filter words as JSON (``{"before": 41, "q": "errors"}``),
and :data:`VIEW_LOG` carries ``/sync-log`` filter words (``"open"``, ``"errors since:2026-11-30T14:00:00+00:00"``).
A button value is at most 2000 characters (https://docs.slack.dev/reference/block-kit/block-elements/button-element).
"""

from __future__ import annotations

from sync.diagnosis import FixAction

# -- one entry (value: the entry id) ---------------------------------------------------------------------
RETRY = "entry_retry"
UNLINK = "entry_unlink"
RECREATE = "entry_recreate"
LINK_EXISTING = "entry_link_existing"
FILL_FIELD = "entry_fill_field"  # opens fill_field_modal
MARK_RESOLVED = "entry_mark_resolved"
CONTACT_SUPPORT = "entry_contact_support"  # opens support_modal
VIEW_ENTRY_LOG = "entry_view_log"  # the sync log of the entry's record
KEEP_PROVIDER_TOTALS = "entry_keep_provider_totals"  # a total mismatch: QuickBooks' figures into JobsiteOn
SEND_OWN_TAX = "entry_send_own_tax"  # a total mismatch: JobsiteOn's tax sent explicitly, the invoice pushed again
OPEN_IN_PROVIDER = "entry_open_in_provider"  # a URL button to the record in QuickBooks: ack-only listener
ENTRY_DETAILS = "entry_details"  # opens details_modal: what the card leaves off its face
OPEN_RELATED = "entry_open_related"  # a URL button to the card of the record this one waits on: ack-only

# -- one connection (value: the connection id, or absent when the account has one connection) ------------
RECONNECT = "connection_reconnect"  # asks for a personal link (a URL button where a URL is given)
RECONNECT_LINK = "connection_reconnect_link"  # the personal URL button: ack-only listener
SYNC_NOW = "connection_sync_now"
RETRY_ALL = "connection_retry_all"  # asks first: answer with retry_all_confirm()
RETRY_ALL_CONFIRM = "connection_retry_all_confirm"
RETRY_ALL_CANCEL = "connection_retry_all_cancel"

# -- the sync log ----------------------------------------------------------------------------------------
VIEW_LOG = "log_view"  # value: /sync-log filter words
LOG_NEXT = "log_next"  # value: {"before": <entry id>, "q": <filter words>}
LOG_PREV = "log_prev"  # value: {"after": <entry id>, "q": <filter words>}

# -- modals ----------------------------------------------------------------------------------------------
FILL_FIELD_VIEW = "fill_field_view"  # callback_id; private_metadata: the entry id
FILL_FIELD_BLOCK = "fill_field_block"  # block_id of the input
FILL_FIELD_INPUT = "fill_field_value"  # action_id of the plain_text_input
SUPPORT_VIEW = "support_view"  # callback_id of the support modal (submit: Send to support); private_metadata: entry id
SUPPORT_NOTE_BLOCK = "support_note_block"  # block_id of the support modal's optional note
SUPPORT_NOTE_INPUT = "support_note"  # action_id of the note's plain_text_input
DETAILS_VIEW = "details_view"  # callback_id of the Details modal (no submit)
ANSWER_VIEW = "answer_view"  # callback_id of answer_modal: an answer to a click that came without a response_url

#: The button of each fix action a kind may offer (sync.diagnosis.KINDS).
FIX_ACTION_IDS: dict[FixAction, str] = {
    FixAction.RETRY: RETRY,
    FixAction.RECONNECT: RECONNECT,
    FixAction.UNLINK: UNLINK,
    FixAction.RECREATE: RECREATE,
    FixAction.LINK_EXISTING: LINK_EXISTING,
    FixAction.FILL_FIELD: FILL_FIELD,
    FixAction.MARK_RESOLVED: MARK_RESOLVED,
    FixAction.SYNC_NOW: SYNC_NOW,
    FixAction.KEEP_PROVIDER_TOTALS: KEEP_PROVIDER_TOTALS,
    FixAction.SEND_OWN_TAX: SEND_OWN_TAX,
    FixAction.OPEN_IN_PROVIDER: OPEN_IN_PROVIDER,
}

#: Every action id a handler may have to listen to.
ALL_ACTION_IDS: frozenset[str] = frozenset({
    RETRY, UNLINK, RECREATE, LINK_EXISTING, FILL_FIELD, MARK_RESOLVED, CONTACT_SUPPORT, VIEW_ENTRY_LOG, ENTRY_DETAILS,
    OPEN_RELATED,
    RECONNECT, RECONNECT_LINK, SYNC_NOW, RETRY_ALL, RETRY_ALL_CONFIRM, RETRY_ALL_CANCEL, VIEW_LOG, LOG_NEXT, LOG_PREV,
    KEEP_PROVIDER_TOTALS, SEND_OWN_TAX, OPEN_IN_PROVIDER,
})
