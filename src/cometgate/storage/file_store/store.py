"""FileStore: the Gemini Files API's files, scoped to the key that made them, with expiry.

Metadata lives in `gemini_files`; bytes in a BlobStore. The received count of an upload moves
only with a conditional UPDATE (`received_bytes = offset`) in the transaction that keeps the
piece, so two replicas receiving pieces of one upload cannot both accept the same offset.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.file_store.blobs import BlobStore
from cometgate.storage.file_store.records import (
    ACTIVE,
    PROCESSING,
    UPLOADED,
    UPLOADING,
    FileExists,
    FileMissing,
    FilePage,
    FileTooLarge,
    KeyStorageFull,
    OffsetMismatch,
    StoredFile,
    UploadFinished,
    UploadIncomplete,
    UploadMissing,
)
from cometgate.storage.schema import gemini_files, gemini_upstream_files

Clock = Callable[[], datetime]
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_LENGTH = 12  # as Google's generated ids ("files/6r5vfkiy1a4z")
_KEY_LOCK_CLASS = 0x636D6766  # "cmgf": the advisory locks of file uploads, by key id


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_file_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


class FileStore:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        *,
        ttl: timedelta,
        max_file_bytes: int,
        max_key_bytes: int,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = database.engine
        self._blobs = blobs
        self.ttl = ttl
        self.max_file_bytes = max_file_bytes
        self.max_key_bytes = max_key_bytes
        self._clock = clock

    # -- uploads ---------------------------------------------------------------------------

    async def begin_upload(
        self, key_id: int, display_name: str, mime_type: str, size: int,
        *, file_id: str | None = None, source: str = UPLOADED,
    ) -> StoredFile:
        """A file in state UPLOADING, reachable by its `upload_id` until finalized."""
        if size > self.max_file_bytes:
            raise FileTooLarge(
                f"The file is {size} bytes; a file may have at most {self.max_file_bytes} bytes.")
        now = self._clock()
        row = {"id": file_id or new_file_id(), "key_id": key_id, "display_name": display_name,
               "mime_type": mime_type, "size_bytes": size, "received_bytes": 0, "sha256": None,
               "state": UPLOADING, "source": source, "upload_id": secrets.token_urlsafe(32),
               "created_at": now, "updated_at": now, "expires_at": now + self.ttl}
        try:
            async with self._engine.begin() as conn:
                await _serialize_key(conn, key_id)
                # Written first: SQLite then holds its write lock for the sum below (a read
                # first could not be upgraded once another writer had committed).
                await conn.execute(insert(gemini_files).values(**row))
                used = await self._key_bytes(conn, key_id, now)
                if used > self.max_key_bytes:
                    raise KeyStorageFull(
                        f"The key's files would take {used} bytes; it may keep at most "
                        f"{self.max_key_bytes} bytes. Delete files or wait for them to expire.")
        except IntegrityError:
            raise FileExists(f"A file named files/{row['id']} already exists.") from None
        return _record(row)

    async def upload(self, upload_id: str) -> StoredFile:
        """The file an upload id belongs to, in whatever state it is."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(gemini_files).where(
                gemini_files.c.upload_id == upload_id,
                gemini_files.c.expires_at > self._clock()))).first()
        if row is None:
            raise UploadMissing(upload_id)
        return _record(row._mapping)

    async def append(self, upload_id: str, offset: int, data: bytes) -> StoredFile:
        """Keep `data` at `offset`, which must be where the upload stands."""
        file = await self.upload(upload_id)
        if file.state != UPLOADING:
            raise UploadFinished(file)
        if offset != file.received_bytes:
            raise OffsetMismatch(file.received_bytes, offset)
        if not data:
            return file
        if offset + len(data) > file.size_bytes:
            raise FileTooLarge(
                f"The upload declared {file.size_bytes} bytes; this chunk would bring it to "
                f"{offset + len(data)}.")
        now = self._clock()
        async with self._engine.begin() as conn:
            moved = await conn.execute(update(gemini_files).where(
                gemini_files.c.upload_id == upload_id, gemini_files.c.state == UPLOADING,
                gemini_files.c.received_bytes == offset,
            ).values(received_bytes=offset + len(data), updated_at=now))
            if moved.rowcount != 1:  # another request moved it first
                await conn.rollback()
                current = await self.upload(upload_id)
                if current.state != UPLOADING:
                    raise UploadFinished(current)
                raise OffsetMismatch(current.received_bytes, offset)
            await self._blobs.write(conn, file.id, offset, data)
        return await self.upload(upload_id)

    async def finalize(self, upload_id: str) -> StoredFile:
        """PROCESSING while the digest is taken, then ACTIVE."""
        file = await self.upload(upload_id)
        if file.state == ACTIVE:
            return file
        if file.received_bytes != file.size_bytes:
            raise UploadIncomplete(
                f"The upload declared {file.size_bytes} bytes and has received "
                f"{file.received_bytes}; send the rest before finalizing.")
        await self._set(file.id, state=PROCESSING)
        digest = hashlib.sha256()
        async for piece in self._blobs.read(file.id) if file.size_bytes else _nothing():
            digest.update(piece)
        sha = base64.b64encode(digest.digest()).decode("ascii")
        await self._set(file.id, state=ACTIVE, sha256=sha)
        return await self.upload(upload_id)

    async def create(
        self, key_id: int, display_name: str, mime_type: str, data: bytes,
        *, file_id: str | None = None, source: str = UPLOADED,
    ) -> StoredFile:
        """A whole file at once (a multipart upload; a result file, `source=GENERATED`):
        ACTIVE on return."""
        file = await self.begin_upload(key_id, display_name, mime_type, len(data),
                                       file_id=file_id, source=source)
        assert file.upload_id is not None
        if data:
            await self.append(file.upload_id, 0, data)
        return await self.finalize(file.upload_id)

    # -- files of a key ----------------------------------------------------------------------

    async def get(self, key_id: int, file_id: str) -> StoredFile:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(gemini_files).where(
                self._visible(key_id), gemini_files.c.id == file_id))).first()
        if row is None:
            raise FileMissing(file_id)
        return _record(row._mapping)

    async def page(
        self, key_id: int, size: int, after: tuple[datetime, str] | None = None
    ) -> FilePage:
        """Newest first; `after` is the (created_at, id) where the page before ended."""
        query = select(gemini_files).where(self._visible(key_id))
        if after is not None:
            created, file_id = after
            query = query.where(
                (gemini_files.c.created_at < created)
                | and_(gemini_files.c.created_at == created, gemini_files.c.id < file_id))
        query = query.order_by(gemini_files.c.created_at.desc(), gemini_files.c.id.desc())
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(size + 1))).all()
        files = tuple(_record(row._mapping) for row in rows[:size])
        last = files[-1] if len(rows) > size else None
        return FilePage(files, (last.created_at, last.id) if last is not None else None)

    async def delete(self, key_id: int, file_id: str) -> None:
        await self.get(key_id, file_id)
        await self._remove([file_id])

    async def cancel_upload(self, upload_id: str) -> None:
        """An upload given up before it was finalized: its file and bytes go."""
        file = await self.upload(upload_id)
        if file.state != UPLOADING:
            raise UploadFinished(file)
        await self._remove([file.id])

    async def read_bytes(self, key_id: int, file_id: str) -> bytes:
        return b"".join([piece async for piece in self.open(key_id, file_id)])

    async def open(self, key_id: int, file_id: str) -> AsyncIterator[bytes]:
        """The file's bytes as pieces; FileMissing (raised before the first piece) as `get`."""
        file = await self.get(key_id, file_id)
        if file.size_bytes:
            async for piece in self._blobs.read(file.id):
                yield piece

    # -- copies on Gemini upstreams ------------------------------------------------------------

    async def upstream_copy(self, file_id: str, provider: str, credential: str) -> str | None:
        """The upstream's URI of its copy of the file, while that copy lives."""
        async with self._engine.connect() as conn:
            return await conn.scalar(select(gemini_upstream_files.c.upstream_uri).where(
                gemini_upstream_files.c.file_id == file_id,
                gemini_upstream_files.c.provider == provider,
                gemini_upstream_files.c.credential == credential,
                gemini_upstream_files.c.expires_at > self._clock()))

    async def remember_upstream_copy(self, file_id: str, provider: str, credential: str,
                                     uri: str, expires_at: datetime) -> None:
        where = and_(gemini_upstream_files.c.file_id == file_id,
                     gemini_upstream_files.c.provider == provider,
                     gemini_upstream_files.c.credential == credential)
        async with self._engine.begin() as conn:
            await conn.execute(delete(gemini_upstream_files).where(where))
            await conn.execute(insert(gemini_upstream_files).values(
                file_id=file_id, provider=provider, credential=credential, upstream_uri=uri,
                expires_at=expires_at))

    # -- expiry ------------------------------------------------------------------------------

    async def purge_expired(self) -> int:
        """Remove expired files with their bytes; how many went."""
        async with self._engine.connect() as conn:
            ids = list((await conn.execute(select(gemini_files.c.id).where(
                gemini_files.c.expires_at <= self._clock()))).scalars())
        if ids:
            await self._remove(ids)
        return len(ids)

    def _visible(self, key_id: int) -> Any:
        return and_(gemini_files.c.key_id == key_id, gemini_files.c.state != UPLOADING,
                    gemini_files.c.expires_at > self._clock())

    async def _key_bytes(self, conn: AsyncConnection, key_id: int, now: datetime) -> int:
        used = await conn.scalar(select(func.coalesce(func.sum(gemini_files.c.size_bytes), 0))
                                 .where(gemini_files.c.key_id == key_id,
                                        gemini_files.c.expires_at > now))
        return int(used or 0)

    async def _set(self, file_id: str, **values: object) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(gemini_files).where(gemini_files.c.id == file_id)
                               .values(updated_at=self._clock(), **values))

    async def _remove(self, file_ids: list[str]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(gemini_files).where(gemini_files.c.id.in_(file_ids)))
            await conn.execute(delete(gemini_upstream_files).where(
                gemini_upstream_files.c.file_id.in_(file_ids)))
            await self._blobs.delete(conn, file_ids)


async def _serialize_key(conn: AsyncConnection, key_id: int) -> None:
    """PostgreSQL: one upload start per key at a time until this transaction ends, so that two
    starts cannot both fit in the room that only one has (SQLite's one writer does that)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_KEY_LOCK_CLASS, key_id)))


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an empty file has no blob


def _record(row: Any) -> StoredFile:
    values = dict(row._mapping) if isinstance(row, Row) else dict(row)
    return StoredFile(**values)
