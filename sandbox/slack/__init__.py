"""A local stand-in for the Slack Web API, and a driver that plays Slack towards a Slack app.

Python::

    from sandbox.slack import create_app, serve_standin, SlackStandIn, SlackStandInConfig, SlackDriver

    server = serve_standin()                       # uvicorn on loopback; server.standin is the SlackStandIn
    client = WebClient(base_url=server.api_url, token=DEFAULT_BOT_TOKEN)
    client.chat_postMessage(channel="C0000000001", text="hi")
    server.standin.messages("C0000000001")[-1].text == "hi"

HTTP (``create_app(config)`` is a Starlette app; ``app.state.standin`` is its :class:`SlackStandIn`):

- ``GET|POST /api/<method>``: auth.test, chat.postMessage, chat.update, chat.delete, chat.postEphemeral,
  chat.getPermalink, views.publish, views.open, views.update, views.push, users.info, conversations.open,
  conversations.info, conversations.join, conversations.history and conversations.replies (message ``metadata``
  with ``include_all_metadata``); a team's bot scopes (``set_scopes``: a method needing another answers
  ``missing_scope``).
- ``POST /response_url/<id>``: response_urls minted by the stand-in.
- Socket Mode: ``/api/apps.connections.open`` (app-level token ``config.DEFAULT_APP_TOKEN``) and the WebSocket
  ``/link/?ticket=...``; ``server.socket_mode`` (a :class:`SocketModeHub`) sends envelopes and disconnects, and
  :class:`SocketDriver` sends SlackDriver's payloads over it (sandbox/slack/socket_mode.py).
- ``GET /``: the demo page (watch the channel, click, type ``/sync-log``); ``GET /web/<file>``: its script and style.
- ``/_control/`` (JSON):
  ``GET state | version | page?user=&channel= | calls?method= | messages/<channel> | ephemerals/<user> |
  home/<user> | views?user= | faults | methods``;
  ``POST reset {config?} | teams {team_id,name,domain,bot_token,...} | teams/<id>/token {state} |
  users {team_id,id,name,real_name,is_admin,is_owner,is_primary_owner,tz,tz_offset,...} |
  channels {team_id,id,name,is_private,is_archived,bot_member,members} | channels/<id>/bot_membership {member} |
  channels/<id>/archive {archived} | messages {channel,user,text,blocks?,thread_ts?} (a human posts) |
  faults {method,count,status?,error?,retry_after?,delay?,body?,match?,extra?,after?} |
  update_errors {channel,ts,error} | rate_limits {enabled?,method?,per_minute?,burst?,scope?,refill?} |
  response_urls {team_id,channel_id,user_id,source?,message_ts?,is_ephemeral?} | trigger_ids {team_id,user_id} |
  clock {advance} | view_ack {team_id,user_id,view_id,answer} | view_state {view_id,values} |
  close_view {team_id,user_id,view_id?} | dm {team_id,user_id} | app {app_url,signing_secret} |
  drive/command {command,text,user_id,channel_id} | drive/click {action_id,channel_id,message_ts,user_id,value?} |
  drive/click_in_view {action_id,user_id,surface,view_id?} | drive/submit_view {user_id,values,view_id?} |
  drive/app_home_opened {user_id} | drive/event {event}`` (the stand-in plays Slack towards the app);
  ``DELETE faults | calls``.
"""

from sandbox.slack.app import StandInServer, create_app, serve_standin
from sandbox.slack.config import RateLimit, SlackStandInConfig
from sandbox.slack.driver import DriverResult, SlackDriver, sign
from sandbox.slack.socket_mode import SocketAck, SocketDriver, SocketModeHub
from sandbox.slack.standin import ApiResponse, SlackStandIn

__all__ = [
    "ApiResponse",
    "DriverResult",
    "RateLimit",
    "SlackDriver",
    "SlackStandIn",
    "SlackStandInConfig",
    "SocketAck",
    "SocketDriver",
    "SocketModeHub",
    "StandInServer",
    "create_app",
    "serve_standin",
    "sign",
]
