"""Playback URLs: signed HLS playlists whose every inner URI is signed and short-lived.

The master playlist is served by the app, rewritten so variant and subtitle playlists carry
the lesson's signature; variant playlists are rewritten so each segment is an object URL
(a presigned GET on MinIO, the app's signed `/media/o/...` on local disk). No segment is
reachable without a signature, and in production no segment byte passes through Python.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import url_for

from app.courses.models import Lesson
from app.media import service as media
from media_pipeline import storage as store
from media_pipeline import video

MASTER = "master.m3u8"
SUBTITLE_DIR = "subs/"


def scope(lesson: Lesson) -> str:
    return f"lesson-hls:{lesson.id}"


def _query(lesson: Lesson) -> dict[str, str]:
    return media.signed_query(scope(lesson), media.media_ttl_s(lesson.duration_s))


def playlist_url(lesson: Lesson) -> str:
    return url_for(
        "courses.lesson_playlist",
        lesson_id=lesson.id,
        name=MASTER,
        _external=True,
        **_query(lesson),
    )


def poster_url(lesson: Lesson) -> str:
    return media.object_url(lesson.poster_key, media.media_ttl_s(), external=True)


def may_play(lesson: Lesson, exp: str | None, sig: str | None) -> bool:
    return media.check_signature(scope(lesson), exp, sig)


def _with_query(uri: str, query: dict[str, str]) -> str:
    return f"{uri}?{urlencode(query)}"


def render_playlist(lesson: Lesson, name: str) -> str | None:
    """The named playlist of a ready lesson, with signed URIs; None if there is none."""
    query = _query(lesson)
    if name == MASTER:
        return _master(lesson, query)
    if name.startswith(SUBTITLE_DIR) and name.endswith(".m3u8"):
        language = name[len(SUBTITLE_DIR) : -len(".m3u8")]
        caption = next((c for c in lesson.captions if c.language == language), None)
        if caption is None:
            return None
        vtt = media.object_url(caption.key, media.media_ttl_s(lesson.duration_s), external=True)
        return video.subtitle_playlist(vtt, lesson.duration_s or 0)
    if name.endswith("/index.m3u8") and name.count("/") == 1:
        return _variant(lesson, name)
    return None


def _master(lesson: Lesson, query: dict[str, str]) -> str | None:
    try:
        text = _read(lesson.hls_prefix + MASTER)
    except store.ObjectNotFound:
        return None
    lines = [
        _with_query(line, query) if line and not line.startswith("#") else line
        for line in text.splitlines()
    ]
    tracks = [
        video.SubtitleTrack(
            language=caption.language,
            name=caption.label,
            uri=_with_query(f"{SUBTITLE_DIR}{caption.language}.m3u8", query),
            default=index == 0,
        )
        for index, caption in enumerate(lesson.captions)
    ]
    return video.add_subtitles_to_master("\n".join(lines) + "\n", tracks)


def _variant(lesson: Lesson, name: str) -> str | None:
    folder = name.rsplit("/", 1)[0]
    try:
        text = _read(lesson.hls_prefix + name)
    except (store.ObjectNotFound, store.InvalidKey):
        return None
    ttl_s = media.media_ttl_s(lesson.duration_s)
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = media.object_url(f"{lesson.hls_prefix}{folder}/{line}", ttl_s, external=True)
        out.append(line)
    return "\n".join(out) + "\n"


def _read(key: str) -> str:
    with media.storage().open(key) as handle:
        return handle.read().decode("utf-8")
