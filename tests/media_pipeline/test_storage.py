"""Behaviour of the object store, run alike against local disk and MinIO (moto's S3 server)."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import socket
import tracemalloc
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from media_pipeline.storage import (
    CHUNK_SIZE,
    InvalidKey,
    LocalStorage,
    MinioStorage,
    ObjectNotFound,
    Storage,
    StorageConfigError,
    StorageError,
    StorageFull,
    StorageUnavailable,
    StoredObject,
    content_type_for,
    sign,
    storage_from_config,
    verify,
)
from tests.full_disk import fill, small_disk
from tests.media_pipeline.moto_server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoServer,
)

MiB = 1024 * 1024
BIG_PAYLOAD = 20_000_000


def _empty_bucket(storage: MinioStorage) -> None:
    for key in storage.list(""):
        storage.delete(key)
    storage.client.remove_bucket(storage.bucket)


def _new_minio(server: MotoServer) -> MinioStorage:
    bucket = f"test-{uuid.uuid4().hex[:16]}"  # one bucket per test keeps tests independent
    return MinioStorage(
        server.endpoint, ACCESS_KEY, SECRET_KEY, bucket, secure=False, region=REGION
    )


@pytest.fixture(params=["local", "minio"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "store")
        return
    store = _new_minio(request.getfixturevalue("moto"))
    yield store
    _empty_bucket(store)


@pytest.fixture
def minio_storage(moto: MotoServer) -> Iterator[MinioStorage]:
    store = _new_minio(moto)
    yield store
    _empty_bucket(store)


class GeneratorStream:
    """A stream backed by a generator, like a request body: short reads, no seek, no length."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "the store must never ask for the whole body at once"
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def pattern_chunks(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """Deterministic, non-repeating-per-chunk content without holding it all."""
    sent = 0
    i = 0
    while sent < total:
        block = (i.to_bytes(4, "big") * (chunk // 4))[: total - sent]
        sent += len(block)
        i += 1
        yield block


def as_stream(data: bytes) -> BinaryIO:
    return io.BytesIO(data)


def read_all(storage: Storage, key: str) -> bytes:
    with storage.open(key) as f:
        return f.read()


def key_for(kind: str = "video") -> str:
    return f"{kind}/{uuid.uuid4()}/original.mp4"


# --- round trip ------------------------------------------------------------------------------


def test_round_trip_returns_size_and_sha256(storage: Storage, tmp_path: Path) -> None:
    key = key_for()
    data = b"hello, verified learner\n" * 1000

    stored = storage.put_stream(key, as_stream(data), content_type="video/mp4", length=len(data))

    assert stored.key == key
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert storage.exists(key)
    assert storage.size(key) == len(data)
    assert read_all(storage, key) == data
    target = tmp_path / "down" / "copy.mp4"
    storage.download_to(key, target)
    assert target.read_bytes() == data


def test_put_file_and_overwrite_replace_the_object(storage: Storage, tmp_path: Path) -> None:
    key = key_for("thumb")
    source = tmp_path / "t.jpg"
    source.write_bytes(b"first")
    assert storage.put_file(key, source, "image/jpeg").size == 5

    storage.put_stream(key, as_stream(b"second!"), content_type="image/jpeg")

    assert read_all(storage, key) == b"second!"
    assert storage.list(key) == [key]


def test_empty_object_round_trips(storage: Storage) -> None:
    key = key_for("caption")
    stored = storage.put_stream(key, as_stream(b""), content_type="text/vtt")
    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert storage.exists(key)
    assert read_all(storage, key) == b""


# --- streaming -------------------------------------------------------------------------------


def _put_measuring_peak(
    storage: Storage, key: str, size: int, *, length_known: bool
) -> tuple[StoredObject, int]:
    """put_stream a generator-backed body of size bytes; returns (StoredObject, peak bytes)."""
    stream = cast(BinaryIO, GeneratorStream(pattern_chunks(size)))
    tracemalloc.start()
    try:
        stored = storage.put_stream(
            key, stream, content_type="video/mp4", length=size if length_known else None
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return stored, peak


@pytest.mark.parametrize("length_known", [True, False], ids=["length", "no-length"])
def test_streams_20mb_body_hashing_as_it_goes_in_bounded_memory(
    storage: Storage, length_known: bool
) -> None:
    key = key_for()
    expected = hashlib.sha256()
    for block in pattern_chunks(BIG_PAYLOAD):
        expected.update(block)

    stored, peak = _put_measuring_peak(storage, key, BIG_PAYLOAD, length_known=length_known)

    assert stored.size == BIG_PAYLOAD
    assert stored.sha256 == expected.hexdigest()
    assert storage.size(key) == BIG_PAYLOAD
    # Local disk copies chunk by chunk. The MinIO SDK holds the part being uploaded and the
    # next one, plus a copy of it when the length is unknown (it glues on a lookahead byte).
    if isinstance(storage, LocalStorage):
        budget = 2 * MiB
    else:
        budget = (2 if length_known else 3) * storage.part_size + MiB
    assert budget < BIG_PAYLOAD
    assert peak < budget, f"peak {peak / MiB:.1f} MiB for a {BIG_PAYLOAD / MiB:.1f} MiB body"

    downloaded = hashlib.sha256()
    with storage.open(key) as f:
        while chunk := f.read(MiB):
            downloaded.update(chunk)
    assert downloaded.hexdigest() == expected.hexdigest()


def test_streaming_memory_does_not_grow_with_the_body(storage: Storage) -> None:
    _, peak_small = _put_measuring_peak(storage, key_for(), BIG_PAYLOAD, length_known=False)
    big = 64 * MiB
    stored, peak_big = _put_measuring_peak(storage, key_for(), big, length_known=False)
    assert stored.size == big
    assert peak_big < big / 4
    assert peak_big < peak_small + MiB, f"{peak_small / MiB:.1f} -> {peak_big / MiB:.1f} MiB"


@pytest.mark.parametrize("declared", [99, 101])
def test_refuses_a_stream_whose_length_differs_from_the_declared(
    storage: Storage, declared: int
) -> None:
    key = key_for()
    with pytest.raises(StorageError, match=r"declared|expected"):
        storage.put_stream(key, as_stream(b"x" * 100), content_type="video/mp4", length=declared)
    assert not storage.exists(key)


# --- ranges ----------------------------------------------------------------------------------


def test_read_range_returns_first_middle_and_last_bytes(storage: Storage) -> None:
    key = key_for()
    data = bytes(range(256)) * 4096  # 1 MiB: ranges cross the read chunk size
    storage.put_stream(key, as_stream(data), content_type="video/mp4")
    last = len(data) - 1

    assert b"".join(storage.read_range(key, 0, 0)) == data[:1]
    assert b"".join(storage.read_range(key, 1000, 1999)) == data[1000:2000]
    assert b"".join(storage.read_range(key, last, last)) == data[-1:]
    big = b"".join(storage.read_range(key, 10, CHUNK_SIZE * 2 + 10))
    assert big == data[10 : CHUNK_SIZE * 2 + 11]
    # An end past the object is clipped, as HTTP does for "bytes=N-".
    assert b"".join(storage.read_range(key, last - 4, last + 1000)) == data[-5:]


def test_read_range_releases_its_source_when_dropped_or_closed(storage: Storage) -> None:
    key = key_for()
    storage.put_stream(key, as_stream(b"0123456789"), content_type="video/mp4")
    chunks = storage.read_range(key, 2, 5)
    del chunks  # never started: an unclosed file would raise ResourceWarning here
    gc.collect()
    chunks = storage.read_range(key, 2, 5)
    assert next(chunks) == b"2345"
    chunks.close()  # type: ignore[attr-defined]  # WSGI servers call close() on bodies
    gc.collect()


def test_read_range_refuses_ranges_outside_the_object(storage: Storage) -> None:
    key = key_for()
    storage.put_stream(key, as_stream(b"0123456789"), content_type="video/mp4")
    for start, end in [(10, 12), (5, 4), (-1, 3)]:
        with pytest.raises(ValueError):
            b"".join(storage.read_range(key, start, end))


# --- missing keys and bad keys ---------------------------------------------------------------


def test_missing_key_raises_object_not_found(storage: Storage, tmp_path: Path) -> None:
    key = key_for()
    with pytest.raises(ObjectNotFound) as info:
        storage.open(key)
    assert info.value.key == key
    with pytest.raises(ObjectNotFound):
        storage.size(key)
    with pytest.raises(ObjectNotFound):
        storage.read_range(key, 0, 10)  # raised at the call, before iteration
    with pytest.raises(ObjectNotFound):
        storage.download_to(key, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert not storage.exists(key)
    storage.delete(key)  # deleting what is not there is not an error


@pytest.mark.parametrize(
    "bad",
    ["../x", "/etc/passwd", "a\\b", "a/../b", "a/./b", "", "a//b", "a/", ".hidden", "ü/x", "a b"],
)
def test_refuses_keys_that_could_escape_the_root(storage: Storage, bad: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put_stream(bad, as_stream(b"x"), content_type="video/mp4")
    with pytest.raises(InvalidKey):
        storage.open(bad)
    with pytest.raises(InvalidKey):
        storage.exists(bad)
    with pytest.raises(InvalidKey):
        storage.delete(bad)
    with pytest.raises(InvalidKey):
        storage.presigned_get(bad, 60)
    assert storage.list("") == []


@pytest.mark.parametrize("bad_prefix", ["../", "/etc", "a/../", "a\\"])
def test_refuses_prefixes_that_could_escape_the_root(storage: Storage, bad_prefix: str) -> None:
    with pytest.raises(InvalidKey):
        storage.list(bad_prefix)
    with pytest.raises(InvalidKey):
        storage.delete_prefix(bad_prefix)


def test_local_keys_stay_under_root(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    key = key_for()
    store.put_stream(key, as_stream(b"abc"), content_type="video/mp4")
    path = store.local_path(key)
    assert path.read_bytes() == b"abc"
    assert store.root in path.parents
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    with pytest.raises(ObjectNotFound):
        store.local_path(key_for())


# --- prefixes --------------------------------------------------------------------------------


def test_delete_prefix_only_deletes_that_prefix(storage: Storage) -> None:
    vid = uuid.uuid4()
    doomed = [f"hls/{vid}/index.m3u8", f"hls/{vid}/720p/seg_000.ts", f"hls/{vid}/720p/seg_001.ts"]
    kept = [f"hls/{vid}x/index.m3u8", f"video/{vid}/original.mp4", f"hls/{uuid.uuid4()}/a.ts"]
    for key in doomed + kept:
        storage.put_stream(key, as_stream(key.encode()), content_type="video/mp2t")

    assert storage.list(f"hls/{vid}/") == sorted(doomed)
    assert storage.delete_prefix(f"hls/{vid}/") == 3

    assert storage.list(f"hls/{vid}/") == []
    assert storage.list("") == sorted(kept)
    for key in kept:
        assert read_all(storage, key) == key.encode()
    with pytest.raises(InvalidKey):
        storage.delete_prefix("")
    assert storage.delete_prefix(f"hls/{vid}/") == 0


def test_list_uses_plain_string_prefixes(storage: Storage) -> None:
    for key in ["upload/ab/part-000", "upload/ab/part-001", "upload/abc/part-000", "other/x"]:
        storage.put_stream(key, as_stream(b"."), content_type="application/octet-stream")
    assert storage.list("upload/ab/") == ["upload/ab/part-000", "upload/ab/part-001"]
    assert storage.list("upload/ab") == [
        "upload/ab/part-000",
        "upload/ab/part-001",
        "upload/abc/part-000",
    ]
    assert storage.list("upload/ab/part-001") == ["upload/ab/part-001"]
    assert storage.list("nothing/") == []


# --- concat ----------------------------------------------------------------------------------


def test_concat_streams_parts_into_one_object(storage: Storage) -> None:
    upload = uuid.uuid4()
    parts = [os.urandom(CHUNK_SIZE + 17), b"", os.urandom(1000), os.urandom(3 * CHUNK_SIZE)]
    keys = [f"upload/{upload}/part-{i:05d}" for i in range(len(parts))]
    for key, data in zip(keys, parts, strict=True):
        storage.put_stream(key, as_stream(data), content_type="application/octet-stream")
    whole = b"".join(parts)
    dest = f"video/{upload}/original.mp4"

    stored = storage.concat(keys, dest, "video/mp4")

    assert stored.size == len(whole)
    assert stored.sha256 == hashlib.sha256(whole).hexdigest()
    assert read_all(storage, dest) == whole
    assert storage.list(f"upload/{upload}/") == keys  # the parts are left for the caller


def test_concat_with_a_missing_part_stores_nothing(storage: Storage) -> None:
    upload = uuid.uuid4()
    present = f"upload/{upload}/part-00000"
    storage.put_stream(present, as_stream(b"abc"), content_type="application/octet-stream")
    dest = f"video/{upload}/original.mp4"
    with pytest.raises(ObjectNotFound):
        storage.concat([present, f"upload/{upload}/part-00001"], dest, "video/mp4")
    assert not storage.exists(dest)
    with pytest.raises(ValueError):
        storage.concat([], dest, "video/mp4")


# --- upload_dir and content types -----------------------------------------------------------


def test_upload_dir_keys_files_by_relative_path_with_content_types(
    storage: Storage, tmp_path: Path
) -> None:
    out = tmp_path / "hls"
    (out / "720p").mkdir(parents=True)
    files = {
        "index.m3u8": b"#EXTM3U\n",
        "720p/index.m3u8": b"#EXTM3U\n#EXT-X-VERSION:3\n",
        "720p/seg_000.ts": b"\x47" * 188,
        "poster.jpg": b"\xff\xd8\xff",
        "captions.vtt": b"WEBVTT\n",
    }
    for rel, data in files.items():
        (out / rel).write_bytes(data)
    prefix = f"hls/{uuid.uuid4()}"
    asked: list[str] = []

    def types(name: str) -> str:
        asked.append(name)
        return content_type_for(name)

    stored = storage.upload_dir(prefix + "/", out, types)

    assert sorted(asked) == sorted(files)
    assert sorted(s.key for s in stored) == sorted(f"{prefix}/{rel}" for rel in files)
    assert storage.list(prefix + "/") == sorted(f"{prefix}/{rel}" for rel in files)
    for rel, data in files.items():
        assert read_all(storage, f"{prefix}/{rel}") == data
    if isinstance(storage, MinioStorage):
        for rel in files:
            stat = storage.client.stat_object(storage.bucket, f"{prefix}/{rel}")
            assert stat.content_type == content_type_for(rel)


def test_upload_dir_refuses_a_file_name_that_is_not_a_safe_key(
    storage: Storage, tmp_path: Path
) -> None:
    out = tmp_path / "hls"
    out.mkdir()
    (out / "a.ts").write_bytes(b"a")
    (out / "bad name.ts").write_bytes(b"b")
    prefix = f"hls/{uuid.uuid4()}"
    with pytest.raises(InvalidKey):
        storage.upload_dir(prefix, out, content_type_for)
    assert storage.list(prefix) == []  # checked before anything is uploaded


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.m3u8", "application/vnd.apple.mpegurl"),
        ("720p/seg_001.ts", "video/mp2t"),
        ("init/chunk.m4s", "video/iso.segment"),
        ("ORIGINAL.MP4", "video/mp4"),
        ("zh.vtt", "text/vtt; charset=utf-8"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.webp", "image/webp"),
        ("a.exe", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        ("dir.mp4/noext", "application/octet-stream"),
    ],
)
def test_content_type_for_uses_the_fixed_map(name: str, expected: str) -> None:
    assert content_type_for(name) == expected


# --- presigned URLs and signing --------------------------------------------------------------


def test_minio_presigned_url_serves_the_bytes_with_the_requested_type(
    minio_storage: MinioStorage,
) -> None:
    key = f"hls/{uuid.uuid4()}/index.m3u8"
    data = b"#EXTM3U\n#EXT-X-ENDLIST\n"
    minio_storage.put_stream(key, as_stream(data), content_type="application/octet-stream")

    url = minio_storage.presigned_get(key, 300, content_type="application/vnd.apple.mpegurl")

    assert url is not None
    assert url.startswith(f"http://{minio_storage.client._base_url.host}/")
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=300" in url
    # Plain http to the moto server on loopback.
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        assert response.read() == data
        assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    with pytest.raises(ValueError):
        minio_storage.presigned_get(key, 0)
    with pytest.raises(ValueError):
        minio_storage.presigned_get(key, 8 * 24 * 3600)


def test_minio_bucket_is_created_private(minio_storage: MinioStorage) -> None:
    from minio.error import S3Error

    assert not minio_storage.client.bucket_exists(minio_storage.bucket)
    minio_storage.put_stream(key_for(), as_stream(b"x"), content_type="video/mp4")
    assert minio_storage.client.bucket_exists(minio_storage.bucket)
    with pytest.raises(S3Error) as info:
        minio_storage.client.get_bucket_policy(minio_storage.bucket)
    assert info.value.code == "NoSuchBucketPolicy"


def test_local_presigned_get_is_none_so_the_app_serves_it(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    key = key_for()
    store.put_stream(key, as_stream(b"x"), content_type="video/mp4")
    assert store.presigned_get(key, 300, content_type="video/mp4") is None


SECRET = b"s" * 32


def test_signature_verifies_until_it_expires() -> None:
    key = key_for()
    sig = sign(SECRET, key, 1_000)
    assert verify(SECRET, key, 1_000, sig, now=999)
    assert not verify(SECRET, key, 1_000, sig, now=1_000)
    assert not verify(SECRET, key, 1_000, sig, now=5_000)


def test_tampered_signatures_fail() -> None:
    key = key_for()
    sig = sign(SECRET, key, 1_000)
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert not verify(SECRET, key, 1_000, flipped, now=0)
    assert not verify(SECRET, key + "x", 1_000, sig, now=0)
    assert not verify(SECRET, key, 2_000, sig, now=0)  # extending the expiry
    assert not verify(b"t" * 32, key, 1_000, sig, now=0)
    assert not verify(SECRET, key, 1_000, sig.upper(), now=0)
    assert not verify(SECRET, key, 1_000, "", now=0)
    assert not verify(SECRET, key, 1_000, "é" * 64, now=0)
    with pytest.raises(ValueError):
        sign(b"", key, 1_000)


# --- atomic writes ---------------------------------------------------------------------------


class FailingStream:
    """Yields `fail_after` bytes, then raises, like a client that disconnects mid-upload."""

    def __init__(self, fail_after: int) -> None:
        self._left = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise ConnectionResetError("client went away")
        n = min(size if size > 0 else CHUNK_SIZE, self._left, 64 * 1024)
        self._left -= n
        return b"z" * n


@pytest.mark.parametrize("fail_after", [1000, 7 * MiB])  # within the first part; past it
def test_failed_write_leaves_no_object_and_keeps_the_old_one(
    storage: Storage, fail_after: int
) -> None:
    fresh = key_for()
    with pytest.raises(ConnectionResetError):
        storage.put_stream(
            fresh, cast(BinaryIO, FailingStream(fail_after)), content_type="video/mp4"
        )
    assert not storage.exists(fresh)
    assert storage.list(fresh.rsplit("/", 1)[0]) == []

    existing = key_for()
    storage.put_stream(existing, as_stream(b"old"), content_type="video/mp4")
    with pytest.raises(ConnectionResetError):
        storage.put_stream(
            existing, cast(BinaryIO, FailingStream(fail_after)), content_type="video/mp4"
        )
    assert read_all(storage, existing) == b"old"

    if isinstance(storage, LocalStorage):
        leftovers = [p for p in storage.root.rglob("*") if p.is_file()]
        assert leftovers == [storage.local_path(existing)]
    else:
        assert _open_multipart_uploads(cast(MinioStorage, storage)) == []


def _open_multipart_uploads(storage: MinioStorage) -> list[Any]:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{storage.client._base_url.host}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    try:
        return list(client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []))
    finally:
        client.close()


# --- a full, read-only or unreachable store --------------------------------------------------


def test_full_disk_raises_storage_full_and_keeps_what_was_stored(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        storage = LocalStorage(disk)
        kept = key_for()
        storage.put_stream(kept, as_stream(b"kept"), content_type="video/mp4")
        fresh = key_for()
        with pytest.raises(StorageFull):
            storage.put_stream(
                fresh, GeneratorStream(pattern_chunks(2 * MiB)), content_type="video/mp4"
            )
        assert not storage.exists(fresh)
        assert read_all(storage, kept) == b"kept"
        # Nothing half-written is left to take the room that remains.
        assert [p.name for p in disk.rglob("*") if p.is_file()] == ["original.mp4"]


def test_a_disk_filled_by_someone_else_raises_storage_full(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        storage = LocalStorage(disk / "store")
        fill(disk)
        with pytest.raises(StorageFull):
            storage.put_stream(key_for(), as_stream(b"x" * 100_000), content_type="video/mp4")


def test_read_only_disk_raises_storage_unavailable(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m", read_only=True) as disk:
        storage = LocalStorage(disk)
        with pytest.raises(StorageUnavailable):
            storage.put_stream(key_for(), as_stream(b"x"), content_type="video/mp4")


def test_unreachable_minio_raises_storage_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = MinioStorage(
        f"127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY, "nowhere", secure=False, region=REGION
    )
    with pytest.raises(StorageUnavailable):  # after the SDK's own retries, a few seconds
        storage.put_stream(key_for(), as_stream(b"x"), content_type="video/mp4")


# --- configuration ---------------------------------------------------------------------------


def test_storage_from_config_builds_local(tmp_path: Path) -> None:
    store = storage_from_config({"STORAGE_BACKEND": "local", "STORAGE_ROOT": str(tmp_path / "s")})
    assert isinstance(store, LocalStorage)
    assert store.root == (tmp_path / "s").resolve()


def test_storage_from_config_builds_minio_without_touching_the_network() -> None:
    pytest.importorskip("minio")
    store = storage_from_config(
        {
            "STORAGE_BACKEND": "minio",
            "MINIO_ENDPOINT": "127.0.0.1:9",
            "MINIO_ACCESS_KEY": "a",
            "MINIO_SECRET_KEY": "b",
            "MINIO_BUCKET": "media",
            "MINIO_SECURE": "false",
            "MINIO_REGION": "",
        }
    )
    assert isinstance(store, MinioStorage)
    assert store.bucket == "media"
    assert store.region is None
    assert not store.client._base_url.is_https


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "STORAGE_BACKEND must be"),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND must be"),
        ({"STORAGE_BACKEND": "local"}, "needs STORAGE_ROOT"),
        (
            {"STORAGE_BACKEND": "minio", "MINIO_ENDPOINT": "h:9000", "MINIO_ACCESS_KEY": "a"},
            "needs MINIO_SECRET_KEY, MINIO_BUCKET",
        ),
        (
            {
                "STORAGE_BACKEND": "minio",
                "MINIO_ENDPOINT": "h:9000",
                "MINIO_ACCESS_KEY": "a",
                "MINIO_SECRET_KEY": "b",
                "MINIO_BUCKET": "m",
                "MINIO_SECURE": "maybe",
            },
            "MINIO_SECURE",
        ),
        (
            {
                "STORAGE_BACKEND": "minio",
                "MINIO_ENDPOINT": "http://h:9000",
                "MINIO_ACCESS_KEY": "a",
                "MINIO_SECRET_KEY": "b",
                "MINIO_BUCKET": "m",
            },
            "host",
        ),
    ],
)
def test_storage_from_config_explains_what_is_missing(
    config: dict[str, object], message: str
) -> None:
    if config.get("STORAGE_BACKEND") == "minio":
        pytest.importorskip("minio")
    with pytest.raises(StorageConfigError, match=message):
        storage_from_config(config)
