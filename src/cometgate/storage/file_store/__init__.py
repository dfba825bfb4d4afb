"""Stored files of the Gemini Files API, usable by any feature that needs a key's files.

    store = FileStore(database, choose_blobs(settings.files.store, database.engine, data_dir),
                      ttl=…, max_file_bytes=…, max_key_bytes=…)

    file = await store.create(key_id, "results.jsonl", "application/jsonl", data,
                              source=GENERATED)   # ACTIVE; GENERATED: downloadable
    file = await store.get(key_id, "abc123")          # FileMissing unless this key's and live
    data = await store.read_bytes(key_id, file.id)    # the whole file
    async for piece in store.open(key_id, file.id):   # or piece by piece
        ...
    page = await store.page(key_id, size=10, after=None)   # newest first; page.next_token
    await store.delete(key_id, file.id)

The resumable protocol's steps are `begin_upload` (→ a file in state UPLOADING with an
`upload_id`), `append(upload_id, offset, data)` (OffsetMismatch says where to resume),
`upload(upload_id)` (where it stands) and `finalize(upload_id)` (digest, then ACTIVE).

Invariants: every read names the key; another key's file, an expired file and a missing file
are one answer (FileMissing). A file is gone from its `expires_at` on; `purge_expired` frees
its bytes. Sizes are bounded per file and per key (declared sizes of uploads in progress
count). Bytes live in the data directory, or in the database (`gemini_file_chunks`) so that
several replicas on one PostgreSQL share them.
"""

from cometgate.storage.file_store.blobs import (
    BlobStore,
    DatabaseBlobs,
    DirectoryBlobs,
    choose_blobs,
)
from cometgate.storage.file_store.records import (
    ACTIVE,
    GENERATED,
    PROCESSING,
    UPLOADED,
    UPLOADING,
    FileExists,
    FileMissing,
    FilePage,
    FileStoreError,
    FileTooLarge,
    KeyStorageFull,
    OffsetMismatch,
    StoredFile,
    UploadFinished,
    UploadIncomplete,
    UploadMissing,
)
from cometgate.storage.file_store.store import FileStore, new_file_id

__all__ = [
    "ACTIVE",
    "GENERATED",
    "PROCESSING",
    "UPLOADED",
    "UPLOADING",
    "BlobStore",
    "DatabaseBlobs",
    "DirectoryBlobs",
    "FileExists",
    "FileMissing",
    "FilePage",
    "FileStore",
    "FileStoreError",
    "FileTooLarge",
    "KeyStorageFull",
    "OffsetMismatch",
    "StoredFile",
    "UploadFinished",
    "UploadIncomplete",
    "UploadMissing",
    "choose_blobs",
    "new_file_id",
]
