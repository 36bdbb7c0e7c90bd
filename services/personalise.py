"""Personalised messages: one text per recipient, filled from a CSV audience and the address book.

A template such as `{name} 您好，您的訂單 {order} 已於 {date} 出貨` becomes a different text for each
recipient. The values come from, in order of precedence: the recipient's row in an uploaded CSV audience
(any column is a variable: `name`, `order`, `門市` ...), the recipient's contact name in the address book
(`{name}`), and the built-ins `{date}` and `{time}` (today, in the bot's time zone). A recipient for whom
a variable has no value is never sent a half-filled text: the compose check names the variable and the
recipients that lack it. Pure Python; no Slack, no EVERY8D.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from every8d.phones import Recipient, parse_phone, parse_recipients
from every8d.problems import Problem
from services.audiences import MAX_IMPORT_ROWS, VARIABLE_PATTERN, CsvImportError, decode_csv

#: `{variable}`: up to 30 characters, no spaces or braces (letters of any script: `{訂單}` is one).
VARIABLE = VARIABLE_PATTERN
#: Header spellings read as the phone column, and as `name`.
PHONE_HEADERS = ("phone", "mobile", "number", "電話", "手機", "號碼", "手機號碼")
NAME_HEADERS = ("name", "姓名", "名稱", "名字")
#: How many recipients a "missing value" problem names.
NAMED_IN_PROBLEM = 3


@dataclass(frozen=True)
class AudienceRow:
    """One CSV row: the phone as written and its variables ({column: value}, `name` included)."""

    phone: str
    values: dict[str, str]


@dataclass(frozen=True)
class SkippedRow:
    """A CSV row left out of the send: its row number as a spreadsheet shows it (the header is row 1), the
    phone as written, and why (the phone rules' words)."""

    row: int
    phone: str
    zh: str
    en: str


@dataclass(frozen=True)
class Audience:
    """An uploaded recipient list with per-row variables, and the rows skipped because their number cannot
    receive SMS (the send goes on with the others; the preview lists the skipped rows by number)."""

    rows: tuple[AudienceRow, ...]
    file_name: str = ""
    columns: tuple[str, ...] = ()
    skipped: tuple[SkippedRow, ...] = ()

    def to_json(self) -> dict:
        return {"file_name": self.file_name, "columns": list(self.columns),
                "rows": [[row.phone, row.values] for row in self.rows],
                "skipped": [[s.row, s.phone, s.zh, s.en] for s in self.skipped]}

    @classmethod
    def from_json(cls, data: Mapping) -> Audience:
        return cls(tuple(AudienceRow(str(phone), dict(values)) for phone, values in data.get("rows", [])),
                   str(data.get("file_name", "")), tuple(data.get("columns", ())),
                   tuple(SkippedRow(int(r), str(ph), str(zh), str(en)) for r, ph, zh, en in data.get("skipped", [])))

    def phones_text(self) -> str:
        """The phone column, one per line, for the phone rules."""
        return "\n".join(row.phone for row in self.rows)

    def values_by_number(self) -> dict[str, dict[str, str]]:
        """{e164: the row's values} for every row whose phone reads as a number (the first row wins)."""
        found: dict[str, dict[str, str]] = {}
        for row in self.rows:
            parsed = parse_phone(row.phone)
            if isinstance(parsed, Recipient) and parsed.e164 not in found:
                found[parsed.e164] = row.values
        return found


def column_name(header: str) -> str:
    """A header as a variable name: NFKC, trimmed, lower case, inner spaces as `_`; 姓名 and friends
    become `name`."""
    name = re.sub(r"\s+", "_", unicodedata.normalize("NFKC", header).strip().lower())
    return "name" if name in NAME_HEADERS else name


def read_audience_csv(content: bytes, file_name: str = "", *, international: bool = True) -> Audience:
    """Read a CSV whose header names a phone column (電話, 手機, phone ...) and any variables. Raises
    CsvImportError (with zh/en words) when the file as a whole cannot be used. A row whose number cannot
    receive SMS (or, with `international` False as for MMS, is not a Taiwan number) is skipped and kept in
    `skipped` with its row number and the reason, so one bad row in a long list never stops the send."""
    records = list(enumerate(csv.reader(io.StringIO(decode_csv(content))), start=1))
    numbered = [(n, r) for n, r in records if any(cell.strip() for cell in r)]
    rows = [r for _, r in numbered]
    if not rows:
        raise CsvImportError("CSV 檔案是空的。", "The CSV file is empty.")
    header = [column_name(h) for h in rows[0]]
    phone_at = next((i for i, h in enumerate(header) if h in PHONE_HEADERS), None)
    if phone_at is None:
        raise CsvImportError("CSV 第一列需是標題列，並有「電話」或「手機」（phone）欄位。",
                             "The CSV's first row must be a header with a phone column (電話, 手機 or phone).")
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        raise CsvImportError(f"CSV 最多 {MAX_IMPORT_ROWS:,} 列，這個檔案有 {len(rows) - 1:,} 列。",
                             f"At most {MAX_IMPORT_ROWS:,} rows; this CSV has {len(rows) - 1:,}.")
    columns = tuple(h for i, h in enumerate(header) if i != phone_at and h)
    audience: list[AudienceRow] = []
    skipped: list[SkippedRow] = []
    for number, row in numbered[1:]:
        cells = [cell.strip() for cell in row] + [""] * (len(header) - len(row))
        values = {h: cells[i] for i, h in enumerate(header) if i != phone_at and h and cells[i]}
        refusal = _row_refusal(cells[phone_at], international)
        if refusal is not None:
            skipped.append(SkippedRow(number, cells[phone_at], *refusal))
        else:
            audience.append(AudienceRow(cells[phone_at], values))
    return Audience(tuple(audience), file_name, columns, tuple(skipped))


def _row_refusal(phone: str, international: bool) -> tuple[str, str] | None:
    """(zh, en) when this row's number cannot be sent to (the phone rules' own words); None when it can."""
    if not phone:
        return "沒有電話號碼。", "No phone number."
    checked = parse_recipients(phone, allow_international=international)
    if checked.rejected:
        return checked.rejected[0].zh, checked.rejected[0].en
    if len(checked.recipients) != 1:
        return "一列只能有一個電話號碼。", "One phone number per row."
    return None


def variables_in(message: str) -> list[str]:
    """The `{variables}` of a message, in order of first appearance."""
    return list(dict.fromkeys(VARIABLE.findall(message)))


@dataclass(frozen=True)
class Personalised:
    """The outcome: `messages` {e164: text} when texts differ (empty: `message` goes to everyone)."""

    message: str
    messages: dict[str, str]
    problems: list[Problem]


def personalise(
    message: str,
    recipients: Sequence[str],
    *,
    names: Mapping[str, str],
    audience: Mapping[str, Mapping[str, str]] | None,
    now: float,
    tz: ZoneInfo,
    show: Callable[[str], str] = str,
) -> Personalised:
    """Fill the message's variables for each recipient (E.164). `names`: address-book names; `audience`:
    {e164: CSV values}; `show` renders a number in a problem (masked in the bot)."""
    wanted = variables_in(message)
    if not wanted or not recipients:
        return Personalised(message, {}, [])
    moment = datetime.fromtimestamp(now, tz=tz)
    builtins = {"date": f"{moment:%Y-%m-%d}", "time": f"{moment:%H:%M}"}
    audience = audience or {}
    texts: dict[str, str] = {}
    missing: dict[str, list[str]] = {}
    for number in recipients:
        values = dict(builtins)
        if number in names and names[number]:
            values["name"] = names[number]
        values.update(audience.get(number, {}))
        for variable in wanted:
            if variable not in values:
                missing.setdefault(variable, []).append(number)
        texts[number] = VARIABLE.sub(lambda m, v=values: v.get(m.group(1), m.group(0)), message)
    problems = [_missing_problem(variable, numbers, len(recipients), show) for variable, numbers in missing.items()]
    if len(set(texts.values())) == 1:
        return Personalised(next(iter(texts.values())), {}, problems)
    return Personalised(message, texts, problems)


def _missing_problem(variable: str, numbers: list[str], total: int, show) -> Problem:
    named = "、".join(show(n) for n in numbers[:NAMED_IN_PROBLEM])
    named_en = ", ".join(show(n) for n in numbers[:NAMED_IN_PROBLEM])
    more_zh = f" 等 {len(numbers)} 位" if len(numbers) > NAMED_IN_PROBLEM else ""
    more_en = f" and {len(numbers) - NAMED_IN_PROBLEM} more" if len(numbers) > NAMED_IN_PROBLEM else ""
    where_zh = "通訊錄或 CSV 名單" if variable == "name" else " CSV 名單的同名欄位"  # a space before Latin
    where_en = "the address book or the CSV audience" if variable == "name" else "a column of the CSV audience"
    if len(numbers) == total:
        return Problem("message", f"{{{variable}}} 沒有可填入的值：請在{where_zh}中提供，或從內容移除。",
                       f"Nothing fills {{{variable}}}: provide it in {where_en}, or remove it from the message.")
    return Problem("message", f"{named}{more_zh} 沒有 {{{variable}}} 的值（{where_zh.strip()}），不會送出不完整的內容。",
                   f"No value for {{{variable}}} for {named_en}{more_en} ({where_en}); a half-filled text is never sent.")
