"""What the Slack listeners do, once they have parsed the request, checked permission and acked.

Each function takes the runtime, the tenant (workspace bound to an account), the acting user and the parsed
ids; it calls `sync/` and renders with `bot.blocks`. Work that may take longer than Slack's 3 seconds (Sync Now,
Retry All, a click's fix) is stored as a job (`bot.jobs`: it outlives the process that accepted it) that a worker
runs (`worker.run_job`), and reports back through a `bot.replies.Reply` rebuilt from the job (the response_url, or
a modal and a DM for clicks on the App Home) or the notifier.

One module per part, each imported by name (``from bot.operations import entries``):

- `parsing`: the words of a `/sync-log` command, split and checked, and the help;
- `pages`: what a person reads: a page of the sync log, `/sync-log status`, the App Home;
- `entries`: an error card's fixes on one entry (Retry, Unlink, ...), its Details, Fill in, `/sync-log retry`;
- `cards`: a refused click shown on the card where it was clicked, and who can help;
- `runs`: Retry All, Sync Now, and the resume after a Reconnect;
- `stored`: work stored as a job before the ack (`enqueue`, `store_click`) and a job's payload read strictly;
- `worker`: a claimed job run by a worker, and the person told when it cannot finish;
- `account`: the account's settings from Slack: the Reconnect link, the channel, the admin list, who may read;
- `scheduled`: when the weekly summary goes out, its preview, and the demo's scheduled messages;
- `support`: Contact support.
"""
