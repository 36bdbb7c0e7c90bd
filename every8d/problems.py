"""A problem with one field of a request, found before any call: shown inline in a modal or listed in
an ephemeral message. Returned in lists (not raised) so every problem is shown at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """`field` names the input it belongs to: recipients, message, subject, image, send_at, validity."""

    field: str
    zh: str
    en: str

    def describe(self, language: str = "both") -> str:
        if language == "zh-TW":
            return self.zh
        if language == "en":
            return self.en
        return f"{self.zh} / {self.en}"
