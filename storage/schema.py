"""Versioned migrations. Opening the store applies the pending ones; never edit an applied migration,
add a new one. Times are epoch seconds (REAL, UTC) so SQL can compare them; they are rendered in
BOT_TIMEZONE only when shown to people."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("every8d-slack-bot")


@MIGRATIONS(name="0001_initial")
def initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            requester TEXT NOT NULL,
            origin_channel TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('sms', 'mms')),
            subject TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL,
            image BLOB,
            image_type TEXT,
            image_name TEXT,
            send_at REAL,
            validity_minutes INTEGER NOT NULL,
            recipient_count INTEGER NOT NULL,
            taiwan_count INTEGER NOT NULL,
            international_count INTEGER NOT NULL,
            skipped_json TEXT NOT NULL DEFAULT '[]',
            chars INTEGER NOT NULL,
            parts INTEGER NOT NULL,
            points REAL NOT NULL,
            estimate INTEGER NOT NULL DEFAULT 0,
            credit_at_request REAL,
            state TEXT NOT NULL,
            approval_channel TEXT NOT NULL,
            approval_ts TEXT,
            decided_by TEXT,
            decided_at REAL,
            auto_approved INTEGER NOT NULL DEFAULT 0,
            batch_id TEXT,
            sent_count INTEGER,
            cost REAL,
            unsent INTEGER,
            credit_after REAL,
            error_zh TEXT,
            error_en TEXT,
            error_note TEXT,
            sandbox INTEGER NOT NULL DEFAULT 0,
            send_attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX requests_state ON requests(state);
        CREATE UNIQUE INDEX requests_batch ON requests(batch_id) WHERE batch_id IS NOT NULL;

        CREATE TABLE request_recipients (
            request_id INTEGER NOT NULL REFERENCES requests(id),
            position INTEGER NOT NULL,
            e164 TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (request_id, position)
        );

        CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES requests(id),
            kind TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'complete')),
            created_at REAL NOT NULL,
            send_at REAL,
            validity_until REAL NOT NULL,
            next_poll_at REAL NOT NULL,
            last_checked_at REAL,
            poll_failures INTEGER NOT NULL DEFAULT 0,
            summary_ts TEXT,
            summary_digest TEXT,
            completed_at REAL
        );
        CREATE INDEX batches_open ON batches(state, next_poll_at);

        CREATE TABLE deliveries (
            batch_id TEXT NOT NULL REFERENCES batches(batch_id),
            mobile TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            status_code INTEGER NOT NULL,
            status_rank INTEGER NOT NULL,
            status_at REAL,
            cost REAL NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (batch_id, mobile)
        );

        CREATE TABLE replies (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,
            batch_id TEXT,
            mobile TEXT NOT NULL,
            received_at REAL,
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            matched INTEGER NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX replies_batch ON replies(batch_id);

        CREATE TABLE unmatched_reports (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,
            batch_id TEXT NOT NULL,
            status_code INTEGER NOT NULL,
            mobile TEXT NOT NULL,
            raw_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            resolved_at REAL
        );

        CREATE TABLE credit_history (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            credit REAL NOT NULL,
            source TEXT NOT NULL
        );
        CREATE INDEX credit_history_at ON credit_history(at);

        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            request_id INTEGER,
            detail_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX audit_request ON audit(request_id);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            dedupe_key TEXT UNIQUE,
            kind TEXT NOT NULL,
            ref_json TEXT NOT NULL,
            channel TEXT,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            done_at REAL
        );
        CREATE INDEX outbox_pending ON outbox(state, next_attempt_at);

        CREATE TABLE drafts (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            payload_json TEXT NOT NULL,
            image BLOB
        );
        """
    )


@MIGRATIONS(name="0002_reply_window")
def reply_window(db: Database) -> None:
    """A completed batch is still read for replies for a while (recipients answer after delivery),
    without making polling grow with history: only batches inside their reply window are read."""
    db.execute("ALTER TABLE batches ADD COLUMN reply_poll_until REAL")
    db.execute("CREATE INDEX batches_reply_window ON batches(reply_poll_until) WHERE reply_poll_until IS NOT NULL")


@MIGRATIONS(name="0003_audiences_and_conversations")
def audiences_and_conversations(db: Database) -> None:
    """Address book, templates, the opt-out list, one-to-one answers and personalised messages.

    - contacts / contact_groups / contact_group_members: names and groups usable as recipients.
    - templates: message bodies with `{name}`-style variables.
    - optouts: numbers that asked to stop (a reply such as 退訂 or STOP, or an admin); every send skips them.
    - requests.thread_channel / thread_ts: where a request's posts go when it is not its own thread root
      (an answer typed in a batch's thread lives in that thread).
    - requests.reply_to: the reply an answer responds to; requests.quiet_override: sent inside quiet
      hours on purpose; requests.optout_skipped: recipients left out because they opted out.
    - request_recipients.message (beside its existing name): for personalised sends, that
      recipient's own text (NULL: the request's message).
    """
    db.executescript(
        """
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            e164 TEXT NOT NULL UNIQUE,
            tags TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );
        CREATE INDEX contacts_name ON contacts(name COLLATE NOCASE);

        CREATE TABLE contact_groups (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            created_by TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );

        CREATE TABLE contact_group_members (
            group_name TEXT NOT NULL REFERENCES contact_groups(name) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
            PRIMARY KEY (group_name, contact_id)
        );

        CREATE TABLE templates (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            body TEXT NOT NULL,
            created_by TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );

        CREATE TABLE optouts (
            e164 TEXT PRIMARY KEY,
            at REAL NOT NULL,
            source TEXT NOT NULL,
            keyword TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL DEFAULT '',
            batch_id TEXT
        );

        ALTER TABLE requests ADD COLUMN thread_channel TEXT;
        ALTER TABLE requests ADD COLUMN thread_ts TEXT;
        ALTER TABLE requests ADD COLUMN reply_to INTEGER;
        ALTER TABLE requests ADD COLUMN quiet_override INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE requests ADD COLUMN optout_skipped INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE request_recipients ADD COLUMN message TEXT;
        """
    )


@MIGRATIONS(name="0004_answer_source")
def answer_source(db: Database) -> None:
    """One-to-one answers typed in a batch's thread.

    - requests.source_event: the Slack message (or modal) an answer came from; unique, so Slack
      redelivering the same event never creates a second answer.
    - requests_thread: finds the requests whose posts live in a thread (the card's own thread, or the
      thread an answer was typed in) without scanning every request for each message typed.
    """
    db.executescript(
        """
        ALTER TABLE requests ADD COLUMN source_event TEXT;
        CREATE UNIQUE INDEX requests_source_event ON requests(source_event) WHERE source_event IS NOT NULL;
        CREATE INDEX requests_thread
            ON requests(COALESCE(thread_ts, approval_ts), COALESCE(thread_channel, approval_channel));
        """
    )


@MIGRATIONS(name="0005_pending_index")
def pending_index(db: Database) -> None:
    """Whether a batch still has pending recipients is asked on every final callback: answer it from an
    index instead of reading the batch's rows (a 10,000-recipient batch took milliseconds per report)."""
    db.execute("CREATE INDEX deliveries_pending ON deliveries(batch_id, status_rank)")


@MIGRATIONS(name="0006_request_parts")
def request_parts(db: Database) -> None:
    """A request is sent as one or more parts, each one EVERY8D call and, once accepted, one batch.

    Large audiences are cut into parts of BOT_SEND_CHUNK_SIZE recipients (memory and the time of one
    call stay bounded whatever the audience), and personalised messages need a call per distinct text.
    Each part is claimed, sent, recorded and reconciled on its own, so a crash or a lost answer in part
    7 of 10 never re-sends parts 1 to 6. A part covers the request's recipients at positions
    first_position..last_position (inclusive); `message` NULL means the request's message.

    Requests from before this migration become one part each, in the state their send reached.
    """
    db.executescript(
        """
        CREATE TABLE request_parts (
            request_id INTEGER NOT NULL REFERENCES requests(id),
            part INTEGER NOT NULL,
            first_position INTEGER NOT NULL,
            last_position INTEGER NOT NULL,
            recipient_count INTEGER NOT NULL,
            message TEXT,
            points REAL NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'skipped')),
            batch_id TEXT,
            sent_count INTEGER,
            cost REAL,
            unsent INTEGER,
            optout_dropped INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_at REAL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (request_id, part)
        );
        CREATE INDEX batches_request ON batches(request_id);

        INSERT INTO request_parts (request_id, part, first_position, last_position, recipient_count, points,
                                   state, batch_id, sent_count, cost, unsent, attempts, claimed_at, updated_at)
        SELECT id, 0, 0, MAX(recipient_count - 1, 0), recipient_count, points,
               CASE state WHEN 'sent' THEN 'sent' WHEN 'cancelled' THEN 'sent' WHEN 'failed' THEN 'failed'
                          WHEN 'unknown' THEN 'unknown' WHEN 'sending' THEN 'sending' ELSE 'pending' END,
               batch_id, sent_count, cost, unsent, send_attempts,
               CASE WHEN state IN ('sending', 'unknown') THEN updated_at END, updated_at
        FROM requests;
        """
    )


@MIGRATIONS(name="0010_decision_reason")
def decision_reason(db: Database) -> None:
    """Why an approver rejected a request (optional, typed in the Reject window; shown on the card and told
    to the requester)."""
    db.execute("ALTER TABLE requests ADD COLUMN decision_reason TEXT")


@MIGRATIONS(name="0011_param_parts")
def param_parts(db: Database) -> None:
    """A part may be sent with SendParamSMS (2021 API): one call carrying each recipient's own text, so a
    personalised audience needs one call per BOT_SEND_CHUNK_SIZE recipients instead of one per text.

    - request_parts.mode: "text" (one text, `message` or the request's) or "param" (each recipient's
      text from request_recipients.message; `message` holds the first one, for display).
    """
    db.execute("ALTER TABLE request_parts ADD COLUMN mode TEXT NOT NULL DEFAULT 'text' CHECK (mode IN ('text', 'param'))")


@MIGRATIONS(name="0012_workflow_steps")
def workflow_steps(db: Database) -> None:
    """A Workflow Builder step's execution and the request it created: the step is completed (or failed)
    when the request reaches its outcome, which may be long after the step started (an approval)."""
    db.execute(
        """
        CREATE TABLE workflow_steps (
            execution_id TEXT PRIMARY KEY,
            request_id INTEGER NOT NULL UNIQUE,
            created_at REAL NOT NULL
        )
        """
    )


@MIGRATIONS(name="0015_autoreplies")
def autoreplies(db: Database) -> None:
    """Auto-reply rules (a keyword, or the out-of-hours rule, and the text or template it answers with) and,
    per rule and number, when it last answered (the cool-down)."""
    db.execute(
        """
        CREATE TABLE autoreply_rules (
            key TEXT PRIMARY KEY,
            keyword TEXT NOT NULL,
            body TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE autoreply_sent (
            rule_key TEXT NOT NULL,
            e164 TEXT NOT NULL,
            last_at REAL NOT NULL,
            PRIMARY KEY (rule_key, e164)
        )
        """
    )


@MIGRATIONS(name="0008_watchdog")
def watchdog(db: Database) -> None:
    """What the watchdog and the Slack poster need to keep every post moving and said once.

    `outbox.thread_key`: posts are ordered per thread (a request's card, send result and summary), not per
    channel, so one failing post no longer holds back every later post of its channel. Rows queued
    before this migration keep their channel as key (the order they were promised).
    `outbox.posting_at`: set just before the Slack call; a row still pending with it set may already be in
    Slack (the process died between the call and marking it done), so the poster looks for its own post
    (the row id is in the message's metadata) before posting again.
    """
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN thread_key TEXT;
        ALTER TABLE outbox ADD COLUMN posting_at REAL;
        UPDATE outbox SET thread_key = channel WHERE state = 'pending';
        CREATE INDEX outbox_thread ON outbox(state, thread_key);
        """
    )


@MIGRATIONS(name="0007_push_fields")
def push_fields(db: Database) -> None:
    """EVERY8D's push as it really is, and reports kept aside with limits.

    - `replies.record_no`: the push's MR, which EVERY8D (since 2021) generates for every message. The same
      BatchID + MR twice is one reply, whatever else differs between EVERY8D's retries ('' = no MR: polls).
    - `unmatched_reports.reason`: why a report was kept aside: its batch is unknown (`batch`), or the batch
      never had its number (`number`: never added to the batch, never posted, never an opt-out).
    - An index on `unmatched_reports.created_at`: kept reports expire, and the cap deletes the oldest.
    """
    db.executescript(
        """
        ALTER TABLE replies ADD COLUMN record_no TEXT NOT NULL DEFAULT '';
        CREATE UNIQUE INDEX replies_record ON replies(batch_id, record_no) WHERE record_no != '';
        ALTER TABLE unmatched_reports ADD COLUMN reason TEXT NOT NULL DEFAULT 'batch';
        CREATE INDEX unmatched_reports_created ON unmatched_reports(created_at);
        """
    )


@MIGRATIONS(name="0014_budgets")
def budgets(db: Database) -> None:
    """Monthly point budgets (`/sms budget`): one per channel (the channel a request came from) or per
    requester (a Slack user). A month's use is read from the requests themselves (storage/budgets.py), so
    nothing is counted twice or forgotten; the indexes make that read cheap for one channel or one person."""
    db.executescript(
        """
        CREATE TABLE budgets (
            scope TEXT NOT NULL CHECK (scope IN ('channel', 'requester')),
            key TEXT NOT NULL,
            points REAL NOT NULL CHECK (points > 0),
            created_by TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX requests_channel_created ON requests(origin_channel, created_at);
        CREATE INDEX requests_requester_created ON requests(requester, created_at);
        """
    )


@MIGRATIONS(name="0016_kept_report_fields")
def kept_report_fields(db: Database) -> None:
    """Reports kept aside get typed columns (time, text, MR, subject): services read those, never EVERY8D's
    parameter names from the stored JSON (which stays, renamed `audit_json` in reads, for people). Rows
    kept before are filled from their JSON; their report time stays unknown (they expire within a week)."""
    db.executescript(
        """
        ALTER TABLE unmatched_reports ADD COLUMN reported_at REAL;
        ALTER TABLE unmatched_reports ADD COLUMN text TEXT NOT NULL DEFAULT '';
        ALTER TABLE unmatched_reports ADD COLUMN record_no TEXT NOT NULL DEFAULT '';
        ALTER TABLE unmatched_reports ADD COLUMN subject TEXT NOT NULL DEFAULT '';
        UPDATE unmatched_reports SET
            text = COALESCE(json_extract(raw_json, '$.SM'), ''),
            record_no = COALESCE(json_extract(raw_json, '$.MR'), ''),
            subject = COALESCE(NULLIF(json_extract(raw_json, '$.SUBJECT'), ''), json_extract(raw_json, '$.SB'), '')
        WHERE json_valid(raw_json);
        """
    )


@MIGRATIONS(name="0013_series")
def series(db: Database) -> None:
    """Recurring sends: one approved series, each occurrence its own request (`series_runs` says what
    became of each occurrence, and its key makes handling one occurrence twice impossible).

    - series.state: pending (waiting for its one approval) -> active <-> paused -> stopped | finished;
      or rejected. next_run_at is the next occurrence to handle (NULL when none is left).
    - the rule: rule_kind (daily, weekdays, monthly), time_of_day HH:MM and dates in `timezone`.
    """
    db.executescript(
        """
        CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            origin_channel TEXT NOT NULL,
            payload_json TEXT NOT NULL,
            image BLOB,
            rule_kind TEXT NOT NULL CHECK (rule_kind IN ('daily', 'weekdays', 'monthly')),
            weekdays TEXT NOT NULL DEFAULT '',
            month_day INTEGER,
            time_of_day TEXT NOT NULL,
            start_date TEXT NOT NULL,
            until_date TEXT,
            max_runs INTEGER,
            timezone TEXT NOT NULL,
            points_per_run REAL NOT NULL,
            recipient_count INTEGER NOT NULL,
            runs_done INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'paused', 'stopped', 'finished', 'rejected')),
            next_run_at REAL,
            approval_channel TEXT NOT NULL,
            approval_ts TEXT,
            approved_by TEXT,
            approved_at REAL,
            ended_by TEXT
        );
        CREATE INDEX series_due ON series(state, next_run_at);

        CREATE TABLE series_runs (
            series_id INTEGER NOT NULL REFERENCES series(id),
            occurrence REAL NOT NULL,
            number INTEGER NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('requested', 'refused', 'missed')),
            request_id INTEGER,
            note TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (series_id, occurrence)
        );
        """
    )
