"""What the file store hands out, and the ways a file operation can be refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

UPLOADING, PROCESSING, ACTIVE = "UPLOADING", "PROCESSING", "ACTIVE"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as the store knows it. `size_bytes` is the declared size while UPLOADING."""

    id: str
    key_id: int
    display_name: str
    mime_type: str
    size_bytes: int
    received_bytes: int
    sha256: str | None  # base64 of the digest, once the upload is finalized
    state: str
    upload_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    @property
    def name(self) -> str:
        return f"files/{self.id}"


@dataclass(frozen=True, slots=True)
class FilePage:
    files: tuple[StoredFile, ...]
    next_after: tuple[datetime, str] | None  # where the next page starts; None: the last


class FileStoreError(Exception):
    """A refused file operation; the message is the caller's to read."""


class FileMissing(FileStoreError):
    """No such file for this key: missing, expired, deleted, still uploading or another
    key's — one answer, so a caller learns nothing about ids it does not own."""

    def __init__(self, file_id: str) -> None:
        super().__init__(file_id)
        self.file_id = file_id


class UploadMissing(FileStoreError):
    """No upload in progress or finished under this upload id (or it has expired)."""


class FileTooLarge(FileStoreError):
    """Over the per-file limit, or over what the upload declared."""


class KeyStorageFull(FileStoreError):
    """The key's files would exceed its storage."""


class FileExists(FileStoreError):
    """A caller-chosen file name already names a file."""


@dataclass
class OffsetMismatch(FileStoreError):
    """A chunk that does not start where the upload stands: it must resume at `received`."""

    received: int
    offset: int


class UploadFinished(FileStoreError):
    """More bytes for an upload already finalized."""

    def __init__(self, file: StoredFile) -> None:
        super().__init__(file.id)
        self.file = file


class UploadIncomplete(FileStoreError):
    """Finalize before every declared byte has arrived."""
