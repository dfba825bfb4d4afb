"""FileStore on both databases, with its bytes in the data directory or in the database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cometgate.storage.database import Database
from cometgate.storage.file_store import (
    ACTIVE,
    GENERATED,
    BlobStore,
    DatabaseBlobs,
    DirectoryBlobs,
    FileExists,
    FileMissing,
    FileStore,
    FileTooLarge,
    KeyStorageFull,
    OffsetMismatch,
    UploadFinished,
    UploadIncomplete,
    UploadMissing,
    choose_blobs,
)
from cometgate.storage.file_store.sweep import FileSweep

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["directory", "database"])
def blobs(request: pytest.FixtureRequest, database: Database, data_dir: Path) -> BlobStore:
    if request.param == "directory":
        return DirectoryBlobs(data_dir / "files")
    return DatabaseBlobs(database.engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database: Database, blobs: BlobStore, clock: Clock) -> FileStore:
    return FileStore(database, blobs, ttl=timedelta(hours=48), max_file_bytes=1000,
                     max_key_bytes=1500, clock=clock)


async def test_pieces_become_one_file_with_its_digest(store: FileStore) -> None:
    file = await store.begin_upload(1, "notes", "text/plain", 11)
    assert file.upload_id is not None and file.state == "UPLOADING"
    await store.append(file.upload_id, 0, b"hello ")
    assert (await store.upload(file.upload_id)).received_bytes == 6
    with pytest.raises(UploadIncomplete):
        await store.finalize(file.upload_id)
    await store.append(file.upload_id, 6, b"world")
    done = await store.finalize(file.upload_id)
    assert (done.state, done.size_bytes, done.expires_at) == (ACTIVE, 11, T0 + timedelta(hours=48))
    assert done.sha256 == base64.b64encode(hashlib.sha256(b"hello world").digest()).decode()
    assert await store.read_bytes(1, file.id) == b"hello world"
    with pytest.raises(UploadFinished):
        await store.append(file.upload_id, 11, b"!")


async def test_an_upload_in_progress_is_no_file_yet(store: FileStore) -> None:
    file = await store.begin_upload(1, "", "text/plain", 3)
    with pytest.raises(FileMissing):
        await store.get(1, file.id)
    assert (await store.page(1, 10)).files == ()


async def test_a_piece_must_start_where_the_upload_stands(store: FileStore) -> None:
    file = await store.begin_upload(1, "", "application/octet-stream", 8)
    assert file.upload_id is not None
    await store.append(file.upload_id, 0, b"abcd")
    with pytest.raises(OffsetMismatch) as mismatch:
        await store.append(file.upload_id, 2, b"cdef")
    assert (mismatch.value.received, mismatch.value.offset) == (4, 2)
    with pytest.raises(FileTooLarge):
        await store.append(file.upload_id, 4, b"efghijk")
    await store.append(file.upload_id, 4, b"efgh")
    await store.finalize(file.upload_id)
    assert await store.read_bytes(1, file.id) == b"abcdefgh"


async def test_two_pieces_racing_for_one_offset_keep_one(store: FileStore) -> None:
    file = await store.begin_upload(1, "", "text/plain", 4)
    assert file.upload_id is not None
    upload_id = file.upload_id
    results = await asyncio.gather(store.append(upload_id, 0, b"aaaa"),
                                   store.append(upload_id, 0, b"bbbb"),
                                   return_exceptions=True)
    assert sum(isinstance(r, OffsetMismatch) for r in results) == 1
    done = await store.finalize(upload_id)
    assert await store.read_bytes(1, done.id) in (b"aaaa", b"bbbb")
    assert done.received_bytes == 4


async def test_files_are_the_key_s_own(store: FileStore) -> None:
    file = await store.create(1, "mine", "text/plain", b"secret")
    for other in (store.get(2, file.id), store.read_bytes(2, file.id), store.delete(2, file.id)):
        with pytest.raises(FileMissing):
            await other
    assert (await store.page(2, 10)).files == ()
    await store.delete(1, file.id)
    with pytest.raises(FileMissing):
        await store.get(1, file.id)


async def test_limits_per_file_and_per_key(store: FileStore) -> None:
    with pytest.raises(FileTooLarge):
        await store.begin_upload(1, "", "text/plain", 1001)
    await store.begin_upload(1, "", "text/plain", 1000)  # declared sizes count at once
    with pytest.raises(KeyStorageFull):
        await store.begin_upload(1, "", "text/plain", 501)
    await store.begin_upload(2, "", "text/plain", 1000)  # another key has its own room


async def test_a_chosen_id_is_unique(store: FileStore) -> None:
    await store.create(1, "", "text/plain", b"x", file_id="chosen")
    with pytest.raises(FileExists):
        await store.create(2, "", "text/plain", b"y", file_id="chosen")


async def test_pages_newest_first(store: FileStore, clock: Clock) -> None:
    ids = []
    for i in range(5):
        clock.now = T0 + timedelta(seconds=i)
        ids.append((await store.create(1, str(i), "text/plain", b"x")).id)
    first = await store.page(1, 2)
    assert [f.id for f in first.files] == ids[::-1][:2]
    second = await store.page(1, 2, first.next_after)
    third = await store.page(1, 2, second.next_after)
    assert [f.id for f in second.files + third.files] == ids[::-1][2:]
    assert third.next_after is None


async def test_expired_files_are_gone_then_purged(store: FileStore, clock: Clock) -> None:
    file = await store.create(1, "", "text/plain", b"old")
    unfinished = await store.begin_upload(1, "", "text/plain", 5)
    clock.now = T0 + timedelta(hours=48)
    with pytest.raises(FileMissing):
        await store.get(1, file.id)
    assert unfinished.upload_id is not None
    with pytest.raises(UploadMissing):
        await store.upload(unfinished.upload_id)
    assert await store.purge_expired() == 2
    assert await store.purge_expired() == 0


async def test_upstream_copies_are_remembered_until_they_expire(
        store: FileStore, clock: Clock) -> None:
    file = await store.create(1, "", "text/plain", b"abc")
    assert await store.upstream_copy(file.id, "gemini", "digest") is None
    await store.remember_upstream_copy(file.id, "gemini", "digest", "https://up/files/1",
                                       T0 + timedelta(hours=1))
    assert await store.upstream_copy(file.id, "gemini", "digest") == "https://up/files/1"
    assert await store.upstream_copy(file.id, "gemini", "other") is None
    clock.now = T0 + timedelta(hours=1)
    assert await store.upstream_copy(file.id, "gemini", "digest") is None


async def test_an_empty_file(store: FileStore) -> None:
    file = await store.create(1, "", "text/plain", b"")
    assert await store.read_bytes(1, file.id) == b""
    assert file.sha256 == base64.b64encode(hashlib.sha256(b"").digest()).decode()


async def test_auto_keeps_bytes_in_the_database_except_on_sqlite(
        database: Database, data_dir: Path) -> None:
    chosen = choose_blobs("auto", database.engine, data_dir)
    expected = DirectoryBlobs if database.dialect_name == "sqlite" else DatabaseBlobs
    assert isinstance(chosen, expected)
    assert isinstance(choose_blobs("database", database.engine, data_dir), DatabaseBlobs)
    assert isinstance(choose_blobs("data_dir", database.engine, data_dir), DirectoryBlobs)


async def test_a_generated_file_says_so(store: FileStore) -> None:
    file = await store.create(1, "results", "application/jsonl", b"{}\n", source=GENERATED)
    assert (await store.get(1, file.id)).source == GENERATED


async def test_the_sweep_removes_expired_files(store: FileStore, clock: Clock) -> None:
    await store.create(1, "", "text/plain", b"old")
    sweep = FileSweep(store, 3600)
    assert await sweep.sweep_once() == 0
    clock.now = T0 + timedelta(hours=49)
    assert await sweep.sweep_once() == 1


async def test_two_starts_cannot_share_the_room_of_one(store: FileStore) -> None:
    results = await asyncio.gather(*(store.begin_upload(1, "", "text/plain", 900)
                                     for _ in range(2)), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["KeyStorageFull", "StoredFile"]
