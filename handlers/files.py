"""Fetch a file someone uploaded in a modal (an MMS image, a contacts CSV) from Slack.

The bot downloads `url_private_download` with its token in an Authorization header. Without a valid
token Slack answers HTTP 200 with an HTML sign-in page, so callers check the bytes are what they expect (an image, a CSV)
before anything else trusts them."""

from __future__ import annotations

from dataclasses import dataclass

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

#: Refuse to download more than this (a hostile or mistaken upload); MMS allow far less anyway.
MAX_DOWNLOAD_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class FetchedFile:
    content: bytes
    name: str


class FileFetchError(Exception):
    def __init__(self, zh: str, en: str) -> None:
        self.zh = zh
        self.en = en
        super().__init__(en)


def fetch_slack_file(client: WebClient, file_id: str, *, token: str, timeout: float = 5.0) -> FetchedFile:
    try:
        info = client.files_info(file=file_id)["file"]
    except SlackApiError as exc:
        error = exc.response.get("error", "") if exc.response is not None else ""
        if error == "missing_scope":
            raise FileFetchError("機器人沒有讀取檔案的權限（files:read），請管理員更新 App 設定。",
                                 "The bot lacks the files:read scope; ask an admin to update the app.") from exc
        raise FileFetchError("無法取得上傳的檔案，請重新上傳。", "Could not get the uploaded file; upload it again.") from exc
    url = info.get("url_private_download") or info.get("url_private")
    if not url:
        raise FileFetchError("上傳的檔案沒有下載網址，請重新上傳。", "The upload has no download URL; upload it again.")
    if int(info.get("size") or 0) > MAX_DOWNLOAD_BYTES:
        raise FileFetchError("檔案太大。", "The file is too large.")
    try:
        with requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, stream=True) as resp:
            resp.raise_for_status()
            content = resp.raw.read(MAX_DOWNLOAD_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise FileFetchError("下載檔案時連線失敗，請再試一次。", "Downloading the file failed; try again.") from exc
    if len(content) > MAX_DOWNLOAD_BYTES:
        raise FileFetchError("檔案太大。", "The file is too large.")
    return FetchedFile(content, str(info.get("name") or file_id))
