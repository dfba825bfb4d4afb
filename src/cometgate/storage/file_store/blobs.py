"""Where a file's bytes live: files in the data directory, or rows in the database itself.

Both write a piece at an offset inside the transaction that moves the upload's received count
(`write` gets that connection), so a piece counts only if it was kept; both read a file back as
a stream of pieces, never the whole file at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cometgate.storage.schema import gemini_file_chunks

READ_PIECE_BYTES = 1024 * 1024


class BlobStore(Protocol):
    async def write(self, conn: AsyncConnection, file_id: str, offset: int, data: bytes
                    ) -> None: ...

    def read(self, file_id: str) -> AsyncIterator[bytes]: ...

    async def delete(self, conn: AsyncConnection, file_ids: Sequence[str]) -> None: ...


class DirectoryBlobs:
    """One file per gateway file under `root`, readable by this user only."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def write(self, conn: AsyncConnection, file_id: str, offset: int, data: bytes
                    ) -> None:
        await asyncio.to_thread(self._write, file_id, offset, data)

    async def read(self, file_id: str) -> AsyncIterator[bytes]:
        path = self._path(file_id)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while piece := await asyncio.to_thread(handle.read, READ_PIECE_BYTES):
                yield piece
        finally:
            handle.close()

    async def delete(self, conn: AsyncConnection, file_ids: Sequence[str]) -> None:
        for file_id in file_ids:
            await asyncio.to_thread(self._path(file_id).unlink, True)

    def _write(self, file_id: str, offset: int, data: bytes) -> None:
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._path(file_id), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # At the offset, not appended: a piece resent after an interruption overwrites
            # what the failed attempt may have left past the received count.
            os.pwrite(fd, data, offset)
            os.ftruncate(fd, offset + len(data))
        finally:
            os.close(fd)

    def _path(self, file_id: str) -> Path:
        return self._root / file_id


class DatabaseBlobs:
    """Pieces as rows of `gemini_file_chunks`, so every replica on the database reads them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, conn: AsyncConnection, file_id: str, offset: int, data: bytes
                    ) -> None:
        # A piece left past the received count by an interrupted attempt is replaced.
        await conn.execute(delete(gemini_file_chunks).where(
            gemini_file_chunks.c.file_id == file_id, gemini_file_chunks.c.position >= offset))
        await conn.execute(insert(gemini_file_chunks).values(
            file_id=file_id, position=offset, data=data))

    async def read(self, file_id: str) -> AsyncIterator[bytes]:
        query = (select(gemini_file_chunks.c.position)
                 .where(gemini_file_chunks.c.file_id == file_id)
                 .order_by(gemini_file_chunks.c.position))
        async with self._engine.connect() as conn:
            positions = list((await conn.execute(query)).scalars())
        for position in positions:  # one piece in memory at a time
            async with self._engine.connect() as conn:
                piece = await conn.scalar(select(gemini_file_chunks.c.data).where(
                    gemini_file_chunks.c.file_id == file_id,
                    gemini_file_chunks.c.position == position))
            if piece is not None:
                yield bytes(piece)

    async def delete(self, conn: AsyncConnection, file_ids: Sequence[str]) -> None:
        await conn.execute(delete(gemini_file_chunks).where(
            gemini_file_chunks.c.file_id.in_(list(file_ids))))


def choose_blobs(store: str, engine: AsyncEngine, data_dir: Path) -> BlobStore:
    """`store` as storage.files.store says: "auto" keeps bytes in the database on PostgreSQL
    (replicas share it) and in the data directory otherwise."""
    in_database = store == "database" or (store == "auto" and engine.dialect.name != "sqlite")
    return DatabaseBlobs(engine) if in_database else DirectoryBlobs(data_dir / "files")
