"""Google's `File` resource as the Files API answers it, for a stored file, and the refusals
of the file store in Google's words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cometgate.errors import (
    AlreadyExists,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestRejected,
)
from cometgate.storage.file_store import (
    GENERATED,
    FileExists,
    FileMissing,
    FileStoreError,
    FileTooLarge,
    KeyStorageFull,
    OffsetMismatch,
    StoredFile,
    UploadFinished,
    UploadIncomplete,
    UploadMissing,
)


def file_resource(file: StoredFile, base_url: str) -> dict[str, Any]:
    """`base_url` is the gateway's root as the caller reached it: `uri` points back here.
    proto3 JSON: int64 sizes as strings, RFC 3339 times with a Z."""
    resource: dict[str, Any] = {
        "name": file.name,
        "displayName": file.display_name,
        "mimeType": file.mime_type,
        "sizeBytes": str(file.size_bytes),
        "createTime": timestamp(file.created_at),
        "updateTime": timestamp(file.updated_at),
        "expirationTime": timestamp(file.expires_at),
        "sha256Hash": file.sha256 or "",
        "uri": f"{base_url.rstrip('/')}/v1beta/{file.name}",
        "state": file.state,
        "source": file.source,
    }
    if file.source == GENERATED:  # what the SDKs' files.download looks for
        resource["downloadUri"] = (f"{base_url.rstrip('/')}/download/v1beta/{file.name}"
                                   ":download?alt=media")
    if not resource["displayName"]:
        del resource["displayName"]  # proto3 JSON leaves empty strings out
    if not resource["sha256Hash"]:
        del resource["sha256Hash"]
    return resource


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_not_found(file_id: str) -> PermissionDenied:
    """Google's answer for a file that is missing, expired or another project's: one answer,
    403, whichever it is."""
    return PermissionDenied(
        f"You do not have permission to access the File {file_id} or it may not exist.")


def refusal(error: FileStoreError) -> RequestRejected:
    """A file store refusal as the caller hears it."""
    if isinstance(error, FileMissing):
        return file_not_found(error.file_id)
    if isinstance(error, UploadMissing):
        return NotFound("The upload was not found: it has expired or never existed. Start a "
                        "new upload.")
    if isinstance(error, OffsetMismatch):
        return InvalidRequest(
            f"Invalid upload offset {error.offset}: the upload has received "
            f"{error.received} bytes. Send a query command and resume from there.")
    if isinstance(error, UploadFinished):
        return InvalidRequest("The upload is already finalized; it takes no more data.")
    if isinstance(error, KeyStorageFull):
        return RateLimited(str(error))
    if isinstance(error, FileExists):
        return AlreadyExists(str(error))
    if isinstance(error, FileTooLarge | UploadIncomplete):
        return InvalidRequest(str(error))
    return InvalidRequest(str(error))
