"""Files a customer sent, fetched from the Graph API as Meta documents it: ``GET /{media-id}`` (with the
access token) names a short-lived URL, which is downloaded with the same token. Meta keeps a file for a
limited time, so the back office keeps its own copy (comanda.services.handoff_messages.keep_media)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from comanda.errors import ComandaError
from comanda.settings import setting, setting_int

TIMEOUT_SECONDS = 20
CHUNK = 64 * 1024


class MediaUnavailable(ComandaError):
    """The Graph API did not give the file (expired, unknown, or too large)."""

    code = "media_unavailable"


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    mime_type: str


def download(media_id: str) -> Downloaded:
    """The file behind a media id, at most COMANDA_MEDIA_MAX_BYTES."""
    headers = {"Authorization": f"Bearer {setting('WHATSAPP_ACCESS_TOKEN')}"}
    limit = setting_int("COMANDA_MEDIA_MAX_BYTES")
    base = setting("WHATSAPP_GRAPH_URL").rstrip("/")
    try:
        info = requests.get(f"{base}/{media_id}", headers=headers, timeout=TIMEOUT_SECONDS)
        if not info.ok:
            raise MediaUnavailable(f"the Graph API answered {info.status_code} for media {media_id}")
        described = info.json()
        url = described.get("url") if isinstance(described, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise MediaUnavailable(f"the Graph API named no download URL for media {media_id}")
        if int(described.get("file_size") or 0) > limit:
            raise MediaUnavailable(f"media {media_id} is larger than {limit} bytes")
        with requests.get(url, headers=headers, timeout=TIMEOUT_SECONDS, stream=True) as answer:
            if not answer.ok:
                raise MediaUnavailable(f"the media URL answered {answer.status_code} for media {media_id}")
            data = bytearray()
            for chunk in answer.iter_content(CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise MediaUnavailable(f"media {media_id} is larger than {limit} bytes")
            mime = described.get("mime_type") or answer.headers.get("Content-Type") or "application/octet-stream"
    except (requests.RequestException, ValueError) as exc:
        raise MediaUnavailable(f"media {media_id} could not be downloaded ({type(exc).__name__})") from None
    return Downloaded(bytes(data), str(mime).split(";")[0].strip()[:100])
