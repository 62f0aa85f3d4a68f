"""streamsr/urls.py: what a source URL shows in messages and reports (credentials and secret query values
dropped, the rest kept)."""

import pytest

from streamsr.urls import redact_url


@pytest.mark.parametrize("url,shown", [
    ("rtsp://user:secret@cam.local:554/stream", "rtsp://cam.local:554/stream"),
    ("rtsp://user:p@ss@10.0.0.2/live?x=1", "rtsp://10.0.0.2/live?x=1"),  # an unescaped @ in the password
    ("srt://host:9000?mode=caller&passphrase=abc123&latency=20", "srt://host:9000?mode=caller&passphrase=***&latency=20"),
    ("http://host/s.m3u8?token=xyz#t", "http://host/s.m3u8?token=***#t"),
    ("http://host/path/with@sign", "http://host/path/with@sign"),  # an @ in the path is not userinfo
    ("https://u@host", "https://host"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
    ("synthetic:64x48@10", "synthetic:64x48@10"),
    ("0", "0"),
])
def test_redact_url_drops_only_the_credentials(url, shown):
    assert redact_url(url) == shown
